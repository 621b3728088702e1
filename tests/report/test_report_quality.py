"""Data-quality report: every item is located (file/line or subject) and actionable."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl
import synthetic_trial as st

from trial.derive.ae import ae_coding_findings, code_events
from trial.report.finding_life import with_finding_ids
from trial.report.quality import (
    CATEGORIES,
    data_quality_html,
    data_quality_issues,
    quarantine_issues,
    render_data_quality_report,
)
from trial.report.run_info import RunInfo

CUT = dt.date(2026, 11, 16)


def _issues(tables, study):
    return data_quality_issues(tables, study, CUT)


def test_every_quarantined_row_and_file_is_listed(blinded_tables, study):
    issues, _ = _issues(blinded_tables, study)
    q = issues.filter(pl.col("category") == "QUARANTINE")
    source = blinded_tables["quarantine"]
    assert q.height == source.height
    assert (
        q.select("source_file", "source_line", "field", "code").rows()
        == source.select("source_file", "source_line", "field", "reason_code").rows()
    )
    whole = q.filter(pl.col("source_line").is_null())
    assert whole["action"][0].startswith("Ask the centre to re-export")
    line = q.filter(pl.col("source_line") == 14)["action"][0]
    assert f"line 14 of {st.gravimetry_file(study.centres[0])}" in line


def test_device_findings(blinded_tables, study):
    issues, _ = _issues(blinded_tables, study)
    unmapped = issues.filter(pl.col("category") == "UNMAPPED_SESSION")
    assert unmapped.height == 2
    assert all("A-99999" in a for a in unmapped["action"])
    reset = issues.filter(pl.col("category") == "CLOCK_RESET")
    expected = blinded_tables["device_sessions"].filter(pl.col("clock_reset")).height
    assert reset.height == expected == 1
    # Times as a data manager reads them: whole seconds, UTC named.
    assert re.search(r"logged at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", reset["detail"][0])
    assert "+00:00" not in reset["detail"][0] and "+00:00" not in unmapped["detail"][0]


def test_out_of_window_and_missing_visits(blinded_tables, study):
    issues, _ = _issues(blinded_tables, study)
    oow = issues.filter(pl.col("category") == "OUT_OF_WINDOW")
    adsl = blinded_tables["adsl"]
    randomised = adsl.filter(pl.col("RANDFL") == "Y")["subject_id"].to_list()
    # Randomised subject LATE had the late visit LATE_BY days beyond its window (ION-301: W2
    # on day 20, target 15 +/- 2).
    plan = st.design(study)
    late = study.visit(plan.late_visit)
    assert late.window_days is not None
    day = late.target_day + late.window_days + st.LATE_BY
    assert oow["subject_id"].to_list() == [randomised[st.LATE]]
    assert f"day {day}; target day {late.target_day} +/- {late.window_days}" in oow["detail"][0]
    missing = issues.filter(pl.col("category") == "MISSING_VISIT")
    # Subjects with index % 6 == 1 skipped one visit (ION-301: W3); nothing is expected of the
    # two withdrawn subjects after their withdrawal.
    gone = (st.WITHDRAWN_AE, st.LOST)
    skipped = {s for k, s in enumerate(randomised) if k % st.SKIPS_EVERY == 1 and k not in gone}
    found = missing.filter(pl.col("detail").str.contains(plan.skipped_visit))
    assert set(found["subject_id"]) == skipped
    withdrawn = {randomised[k] for k in gone}
    assert not withdrawn & set(missing["subject_id"])


def test_contract_checks_are_reported(blinded_tables, study):
    broken = {
        **blinded_tables,
        "adsl": blinded_tables["adsl"].with_columns(pl.lit("X").alias("sex")),
    }
    issues, checks = _issues(broken, study)
    assert checks.filter(pl.col("dataset") == "adsl").height > 0
    failed = issues.filter((pl.col("category") == "CONTRACT_CHECK") & (pl.col("dataset") == "adsl"))
    assert "validValues:sex" in failed["code"].to_list()


def test_every_item_says_what_to_do(blinded_tables, study):
    issues, _ = _issues(blinded_tables, study)
    assert issues.height > 0
    assert issues["action"].null_count() == 0
    assert (issues["action"].str.len_chars() > 20).all()


def test_report_has_a_section_per_category(blinded_tables, study, tmp_path):
    run = RunInfo(CUT.isoformat(), True, "sha256:x", "git x")
    path = render_data_quality_report(blinded_tables, study, run, tmp_path)
    html = path.read_text("utf-8")
    for category in CATEGORIES:
        assert f'id="{category.lower()}"' in html
    assert (tmp_path / "data_quality_issues.csv").is_file()
    issues, checks = _issues(blinded_tables, study)
    assert data_quality_html(issues, checks, study, run) == html


def test_blinded_checks_want_the_unblinded_only_columns_absent(unblinded_tables, blinded_tables):
    from trial.report.quality import contract_check_results

    clean = contract_check_results({"adsl": blinded_tables["adsl"]}, blinded=True)
    assert clean.filter(pl.col("check") == "blinding")["passed"].to_list() == [True]
    assert not clean.filter(pl.col("check").str.contains("arm"))["passed"].is_in([False]).any()
    leaky = contract_check_results({"adsl": unblinded_tables["adsl"]}, blinded=True)
    blinding = leaky.filter(pl.col("check") == "blinding").row(0, named=True)
    assert not blinding["passed"]
    assert blinding["sample"] == "arm"


def test_duplicate_papers_are_listed_as_pairs(blinded_tables, study):
    centre = study.centres[0]
    pair = pl.DataFrame(
        {
            "subject_id": [f"{centre}-0001"],
            "visit": [study.model_visits[1]],
            "region": [study.primary_region.code],
            "side": [study.sides[0]],
            "kept_file": [f"{centre}/2026-03-09/gravimetry_b.csv"],
            "kept_line": [4],
            "superseded_file": [f"{centre}/2026-02-09/gravimetry_a.csv"],
            "superseded_line": [9],
        }
    )
    issues, _ = _issues({**blinded_tables, "gravimetry_duplicates": pair}, study)
    row = issues.filter(pl.col("category") == "DUPLICATE_PAPER").row(0, named=True)
    assert row["source_file"] == f"{centre}/2026-02-09/gravimetry_a.csv"
    assert row["source_line"] == 9
    assert f"{centre}/2026-03-09/gravimetry_b.csv line 4" in row["detail"]


def test_the_report_is_blinded_in_an_unblinded_run(unblinded_tables, study, tmp_path):
    """It goes to data managers: never marked UNBLINDED, whatever the run."""
    run = RunInfo(CUT.isoformat(), False, "sha256:x", "git x")
    html = render_data_quality_report(unblinded_tables, study, run, tmp_path).read_text("utf-8")
    assert "UNBLINDED" not in html
    assert '<span class="blinding">BLINDED</span>' in html
    assert '@top-right { content: "BLINDED"' in html


def test_an_uncoded_adverse_event_is_an_actionable_finding(blinded_tables, study):
    """An AE the study dictionary does not code reaches the report with its file and line."""
    ae_file = f"{study.centres[0]}/2026-03-01/ae.csv"
    adae = code_events(
        blinded_tables["adae"]
        .drop("AEDECOD", "AEBODSYS")
        .head(1)
        .with_columns(
            pl.lit("OTHER").alias("term"),
            pl.lit("stubbed toe").alias("verbatim"),
            pl.lit(ae_file).alias("source_file"),
            pl.lit(7).alias("source_line"),
        )
        .lazy(),
        study.ae_coding,
    ).collect()
    tables = blinded_tables | {"derivation_findings": ae_coding_findings(adae, study)}
    issues, _ = _issues(tables, study)
    found = issues.filter(pl.col("code") == "AE_NOT_CODED")
    assert found.select("category", "source_file", "source_line").rows() == [
        ("DERIVATION", ae_file, 7)
    ]
    assert "'stubbed toe'" in found["detail"][0] and found["action"][0]


def test_every_item_is_a_finding_of_its_own(blinded_tables, study):
    """No two items share a finding id: the findings ledger counts what the sections list (two
    visits of one subject, or two sessions of one export, are two findings)."""
    issues, _ = _issues(blinded_tables, study)
    assert with_finding_ids(issues).height == issues.height
    several = issues.filter(pl.col("item").is_not_null()).group_by("category", "subject_id").len()
    assert several["len"].max() > 1  # the fixture has a subject with two such items


def test_a_file_the_landing_area_did_not_read_is_not_sent_back_to_a_centre():
    """A stray file, a link or a copy of the sealed list is the raw tree's keeper's to move
    or remove; a delivered file no reader could read is the centre's to re-export."""
    rows = [
        ("landing", "README.md", "UNKNOWN_FILE"),
        ("landing", "C02/latest/dm.csv", "UNKNOWN_FOLDER"),
        ("landing", "C03/2026-03-16", "SYMLINK"),
        ("randomisation", "C01/2026-03-09/notes.csv", "SEALED_LIST_IN_RAW"),
        ("vendor_b_events", "C01/2026-03-09/ionto-b_B-1_20260309000000.jsonl", "NOT_UTF8"),
    ]
    quarantine = pl.DataFrame(
        [(d, f, None, None, code, "not read") for d, f, code in rows],
        schema={
            "dataset": pl.String,
            "source_file": pl.String,
            "source_line": pl.Int64,
            "field": pl.String,
            "reason_code": pl.String,
            "message": pl.String,
        },
        orient="row",
    )
    actions = quarantine_issues(quarantine)["action"].to_list()
    assert actions[0].startswith("Move README.md into its delivery folder")
    assert actions[1].startswith("Move C02/latest/dm.csv into a delivery folder")
    assert actions[2].startswith("Replace the link C03/2026-03-16")
    assert actions[3].startswith("Remove C01/2026-03-09/notes.csv from the raw tree now")
    assert actions[4].startswith("Ask the centre to re-export C01/2026-03-09/ionto-b_B-1")
    assert not any("re-export" in a for a in actions[:4])
