"""Every N the investigator report states agrees with the analysis set it claims (ADSL flags,
per arm when unblinded); a table built on a subset is flagged in the accountability table and
becomes a data-quality finding."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import synthetic_trial

from trial.report.accountability import accountability_html
from trial.report.count_reconciliation import (
    FINDING,
    count_findings,
    count_reconciliation,
    stated_counts,
)
from trial.report.data import ReportData, build_report_data
from trial.report.investigator_tables import investigator_outputs
from trial.report.outputs import with_count_findings
from trial.report.quality import data_quality_issues
from trial.report.run_info import RunInfo
from trial.report.summaries import TOTAL
from trial.report.tlf import Tlf


def _expected_by_hand(adsl: pl.DataFrame, flag: str, group: str) -> int:
    rows = adsl.filter(pl.col(flag) == "Y")
    return rows.height if group == TOTAL else rows.filter(pl.col("arm") == group).height


@pytest.mark.parametrize("blinded", [False, True])
def test_every_stated_n_agrees_on_the_synthetic_trial(
    blinded: bool, unblinded_data: ReportData, blinded_data: ReportData, unblinded_tables, study
) -> None:
    data = blinded_data if blinded else unblinded_data
    counts = data.count_reconciliation
    assert counts.height and (counts["agrees"] == "Y").all(), counts.filter(agrees="N")
    labels = {t.label for t in investigator_outputs(data).values() if "(N = " in t.population}
    assert set(counts["output"]) == labels  # every output with an N in its header is checked
    assert count_findings(counts).height == 0
    rows = data.accountability
    assert (rows["reconciles"] != "N").all()
    assert rows.filter(pl.col("count").str.contains("N stated in")).height > 0
    if not blinded:
        adsl = unblinded_tables["adsl"]
        first, last = study.treated_arms[0], study.arm_codes[-1]
        safety = counts.filter((pl.col("set") == "Safety set") & (pl.col("group") == first))
        assert set(safety["output"]) >= {"Table 14.3.1.1", "Table 14.3.4.2"}
        assert set(safety["expected"]) == {_expected_by_hand(adsl, "SAFFL", first)}
        fas = counts.filter((pl.col("output") == "Table 14.2.1") & (pl.col("group") == last))
        assert fas["stated"].to_list() == [_expected_by_hand(adsl, "FASFL", last)]


def test_a_table_built_on_a_subset_is_flagged(study, unblinded_tables, unblinded_results) -> None:
    adsl = unblinded_tables["adsl"]
    arm = study.treated_arms[0]
    dropped = adsl.filter((pl.col("SAFFL") == "Y") & (pl.col("arm") == arm))["subject_id"][0]
    subset = {**unblinded_tables, "adsl": adsl.filter(pl.col("subject_id") != dropped)}
    # The safety summary (AE tables' denominators) on all but one safety subject of the arm.
    results = unblinded_results | {
        "safety": synthetic_trial.safety_and_device(study, subset)["safety"]
    }
    data = build_report_data(
        unblinded_tables, results, study, RunInfo("2026-11-16", False, "sha256:test", "git test")
    )
    broken = data.count_reconciliation.filter(pl.col("agrees") == "N")
    expected = _expected_by_hand(adsl, "SAFFL", arm)
    total = _expected_by_hand(adsl, "SAFFL", TOTAL)
    assert set(broken["output"]) == {"Table 14.3.1.1", "Table 14.3.1.2", "Table 14.3.1.3"}
    assert set(broken.select("group", "stated", "expected").rows()) == {
        (arm, expected - 1, expected),
        (TOTAL, total - 1, total),
    }
    marked = data.accountability.filter(pl.col("reconciles") == "N")
    assert marked.height == 2 and marked["count"].str.contains("Table 14.3.1.1").all()
    assert "Counts do not reconcile" in accountability_html(data.accountability, "", "")
    findings = count_findings(data.count_reconciliation)
    # 3 tables: header and Total column each (6), one per table for the arm (3).
    assert findings.height == 9 and set(findings["finding"]) == {FINDING}
    tables = with_count_findings(unblinded_tables, data)
    issues, _ = data_quality_issues(tables, study, dt.date(2026, 11, 16))
    shown = issues.filter(pl.col("code") == FINDING)
    assert shown.height == 9
    assert shown["detail"].str.contains(f"Safety set N = {total - 1}, but ADSL has {total}").any()
    # The data-quality report is for blinded data managers: no arm code in a finding.
    for arm in study.arm_codes:
        assert not shown["detail"].str.contains(arm).any(), arm


def test_stated_counts_by_hand() -> None:
    """A hand-made output: header, column headers and a body N column, one of them wrong."""
    tlf = Tlf(
        number="14.9.1",
        title="t",
        population="Full analysis set (N = 3)",
        frame=pl.DataFrame(
            {"Group": ["A", "B", "Total"], "N (FAS)": ["2", "1", "3"], "A (N = 2)": ["", "", ""]}
        ),
    )
    stated = stated_counts({"responders": tlf})
    assert stated.select("where", "group", "stated").rows() == [
        ("header", TOTAL, 3),
        ("column A (N = 2)", "A", 2),
        ("N (FAS), A", "A", 2),
        ("N (FAS), B", "B", 1),
        ("N (FAS), Total", TOTAL, 3),
    ]
    adsl = pl.DataFrame(
        {
            "subject_id": ["S1", "S2", "S3", "S4"],
            "arm": ["A", "A", "B", "B"],
            "RANDFL": ["Y"] * 4,
            "FASFL": ["Y", "Y", "Y", "Y"],
        }
    )
    checked = count_reconciliation({"responders": tlf}, adsl)
    assert checked.select("where", "expected", "agrees").rows() == [
        ("header", 4, "N"),
        ("column A (N = 2)", 2, "Y"),
        ("N (FAS), A", 2, "Y"),
        ("N (FAS), B", 2, "N"),
        ("N (FAS), Total", 4, "N"),
    ]
