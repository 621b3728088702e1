"""Tables and listings as a sponsor files them (the conventions of tern/rtables and SAS ODS).

A :class:`Tlf` is one numbered output: ``Table 14.3.1.1`` with its title, the analysis set and
its N in the header, the body as text (every value already formatted; row labels from the study
configuration and the contracts, never codes), footnotes with the definitions, and a source
line naming the datasets, the program and version and the data cut. The investigator report
renders it as HTML (:func:`tlf_html`) and ``trial.report.rtf`` writes the same object as RTF,
so the two carry the same numbers.

Page layout for print (A4, Chromium): every output is a block that does not break inside, so a
table that does not fit on the rest of a page starts on a new page instead of leaving a few rows
behind. A table longer than one page is cut into near-equal parts of at most
:data:`ROWS_PER_PAGE` rows (landscape: :data:`ROWS_PER_LANDSCAPE_PAGE`); each part repeats the
title (``(continued)``) and the column header, so no part holds fewer than three rows when the
table has more than a page of them. Wide outputs (``landscape=True``) print on landscape pages.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from html import escape

import polars as pl

from trial.report.run_info import RunInfo

ROWS_PER_PAGE = 44
"""Most body rows of one part on a portrait A4 page (8.5 pt, a label may wrap once)."""
ROWS_PER_LANDSCAPE_PAGE = 30
"""Most body rows of one part on a landscape A4 page."""


@dataclass(frozen=True)
class Tlf:
    """One numbered table or listing.

    ``number``: the CSR section number (``14.3.1.1``); ``kind``: ``Table`` or ``Listing``;
    ``population``: the analysis set with its N (``Safety set (N = 120)``); ``frame``: the body,
    every column text, the first column the row label, column names the printed headers;
    ``indent``: per row, the indent level of the label (0 = flush); ``emphasis``: rows printed
    bold (the primary contrast); ``sources``: the datasets the numbers come from; ``program``:
    the module that built the numbers; ``headings``: rows that head the rows below them (a term
    above its categories), never printed last on a page; ``wrap_columns``: value columns
    whose cells may wrap (free text of a listing; other values never wrap)."""

    number: str
    title: str
    population: str
    frame: pl.DataFrame
    kind: str = "Table"
    footnotes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    program: str = "trial.report"
    landscape: bool = False
    indent: tuple[int, ...] = ()
    emphasis: tuple[int, ...] = ()
    col_widths: tuple[float, ...] = ()
    headings: tuple[int, ...] = ()
    wrap_columns: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """``Table 14.3.1.1``."""
        return f"{self.kind} {self.number}"

    @property
    def key(self) -> str:
        """File and element name: ``t_14_3_1_1`` (``l_`` for a listing)."""
        return f"{self.kind[0].lower()}_{self.number.replace('.', '_')}"

    def indent_of(self, row: int) -> int:
        return self.indent[row] if row < len(self.indent) else 0

    def widths(self) -> list[float]:
        """Relative column widths (RTF): as given, else each column's longest text (a header
        counted by its longest word, as it may wrap; the label column between 8 and 40)."""
        if self.col_widths:
            return list(self.col_widths)
        out = []
        for j, name in enumerate(self.frame.columns):
            longest = self.frame[name].cast(pl.String).str.len_chars().max()
            text = int(longest) if isinstance(longest, int) else 0
            word = max(len(w) for w in name.split()) + 1 if name.strip() else 1
            width = float(max(text, word, 4))
            out.append(min(max(width, 8.0), 40.0) if j == 0 else width)
        return out


def source_line(tlf: Tlf, run: RunInfo) -> str:
    """The source line: datasets, program and code version, data version and cut, blinding."""
    sources = ", ".join(tlf.sources) if tlf.sources else "analysis tables"
    return (
        f"Source: {sources}. Program: {tlf.program} ({run.code_version}); data version "
        f"{run.data_version}; data cut {run.data_cut}; {run.blinding_label}."
    )


def page_parts(
    height: int, landscape: bool, headings: tuple[int, ...] = ()
) -> list[tuple[int, int]]:
    """``(offset, length)`` of each printed part of a body of ``height`` rows: one part when it
    fits a page, else near-equal parts of at most a page each (so none is left with a few
    rows); a cut that would leave a heading row last in its part moves up before the heading."""
    limit = ROWS_PER_LANDSCAPE_PAGE if landscape else ROWS_PER_PAGE
    if height <= limit:
        return [(0, height)]
    parts = math.ceil(height / limit)
    while True:
        cuts = [round(height * i / parts) for i in range(1, parts)]
        moved: list[int] = []
        for cut in cuts:
            while cut - 1 in headings and cut - 1 > (moved[-1] if moved else 0):
                cut -= 1
            moved.append(cut)
        bounds = [0, *moved, height]
        if all(b - a <= limit for a, b in itertools.pairwise(bounds)):
            break
        parts += 1  # a moved cut made a part too long: one part more
    return [(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]


def _row_html(tlf: Tlf, row: int, values: tuple[object, ...]) -> str:
    cells = []
    for j, value in enumerate(values):
        text = "" if value is None else escape(str(value))
        if j == 0:
            pad = tlf.indent_of(row)
            style = f' style="padding-left:{0.3 + 1.2 * pad:.1f}em"' if pad else ""
            kind = "lab nowrap" if tlf.kind == "Listing" else "lab"
            cells.append(f'<td class="{kind}"{style}>{text}</td>')
        elif j in tlf.wrap_columns:
            cells.append(f'<td class="wrap">{text}</td>')
        else:
            cells.append(f"<td>{text}</td>")
    cls = ' class="emph"' if row in tlf.emphasis else ""
    return f"<tr{cls}>{''.join(cells)}</tr>"


def tlf_html(tlf: Tlf, run: RunInfo) -> str:
    """The output as HTML blocks (one per printed part), with the report CSS's ``tlf`` classes."""
    head = "".join(f"<th>{escape(c)}</th>" for c in tlf.frame.columns)
    rows = list(tlf.frame.iter_rows())
    parts = page_parts(len(rows), tlf.landscape, tlf.headings)
    blocks = []
    for k, (offset, length) in enumerate(parts):
        last = k == len(parts) - 1
        body = "".join(_row_html(tlf, offset + i, rows[offset + i]) for i in range(length))
        cont = " (continued)" if k else ""
        notes = ""
        if last:
            notes = "".join(f'<p class="tlf-note">{escape(n)}</p>' for n in tlf.footnotes)
            notes += f'<p class="tlf-source">{escape(source_line(tlf, run))}</p>'
        else:
            notes = '<p class="tlf-note">Continued on the next page.</p>'
        classes = "tlf" + (" landscape" if tlf.landscape else "") + (" cont" if k else "")
        element_id = tlf.key if k == 0 else f"{tlf.key}-{k + 1}"
        blocks.append(
            f'<div class="{classes}" id="{element_id}">'
            f'<p class="tlf-number">{escape(tlf.label)}{cont}</p>'
            f'<p class="tlf-title">{escape(tlf.title)}</p>'
            f'<p class="tlf-pop">{escape(tlf.population)}</p>'
            f'<table class="tlf"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>{notes}</div>"
        )
    return "".join(blocks)


