"""The single-Sigma REML evaluation equals the project's batched MMRM engine."""

from __future__ import annotations

import numpy as np
import pytest

from trial.rbi import RbiSpec
from trial.rbi.engine import pattern_data
from trial.rbi.prepare import prepare
from trial.rbi.reml_fit import UnstructuredReml
from trial.rbi.simulate import TrialDesign, simulate_trial


@pytest.mark.parametrize("shift", [0.0, 0.05, -0.1])
def test_single_sigma_evaluation_equals_the_batched_engine(shift: float) -> None:
    data, ice = simulate_trial(TrialDesign(n_subjects=80, n_visits=4), seed=6)
    spec = RbiSpec("subject", "visit", "arm", "PBO", "y", covariates=["base*visit"])
    model = UnstructuredReml(pattern_data(prepare(data, ice, spec)))
    theta = model.moment_start() + shift * np.arange(10) / 10
    value, grad, beta, sigma = model.evaluate(theta)
    state = model.data.evaluate(model.structure.sigma(theta[None]))
    expected = model.structure.chain_gradient(theta[None], model.data.gradient_sigma(state))[0]
    assert value == pytest.approx(float(state.m2loglik[0]), rel=1e-12)
    np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(beta, state.beta[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sigma, state.sigma[0], rtol=1e-14)
