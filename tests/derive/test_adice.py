"""ADICE rules on hand-made frames: withdrawal, the session-gap threshold, the horizon of an
ongoing subject, rescue from cm, first affected visit and the post-ICE rows, and the contract;
for each example study (its ICE ids and rules, visits and their days, primary region).

Every subject's baseline is 2026-01-01 (study day d is 2026-01-01 + d - 1)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_contracts.contracts import blocking_failures, check_frame
from study import Study
from trial.derive.adice import derive_adice
from trial.derive.contracts import table_contract

BL = dt.date(2026, 1, 1)


def day(d: int) -> dt.date:
    return BL + dt.timedelta(days=d - 1)


def _visits(subject: str, done: dict[str, int]) -> list[dict[str, object]]:
    return [
        {"subject_id": subject, "visit": v, "visit_date": day(d), "status": "DONE"}
        for v, d in done.items()
    ]


def schedule(study: Study) -> dict[str, int]:
    """Visit -> target day, from the baseline visit to the discontinuation rule's
    ``gap_until_visit`` (ION-301 BL..W12, days 1..85; ION-302 DAY1..WK10, days 1..71)."""
    codes = study.visit_codes
    _, rule = study.discontinuation_ice
    chosen = codes[codes.index(study.baseline_visit) : codes.index(rule.gap_until_visit) + 1]
    return {v: study.visit(v).target_day for v in chosen}


def gap(study: Study) -> int:
    """The discontinuation rule's longest allowed run of days without a session (ION-301 28,
    ION-302 21)."""
    return study.discontinuation_ice[1].max_session_gap_days


def _frames(study: Study) -> dict[str, pl.DataFrame]:
    """Sessions start on day 1 and every 7 days up to the gap rule's visit; C01-0002 and
    C01-0003 pause after day 29 for one day more than the allowed gap and for exactly it."""
    all_visits = schedule(study)
    horizon = max(all_visits.values())
    subjects = {
        "C01-0001": ("completer", "Y"),
        "C01-0002": ("gap of the allowed days + 1", "Y"),
        "C01-0003": ("gap of the allowed days", "Y"),
        "C01-0004": ("withdrawn on day 40", "Y"),
        "C01-0005": ("withdrawn after the gap rule's visit", "Y"),
        "C01-0006": ("screen failure", "N"),
        "C01-0007": ("rescue", "Y"),
        "C01-0008": ("ongoing, last visit by day 29", "Y"),
    }
    adsl = pl.DataFrame(
        {
            "subject_id": list(subjects),
            "bl_date": [BL] * len(subjects),
            "FASFL": [r for _, r in subjects.values()],
            "RANDFL": [r for _, r in subjects.values()],
        }
    )
    weekly = list(range(1, horizon, 7))
    first = [1, 8, 15, 22, 29]
    g = gap(study)
    sessions = {
        "C01-0001": weekly,
        # g + 1 days without a session (days 30 .. 30 + g)
        "C01-0002": [*first, *range(29 + g + 2, horizon, 7)],
        # g days: not more than g
        "C01-0003": [*first, *range(29 + g + 1, horizon, 7)],
        "C01-0004": [*first, 36],
        "C01-0005": weekly,
        "C01-0007": weekly,
        "C01-0008": [1, 8, 15, 22, 27],
    }
    addev = pl.DataFrame(
        [{"subject_id": s, "session_date": day(d)} for s, ds in sessions.items() for d in ds]
    )
    visit_rows = []
    for s in ("C01-0001", "C01-0002", "C01-0003", "C01-0005", "C01-0007"):
        visit_rows += _visits(s, all_visits)
    visit_rows += _visits("C01-0004", {k: v for k, v in all_visits.items() if v < 40})
    visit_rows += _visits("C01-0008", {k: v for k, v in all_visits.items() if v <= 29})
    visit_rows += _visits("C01-0006", {study.baseline_fallback_visit: -5})
    visits = pl.DataFrame(visit_rows).with_columns(
        source_file=pl.lit("C01/2026-06-01/visits.csv"),
        source_line=pl.int_range(2, pl.len() + 2, dtype=pl.Int64),
    )
    disposition = pl.DataFrame(
        {
            "subject_id": ["C01-0004", "C01-0005", "C01-0006", "C01-0001"],
            "status": ["WITHDRAWN", "WITHDRAWN", "WITHDRAWN", "COMPLETED"],
            "reason": ["LOST_TO_FOLLOW_UP", "CONSENT_WITHDRAWN", "SCREEN_FAILURE", None],
            "date": [day(40), day(horizon + 15), day(-5), day(horizon + 28)],
            "source_file": ["C01/2026-06-01/disposition.csv"] * 4,
            "source_line": [5, 6, 7, 2],
        }
    )
    _, rescue = study.rescue_ice
    indication = rescue.cm_indication
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
            "verbatim": ["topical", "ibuprofen", "botox", "robinul", "botox"],
            "start_date": [day(-100), day(20), day(horizon - 1), day(45), day(-3)],
            "end_date": [day(-10), None, day(horizon - 1), None, None],
            "indication": [indication, "OTHER", *[indication] * 3],
            "rescue": ["N", rescue.cm_rescue, rescue.cm_rescue, rescue.cm_rescue, rescue.cm_rescue],
            "source_file": ["C01/2026-06-01/cm.csv"] * 5,
            "source_line": [2, 3, 4, 5, 6],
        }
    )
    observed = [
        (s, v, d)
        for s in ("C01-0001", "C01-0002", "C01-0007")
        for v, d in all_visits.items()
        if v != study.baseline_visit
    ]
    adsweat = pl.DataFrame(
        {
            "subject_id": [s for s, _, _ in observed],
            "PARAMCD": [study.primary_region.paramcd] * len(observed),
            "AVISIT": [v for _, v, _ in observed],
            "AVISITN": [study.visit_codes.index(v) + 1 for _, v, _ in observed],
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


def _after(study: Study, ice_day: int) -> list[str]:
    """The scheduled visits (up to the gap rule's) on or after ``ice_day``."""
    return [v for v, d in schedule(study).items() if d >= ice_day]


def test_each_rule_gives_the_hand_derived_rows(study: Study) -> None:
    adice = _adice(study, _frames(study))
    got = adice.select(
        "subject_id", "ICE", "basis", "ICEDT", "ICEDY", "first_visit", "n_post_ice_rows"
    ).rows()
    disc, rescue = study.discontinuation_ice[0], study.rescue_ice[0]
    # ION-301: W8 first after day 30, 37 and 45 (W8, W12 observed after); ION-302: WK6 after
    # days 30 and 37 (WK6, WK10 observed after), WK10 after day 45 (WK10 only).
    assert got == [
        ("C01-0002", disc, "SESSION_GAP", day(30), 30, _after(study, 30)[0], 2),
        ("C01-0004", disc, "WITHDRAWAL", day(37), 37, _after(study, 37)[0], 0),
        ("C01-0007", rescue, "RESCUE", day(45), 45, _after(study, 45)[0], len(_after(study, 45))),
    ]
    rows = {r["subject_id"]: r for r in adice.iter_rows(named=True)}
    assert rows["C01-0007"]["post_ice_visits"] == ",".join(_after(study, 45))
    assert rows["C01-0007"]["source_records"] == "C01/2026-06-01/cm.csv:5"
    assert "CM4" in rows["C01-0007"]["detail"]
    assert rows["C01-0004"]["source_records"] == "C01/2026-06-01/disposition.csv:5"
    assert "last session started 2026-02-05" in rows["C01-0004"]["detail"]
    g = gap(study)
    assert f"{g + 1} days from 2026-01-30 to {day(30 + g)}" in rows["C01-0002"]["detail"]
    assert rows["C01-0002"]["ICE_NAME"] == study.discontinuation_ice[1].name


def test_a_gap_before_the_withdrawal_is_the_earlier_ice(study: Study) -> None:
    frames = _frames(study)
    frames["disposition"] = frames["disposition"].with_columns(
        subject_id=pl.when(pl.col("subject_id") == "C01-0004")
        .then(pl.lit("C01-0002"))
        .otherwise(pl.col("subject_id")),
        date=pl.when(pl.col("subject_id") == "C01-0004")
        .then(pl.lit(day(max(schedule(study).values()) - 10)))
        .otherwise(pl.col("date")),
    )
    rows = _adice(study, frames).filter(pl.col("subject_id") == "C01-0002")
    disc = study.discontinuation_ice[0]
    assert rows.select("ICE", "basis", "ICEDT").rows() == [(disc, "SESSION_GAP", day(30))]


def test_contract_holds_and_the_arm_only_when_unblinded(study: Study) -> None:
    frames = _frames(study)
    blinded = _adice(study, frames)
    assert "arm" not in blinded.columns
    assert blocking_failures(check_frame(blinded, table_contract("adice", blinded=True))) == []
    frames["adsl"] = frames["adsl"].with_columns(arm=pl.lit("GLY"))
    unblinded = _adice(study, frames)
    assert unblinded["arm"].to_list() == ["GLY"] * 3
    assert blocking_failures(check_frame(unblinded, table_contract("adice", blinded=False))) == []


def test_no_ices_give_an_empty_table_with_the_contract_columns(study: Study) -> None:
    frames = _frames(study)
    frames["adsl"] = frames["adsl"].filter(pl.col("subject_id") == "C01-0001")
    adice = _adice(study, frames)
    assert adice.height == 0
    assert blocking_failures(check_frame(adice, table_contract("adice", blinded=True))) == []
