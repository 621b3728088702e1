"""RTF files of the report's tables and listings, the format medical writers paste into a
clinical study report (``rtflite``).

:func:`write_rtf` writes one :class:`trial.report.tlf.Tlf` (title lines, column header repeated on
every page, footnotes and the source line, landscape when the output is wide) and
:func:`write_rtf_outputs` writes every output of a report, one file each, plus one combined file
with the outputs in order. The text is the same text the HTML shows (same object, same
formatting), so the two carry the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
import rtflite as rtf

from trial.report.run_info import RunInfo
from trial.report.tlf import Tlf, source_line

COMBINED = "all_outputs.rtf"
"""Name of the combined file beside the per-output files."""
ROWS_PORTRAIT = 44
"""Rows (header, body, footnotes) rtflite puts on one portrait page before repeating the
header on the next; landscape pages take :data:`ROWS_LANDSCAPE`."""
ROWS_LANDSCAPE = 28
INDENT_TWIPS = 240
"""Indent of one label level (twips, 1/1440 inch)."""

_RTF_SAFE = str.maketrans({"±": "+/-", "≥": ">=", "≤": "<=", "×": "x", "–": "-", "—": "-"})


def _text(value: object) -> str:
    """A cell as plain text rtflite encodes safely (a few symbols spelt out in ASCII)."""
    return "" if value is None else str(value).translate(_RTF_SAFE)


def rtf_document(tlf: Tlf, run: RunInfo, study_id: str) -> rtf.RTFDocument:
    """The rtflite document of one output."""
    clean = pl.DataFrame(
        [[_text(v) for v in row] for row in tlf.frame.iter_rows()],
        schema={_text(c): pl.String for c in tlf.frame.columns},
        orient="row",
    )
    n_cols = clean.width
    widths = tlf.widths()
    justify = [["l", *(["c"] * (n_cols - 1))] for _ in range(max(clean.height, 1))]
    indent = [
        [INDENT_TWIPS * tlf.indent_of(i), *([0] * (n_cols - 1))] for i in range(clean.height)
    ]
    bold = [["b" if i in tlf.emphasis else ""] * n_cols for i in range(clean.height)]
    header = (
        f"{study_id} | {run.blinding_label} | Page \\chpgn of "
        "{\\field{\\*\\fldinst NUMPAGES }}"
    )
    footnotes = [_text(n) for n in tlf.footnotes]
    return rtf.RTFDocument(
        df=clean,
        rtf_page=rtf.RTFPage(
            orientation="landscape" if tlf.landscape else "portrait",
            nrow=ROWS_LANDSCAPE if tlf.landscape else ROWS_PORTRAIT,
        ),
        rtf_page_header=rtf.RTFPageHeader(text=header, text_convert=False),
        rtf_title=rtf.RTFTitle(text=[tlf.label, _text(tlf.title), _text(tlf.population)]),
        rtf_column_header=[
            rtf.RTFColumnHeader(text=list(clean.columns), col_rel_width=widths)
        ],
        rtf_body=rtf.RTFBody(
            col_rel_width=widths,
            text_justification=justify,
            text_indent_left=indent,
            text_format=bold,
        ),
        rtf_footnote=rtf.RTFFootnote(text=footnotes) if footnotes else None,
        rtf_source=rtf.RTFSource(text=[_text(source_line(tlf, run))]),
    )


def write_rtf(tlf: Tlf, run: RunInfo, study_id: str, out_dir: Path) -> Path:
    """Write ``out_dir/<key>.rtf`` (``t_14_3_1_1.rtf``); returns the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{tlf.key}.rtf"
    rtf_document(tlf, run, study_id).write_rtf(str(path))
    return path


def write_rtf_outputs(
    outputs: Sequence[Tlf], run: RunInfo, study_id: str, out_dir: Path
) -> list[Path]:
    """One RTF file per output and :data:`COMBINED` with all of them in order (each output on
    its own pages); returns the per-output paths then the combined one."""
    paths = [write_rtf(t, run, study_id, out_dir) for t in outputs]
    combined = out_dir / COMBINED
    if paths:
        rtf.assemble_rtf([str(p) for p in paths], str(combined))
        return [*paths, combined]
    return paths
