"""RTF files of the report's tables and listings, the format medical writers paste into a
clinical study report (``rtflite``).

:func:`write_rtf` writes one :class:`trial.report.tlf.Tlf` (title lines, column header repeated on
every page, footnotes and the source line, landscape when the output is wide) and
:func:`write_rtf_outputs` writes every output of a report, one file each, plus one combined file
with the outputs in order. The text is the same text the HTML shows (same object, same
formatting), so the two carry the same numbers.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import rtflite as rtf

from trial.report.run_info import RunInfo
from trial.report.tlf import Tlf, source_line

COMBINED = "all_outputs.rtf"
"""Name of the combined file beside the per-output files."""
ROWS_PORTRAIT = 50
"""Most rows (header, body, footnotes, source) on one portrait page; landscape pages take
:data:`ROWS_LANDSCAPE`. A longer table is cut into near-equal pages (rtflite repeats the
column header on each), so no page is left with a few rows."""
ROWS_LANDSCAPE = 32
INDENT_TWIPS = 240
"""Indent of one label level (twips, 1/1440 inch)."""

_RTF_SAFE = str.maketrans({"±": "+/-", "≥": ">=", "≤": "<=", "×": "x", "–": "-", "—": "-"})


def _text(value: object) -> str:
    """Text as RTF: a few symbols spelt in ASCII, RTF's special characters escaped, any other
    non-ASCII character as an RTF Unicode escape. rtflite's own LaTeX-style conversion is off
    (it would turn ``enrolment_by_centre`` into subscripts)."""
    if value is None:
        return ""
    text = str(value).translate(_RTF_SAFE)
    text = text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
    return "".join(c if ord(c) < 128 else f"\\u{ord(c)}?" for c in text)


def _header(name: str) -> str:
    """A column header on one line: its lines joined with `` / `` (``System organ class /
    Preferred term``)."""
    return _text(" / ".join(part.strip() for part in name.split("\n")))


def _cell(value: object) -> str:
    """A body cell: as :func:`_text`, a line break as `` / `` (rtflite measures body text
    on one line and fails on a line break)."""
    return _text(value).replace("\n", " / ")


A4 = (8.27, 11.69)
"""Page size in inches (portrait); the HTML report prints on A4 too."""
MARGINS = [0.8, 0.8, 0.9, 0.8, 0.5, 0.5]
"""Left, right, top, bottom, header, footer (inches)."""
FONT_PT = 8
PORTRAIT_CHARACTERS = 125
"""Characters (summed column widths plus cell padding) that fit across a portrait page at
:data:`FONT_PT`; a wider output prints on a landscape page."""


CELL_PADDING = 3.0
"""Characters added to every column's width for the cell's left and right padding."""


def is_landscape(tlf: Tlf) -> bool:
    """Landscape when the output asks for it or its columns do not fit across a portrait page."""
    return tlf.landscape or sum(tlf.widths()) + 3 * tlf.frame.width > PORTRAIT_CHARACTERS


def rtf_document(tlf: Tlf, run: RunInfo, study_id: str) -> rtf.RTFDocument:
    """The rtflite document of one output."""
    clean = pl.DataFrame(
        [[_cell(v) for v in row] for row in tlf.frame.iter_rows()],
        schema={_header(c): pl.String for c in tlf.frame.columns},
        orient="row",
    )
    n_cols = clean.width
    widths = [w + CELL_PADDING for w in tlf.widths()]
    landscape = is_landscape(tlf)
    rows = max(clean.height, 1)
    justify = [["l", *(["c"] * (n_cols - 1))]]
    indent = [[INDENT_TWIPS * tlf.indent_of(i), *([0] * (n_cols - 1))] for i in range(rows)]
    bold = [["b" if i in tlf.emphasis else ""] for i in range(rows)]
    header = (
        f"{_text(study_id)} | {run.blinding_label} | Page {{\\chpgn}} of "
        "{\\field{\\*\\fldinst {\\fs16 NUMPAGES }}{\\fldrslt {\\fs16 1}}}"
    )
    footnotes = [_text(n) for n in tlf.footnotes]
    page_rows = ROWS_LANDSCAPE if landscape else ROWS_PORTRAIT
    overhead = max(c.count("\n") for c in clean.columns) + 1 + 2 * len(footnotes) + 2
    body_rows = max(page_rows - overhead, 3)
    pages = max(1, -(-clean.height // body_rows))
    # one page: the whole page's lines, as rtflite counts a wrapped cell's lines against nrow
    balanced = page_rows if pages == 1 else -(-clean.height // pages) + overhead
    width, height = (A4[1], A4[0]) if landscape else A4
    return rtf.RTFDocument(
        df=clean,
        rtf_page=rtf.RTFPage(
            orientation="landscape" if landscape else "portrait",
            width=width,
            height=height,
            margin=MARGINS,
            nrow=balanced,
            col_width=width - MARGINS[0] - MARGINS[1],
        ),
        rtf_page_header=rtf.RTFPageHeader(text=header, text_convert=False, text_font_size=[8]),
        rtf_title=rtf.RTFTitle(
            text=[tlf.label, _text(tlf.title), _text(tlf.population)],
            text_font_size=[10],
            text_convert=[False],
        ),
        rtf_column_header=[
            rtf.RTFColumnHeader(
                text=list(clean.columns),
                col_rel_width=widths,
                text_font_size=[FONT_PT],
                text_convert=[False],
            )
        ],
        rtf_body=rtf.RTFBody(
            col_rel_width=widths,
            text_justification=justify,
            text_indent_left=indent,
            text_format=bold,
            text_font_size=[FONT_PT],
            text_convert=[[False]],
        ),
        rtf_footnote=rtf.RTFFootnote(text=footnotes, text_font_size=[FONT_PT], text_convert=[False])
        if footnotes
        else None,
        rtf_source=rtf.RTFSource(
            text=[_text(source_line(tlf, run))], text_font_size=[7], text_convert=[False]
        ),
    )


def write_rtf(tlf: Tlf, run: RunInfo, study_id: str, out_dir: Path) -> Path:
    """Write ``out_dir/<key>.rtf`` (``t_14_3_1_1.rtf``); returns the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{tlf.key}.rtf"
    with contextlib.redirect_stdout(io.StringIO()):  # rtflite prints the path it writes
        rtf_document(tlf, run, study_id).write_rtf(str(path))
    return path


