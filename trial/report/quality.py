"""The data-quality report for data managers: every issue with where it is and what to do.

:func:`data_quality_issues` gathers one row per actionable item (``ISSUE_COLUMNS``) from the
quarantine, the contract checks, the derived tables and the derivation's findings;
:func:`render_data_quality_report` writes it as HTML (one section per category) and as CSV for
the data-management system. Subject identifiers appear, arms never: the report is the same in
blinded and unblinded runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from html import escape
from pathlib import Path

import polars as pl

from data_contracts.contracts import BLOCKING, check_frame, list_contracts, load_contract
from study import Study
from trial.report.finding_life import (
    LEDGER_NAME,
    finding_life_html,
    update_ledger,
    with_finding_ids,
)
from trial.report.html import banner, document, gt_html, page_css
from trial.report.run_info import RunInfo

REPORT_NAME = "data_quality_report"
ISSUES_NAME = "data_quality_issues.csv"
"""The items as CSV, beside the report, for the data-management system."""
TITLE = "Data-quality report"

ISSUE_COLUMNS: dict[str, pl.DataType] = {
    "category": pl.String(),
    "dataset": pl.String(),
    "subject_id": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    "field": pl.String(),
    "item": pl.String(),
    "code": pl.String(),
    "detail": pl.String(),
    "action": pl.String(),
}
"""One actionable item: what (``code``, ``detail``), where (file, line, field, subject, and
``item``: the visit or device session it is about, where file and line do not tell two items
apart) and what to do (``action``)."""

CATEGORIES = {
    "QUARANTINE": "Quarantined rows and files",
    "CONTRACT_CHECK": "Failed data-contract checks",
    "OUT_OF_WINDOW": "Out-of-window visits",
    "CLOCK_RESET": "Device sessions with a reset clock",
    "UNMAPPED_SESSION": "Device sessions not matched to a subject",
    "MISSING_VISIT": "Subjects with missing visits",
    "DUPLICATE_PAPER": "Papers delivered in two worksheets",
    "DERIVATION": "Derivation findings",
}
"""Report sections in order, with their headings."""


def _issues(frame: pl.DataFrame, category: str, **columns: pl.Expr) -> pl.DataFrame:
    exprs = [pl.lit(category).alias("category")]
    for name, dtype in ISSUE_COLUMNS.items():
        if name == "category":
            continue
        expr = columns.get(name, pl.lit(None))
        exprs.append(expr.cast(dtype).alias(name))
    return frame.select(exprs)


LANDING_ACTIONS = {
    "UNKNOWN_FILE": "Move {} into its delivery folder <centre>/<YYYY-MM-DD>/ under the name its "
    "format has if it is a delivery, else remove it from the raw tree; it was not read.",
    "UNKNOWN_FOLDER": "Move {} into a delivery folder <centre>/<YYYY-MM-DD>/ if it is a "
    "delivery, else remove it (and its folder) from the raw tree; it was not read.",
    "SYMLINK": "Replace the link {} by a copy of the files in a delivery folder; links are "
    "never followed, so nothing behind it was read.",
    "SEALED_LIST_IN_RAW": "Remove {} from the raw tree now: it is a copy of the sealed "
    "randomisation list, which belongs with the unblinded statistician only; it was not read.",
}
"""What to do about a file the landing area did not read, by reason (``ingest/landing.py``):
these are no centre's export to re-send."""


def quarantine_issues(quarantine: pl.DataFrame) -> pl.DataFrame:
    """Every quarantined line or file, with the reader's message and the fix."""
    whole = pl.col("source_line").is_null()
    reason = pl.col("reason_code")
    landing = pl.lit(None, dtype=pl.String)
    for code, text in LANDING_ACTIONS.items():
        landing = (
            pl.when(reason == code).then(pl.format(text, pl.col("source_file"))).otherwise(landing)
        )
    return _issues(
        quarantine,
        "QUARANTINE",
        dataset=pl.col("dataset"),
        source_file=pl.col("source_file"),
        source_line=pl.col("source_line"),
        field=pl.col("field"),
        code=pl.col("reason_code"),
        detail=pl.col("message"),
        action=pl.when(landing.is_not_null())
        .then(landing)
        .when(whole)
        .then(
            pl.format(
                "Ask the centre to re-export {} whole; it was not read.", pl.col("source_file")
            )
        )
        .otherwise(
            pl.format(
                "Correct {} on line {} of {} at the centre and re-deliver the file "
                "(the rest of the file was read).",
                pl.col("field").fill_null("the row"),
                pl.col("source_line"),
                pl.col("source_file"),
            )
        ),
    )


