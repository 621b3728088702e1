"""Study day (no day 0) and visit windows from the configuration, for each example study."""

from __future__ import annotations

import datetime as dt

import polars as pl
from derive_fixture import Design
from materialise import Tables

from study import Study
from trial.derive import schedule_frame, study_day
from trial.derive.schedule import window_flag


def test_study_day_around_day_one() -> None:
    bl = dt.date(2026, 1, 10)
    dates = [dt.date(2026, 1, d) for d in (3, 9, 10, 11, 17)]
    frame = pl.DataFrame({"d": dates, "bl": [bl] * len(dates)})
    days = frame.select(study_day(pl.col("d"), pl.col("bl")))["d"].to_list()
    assert days == [-7, -1, 1, 2, 8]


def _out_of_window(study: Study, visit: str, ady: int) -> bool:
    sched = schedule_frame(study).filter(pl.col("AVISIT") == visit)
    flag = sched.with_columns(ady=pl.lit(ady)).select(window_flag(pl.col("ady")))
    return bool(flag.item())


def test_window_edges_of_every_visit(study: Study) -> None:
    """Each visit with a window: target +/- window is inside, one day further is out (ION-301
    W1: 6..10 inside, 5 and 11 out; ION-302 WK2: 12..18); a visit without a window (the
    screening visit) is never out, however far."""
    for visit in study.visits:
        if visit.window_days is None:
            assert not _out_of_window(study, visit.code, visit.target_day - 30), visit.code
            continue
        low, high = visit.target_day - visit.window_days, visit.target_day + visit.window_days
        for ady in (low, visit.target_day, high):
            assert not _out_of_window(study, visit.code, ady), (visit.code, ady)
        for ady in (low - 1, high + 1):
            assert _out_of_window(study, visit.code, ady), (visit.code, ady)
    assert any(v.window_days is None for v in study.visits)


def test_schedule_order_and_weeks_come_from_the_config(study: Study) -> None:
    sched = schedule_frame(study)
    assert sched["AVISIT"].to_list() == [v.code for v in study.visits]
    assert sched["AVISITN"].to_list() == list(range(1, sched.height + 1))


def test_out_of_window_visit_is_kept_and_flagged(unblinded: Tables, design: Design) -> None:
    adsweat = unblinded.adsweat
    s1 = adsweat.filter(pl.col("subject_id") == design.subject(1)).sort("AVISITN")
    assert s1.select("AVISIT", "ADY", "out_of_window").rows() == [
        (design.scr, -5, False),
        (design.bl, 1, False),
        (design.v1, design.v1_day, False),
        (design.v2, design.v2_day, True),
    ]
