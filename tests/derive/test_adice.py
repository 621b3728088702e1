"""ADICE rules on hand-made frames: withdrawal, the session-gap threshold, the horizon of an
ongoing subject, rescue from cm, first affected visit and the post-ICE rows, and the contract.

Every subject's baseline is 2026-01-01 (study day d is 2026-01-01 + d - 1)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from data_contracts.contracts import blocking_failures, check_frame
from study import Study, load_study
from trial.derive.adice import derive_adice
from trial.derive.contracts import table_contract

BL = dt.date(2026, 1, 1)


def day(d: int) -> dt.date:
    return BL + dt.timedelta(days=d - 1)


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study()


def _visits(subject: str, done: dict[str, int]) -> list[dict[str, object]]:
    return [
        {"subject_id": subject, "visit": v, "visit_date": day(d), "status": "DONE"}
        for v, d in done.items()
    ]


ALL_VISITS = {"BL": 1, "W1": 8, "W2": 15, "W3": 22, "W4": 29, "W8": 57, "W12": 85}


def _frames() -> dict[str, pl.DataFrame]:
    subjects = {
        "C01-0001": ("completer", "Y"),
        "C01-0002": ("gap of 29 days", "Y"),
        "C01-0003": ("gap of 28 days", "Y"),
        "C01-0004": ("withdrawn on day 40", "Y"),
        "C01-0005": ("withdrawn after W12", "Y"),
        "C01-0006": ("screen failure", "N"),
        "C01-0007": ("rescue", "Y"),
        "C01-0008": ("ongoing, last visit W4", "Y"),
    }
    adsl = pl.DataFrame(
        {
            "subject_id": list(subjects),
            "bl_date": [BL] * len(subjects),
            "FASFL": [r for _, r in subjects.values()],
            "RANDFL": [r for _, r in subjects.values()],
        }
    )
    weekly = list(range(1, 85, 7))  # a session every 7 days up to day 78
    sessions = {
        "C01-0001": weekly,
        "C01-0002": [1, 8, 15, 22, 29, 59, 66, 73, 80],  # 29 days without a session
        "C01-0003": [1, 8, 15, 22, 29, 58, 65, 72, 79],  # 28 days: not more than 28
        "C01-0004": [1, 8, 15, 22, 29, 36],
        "C01-0005": weekly,
        "C01-0007": weekly,
        "C01-0008": [1, 8, 15, 22, 27],
    }
    addev = pl.DataFrame(
        [{"subject_id": s, "session_date": day(d)} for s, ds in sessions.items() for d in ds]
    )
    visit_rows = []
    for s in ("C01-0001", "C01-0002", "C01-0003", "C01-0005", "C01-0007"):
        visit_rows += _visits(s, ALL_VISITS)
    visit_rows += _visits("C01-0004", {k: v for k, v in ALL_VISITS.items() if v < 40})
    visit_rows += _visits("C01-0008", {k: v for k, v in ALL_VISITS.items() if v <= 29})
    visit_rows += _visits("C01-0006", {"SCR": -5})
    visits = pl.DataFrame(visit_rows).with_columns(
        source_file=pl.lit("C01/2026-06-01/visits.csv"),
        source_line=pl.int_range(2, pl.len() + 2, dtype=pl.Int64),
    )
    disposition = pl.DataFrame(
        {
            "subject_id": ["C01-0004", "C01-0005", "C01-0006", "C01-0001"],
            "status": ["WITHDRAWN", "WITHDRAWN", "WITHDRAWN", "COMPLETED"],
            "reason": ["LOST_TO_FOLLOW_UP", "RELOCATED", "SCREEN_FAILURE", None],
            "date": [day(40), day(100), day(-5), day(113)],
            "source_file": ["C01/2026-06-01/disposition.csv"] * 4,
            "source_line": [5, 6, 7, 2],
        }
    )
    cm = pl.DataFrame(
        {
            "subject_id": ["C01-0007"] * 4 + ["C01-0006"],
            "cm_id": [f"CM{k}" for k in range(1, 6)],
            "drug": [
                "ALUMINIUM_CHLORIDE",
                "OTHER",
                "BOTULINUM_TOXIN",
                "ORAL_GLYCOPYRRONIUM",
                "BOTULINUM_TOXIN",
            ],
            "verbatim": ["topical", "ibuprofen", "botox palms", "robinul", "botox"],
            "start_date": [day(-100), day(20), day(70), day(45), day(-3)],
            "end_date": [day(-10), None, day(70), None, None],
            "indication": ["HYPERHIDROSIS", "OTHER", *["HYPERHIDROSIS"] * 3],
            "rescue": ["N", "Y", "Y", "Y", "Y"],
            "source_file": ["C01/2026-06-01/cm.csv"] * 5,
            "source_line": [2, 3, 4, 5, 6],
        }
    )
    observed = [
        (s, v, d)
        for s in ("C01-0001", "C01-0002", "C01-0007")
        for v, d in ALL_VISITS.items()
        if v != "BL"
    ]
    adsweat = pl.DataFrame(
        {
            "subject_id": [s for s, _, _ in observed],
            "PARAMCD": ["LPALMSR"] * len(observed),
            "AVISIT": [v for _, v, _ in observed],
            "AVISITN": [list(ALL_VISITS).index(v) + 2 for _, v, _ in observed],
            "ADT": [day(d) for _, _, d in observed],
            "AVAL": [3.0] * len(observed),
            "CHG": [-1.0] * len(observed),
        }
    )
    return {
        "adsl": adsl,
        "disposition": disposition,
        "visits": visits,
        "addev": addev,
        "cm": cm,
        "adsweat": adsweat,
    }


def _adice(study: Study, frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    f = frames
    return derive_adice(
        f["adsl"], f["disposition"], f["visits"], f["addev"], f["cm"], f["adsweat"], study
    )


def test_each_rule_gives_the_hand_derived_rows(study: Study) -> None:
    adice = _adice(study, _frames())
    got = adice.select(
        "subject_id", "ICE", "basis", "ICEDT", "ICEDY", "first_visit", "n_post_ice_rows"
    ).rows()
    assert got == [
        ("C01-0002", "ICE1", "SESSION_GAP", day(30), 30, "W8", 2),
        ("C01-0004", "ICE1", "WITHDRAWAL", day(37), 37, "W8", 0),
        ("C01-0007", "ICE2", "RESCUE", day(45), 45, "W8", 2),
    ]
    rows = {r["subject_id"]: r for r in adice.iter_rows(named=True)}
    assert rows["C01-0007"]["post_ice_visits"] == "W8,W12"
    assert rows["C01-0007"]["source_records"] == "C01/2026-06-01/cm.csv:5"
    assert "CM4" in rows["C01-0007"]["detail"]
    assert rows["C01-0004"]["source_records"] == "C01/2026-06-01/disposition.csv:5"
    assert "last session started 2026-02-05" in rows["C01-0004"]["detail"]
    assert "29 days from 2026-01-30 to 2026-02-27" in rows["C01-0002"]["detail"]
    assert rows["C01-0002"]["ICE_NAME"] == "treatment discontinuation"


def test_a_gap_before_the_withdrawal_is_the_earlier_ice(study: Study) -> None:
    frames = _frames()
    frames["disposition"] = frames["disposition"].with_columns(
        subject_id=pl.when(pl.col("subject_id") == "C01-0004")
        .then(pl.lit("C01-0002"))
        .otherwise(pl.col("subject_id")),
        date=pl.when(pl.col("subject_id") == "C01-0004")
        .then(pl.lit(day(75)))
        .otherwise(pl.col("date")),
    )
    rows = _adice(study, frames).filter(pl.col("subject_id") == "C01-0002")
    assert rows.select("ICE", "basis", "ICEDT").rows() == [("ICE1", "SESSION_GAP", day(30))]


def test_contract_holds_and_the_arm_only_when_unblinded(study: Study) -> None:
    frames = _frames()
    blinded = _adice(study, frames)
    assert "arm" not in blinded.columns
    assert blocking_failures(check_frame(blinded, table_contract("adice", blinded=True))) == []
    frames["adsl"] = frames["adsl"].with_columns(arm=pl.lit("GLY"))
    unblinded = _adice(study, frames)
    assert unblinded["arm"].to_list() == ["GLY"] * 3
    assert blocking_failures(check_frame(unblinded, table_contract("adice", blinded=False))) == []


def test_no_ices_give_an_empty_table_with_the_contract_columns(study: Study) -> None:
    frames = _frames()
    frames["adsl"] = frames["adsl"].filter(pl.col("subject_id") == "C01-0001")
    adice = _adice(study, frames)
    assert adice.height == 0
    assert blocking_failures(check_frame(adice, table_contract("adice", blinded=True))) == []
