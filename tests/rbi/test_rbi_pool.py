"""Pooling rules against hand-written formulas (Rubin 1987; Barnard and Rubin 1999)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from trial.rbi.pool import pool_bootstrap, pool_jackknife, pool_rubin


def test_rubin_rules_with_barnard_rubin_df() -> None:
    est = np.array([1.0, 1.4, 0.8, 1.2, 1.1]).reshape(5, 1, 1)
    var = np.array([0.04, 0.05, 0.045, 0.04, 0.05]).reshape(5, 1, 1)
    got = pool_rubin(est, var, v_com=60.0, alpha=0.05)
    m, qbar, ubar = 5, 1.1, 0.045
    b = np.var([1.0, 1.4, 0.8, 1.2, 1.1], ddof=1)
    t = ubar + (1 + 1 / m) * b
    gamma = (1 + 1 / m) * b / t
    v_obs = (60 + 1) / (60 + 3) * 60 * (1 - gamma)
    df = 1 / (1 / ((m - 1) / gamma**2) + 1 / v_obs)
    assert got["estimate"][0, 0] == pytest.approx(qbar)
    assert got["se"][0, 0] == pytest.approx(np.sqrt(t))
    assert got["df"][0, 0] == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * np.sqrt(t)
    assert got["lci"][0, 0] == pytest.approx(qbar - half)
    assert got["pvalue"][0, 0] == pytest.approx(2 * stats.t.sf(qbar / np.sqrt(t), df))


def test_rubin_without_between_variance_uses_complete_data_df() -> None:
    got = pool_rubin(np.ones((4, 1, 1)), np.full((4, 1, 1), 0.25), v_com=30.0, alpha=0.1)
    assert got["df"][0, 0] == 30.0
    assert got["uci"][0, 0] == pytest.approx(1 + stats.t.ppf(0.95, 30) * 0.5)


def test_jackknife_and_bootstrap_are_normal_based() -> None:
    samples = np.array([0.9, 1.1, 1.0, 1.3]).reshape(4, 1, 1)
    full = np.array([[1.05]])
    jack = pool_jackknife(full, samples, alpha=0.05)
    se = np.sqrt(3 / 4 * ((samples - samples.mean()) ** 2).sum())
    assert jack["se"][0, 0] == pytest.approx(se)
    assert jack["lci"][0, 0] == pytest.approx(1.05 - stats.norm.ppf(0.975) * se)
    assert np.isnan(jack["df"][0, 0])
    boot = pool_bootstrap(full, samples, alpha=0.05)
    assert boot["se"][0, 0] == pytest.approx(np.std([0.9, 1.1, 1.0, 1.3], ddof=1))
    assert boot["estimate"][0, 0] == 1.05
