"""Every report and export of a run in one call, laid out as ``docs/architecture.md`` says:

- ``OUT/reports/investigator_report.html`` (+ ``.pdf`` with ``pdf=True``) and
  ``OUT/reports/investigator_report_data/<frame>.parquet`` (the numbers behind it);
- ``OUT/reports/rtf/<output>.rtf`` every numbered table and listing, and ``all_outputs.rtf``;
- ``OUT/reports/data_quality_report.html``, ``data_quality_issues.csv``, ``contract_checks.csv``;
- ``OUT/exports/xpt/<dataset>.xpt`` (SAS v5) and ``OUT/exports/xpt/define.csv``.

The Dagster report assets call the same functions one by one; ``ionto run`` gets them through
the assets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from study import Study
from trial.models.result import ModelResult
from trial.report.count_reconciliation import count_findings
from trial.report.data import ReportData, build_report_data
from trial.report.exports import write_xpt_exports
from trial.report.investigator import REPORT_NAME, write_investigator_html
from trial.report.investigator_tables import investigator_outputs
from trial.report.pdf import Chromium, find_chromium
from trial.report.quality import render_data_quality_report
from trial.report.rtf import write_rtf_outputs
from trial.report.run_info import RunInfo


def write_report_data(data: ReportData, out_dir: Path) -> list[Path]:
    """The numbers behind the investigator report, one Parquet file per frame."""
    folder = out_dir / f"{REPORT_NAME}_data"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in data.frames().items():
        path = folder / f"{name}.parquet"
        frame.write_parquet(path)
        paths.append(path)
    return paths


def write_investigator_outputs(
    data: ReportData, out_dir: Path, *, pdf: bool, chromium: Chromium | None = None
) -> dict[str, list[Path]]:
    """The investigator report under ``out_dir`` (the run's ``OUT/reports``): its HTML, the PDF
    print with ``pdf=True`` (when the HTML changed, :func:`write_investigator_html`), every
    numbered output as RTF and the numbers behind it. Chromium prints while the RTF files and
    the numbers are written; ``chromium`` is one started ahead
    (:class:`trial.report.pdf.PrintBrowser`), None to start one for the print. Returns the
    written paths by kind (``investigator``, ``rtf``, ``investigator_data``)."""
    html, printing = write_investigator_html(data, out_dir, pdf=pdf, chromium=chromium)
    with printing or contextlib.nullcontext():
        rtf_files = write_rtf_outputs(
            list(investigator_outputs(data).values()),
            data.run,
            data.study.study_id,
            out_dir / "rtf",
        )
        frames = write_report_data(data, out_dir)
        if printing is not None:
            printing.wait()
    return {
        "investigator": [html, *([html.with_suffix(".pdf")] if pdf else [])],
        "rtf": rtf_files,
        "investigator_data": frames,
    }


def with_count_findings(
    tables: Mapping[str, pl.DataFrame], data: ReportData
) -> dict[str, pl.DataFrame]:
    """``tables`` for the data-quality report with every report count that disagrees with its
    analysis set (``data.count_reconciliation``) added to ``derivation_findings``."""
    found = count_findings(data.count_reconciliation)
    earlier = tables.get("derivation_findings")
    return {
        **tables,
        "derivation_findings": found if earlier is None else pl.concat([earlier, found]),
    }


def write_report_outputs(
    tables: Mapping[str, pl.DataFrame],
    models: Mapping[str, ModelResult],
    study: Study,
    run: RunInfo,
    out_dir: Path,
    *,
    pdf: bool | None = None,
) -> dict[str, list[Path]]:
    """Write the investigator report, the data-quality report and the XPT exports under
    ``out_dir`` (the run's OUT folder). ``pdf``: also print the investigator report to PDF
    (None: when Chromium is installed). Returns the written paths by kind."""
    if pdf is None:
        pdf = find_chromium() is not None
    reports = out_dir / "reports"
    data = build_report_data(tables, models, study, run)
    investigator = write_investigator_outputs(data, reports, pdf=pdf)
    quality = render_data_quality_report(with_count_findings(tables, data), study, run, reports)
    exports = write_xpt_exports(tables, out_dir / "exports" / "xpt")
    return {**investigator, "data_quality": [quality], "exports": exports.paths}