TLF_CSS = """
.tlf { break-inside: avoid; margin: 8px 0 14px 0; }
.tlf.cont { break-before: page; }
.tlf.landscape { page: wide; }
.tlf-number, .tlf-title, .tlf-pop { text-align: center; margin: 0; font-size: 10pt; }
.tlf-number { font-weight: bold; } .tlf-pop { font-size: 9pt; margin-bottom: 3px; }
table.tlf { width: 100%; border-collapse: collapse; font-size: 8.5pt; }
table.tlf thead { display: table-header-group; }
table.tlf th { border-top: 1.5px solid #000; border-bottom: 1px solid #000; padding: 2px 4px;
  text-align: center; vertical-align: bottom; font-weight: bold; white-space: pre-line; }
table.tlf td { padding: 1px 4px; text-align: center; white-space: pre; }
table.tlf td.lab { text-align: left; white-space: pre-line; }
table.tlf td.lab.nowrap { white-space: pre; }
table.tlf th:first-child { text-align: left; }
table.tlf td.wrap { white-space: pre-line; }
table.tlf tbody tr:last-child td { border-bottom: 1.5px solid #000; }
table.tlf tr.emph td { font-weight: bold; background: #fff4d6; }
.tlf-note, .tlf-source { font-size: 8pt; color: #333; margin: 2px 0 0 0; }
.tlf-source { color: #555; }
"""
"""CSS of the outputs, added to the report's page CSS (``@page wide`` is defined there)."""
