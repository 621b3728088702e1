"""The pattern REML engine's exact gradient against central finite differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from study import Study, load_study
from trial.models.lmm import lmm_engine

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


@pytest.mark.parametrize("theta", [[1.0, 0.0, 1.0], [1.15, 0.31, 1.02], [0.4, -0.2, 0.05]])
def test_gradient_matches_finite_differences(
    study: Study, ref1_dir: Path, theta: list[float]
) -> None:
    long = pl.read_csv(ref1_dir / "expected" / "analysis_long.csv")
    engine, _, _ = lmm_engine(long, study, time_scale=8.0)
    point = np.array(theta)
    value, grad = engine.criterion_and_gradient(point)
    assert value == pytest.approx(engine.criterion(point), abs=1e-9)
    step = 1e-6
    numeric = [
        (engine.criterion(point + step * e) - engine.criterion(point - step * e)) / (2 * step)
        for e in np.eye(3)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)
