"""Device adherence and dose on a tiny hand-made ADDEV, by arm and pooled."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from study import Study, load_study
from trial.models.device import device_summary

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


ADSL = pl.DataFrame(
    {
        "subject_id": ["S1", "S2", "S3"],
        "SAFFL": ["Y", "Y", "N"],
        "plantar_involved": ["N", "Y", "Y"],
        "arm": ["TAP", "GLY", "GLY"],
    }
)
ADDEV = pl.DataFrame(
    {
        "subject_id": ["S1", "S1", "S1", "S2", "S2", "S3", "S1", "S2"],
        "region": ["PALM", "PALM", "PALM", "PALM", "PALM", "PALM", "PALM", "SOLE"],
        "phase": [
            "induction",
            "induction",
            "maintenance",
            "induction",
            "induction",
            "induction",
            "pre_baseline",
            "induction",
        ],
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
        "within_tolerance_share": [None, None, None, 0.9, 0.5, 0.1, 0.1, None],
        "duration_s": [1200.0, 400.0, 1200.0, 1200.0, 600.0, 1200.0, 1200.0, 30.0],
    }
)


def test_by_arm(study: Study) -> None:
    result = device_summary(ADDEV, ADSL, study)
    by_arm = result.tables["by_arm"]
    rows = {r["arm"]: r for r in by_arm.filter(pl.col("region") == "PALM").iter_rows(named=True)}
    planned = study.planned_sessions_total  # 4 weeks x 3 + 8 weeks x 1 = 20
    assert planned == 20
    tap = rows["TAP"]
    assert (tap["n_sessions"], tap["sessions_completed"], tap["aborted"]) == (3, 2, 1)
    assert tap["completed_share"] == pytest.approx(2 / 20)
    assert tap["charge_mean_mc"] == pytest.approx(14000.0)
    assert tap["charge_sd_mc"] == pytest.approx(6928.203230, rel=1e-6)  # sd(18k, 6k, 18k)
    assert tap["n_sessions_with_samples"] == 0
    assert tap["within_tolerance_share"] is None
    gly = rows["GLY"]
    # S3 is outside the Safety set; duration-weighted (0.9*1200 + 0.5*600) / 1800
    assert gly["within_tolerance_share"] == pytest.approx((0.9 * 1200 + 0.5 * 600) / 1800)
    assert gly["aborted_pct"] == pytest.approx(50.0)
    faults = result.tables["fault_codes"]
    assert faults.rows() == [
        ("GLY", "SOLE", "E07", "low battery", 1),
        ("TAP", "PALM", "E01", "open circuit", 1),
    ]
    # the sole device is planned only for the involved subject (S2, GLY); TAP has no sole row
    sole = by_arm.filter(pl.col("region") == "SOLE")
    assert sole.rows(named=True)[0]["arm"] == "GLY"
    assert sole.height == 1
    assert (sole["sessions_planned"].item(), sole["aborted"].item()) == (20, 1)
    assert any("outside the treatment phases" in n for n in result.notes)


def test_blinded_pools(study: Study) -> None:
    by_arm = device_summary(ADDEV, ADSL.drop("arm"), study).tables["by_arm"]
    assert by_arm["arm"].unique().to_list() == ["pooled"]
    row = by_arm.filter(pl.col("region") == "PALM").row(0, named=True)
    assert (row["n_subjects"], row["n_sessions"], row["sessions_planned"]) == (2, 5, 40)
