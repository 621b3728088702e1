"""AE counts on a tiny hand-made ADAE, by arm and pooled (blinded)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from study import Study, load_study
from trial.models.safety import safety_summary

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


ADSL = pl.DataFrame(
    {
        "subject_id": ["S1", "S2", "S3", "S4", "S5", "S6"],
        "SAFFL": ["Y", "Y", "Y", "Y", "Y", "N"],
        "arm": ["TAP", "TAP", "GLY", "GLY", "GLY", "GLY"],
    }
)
ADAE = pl.DataFrame(
    {
        "subject_id": ["S1", "S1", "S1", "S3", "S4", "S4", "S5", "S6", "S2"],
        "ae_id": ["1", "2", "3", "4", "5", "6", "7", "8", "9"],
        "term": [
            "TINGLING",
            "TINGLING",
            "ITCHING",
            "DRY_MOUTH",
            "DRY_MOUTH",
            "TINGLING",
            "TINGLING",
            "TINGLING",
            "HEADACHE",
        ],
        "severity": ["MILD", "SEVERE", "MILD", "MODERATE", "MILD", "MILD", "MILD", "MILD", "MILD"],
        "serious": ["N", "Y", "N", "N", "N", "N", "N", "N", "N"],
        "related": ["POSSIBLE", "Y", "N", "N", "POSSIBLE", "N", "Y", "Y", "N"],
        "TRTEMFL": ["Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "N"],
    }
)


def cell(frame: pl.DataFrame, **keys: str) -> dict[str, object]:
    return frame.filter(*[pl.col(k) == v for k, v in keys.items()]).row(0, named=True)


def test_counts_by_arm(study: Study) -> None:
    result = safety_summary(ADAE, ADSL, study)
    by_term = result.tables["by_term"]
    tap = cell(by_term, arm="TAP", term="TINGLING")
    assert (tap["n_subjects"], tap["n_events"], tap["N"]) == (1, 2, 2)
    assert tap["pct"] == pytest.approx(50.0)
    gly = cell(by_term, arm="GLY", term="DRY_MOUTH")
    assert (gly["n_subjects"], gly["N"]) == (2, 3)
    # S6 is outside the Safety set; S2's headache is not treatment-emergent
    assert cell(by_term, arm="GLY", term="TINGLING")["n_subjects"] == 2
    assert by_term.filter(pl.col("term") == "HEADACHE").height == 0
    assert cell(by_term, arm="GLY", term="ANY")["n_subjects"] == 3
    assert cell(by_term, arm="TAP", term="ANY")["n_subjects"] == 1


def test_worst_severity_and_strongest_relatedness(study: Study) -> None:
    result = safety_summary(ADAE, ADSL, study)
    sev = result.tables["by_severity"]
    # S1 had TINGLING MILD and SEVERE: counted once, as SEVERE
    assert cell(sev, arm="TAP", term="TINGLING", severity="SEVERE")["n_subjects"] == 1
    assert sev.filter((pl.col("arm") == "TAP") & (pl.col("term") == "TINGLING")).height == 1
    rel = result.tables["by_relatedness"]
    assert cell(rel, arm="TAP", term="TINGLING", related="Y")["n_subjects"] == 1
    gly_tingling = rel.filter((pl.col("arm") == "GLY") & (pl.col("term") == "TINGLING"))
    assert dict(zip(gly_tingling["related"], gly_tingling["n_subjects"], strict=True)) == {
        "Y": 1,
        "N": 1,
    }


def test_serious_listing(study: Study) -> None:
    serious = safety_summary(ADAE, ADSL, study).tables["serious"]
    assert serious["ae_id"].to_list() == ["2"]
    assert serious["arm"].to_list() == ["TAP"]


def test_blinded_pools_arms(study: Study) -> None:
    result = safety_summary(ADAE, ADSL.drop("arm"), study)
    by_term = result.tables["by_term"]
    assert by_term["arm"].unique().to_list() == ["pooled"]
    tingling = cell(by_term, term="TINGLING")
    assert (tingling["n_subjects"], tingling["n_events"], tingling["N"]) == (3, 4, 5)
    assert "arm" not in result.tables["serious"].columns
    assert result.tables["denominators"]["N"].to_list() == [5]