def contract_check_results(tables: Mapping[str, pl.DataFrame], *, blinded: bool) -> pl.DataFrame:
    """Every data-contract rule on every table that has a contract, as the pipeline's asset
    checks evaluate them: in a blinded run a contract's unblinded-only columns (arm,
    randomisation date) must be absent (rule ``blinding``) and the other rules are checked
    against the contract without them.

    Columns ``dataset, check, column, rule, passed, n_failing, severity, sample, description``."""
    rows = []
    known = set(list_contracts())
    for dataset, frame in tables.items():
        if dataset not in known:
            continue
        contract = load_contract(dataset)
        if blinded and contract.unblinded_only:
            present = [c for c in contract.unblinded_only if c in frame.columns]
            rows.append(
                {
                    "dataset": dataset,
                    "check": "blinding",
                    "column": None,
                    "rule": "blinding",
                    "passed": not present,
                    "n_failing": len(present),
                    "severity": BLOCKING,
                    "sample": ", ".join(present),
                    "description": "a blinded frame carries no unblinded-only column",
                }
            )
            contract = contract.blinded_view()
            frame = frame.drop(present)
        for result in check_frame(frame, contract):
            rows.append(
                {
                    "dataset": dataset,
                    "check": result.name,
                    "column": result.column,
                    "rule": result.rule,
                    "passed": result.passed,
                    "n_failing": result.n_failing,
                    "severity": result.severity,
                    "sample": ", ".join(result.sample),
                    "description": result.description,
                }
            )
    schema = {
        "dataset": pl.String,
        "check": pl.String,
        "column": pl.String,
        "rule": pl.String,
        "passed": pl.Boolean,
        "n_failing": pl.Int64,
        "severity": pl.String,
        "sample": pl.String,
        "description": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def contract_issues(checks: pl.DataFrame) -> pl.DataFrame:
    """One issue per failed contract rule."""
    return _issues(
        checks.filter(~pl.col("passed")),
        "CONTRACT_CHECK",
        dataset=pl.col("dataset"),
        field=pl.col("column"),
        code=pl.col("check"),
        detail=pl.format(
            "{} rows fail {} ({}); e.g. {}",
            pl.col("n_failing"),
            pl.col("description"),
            pl.col("severity"),
            pl.col("sample"),
        ),
        action=pl.format(
            "Find the rows of {} failing {} (values shown) and correct the source data or the "
            "derivation; a blocking failure stops the downstream assets.",
            pl.col("dataset"),
            pl.col("check"),
        ),
    )


def out_of_window_issues(adsweat: pl.DataFrame, adhdss: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Visits outside their window (one row per subject and visit, from ADSWEAT and ADHDSS)."""
    windows = {v.code: v.window_days for v in study.visits}
    targets = {v.code: v.target_day for v in study.visits}
    cols = ["subject_id", "AVISIT", "ADY"]
    sweat = adsweat.filter(pl.col("out_of_window")).select(cols)
    hdss = (
        adhdss.filter(pl.col("out_of_window")).select(cols)
        if "ADY" in adhdss.columns
        else adhdss.filter(pl.col("out_of_window")).select(
            "subject_id", "AVISIT", pl.lit(None, pl.Int64).alias("ADY")
        )
    )
    visits = (
        pl.concat([sweat, hdss], how="vertical_relaxed")
        .group_by("subject_id", "AVISIT")
        .agg(pl.col("ADY").drop_nulls().first())
        .sort("subject_id", "AVISIT")
    )
    return _issues(
        visits,
        "OUT_OF_WINDOW",
        dataset=pl.lit("visits"),
        subject_id=pl.col("subject_id"),
        field=pl.lit("visit_date"),
        item=pl.col("AVISIT"),
        code=pl.lit("OUT_OF_WINDOW"),
        detail=pl.format(
            "{} on study day {}; target day {} +/- {}",
            pl.col("AVISIT"),
            pl.col("ADY"),
            pl.col("AVISIT").replace_strict(targets, default=None, return_dtype=pl.Int64),
            pl.col("AVISIT").replace_strict(windows, default=None, return_dtype=pl.Int64),
        ),
        action=pl.format(
            "Confirm the {} visit date of {} in visits.csv; if correct, no change (kept in the "
            "FAS, excluded from the per-protocol analysis at that visit).",
            pl.col("AVISIT"),
            pl.col("subject_id"),
        ),
    )


def _files(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.List(pl.String)).list.join("; ")


def _utc_text(column: str) -> pl.Expr:
    """A UTC time stamp as a data manager reads it: ``2000-01-05 14:20:53 UTC`` (whole
    seconds)."""
    return pl.col(column).dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def clock_reset_issues(device_sessions: pl.DataFrame) -> pl.DataFrame:
    """Sessions whose device clock was reset (dated before 2001 or before consent)."""
    placed = "start_utc_placed" in device_sessions.columns
    rows = device_sessions.filter(pl.col("clock_reset"))
    return _issues(
        rows,
        "CLOCK_RESET",
        dataset=pl.lit("device_sessions"),
        source_file=_files("source_files"),
        field=pl.lit("start"),
        item=pl.col("session_key"),
        code=pl.lit("CLOCK_RESET"),
        detail=pl.format(
            "device {} session {} logged at {}{}",
            pl.col("device_serial"),
            pl.col("session_key"),
            _utc_text("start_utc"),
            pl.when(pl.col("start_utc_placed").is_not_null())
            .then(pl.format("; placed at {} by the session counter", _utc_text("start_utc_placed")))
            .otherwise(pl.lit("; could not be placed"))
            if placed
            else pl.lit(""),
        ),
        action=pl.format(
            "Replace the backup battery of device {} and set its clock; confirm the session "
            "dates with the subject's diary.",
            pl.col("device_serial"),
        ),
    )


def unmapped_session_issues(
    device_sessions: pl.DataFrame, addev: pl.DataFrame, unmapped: pl.DataFrame | None
) -> pl.DataFrame:
    """Device sessions not mapped to any subject (the derivation's ``unmapped_sessions`` with
    its reason when given, else every session missing from ADDEV)."""
    if unmapped is None:
        unmapped = device_sessions.join(addev.select("session_key"), on="session_key", how="anti")
    reason = (
        pl.col("unmapped_reason") if "unmapped_reason" in unmapped.columns else pl.lit("NOT_MAPPED")
    )
    return _issues(
        unmapped,
        "UNMAPPED_SESSION",
        dataset=pl.lit("devices"),
        source_file=_files("source_files"),
        field=pl.lit("device_serial"),
        item=pl.col("session_key"),
        code=reason,
        detail=pl.format(
            "device {} session {} at {} matches no assignment",
            pl.col("device_serial"),
            pl.col("session_key"),
            _utc_text("start_utc"),
        ),
        action=pl.format(
            "Check devices.csv: which subject had serial {} on {}? Add or correct the "
            "assignment dates (from_date/to_date).",
            pl.col("device_serial"),
            pl.col("start_utc").dt.date().cast(pl.String),
        ),
    )


def missing_visit_issues(
    adsl: pl.DataFrame, adsweat: pl.DataFrame, study: Study, data_cut: dt.date
) -> pl.DataFrame:
    """Scheduled gravimetry visits with no primary-region value although due by the data cut.

    A visit is due when its window closed (``bl_date + target_day - 1 + window``) on or before
    the data cut and, for a withdrawn subject, on or before the withdrawal (``disposition_date``,
    else the subject's last sweat measurement). Screen failures and visits before baseline are
    not expected."""
    visits = [
        v
        for v in study.visits
        if v.gravimetry and v.week is not None and v.code != study.baseline_visit
    ]
    schedule = pl.DataFrame(
        {
            "AVISIT": [v.code for v in visits],
            "_close": [v.target_day - 1 + (v.window_days or 0) for v in visits],
            "_target": [v.target_day for v in visits],
        }
    )
    last_seen = adsweat.group_by("subject_id").agg(pl.col("ADT").max().alias("_last"))
    withdrawn_on = (
        pl.col("disposition_date").fill_null(pl.col("_last"))
        if "disposition_date" in adsl.columns
        else pl.col("_last")
    )
    subjects = (
        adsl.filter((pl.col("RANDFL") == "Y") & pl.col("bl_date").is_not_null())
        .join(last_seen, on="subject_id", how="left")
        .select(
            "subject_id",
            "centre_id",
            "bl_date",
            pl.when(pl.col("disposition_status") == "WITHDRAWN")
            .then(withdrawn_on)
            .otherwise(pl.lit(data_cut))
            .alias("_end"),
        )
    )
    due = subjects.join(schedule, how="cross").filter(
        (pl.col("bl_date") + pl.duration(days=pl.col("_close")))
        <= pl.min_horizontal(pl.col("_end"), pl.lit(data_cut))
    )
    seen = adsweat.filter(
        (pl.col("PARAMCD") == study.primary_region.paramcd) & pl.col("AVAL").is_not_null()
    ).select("subject_id", "AVISIT")
    missing = due.join(seen, on=["subject_id", "AVISIT"], how="anti").sort("subject_id", "_target")
    return _issues(
        missing,
        "MISSING_VISIT",
        dataset=pl.lit("gravimetry"),
        subject_id=pl.col("subject_id"),
        field=pl.lit("visit"),
        item=pl.col("AVISIT"),
        code=pl.lit("MISSING_VISIT"),
        detail=pl.format(
            f"no {study.region_label(study.primary_region.code).lower()} sweat value for {{}} "
            "(due by {})",
            pl.col("AVISIT"),
            (pl.col("bl_date") + pl.duration(days=pl.col("_close"))).cast(pl.String),
        ),
        action=pl.format(
            "Query centre {}: was {} of {} done? Deliver the worksheet, or record the visit as "
            "MISSED in visits.csv.",
            pl.col("centre_id"),
            pl.col("AVISIT"),
            pl.col("subject_id"),
        ),
    )


def duplicate_paper_issues(duplicates: pl.DataFrame) -> pl.DataFrame:
    """The same paper (subject, visit, region, side) in two worksheets: the later delivery
    (then the later line) was kept; the pair is listed so the centre can correct it."""
    return _issues(
        duplicates,
        "DUPLICATE_PAPER",
        dataset=pl.lit("gravimetry"),
        subject_id=pl.col("subject_id"),
        source_file=pl.col("superseded_file"),
        source_line=pl.col("superseded_line"),
        field=pl.lit("paper"),
        code=pl.lit("DUPLICATE_KEY"),
        detail=pl.format(
            "{} {} {} {} also in {} line {} (kept)",
            pl.col("subject_id"),
            pl.col("visit"),
            pl.col("region"),
            pl.col("side"),
            pl.col("kept_file"),
            pl.col("kept_line"),
        ),
        action=pl.format(
            "Ask the centre which worksheet holds the right weighing for {} {} {} {}; remove "
            "the other row and re-deliver.",
            pl.col("subject_id"),
            pl.col("visit"),
            pl.col("region"),
            pl.col("side"),
        ),
    )


def derivation_issues(findings: pl.DataFrame) -> pl.DataFrame:
    """The derivation's findings (``trial.derive.findings``), each already a sentence."""
    return _issues(
        findings,
        "DERIVATION",
        dataset=pl.col("dataset"),
        subject_id=pl.col("subject_id"),
        source_file=pl.col("source_file"),
        source_line=pl.col("source_line"),
        code=pl.col("finding"),
        detail=pl.col("detail"),
        action=pl.format(
            "Review {} with the centre ({}); correct the source file if it is wrong.",
            pl.col("finding"),
            pl.col("detail"),
        ),
    )


def data_quality_issues(
    tables: Mapping[str, pl.DataFrame], study: Study, data_cut: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(issues, contract_checks)`` for the run.

    ``tables``: ``quarantine``, ``device_sessions``, ``adsl``, ``adsweat``, ``adhdss``,
    ``addev``; optionally ``unmapped_sessions``, ``derivation_findings`` (the derivations'
    assets) and ``gravimetry_duplicates`` (from the gravimetry reader).
    Every table with a data contract is also checked against it (blinded when ``adsl`` has no
    ``arm``)."""
    checks = contract_check_results(tables, blinded="arm" not in tables["adsl"].columns)
    parts = [
        quarantine_issues(tables["quarantine"]),
        contract_issues(checks),
        out_of_window_issues(tables["adsweat"], tables["adhdss"], study),
        clock_reset_issues(tables["device_sessions"]),
        unmapped_session_issues(
            tables["device_sessions"], tables["addev"], tables.get("unmapped_sessions")
        ),
        missing_visit_issues(tables["adsl"], tables["adsweat"], study, data_cut),
    ]
    if "gravimetry_duplicates" in tables:
        parts.append(duplicate_paper_issues(tables["gravimetry_duplicates"]))
    if "derivation_findings" in tables:
        parts.append(derivation_issues(tables["derivation_findings"]))
    return pl.concat(parts), checks


def data_quality_html(
    issues: pl.DataFrame, checks: pl.DataFrame, study: Study, run: RunInfo, life: str = ""
) -> str:
    """The report as one HTML string: a summary, the findings over time (``life``:
    :func:`trial.report.finding_life.finding_life_html`, when given), then one section per
    category."""
    top = banner(run, study.study_id, TITLE)
    counts = (
        pl.DataFrame({"category": list(CATEGORIES), "Section": list(CATEGORIES.values())})
        .join(issues.group_by("category").agg(pl.len().alias("Items")), on="category", how="left")
        .with_columns(pl.col("Items").fill_null(0))
        .drop("category")
    )
    check_summary = (
        checks.group_by("dataset")
        .agg(
            pl.len().alias("Rules"),
            pl.col("passed").sum().alias("Passed"),
            (~pl.col("passed")).sum().alias("Failed"),
        )
        .sort("dataset")
    )
    intro = (
        f"<h1>{escape(study.study_id)} - {TITLE}</h1>"
        f'<p class="note">Data cut {escape(run.data_cut)}; '
        f"data version {escape(run.data_version)}; "
        f"code version {escape(run.code_version)}. Each item says where the problem is (file, "
        "line, field, subject) and what to do.</p>"
        + gt_html(counts, "dq-summary", title="Items by section")
        + gt_html(check_summary, "dq-checks", title="Data-contract check results by dataset")
    )
    sections = [f'<section class="page" id="summary">{top}{intro}</section>']
    if life:
        sections.append(
            f'<section class="page" id="finding-life">{top}<h2>Findings over time</h2>'
            f"{life}</section>"
        )
    for category, heading in CATEGORIES.items():
        rows = issues.filter(pl.col("category") == category).drop("category")
        rows = rows.select(
            [c for c in rows.columns if rows[c].null_count() < rows.height] or rows.columns
        )
        body = (
            gt_html(rows, f"dq-{category.lower()}") if rows.height else '<p class="note">None.</p>'
        )
        sections.append(
            f'<section class="page" id="{category.lower()}">{top}<h2>{escape(heading)} '
            f"({issues.filter(pl.col('category') == category).height})</h2>{body}</section>"
        )
    return document(f"{study.study_id} {TITLE}", page_css(run, study.study_id), "\n".join(sections))


def render_data_quality_report(
    tables: Mapping[str, pl.DataFrame],
    study: Study,
    run: RunInfo,
    out_dir: Path,
    manifest: pl.DataFrame | None = None,
) -> Path:
    """Write ``out_dir/data_quality_report.html``, ``data_quality_issues.csv`` and
    ``contract_checks.csv``; returns the HTML path. The report is always BLINDED, whatever the
    run: it goes to data managers, who must never receive a report marked unblinded.

    With the run's landing ``manifest``, every item gets a life
    (:mod:`trial.report.finding_life`): the ledger stored in ``out_dir`` by the previous run
    is updated, written back (``findings_ledger.parquet``) and shown."""
    run = replace(run, blinded=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    issues, checks = data_quality_issues(tables, study, dt.date.fromisoformat(run.data_cut))
    issues.write_csv(out_dir / ISSUES_NAME)
    checks.write_csv(out_dir / "contract_checks.csv")
    life = ""
    if manifest is not None:
        stored = out_dir / LEDGER_NAME
        previous = pl.read_parquet(stored) if stored.is_file() else None
        ledger = update_ledger(previous, with_finding_ids(issues), manifest, tables["adsl"])
        ledger.write_parquet(stored)
        life = finding_life_html(ledger)
    path = out_dir / f"{REPORT_NAME}.html"
    path.write_text(data_quality_html(issues, checks, study, run, life), encoding="utf-8")
    return path
