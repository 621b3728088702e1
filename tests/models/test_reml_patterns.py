"""The pattern REML engine's exact gradient against central finite differences; its criterion
(from its sparse sums) against the profiled REML criterion computed subject by subject."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from study import Study, load_study
from trial.models.lmm import lmm_engine
from trial.models.reml_patterns import PatternReml

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


def _lambda(theta: np.ndarray) -> np.ndarray:
    """Random intercept and slope: Lam lower triangular (theta_0, theta_1; theta_2 below)."""
    return np.array([[theta[0], 0.0], [theta[2], theta[1]]])


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """40 subjects at up to 5 visits (some missed), an arm and a baseline covariate."""
    rng = np.random.default_rng(seed)
    n, m = 40, 5
    week = np.arange(m, dtype=float)
    subject = np.repeat(np.arange(n), m)
    slot = np.tile(np.arange(m), n)
    keep = rng.random(n * m) > 0.2
    arm = np.repeat(rng.integers(0, 2, n), m).astype(float)
    base = np.repeat(rng.normal(size=n), m)
    x = np.column_stack([np.ones(n * m), arm, week[slot], arm * week[slot], base])
    u = np.repeat(rng.normal(scale=[0.7, 0.2], size=(n, 2)), m, axis=0)
    y = x @ [1.0, -0.5, 0.1, -0.2, 0.4] + u[:, 0] + u[:, 1] * week[slot] + rng.normal(size=n * m)
    z_full = np.column_stack([np.ones(m), week])
    return y[keep], x[keep], subject[keep], slot[keep], z_full


def _dense_criterion(
    theta: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    subject: np.ndarray,
    slot: np.ndarray,
    z_full: np.ndarray,
) -> float:
    """-2 l_R (lme4's REMLcrit) from each subject's own W_i = I + Z_i Lam Lam' Z_i'."""
    lam = _lambda(theta)
    p = x.shape[1]
    a, c, yy, logdet_w = np.zeros((p, p)), np.zeros(p), 0.0, 0.0
    for i in np.unique(subject):
        rows = subject == i
        z = z_full[slot[rows]] @ lam
        w_inv = np.linalg.inv(np.eye(rows.sum()) + z @ z.T)
        logdet_w -= float(np.linalg.slogdet(w_inv)[1])
        a += x[rows].T @ w_inv @ x[rows]
        c += x[rows].T @ w_inv @ y[rows]
        yy += float(y[rows] @ w_inv @ y[rows])
    rss = yy - float(c @ np.linalg.solve(a, c))
    dof = len(y) - p
    return logdet_w + float(np.linalg.slogdet(a)[1]) + dof * (1.0 + np.log(2 * np.pi * rss / dof))


def test_criterion_and_gradient_from_the_sparse_sums() -> None:
    y, x, subject, slot, z_full = _data(seed=4)
    engine = PatternReml(y, x, subject, slot, z_full, _lambda)
    for theta in (np.array([0.6, 0.25, 0.05]), np.array([1.1, 0.1, -0.2])):
        value, grad = engine.criterion_and_gradient(theta)
        expected = _dense_criterion(theta, y, x, subject, slot, z_full)
        assert abs(value - expected) <= 1e-10 * abs(expected)
        assert abs(engine.criterion(theta) - expected) <= 1e-10 * abs(expected)
        step = 1e-6
        numeric = [
            (engine.criterion(theta + step * e) - engine.criterion(theta - step * e)) / (2 * step)
            for e in np.eye(3)
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)
