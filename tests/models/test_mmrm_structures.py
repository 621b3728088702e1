"""MMRM covariance structures, fallback, the pattern REML engine and Kenward-Roger.

References: nlme::gls fits committed in tests/fixtures/r (``mmrm_structures.R``), and dense
per-subject implementations written out here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from study import load_study
from trial.models.covariance import STRUCTURES, CovarianceStructure
from trial.models.design import MmrmDesign, build_mmrm_design
from trial.models.mmrm import CovarianceFitError, fit_mmrm, fit_mmrm_model
from trial.models.reml import LOG_2PI, PatternData

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "r"
REPO = FIXTURES.parent.parent.parent


@pytest.fixture(scope="module")
def sim150() -> pl.DataFrame:
    return pl.read_csv(FIXTURES / "sim150.csv")


@pytest.fixture(scope="module")
def nlme_fits() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "mmrm_structures.json").read_text())["fits"])


@pytest.mark.parametrize("structure", STRUCTURES)
def test_structure_matches_nlme(
    structure: str, sim150: pl.DataFrame, nlme_fits: dict[str, Any]
) -> None:
    ref = nlme_fits[structure]
    fit = fit_mmrm_model(sim150, load_study(), structures=[structure])
    assert fit.result.structure.name == structure
    assert fit.result.structure.n_params == ref["n_parameters_covariance"] + 1  # + sigma
    assert fit.result.reml_loglik == pytest.approx(ref["reml_loglik"], abs=1e-4)
    assert fit.design.terms == ref["terms"]
    np.testing.assert_allclose(fit.beta, ref["estimate"], atol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), ref["se"], rtol=1e-3)
    np.testing.assert_allclose(fit.sigma, np.array(ref["covariance_matrix"]), rtol=1e-3)


def dense_m2loglik(design: MmrmDesign, sigma: np.ndarray) -> float:
    """-2 REML log-likelihood from the block-diagonal V of all observations (no patterns)."""
    n, p = design.x.shape
    v = np.zeros((n, n))
    same = design.subject[:, None] == design.subject[None, :]
    v[same] = sigma[design.visit[:, None], design.visit[None, :]][same]
    vinv = np.linalg.inv(v)
    xtvx = design.x.T @ vinv @ design.x
    beta = np.linalg.solve(xtvx, design.x.T @ vinv @ design.y)
    r = design.y - design.x @ beta
    return float(
        (n - p) * LOG_2PI + np.linalg.slogdet(v)[1] + np.linalg.slogdet(xtvx)[1] + r @ vinv @ r
    )


@pytest.fixture(scope="module")
def small_design(sim150: pl.DataFrame) -> MmrmDesign:
    subjects = sim150.get_column("subject").unique().sort().head(60).implode()
    return build_mmrm_design(sim150.filter(pl.col("subject").is_in(subjects)), load_study())


def random_sigma(rng: np.random.Generator, t: int) -> np.ndarray:
    a = rng.normal(size=(t, t))
    return a @ a.T / t + 0.3 * np.eye(t)


def test_pattern_criterion_and_gradient_equal_dense(small_design: MmrmDesign) -> None:
    d = small_design
    data = PatternData(d.x, d.y, d.subject, d.visit, len(d.visits))
    assert data.n_subjects == 60
    rng = np.random.default_rng(7)
    sigma = random_sigma(rng, len(d.visits))
    state = data.evaluate(sigma[None])
    assert state.m2loglik[0] == pytest.approx(dense_m2loglik(d, sigma), abs=1e-8)
    grad = data.gradient_sigma(state)[0]
    h = 1e-6
    for j, k in [(0, 0), (1, 3), (5, 5), (2, 4)]:
        step = np.zeros_like(sigma)
        step[j, k] = step[k, j] = h
        numeric = (dense_m2loglik(d, sigma + step) - dense_m2loglik(d, sigma - step)) / (2 * h)
        analytic = grad[j, k] + (grad[k, j] if j != k else 0.0)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_quadratic_form_gradient_equals_finite_differences(small_design: MmrmDesign) -> None:
    d = small_design
    data = PatternData(d.x, d.y, d.subject, d.visit, len(d.visits))
    sigma = random_sigma(np.random.default_rng(3), len(d.visits))
    row = d.lsmean_vector("GLY", "W4") - d.lsmean_vector("TAP", "W4")
    grad = data.quadratic_form_gradient(data.evaluate(sigma[None]), row[None])[0]

    def form(s: np.ndarray) -> float:
        return float(row @ data.evaluate(s[None]).xtwx_inv[0] @ row)

    h = 1e-6
    step = np.zeros_like(sigma)
    step[1, 3] = step[3, 1] = h
    numeric = (form(sigma + step) - form(sigma - step)) / (2 * h)
    assert grad[1, 3] + grad[3, 1] == pytest.approx(numeric, rel=1e-5)


@pytest.mark.parametrize("name", STRUCTURES)
def test_structures_positive_definite_and_jacobian(name: str) -> None:
    structure = CovarianceStructure(name, 6)
    rng = np.random.default_rng(11)
    theta = rng.normal(scale=0.8, size=structure.n_params)
    sigma = structure.sigma(theta)
    assert np.allclose(sigma, sigma.T)
    assert np.linalg.eigvalsh(sigma)[0] > 0
    h = 1e-6
    jac = structure.jacobian(theta)
    for k in range(structure.n_params):
        step = np.zeros_like(theta)
        step[k] = h
        numeric = (structure.sigma(theta + step) - structure.sigma(theta - step)) / (2 * h)
        np.testing.assert_allclose(jac[k], numeric, atol=1e-7)
    grad_sigma = rng.normal(size=(1, 6, 6))
    np.testing.assert_allclose(
        structure.chain_gradient(theta[None], grad_sigma)[0],
        np.einsum("qjk,jk->q", jac, grad_sigma[0]),
        rtol=1e-12,
        atol=1e-12,
    )
    if name == "unstructured":  # start() recovers an unstructured matrix exactly
        np.testing.assert_allclose(structure.sigma(structure.start(sigma)), sigma, atol=1e-12)


def test_toeplitz_with_one_partial_autocorrelation_is_ar1() -> None:
    toeplitz, ar1 = (
        CovarianceStructure("heterogeneous_toeplitz", 6),
        CovarianceStructure("heterogeneous_ar1", 6),
    )
    log_sd = np.log(np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0]))
    eta = np.arctanh(0.6)
    np.testing.assert_allclose(
        toeplitz.sigma(np.r_[log_sd, eta, 0, 0, 0, 0]), ar1.sigma(np.r_[log_sd, eta]), atol=1e-14
    )
    corr = ar1.sigma(np.r_[np.zeros(6), eta])
    assert corr[0, 3] == pytest.approx(0.6**3)


def non_identifiable(frame: pl.DataFrame) -> pl.DataFrame:
    """W8 for half of the subjects, W12 for the other half: Cov(W8, W12) is not identified."""
    odd = pl.col("subject").rank("dense") % 2 == 1
    return frame.filter(~((pl.col("visit") == "W12") & odd) & ~((pl.col("visit") == "W8") & ~odd))


def test_fallback_taken_and_reported(sim150: pl.DataFrame) -> None:
    frame = non_identifiable(sim150)
    result = fit_mmrm(frame, load_study())
    assert result.fit["covariance_structure"] == "heterogeneous_toeplitz"
    rejected = json.loads(result.fit["structures_rejected"])
    assert list(rejected) == ["unstructured"]
    assert "not positive definite" in rejected["unstructured"]
    assert any("Fallback taken: unstructured was rejected" in n for n in result.notes)
    assert result.fit["n_covariance_parameters"] == 11


def test_all_structures_failing_raises(sim150: pl.DataFrame) -> None:
    with pytest.raises(CovarianceFitError, match="unstructured: Hessian"):
        fit_mmrm_model(non_identifiable(sim150), load_study(), structures=["unstructured"])


def test_bad_input_is_an_error(sim150: pl.DataFrame) -> None:
    study = load_study()
    with pytest.raises(ValueError, match="outside the levels"):
        fit_mmrm(sim150.with_columns(pl.lit("XYZ").alias("arm")), study)
    with pytest.raises(ValueError, match="blinded"):
        fit_mmrm(sim150.drop("arm"), study)
    with pytest.raises(ValueError, match="same visit"):
        fit_mmrm(pl.concat([sim150, sim150.head(1)]), study)
    with pytest.raises(ValueError, match="rank deficient"):
        fit_mmrm(sim150.filter(~((pl.col("arm") == "GLY") & (pl.col("visit") == "W3"))), study)


def dense_kenward_roger(
    design: MmrmDesign, sigma: np.ndarray, jac: np.ndarray, cov_theta: np.ndarray
) -> np.ndarray:
    """KR adjusted covariance by explicit loops over subjects (R_ij = 0)."""
    p = design.x.shape[1]
    n_par = len(jac)
    xtwx = np.zeros((p, p))
    p_mats = np.zeros((n_par, p, p))
    q_mats = np.zeros((n_par, n_par, p, p))
    for s in np.unique(design.subject):
        rows = design.subject == s
        v, x = design.visit[rows], design.x[rows]
        w = np.linalg.inv(sigma[np.ix_(v, v)])
        xtwx += x.T @ w @ x
        d = [jac[i][np.ix_(v, v)] for i in range(n_par)]
        for i in range(n_par):
            p_mats[i] -= x.T @ w @ d[i] @ w @ x
            for j in range(n_par):
                q_mats[i, j] += x.T @ w @ d[i] @ w @ d[j] @ w @ x
    c = np.linalg.inv(xtwx)
    inner = sum(
        cov_theta[i, j] * (q_mats[i, j] - p_mats[i] @ c @ p_mats[j])
        for i in range(n_par)
        for j in range(n_par)
    )
    return np.asarray(c + 2 * c @ inner @ c)


def test_kenward_roger_adjusted_covariance_equals_dense(small_design: MmrmDesign) -> None:
    from trial.models.mmrm import fit_design

    fit = fit_design(small_design, ["heterogeneous_ar1"], ddf="kenward_roger")
    structure, theta = fit.result.structure, fit.result.theta
    expected = dense_kenward_roger(
        small_design, fit.sigma, structure.jacobian(theta), fit.cov_theta
    )
    row = small_design.lsmean_vector("GLY", "W4") - small_design.lsmean_vector("TAP", "W4")
    inf = fit.kenward_roger(row[None])
    assert inf.std_error[0] ** 2 == pytest.approx(float(row @ expected @ row), rel=1e-8)
    assert inf.std_error[0] > fit.satterthwaite(row[None]).std_error[0]
    assert (
        0.5 * fit.satterthwaite(row[None]).df[0]
        < inf.df[0]
        < 2 * fit.satterthwaite(row[None]).df[0]
    )


@pytest.mark.r
def test_r_reference_reproduces(tmp_path: Path) -> None:
    """Re-run the R script; its output must equal the committed fixture."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed")
    out = tmp_path / "out.json"
    subprocess.run(["Rscript", str(FIXTURES / "mmrm_structures.R"), str(out)], cwd=REPO, check=True)
    fresh = json.loads(out.read_text())["fits"]
    committed = json.loads((FIXTURES / "mmrm_structures.json").read_text())["fits"]
    for name in STRUCTURES:
        assert fresh[name]["reml_loglik"] == pytest.approx(committed[name]["reml_loglik"], abs=1e-8)
