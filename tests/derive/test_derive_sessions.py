"""Device sessions to subjects: swaps, clock resets, unmapped sessions, adequacy, adherence."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from derive_fixture import RESET_PLACED, RESET_START, S1, S3, raw, utc
from derive_fixture import study as ion_study
from materialise import Tables

from study import Study
from trial.derive import map_sessions


@pytest.fixture(scope="module")
def tables(unblinded: Tables) -> Tables:
    return unblinded


def test_device_swap_maps_each_serial_by_its_dates(tables: Tables) -> None:
    addev = tables.addev
    s1 = addev.filter(pl.col("subject_id") == S1)
    assert s1.filter(pl.col("device_serial") == "A-00001")["start_utc"].to_list() == [
        utc(2026, 1, 12, 18)
    ]
    # the swap day (01-20) session is on the new serial and still the same subject
    swap_day = s1.filter(pl.col("start_utc") == utc(2026, 1, 20, 18))
    assert swap_day["device_serial"].item() == "A-00002"
    assert swap_day["study_day"].item() == 11
    assert swap_day["phase"].item() == "induction"
    assert addev.filter(pl.col("subject_id") == S3)["device_serial"].to_list() == ["B-00001"]


def test_unmapped_sessions_are_reported_with_a_reason(tables: Tables) -> None:
    unmapped = tables.unmapped_sessions.select("device_serial", "start_utc", "unmapped_reason")
    assert unmapped.rows() == [
        ("A-00001", utc(2026, 1, 25, 18), "OUTSIDE_ASSIGNMENT_DATES"),
        ("A-00009", utc(2026, 1, 15, 18), "SERIAL_NOT_ASSIGNED"),
    ]
    # every session is either mapped or reported
    assert tables.addev.height + unmapped.height == raw().device_sessions.height


def test_clock_reset_session_is_flagged_and_dated_by_its_placement(
    tables: Tables,
) -> None:
    reset = tables.addev.filter(pl.col("clock_reset"))
    assert reset.height == 1
    row = reset.row(0, named=True)
    assert row["start_utc"] == RESET_START
    assert row["start_utc_placed"] == RESET_PLACED
    assert row["subject_id"] == S1
    assert row["study_day"] == 11
    assert row["phase"] == "induction"


def test_unplaced_reset_session_stays_with_a_single_owner_else_is_unmapped() -> None:
    base = raw()
    lonely = base.device_sessions.filter(pl.col("clock_reset")).with_columns(
        start_utc_placed=pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    )
    study = ion_study()
    addev, unmapped = map_sessions(lonely, base.devices, base.visits, base.vendor_b_events, study)
    assert unmapped.height == 0
    assert addev["subject_id"].to_list() == [S1]
    assert addev["study_day"].to_list() == [None]
    assert addev["phase"].to_list() == [None]
    # the same serial also assigned (later) to another subject: no single owner
    shared = pl.concat(
        [
            base.devices,
            base.devices.filter(pl.col("device_serial") == "A-00002").with_columns(
                subject_id=pl.lit(S3), from_date=pl.lit(dt.date(2026, 3, 1))
            ),
        ]
    )
    addev, unmapped = map_sessions(lonely, shared, base.visits, base.vendor_b_events, study)
    assert addev.height == 0
    assert unmapped["unmapped_reason"].to_list() == ["CLOCK_RESET_UNPLACED"]


def test_adequacy_vendor_a_mean_and_vendor_b_samples(tables: Tables) -> None:
    addev = tables.addev
    low = addev.filter(pl.col("start_utc") == utc(2026, 1, 22, 18))
    assert low["mean_ma"].item() == 10.0 and low["adequate"].item() is False
    b = addev.filter(pl.col("vendor") == "B").row(0, named=True)
    # 9 of 10 samples at 15 mA (>= 12 mA): 0.9 * 1200 s = 1080 s >= 0.8 * 1200 s
    assert b["time_at_min_current_s"] == pytest.approx(1080.0)
    assert b["adequate"] is True
    assert b["tolerance_share"] == pytest.approx(0.9)  # the reader's within_tolerance_share


def test_adequacy_is_judged_against_the_titrated_programmed_current() -> None:
    base = raw()
    titrated = base.device_sessions.filter(pl.col("vendor") == "A").with_columns(
        programmed_ma=pl.lit(10.0), mean_ma=pl.lit(9.9)
    )
    addev, _ = map_sessions(titrated, base.devices, base.visits, base.vendor_b_events, ion_study())
    # 9.9 mA >= 0.8 * 10 mA and within 10 % of it, although below 0.8 * 15 mA
    assert addev["adequate"].all()
    assert addev["tolerance_share"].to_list() == [1.0] * addev.height


def test_short_session_at_full_current_is_not_adequate() -> None:
    base = raw()
    study = ion_study()
    short = base.device_sessions.with_columns(duration_s=pl.lit(900))
    addev, _ = map_sessions(short, base.devices, base.visits, base.vendor_b_events, study)
    # 900 s < 0.8 * 20 min
    assert not addev["adequate"].any()


def test_adherence_counts(tables: Tables) -> None:
    s1 = tables.adsl.filter(pl.col("subject_id") == S1).row(0, named=True)
    assert s1["n_sessions"] == 15  # every session on A-00001 / A-00002, incl. the unmapped one
    assert s1["n_sessions_mapped"] == 14
    assert s1["n_sessions_planned"] == 12 + 8
    assert s1["n_induction_sessions_planned"] == 12
    assert s1["n_induction_sessions_adequate"] == 13
    # 13 sessions with mean within 15 +/- 1.5 mA, one (10 mA) outside, all 1200 s
    assert s1["time_within_tolerance_share"] == pytest.approx(13 / 14)
    assert s1["trt_start_date"] == dt.date(2026, 1, 12)


def test_phases_follow_the_configured_weeks() -> None:
    study: Study = ion_study()
    from trial.derive.sessions import _phase

    days = pl.DataFrame({"study_day": [-3, 1, 28, 29, 84, 85, 112, 113, None]})
    phases = days.select(_phase(study).alias("phase"))["phase"].to_list()
    assert phases == [
        "pre_baseline",
        "induction",
        "induction",
        "maintenance",
        "maintenance",
        "follow_up",
        "follow_up",
        "post_schedule",
        None,
    ]
