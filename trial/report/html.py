"""Shared HTML pieces of the reports: page CSS, banners, great_tables rendering.

Reports are one self-contained HTML file (inline CSS and SVG, no scripts, no network) that
prints to PDF: each ``<section class="page">`` starts a printed page and carries the run
banner, and the ``@page`` margin boxes repeat the blinding label on every printed page.
"""

from __future__ import annotations

import re
from html import escape

import polars as pl
from great_tables import GT

from trial.report.run_info import RunInfo
from trial.report.tlf import TLF_CSS

CSS = """
@page { size: A4; margin: 16mm 12mm 16mm 12mm;
  @top-right { content: "%(label)s"; font: bold 9pt sans-serif; color: %(colour)s; }
  @top-left { content: "%(study)s  |  data cut %(cut)s"; font: 8pt sans-serif; color: #555; }
  @bottom-right { content: "%(label)s  |  page " counter(page) " of " counter(pages);
                  font: 8pt sans-serif; color: %(colour)s; } }
@page wide { size: A4 landscape; margin: 14mm 12mm 14mm 12mm;
  @top-right { content: "%(label)s"; font: bold 9pt sans-serif; color: %(colour)s; }
  @top-left { content: "%(study)s  |  data cut %(cut)s"; font: 8pt sans-serif; color: #555; }
  @bottom-right { content: "%(label)s  |  page " counter(page) " of " counter(pages);
                  font: 8pt sans-serif; color: %(colour)s; } }
html { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11pt; color: #1a1a1a; }
body { max-width: 1100px; margin: 0 auto; padding: 0 12px; }
section.page { padding-top: 4px; }
h2 { break-after: avoid; }
section.wide { page: wide; }
section.page:first-of-type { break-before: auto; }
.banner { display: flex; justify-content: space-between; border-bottom: 2px solid %(colour)s;
  font-size: 9pt; color: #444; margin: 10px 0 8px 0; padding-bottom: 2px; }
.banner .blinding { font-weight: bold; color: %(colour)s; letter-spacing: 0.05em; }
h1 { font-size: 20pt; margin: 6px 0; } h2 { font-size: 14pt; margin: 12px 0 6px 0; }
h3 { font-size: 11.5pt; margin: 10px 0 4px 0; }
table.titleblock td { padding: 2px 12px 2px 0; font-size: 10pt; vertical-align: top; }
.note { font-size: 9pt; color: #444; margin: 4px 0; }
.withheld { border: 1px dashed #999; padding: 8px; color: #444; font-size: 10pt; margin: 6px 0; }
figure { margin: 6px 0; break-inside: avoid; } figure svg { max-width: 100%%; height: auto; }
figcaption { font-size: 9pt; color: #333; }
.gt_table { break-inside: auto; } tr { break-inside: avoid; }
dl.methods dt { font-weight: bold; font-size: 9.5pt; margin-top: 4px; }
dl.methods dd { margin: 0 0 2px 14px; font-size: 9pt; }
.action { font-size: 9pt; }
"""


def page_css(run: RunInfo, study_id: str) -> str:
    """The report CSS with the run's blinding label in the print margins."""
    colour = "#1b5e20" if run.blinded else "#b71c1c"
    return (CSS + TLF_CSS.replace("%", "%%")) % {
        "label": run.blinding_label,
        "colour": colour,
        "study": study_id,
        "cut": run.data_cut,
    }


def banner(run: RunInfo, study_id: str, title: str) -> str:
    """The line at the top of every report page: study, report, data cut, blinding label."""
    return (
        '<div class="banner">'
        f"<span>{escape(study_id)} | {escape(title)} | data cut {escape(run.data_cut)}</span>"
        f'<span class="blinding">{run.blinding_label}</span></div>'
    )


def gt_html(
    frame: pl.DataFrame,
    table_id: str,
    *,
    title: str | None = None,
    labels: dict[str, str] | None = None,
    note: str | None = None,
    spanners: dict[str, list[str]] | None = None,
) -> str:
    """A great_tables HTML table with a fixed id (byte-stable output) and small type."""
    if frame.height == 0:
        return '<p class="note">No rows.</p>'
    gt = GT(frame).with_id(table_id)
    if title:
        gt = gt.tab_header(title=title)
    if labels:
        gt = gt.cols_label(cases={k: v for k, v in labels.items() if k in frame.columns})
    for label, columns in (spanners or {}).items():
        present = [c for c in columns if c in frame.columns]
        if present:
            gt = gt.tab_spanner(label=label, columns=present)
    if note:
        gt = gt.tab_source_note(note)
    gt = gt.tab_options(table_font_size="9pt", data_row_padding="2px", table_width="100%")
    return gt.sub_missing(missing_text="").as_raw_html()


def slug(text: str) -> str:
    """A lower-case id fragment from any label."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def document(title: str, css: str, body: str) -> str:
    """The complete HTML document (UTF-8, no external resources)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{css}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
