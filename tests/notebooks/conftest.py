"""Fixtures of the notebook tests: materialised run outputs the notebooks read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))

import synthetic_trial

from trial.derive.analysis_long import build_analysis_long
from trial.models.mmrm import fit_mmrm
from trial.models.result import write_result
from trial.models.tidy import not_fitted_blinded
from study import load_study


def _synthetic_out(out: Path, blinded: bool) -> Path:
    """OUT/tables and OUT/models of the synthetic trial, with a real primary MMRM fit."""
    study = load_study()
    tables = synthetic_trial.write_outputs(study, out, blinded=blinded)
    analysis_long = build_analysis_long(tables["adsl"], tables["adsweat"], study)
    analysis_long.write_parquet(out / "tables" / "analysis_long.parquet")
    result = (
        not_fitted_blinded("mmrm_primary")
        if blinded
        else fit_mmrm(analysis_long, study, name="mmrm_primary")
    )
    write_result(result, out / "models")
    return out


@pytest.fixture(scope="session")
def synthetic_unblinded_out(tmp_path_factory) -> Path:
    return _synthetic_out(tmp_path_factory.mktemp("nb_unblinded"), blinded=False)


@pytest.fixture(scope="session")
def synthetic_blinded_out(tmp_path_factory) -> Path:
    return _synthetic_out(tmp_path_factory.mktemp("nb_blinded"), blinded=True)
