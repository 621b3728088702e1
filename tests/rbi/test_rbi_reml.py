"""The single-Sigma REML evaluation equals the project's batched MMRM engine; the jackknife's
batched leave-one-out evaluation, and the batched bootstrap refits, equal each data set's own."""

from __future__ import annotations

import numpy as np
import pytest

from trial.rbi import RbiSpec
from trial.rbi.bootstrap import BootstrapRefits
from trial.rbi.engine import _stratified_resample, _valid_resample, draw_parameters, pattern_data
from trial.rbi.jackknife import LeaveOneOut
from trial.rbi.prepare import Prepared, prepare
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


def _one_at_a_time(
    prep: Prepared, full_theta: np.ndarray, h_inv: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The bootstrap as it was before the refits were batched: each estimable resample refitted
    alone as soon as it is drawn (none fails here); betas, Sigmas, weights, fallbacks."""
    rng = np.random.default_rng(prep.spec.seed)
    betas: list[np.ndarray] = []
    sigmas: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    fallbacks = 0
    while len(betas) < prep.spec.n_samples:
        ids = _stratified_resample(prep, rng)
        if not _valid_resample(prep, ids):
            continue
        opt, fell_back = UnstructuredReml(pattern_data(prep, ids)).refit(full_theta, h_inv)
        fallbacks += int(fell_back)
        betas.append(opt.beta)
        sigmas.append(opt.sigma)
        weights.append(np.bincount(ids, minlength=prep.n_subjects).astype(float))
    return np.array(betas), np.array(sigmas), np.array(weights), fallbacks


@pytest.mark.parametrize("method", ["bayes-approx", "condmean-bootstrap"])
def test_batched_bootstrap_equals_each_resample_alone(method: str) -> None:
    """The bootstrap's batched refits: the criterion of each resample at its own theta is the
    resample's own single-Sigma evaluation (a resample may lack a missingness pattern: the
    sums keep every pattern of the full data, at count zero), and the draws are those of
    refitting each resample alone: the same resamples, estimates within 1e-8 (the refits stop
    at the same rule; the sums are added in another order, ~1e-13 here)."""
    data, ice = simulate_trial(TrialDesign(n_subjects=60, n_visits=4, p_discontinue=0.4), seed=9)
    spec = RbiSpec(
        "subject",
        "visit",
        "arm",
        "PBO",
        "y",
        covariates=["base*visit"],
        method=method,
        n_samples=40,
        seed=3,
    )
    prep = prepare(data, ice, spec)
    model = UnstructuredReml(pattern_data(prep))
    full, hessian = model.fit()
    h_inv = np.linalg.inv(hessian)
    refits = BootstrapRefits(prep, model, full, h_inv)
    rng = np.random.default_rng(5)
    resamples = [_stratified_resample(prep, rng) for _ in range(6)]
    weights = np.array([np.bincount(r, minlength=prep.n_subjects) for r in resamples], float)
    theta = full.theta + 0.03 * np.cos(np.arange(6)[:, None] + np.arange(10)[None])
    counts = weights @ refits.pattern_counts
    assert (counts == 0).any()  # some resample lacks a pattern of the full data
    grad, beta, sigma, ok = refits.evaluate(theta, refits.sums(weights), counts)
    assert ok.all()
    for j, ids in enumerate(resamples):
        _, g, b, s = UnstructuredReml(pattern_data(prep, ids)).evaluate(theta[j])
        np.testing.assert_allclose(grad[j], g, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(beta[j], b, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(sigma[j], s, rtol=1e-14)
    draws = draw_parameters(prep)
    betas, sigmas, expected_weights, fallbacks = _one_at_a_time(prep, full.theta, h_inv)
    assert (draws.fallbacks, draws.redrawn) == (fallbacks, 0)
    assert draws.weights is not None
    np.testing.assert_array_equal(draws.weights, expected_weights)
    np.testing.assert_allclose(draws.betas, betas, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(draws.sigmas, sigmas, rtol=1e-8, atol=1e-10)