_PAPER = re.compile(r"\\paperw(\d+)\\paperh(\d+)(\\landscape)? ?\n")
_MARGINS = re.compile(
    r"\\margl(\d+)\\margr(\d+)\\margt(\d+)\\margb(\d+)\\headery(\d+)\\footery(\d+)\n"
)
_HEADER = re.compile(r"\{\\header.*\n")


def combine_rtf(paths: Sequence[Path], out: Path) -> Path:
    """One RTF file holding the documents of ``paths`` in order, each in its own section with
    its own page size, orientation, margins and running header (rtflite's ``assemble_rtf``
    keeps the first file's page set-up for all, which squeezes landscape tables)."""
    texts = [p.read_text(encoding="utf-8") for p in paths]
    parts = [texts[0][: texts[0].rindex("}")]]
    for text in texts[1:]:
        paper, margins, header = _PAPER.search(text), _MARGINS.search(text), _HEADER.search(text)
        if paper is None or margins is None or header is None:
            raise ValueError("not an rtflite document: no page set-up or running header")
        w, h, landscape = paper.groups()
        left, right, top, bottom, head_y, foot_y = margins.groups()
        orientation = "\\lndscpsxn" if landscape else ""
        parts.append(
            f"\\sect\\sectd\\pgwsxn{w}\\pghsxn{h}{orientation}"
            f"\\marglsxn{left}\\margrsxn{right}\\margtsxn{top}\\margbsxn{bottom}"
            f"\\headery{head_y}\\footery{foot_y}\n"
            + header.group(0)
            + text[margins.end() : text.rindex("}")]
        )
    out.write_text("".join(parts) + "}\n", encoding="utf-8")
    return out


def write_rtf_outputs(
    outputs: Sequence[Tlf], run: RunInfo, study_id: str, out_dir: Path
) -> list[Path]:
    """One RTF file per output and :data:`COMBINED` with all of them in order (each output in
    its own section, starting on a new page); returns the per-output paths then the combined
    one."""
    paths = [write_rtf(t, run, study_id, out_dir) for t in outputs]
    if not paths:
        return paths
    return [*paths, combine_rtf(paths, out_dir / COMBINED)]
