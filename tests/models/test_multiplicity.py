"""Fixed-sequence decisions for constructed p-values, and the look-up of p-values."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from study import Study, load_study
from trial.models.multiplicity import (
    fixed_sequence,
    fixed_sequence_from_results,
    key_secondary_pvalues,
)
from trial.models.result import ModelResult
from trial.models.tidy import empty_estimates

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


def decisions(study: Study, p: dict[str, float | None]) -> list[str]:
    return fixed_sequence(study, p).tables["fixed_sequence"]["decision"].to_list()


def test_all_rejected(study: Study) -> None:
    assert decisions(study, {"H1": 0.001, "H2": 0.04, "H3": 0.05}) == ["reject"] * 3


def test_failure_stops_the_sequence(study: Study) -> None:
    # H3 would be significant on its own, but H2 failed first
    assert decisions(study, {"H1": 0.01, "H2": 0.0501, "H3": 0.0001}) == [
        "reject",
        "not rejected",
        "not tested",
    ]


def test_first_failure(study: Study) -> None:
    assert decisions(study, {"H1": 0.2, "H2": 0.001, "H3": 0.001}) == [
        "not rejected",
        "not tested",
        "not tested",
    ]


def test_missing_p_value_is_not_tested(study: Study) -> None:
    result = fixed_sequence(study, {"H1": 0.01, "H2": None, "H3": 0.01})
    assert result.tables["fixed_sequence"]["decision"].to_list() == [
        "reject",
        "not tested",
        "not tested",
    ]
    assert any("H2" in n for n in result.notes)


def test_p_values_come_from_mmrm_and_responder_tables(study: Study) -> None:
    mmrm = pl.DataFrame(
        {
            "visit": ["W3", "W4", "W4"],
            "contrast": ["GLY-TAP", "GLY-TAP", "OXY-TAP"],
            "p_value": [0.9, 0.03, 0.02],
        }
    )
    odds = pl.DataFrame(
        {
            "endpoint": ["hdss_responder", "sweat_responder"],
            "contrast": ["GLY-TAP", "GLY-TAP"],
            "p_value": [0.004, 0.5],
        }
    )
    assert key_secondary_pvalues(study, mmrm, odds) == {"H1": 0.03, "H2": 0.02, "H3": 0.004}
    result = fixed_sequence_from_results(
        study,
        ModelResult("mmrm", empty_estimates(), {}, tables={"contrasts": mmrm}),
        ModelResult("responders", empty_estimates(), {}, tables={"odds_ratios": odds}),
    )
    table = result.tables["fixed_sequence"]
    assert table["id"].to_list() == ["H1", "H2", "H3"]
    assert table["decision"].to_list() == ["reject"] * 3
    assert result.fit["n_rejected"] == 3


def test_blinded_results_are_not_tested(study: Study) -> None:
    result = fixed_sequence_from_results(study, None, None)
    assert set(result.tables["fixed_sequence"]["decision"]) == {"not tested"}
