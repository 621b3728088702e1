"""The single-Sigma REML evaluation equals the project's batched MMRM engine; the jackknife's
batched leave-one-out evaluation equals each leave-one-out data set's own."""

from __future__ import annotations

import numpy as np
import pytest

from trial.rbi import RbiSpec
from trial.rbi.engine import pattern_data
from trial.rbi.jackknife import LeaveOneOut
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


def test_batched_leave_one_out_equals_one_subject_at_a_time() -> None:
    """The jackknife's batched refits: the criterion of each subject's leave-one-out data at its
    own theta is that data's own single-Sigma evaluation, and every refit reaches the optimum
    the one-subject refit reaches."""
    data, ice = simulate_trial(TrialDesign(n_subjects=60, n_visits=4, p_discontinue=0.4), seed=9)
    spec = RbiSpec("subject", "visit", "arm", "PBO", "y", covariates=["base*visit"])
    prep = prepare(data, ice, spec)
    model = UnstructuredReml(pattern_data(prep))
    full, hessian = model.fit()
    loo = LeaveOneOut(prep, model, full, np.linalg.inv(hessian))
    subjects = np.flatnonzero(prep.fit_mask.any(1))[:12]
    theta = loo.first_steps(subjects) + 0.02 * np.sin(np.arange(10))[None]
    value, grad, beta, sigma, ok = loo.evaluate_without(theta, subjects)
    assert ok.all()
    for j, i in enumerate(subjects):
        keep = np.arange(prep.n_subjects) != i
        alone = UnstructuredReml(pattern_data(prep, np.flatnonzero(keep)))
        np.testing.assert_allclose(loo.first_steps(np.array([i]))[0], loo.first_step(i))
        v, g, b, s = alone.evaluate(theta[j])
        assert value[j] == pytest.approx(v, rel=1e-11)
        np.testing.assert_allclose(grad[j], g, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(beta[j], b, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(sigma[j], s, rtol=1e-14)
    betas, sigmas, fallbacks = loo.refit_all()
    assert fallbacks == 0
    for i in range(prep.n_subjects):
        opt, _ = loo.refit(i)
        np.testing.assert_allclose(betas[i], opt.beta, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(sigmas[i], opt.sigma, rtol=1e-8, atol=1e-10)
