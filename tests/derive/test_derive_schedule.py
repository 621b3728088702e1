"""Study day (no day 0) and visit windows from the configuration."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from derive_fixture import S1
from derive_fixture import study as ion_study
from materialise import Tables

from trial.derive import schedule_frame, study_day
from trial.derive.schedule import window_flag


def test_study_day_around_day_one() -> None:
    bl = dt.date(2026, 1, 10)
    dates = [dt.date(2026, 1, d) for d in (3, 9, 10, 11, 17)]
    frame = pl.DataFrame({"d": dates, "bl": [bl] * len(dates)})
    days = frame.select(study_day(pl.col("d"), pl.col("bl")))["d"].to_list()
    assert days == [-7, -1, 1, 2, 8]


@pytest.mark.parametrize(
    ("visit", "ady", "out"),
    [
        ("W1", 8, False),
        ("W1", 10, False),  # target 8 + 2: edge, inside
        ("W1", 11, True),
        ("W1", 6, False),
        ("W1", 5, True),
        ("W16", 120, False),  # 113 + 7
        ("W16", 121, True),
        ("BL", 1, False),
        ("SCR", -30, False),  # no window judged at screening
    ],
)
def test_window_edges(visit: str, ady: int, out: bool) -> None:
    sched = schedule_frame(ion_study()).filter(pl.col("AVISIT") == visit)
    flag = sched.with_columns(ady=pl.lit(ady)).select(window_flag(pl.col("ady")))
    assert flag.item() is out


def test_schedule_order_and_weeks_come_from_the_config() -> None:
    sched = schedule_frame(ion_study())
    assert sched["AVISIT"].to_list()[:3] == ["SCR", "BL", "W1"]
    assert sched["AVISITN"].to_list() == list(range(1, sched.height + 1))


def test_out_of_window_visit_is_kept_and_flagged(unblinded: Tables) -> None:
    adsweat = unblinded.adsweat
    s1 = adsweat.filter(pl.col("subject_id") == S1).sort("AVISITN")
    assert s1.select("AVISIT", "ADY", "out_of_window").rows() == [
        ("SCR", -5, False),
        ("BL", 1, False),
        ("W1", 8, False),
        ("W2", 18, True),
    ]
