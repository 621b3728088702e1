"""Device adherence and dose on a tiny hand-made ADDEV, by arm and pooled, for each example
study: its arms, treated regions (ION-301: palms for all, soles for involved subjects; ION-302:
soles for all), treatment phases and planned sessions, and its devices (ION-302 has only vendor
A devices, which report no current samples)."""

from __future__ import annotations

import polars as pl
import pytest

from study import Study
from trial.models.device import device_summary

PLANNED = {"ION-301": 20, "ION-302": 24}
"""Planned sessions per subject, by hand: ION-301 4 weeks x 3 + 8 weeks x 1; ION-302 2 weeks x
4 + 8 weeks x 2 (follow-up phases plan none)."""


def vendor_b(study: Study) -> bool:
    """Whether the study uses vendor B devices (the only ones with current samples)."""
    return study.simulation.vendor_b_share > 0


def tables(study: Study) -> tuple[pl.DataFrame, pl.DataFrame]:
    """ADSL and ADDEV: S1 (reference arm, not involved), S2 (first treated arm, involved), S3
    (treated, outside the Safety set). Sessions on the primary region in the study's first and
    second treatment phases and one before baseline (not summarised); S2's last session is on
    the involvement region when the study has one, else on the primary region. S2's sessions
    carry current samples only when the study has vendor B devices."""
    ref, arm = study.reference_arm, study.treated_arms[0]
    first, second = (p.name for p in study.treatment.phases if p.sessions_per_week > 0)
    main = study.primary_region.code
    extra = (study.involvement_region or study.primary_region).code
    shares = [0.9, 0.5] if vendor_b(study) else [None, None]
    adsl = pl.DataFrame(
        {
            "subject_id": ["S1", "S2", "S3"],
            "SAFFL": ["Y", "Y", "N"],
            "plantar_involved": ["N", "Y", "Y"],
            "arm": [ref, arm, arm],
        }
    )
    addev = pl.DataFrame(
        {
            "subject_id": ["S1", "S1", "S1", "S2", "S2", "S3", "S1", "S2"],
            "region": [main, main, main, main, main, main, main, extra],
            "phase": [first, first, second, first, first, first, "pre_baseline", first],
            "end_reason": [
                "COMPLETED",
                "FAULT",
                "COMPLETED",
                "COMPLETED",
                "STOPPED_BY_USER",
                "COMPLETED",
                "COMPLETED",
                "FAULT",
            ],
            "fault_code": [None, "E01", None, None, None, None, None, "E07"],
            "charge_mc": [18000.0, 6000.0, 18000.0, 17000.0, 9000.0, 1.0, 1.0, 500.0],
            "within_tolerance_share": [None, None, None, *shares, 0.1, 0.1, None],
            "duration_s": [1200.0, 400.0, 1200.0, 1200.0, 600.0, 1200.0, 1200.0, 30.0],
        },
        schema_overrides={"within_tolerance_share": pl.Float64},
    )
    return adsl, addev


def test_planned_sessions_by_hand(study: Study) -> None:
    by_phase = sum(
        (p.weeks[1] - p.weeks[0] + 1) * p.sessions_per_week for p in study.treatment.phases
    )
    assert study.planned_sessions_total == by_phase == PLANNED[study.study_id]


def test_by_arm(study: Study) -> None:
    adsl, addev = tables(study)
    result = device_summary(addev, adsl, study)
    by_arm = result.tables["by_arm"]
    ref, arm = study.reference_arm, study.treated_arms[0]
    main = study.primary_region.code
    planned = PLANNED[study.study_id]
    rows = {r["arm"]: r for r in by_arm.filter(pl.col("region") == main).iter_rows(named=True)}
    assert set(rows) == {ref, arm}
    first = rows[ref]
    assert (first["n_sessions"], first["sessions_completed"], first["aborted"]) == (3, 2, 1)
    assert first["sessions_planned"] == planned
    assert first["completed_share"] == pytest.approx(2 / planned)
    assert first["charge_mean_mc"] == pytest.approx(14000.0)
    assert first["charge_sd_mc"] == pytest.approx(6928.203230, rel=1e-6)  # sd(18k, 6k, 18k)
    assert first["n_sessions_with_samples"] == 0
    assert first["within_tolerance_share"] is None
    treated = rows[arm]
    if vendor_b(study):
        # S3 is outside the Safety set; duration-weighted (0.9*1200 + 0.5*600) / 1800
        share = (0.9 * 1200 + 0.5 * 600) / 1800
        assert treated["within_tolerance_share"] == pytest.approx(share)
        assert treated["n_sessions_with_samples"] == 2
    else:  # vendor A only: no session has samples, the share is missing, not 0
        assert treated["within_tolerance_share"] is None
        assert treated["n_sessions_with_samples"] == 0
    faults = result.tables["fault_codes"]
    extra = (study.involvement_region or study.primary_region).code
    assert faults.rows() == sorted(
        [(arm, extra, "E07", "low battery", 1), (ref, main, "E01", "open circuit", 1)]
    )
    if study.involvement_region is not None:
        assert (treated["n_sessions"], treated["aborted"]) == (2, 1)
        assert treated["aborted_pct"] == pytest.approx(50.0)
        # the involvement region's device is planned only for the involved subject (S2)
        sole = by_arm.filter(pl.col("region") == extra)
        assert sole["arm"].to_list() == [arm]
        assert (sole["sessions_planned"].item(), sole["aborted"].item()) == (planned, 1)
    else:  # one region, treated in every subject: one row per arm
        assert by_arm["region"].to_list() == [main, main]
        assert (treated["n_sessions"], treated["aborted"]) == (3, 2)
        assert treated["aborted_pct"] == pytest.approx(200 / 3)
    assert any("outside the treatment phases" in n for n in result.notes)
    assert any(f"+/-{study.current_tolerance_pct:g} %" in n for n in result.notes)


def test_blinded_pools(study: Study) -> None:
    adsl, addev = tables(study)
    by_arm = device_summary(addev, adsl.drop("arm"), study).tables["by_arm"]
    assert by_arm["arm"].unique().to_list() == ["pooled"]
    row = by_arm.filter(pl.col("region") == study.primary_region.code).row(0, named=True)
    n_sessions = 5 if study.involvement_region is not None else 6
    planned = 2 * PLANNED[study.study_id]
    assert (row["n_subjects"], row["n_sessions"], row["sessions_planned"]) == (
        2,
        n_sessions,
        planned,
    )
