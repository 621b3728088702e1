"""A run's model results read back from ``OUT/models`` are the results that were written:
estimates, fit, extra tables and notes (the report's methods block prints the notes)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from trial.models.result import ModelResult, write_result
from trial.models.tidy import empty_estimates
from trial.report.load import read_model_results


def _result(name: str, notes: list[str]) -> ModelResult:
    return ModelResult(
        name=name,
        estimates=empty_estimates(),
        fit={"n_subjects": 3, "converged": True},
        tables={"by_arm": pl.DataFrame({"arm": ["pooled"], "n": [3]})},
        notes=notes,
    )


def test_notes_round_trip_through_the_models_folder(tmp_path: Path) -> None:
    notes = [
        "Unstructured covariance did not converge; heterogeneous Toeplitz used.",
        "blinded run: arms pooled",
        "2 AEs not treatment-emergent: not counted",
    ]
    # "safety" is a prefix of "safety_extra": each file still goes to the longest name.
    results = [_result("safety", notes), _result("safety_extra", []), _result("device", ["x"])]
    for result in results:
        write_result(result, tmp_path / "models")
    written = pl.read_parquet(tmp_path / "models" / "safety_notes.parquet")
    assert written.schema == pl.Schema({"note": pl.String})
    assert written["note"].to_list() == notes
    back = read_model_results(tmp_path)
    assert sorted(back) == ["device", "safety", "safety_extra"]
    assert back["safety"].notes == notes
    assert back["safety_extra"].notes == []
    assert back["device"].notes == ["x"]
    assert set(back["safety"].tables) == {"by_arm"}
    assert back["safety"].tables["by_arm"].equals(results[0].tables["by_arm"])
    assert back["safety"].fit == {"n_subjects": 3, "converged": True}


def test_a_run_written_without_notes_reads_back_with_none(tmp_path: Path) -> None:
    write_result(_result("device", ["dropped"]), tmp_path / "models")
    (tmp_path / "models" / "device_notes.parquet").unlink()
    assert read_model_results(tmp_path)["device"].notes == []


def test_a_table_named_notes_is_refused(tmp_path: Path) -> None:
    clash = _result("device", [])
    clash.tables["notes"] = pl.DataFrame({"note": ["a"]})
    with pytest.raises(ValueError, match="notes"):
        write_result(clash, tmp_path)
