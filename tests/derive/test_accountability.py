"""Subject accountability: every subject seen anywhere is named with what is missing or
quarantined; the report's reconciliation and box from an ADSL built by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_contracts.contracts import QUARANTINE_SCHEMA
from trial.derive.accountability import subjects_seen
from trial.report.accountability import data_issue_subjects, reconciliation
from trial.report.summaries import TOTAL

DM = pl.DataFrame(
    {
        "subject_id": ["C01-0001"],
        "centre_id": ["C01"],
        "consent_date": [dt.date(2026, 1, 5)],
        "source_file": ["C01/2026-02-09/dm.csv"],
        "source_line": [2],
    }
)
QUARANTINE = pl.DataFrame(
    {
        "dataset": ["dm", "gravimetry", "gravimetry", "visits"],
        "source_file": [
            "C01/2026-02-09/dm.csv",
            "C04/2026-02-09/gravimetry_a.csv",
            "C04/2026-02-09/gravimetry_a.csv",
            "C01/2026-02-09/visits.csv",
        ],
        "source_line": [3, 7, 8, 4],
        "field": ["sex", "subject_id", "subject_id", "visit_date"],
        "reason_code": ["NOT_IN_CODELIST", "UNKNOWN_SUBJECT", "UNKNOWN_SUBJECT", "BAD_DATE"],
        "message": ["C01/2026-02-09/dm.csv line 3: sex='X'", "m", "m", "m"],
        "raw_text": [
            "C01-0002,C01,2026-01-06,X,1990,N,3",
            "C04-9853,BL,PALM,L,P1,1,2,mg,60,x,21,40,15,a,b",
            "C04-9853,BL,PALM,R,P2,1,2,mg,60,x,21,40,15,a,b",
            "C01-0001,BL,2026-02-30,DONE",
        ],
    },
    schema=QUARANTINE_SCHEMA,
)
VISITS = pl.DataFrame(
    {
        "subject_id": ["C01-0002"],
        "visit": ["BL"],
        "source_file": ["C01/2026-02-09/visits.csv"],
        "source_line": [5],
    }
)


def test_every_subject_seen_is_named_with_its_issues() -> None:
    seen = subjects_seen(DM, QUARANTINE, {"visits": VISITS}).sort("subject_id")
    assert seen.select("subject_id", "centre_id", "dm_status").rows() == [
        ("C01-0001", "C01", "READ"),
        ("C01-0002", "C01", "QUARANTINED"),
        ("C04-9853", "C04", "ABSENT"),
    ]
    issues = dict(zip(seen["subject_id"], seen["data_issues"], strict=True))
    assert issues["C01-0001"] == (
        "1 visits row(s) quarantined (BAD_DATE): C01/2026-02-09/visits.csv line 4"
    )
    assert issues["C01-0002"].startswith("dm row quarantined (C01/2026-02-09/dm.csv line 3")
    assert issues["C04-9853"] == (
        "2 gravimetry row(s) quarantined (UNKNOWN_SUBJECT): "
        "C04/2026-02-09/gravimetry_a.csv line 7, C04/2026-02-09/gravimetry_a.csv line 8"
    )


def test_reconciliation_and_the_box() -> None:
    adsl = pl.DataFrame(
        {
            "subject_id": ["C01-0001", "C01-0002", "C04-9853"],
            "centre_id": ["C01", "C01", "C04"],
            "dm_status": ["READ", "QUARANTINED", "ABSENT"],
            "RANDFL": ["Y", "Y", "N"],
            "SAFFL": ["Y", "Y", "N"],
            "FASFL": ["Y", "N", "N"],
            "PPFL": ["Y", "N", "N"],
            "data_issues": [None, "dm row quarantined (...)", "2 gravimetry row(s) ..."],
        }
    )
    consort = pl.DataFrame(
        {
            "stage": [
                "screened",
                "randomised",
                "analysed_fas",
                "excluded_fas",
                "analysed_pp",
                "analysed_safety",
            ],
            "group": [TOTAL] * 6,
            "reason": [None] * 6,
            "n": [2, 2, 1, 1, 1, 2],
        },
        schema={"stage": pl.String, "group": pl.String, "reason": pl.String, "n": pl.Int64},
    )
    table = reconciliation(adsl, consort)
    assert table.select("edc", "report", "reconciles").rows() == [
        (2, 2, "Y"),
        (2, 2, "Y"),
        (2, 2, "Y"),
        (1, 1, "Y"),
        (1, 1, "Y"),
        (2, 2, "Y"),
        (1, None, "-"),
        (1, None, "-"),
    ]
    broken = reconciliation(adsl, consort.with_columns(n=pl.lit(1, dtype=pl.Int64)))
    assert broken["reconciles"].to_list()[:2] == ["N", "N"]
    assert data_issue_subjects(adsl)["subject_id"].to_list() == ["C01-0002", "C04-9853"]
