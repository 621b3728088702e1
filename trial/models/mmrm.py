"""Primary MMRM of the SAP (section 7): REML, unstructured covariance with fallbacks.

Model (terms from the study configuration, treatment coding, first level = reference)::

    chg ~ arm * visit + logbase * visit + centre + stratum,  Var(chg_i) = Sigma at i's visits

fitted on an ``analysis_long`` frame (one row per subject and observed model visit). The
covariance structure is the configuration's ``models.mmrm.covariance`` (unstructured); when its
fit fails - the optimiser does not reach a stationary point, or the fitted Sigma or the Hessian
of the REML criterion is not positive definite (SAP section 10) - the ``fallback`` structures
are tried in order and the one used is reported.

Convergence is judged on the REML criterion itself, not on the optimiser's flag: L-BFGS-B runs
first, then Newton steps with a finite-difference Hessian of the analytic gradient until the
Newton decrement g' H^-1 g is below 1e-8 (-2 l_R units) with H positive definite.

Units: ``chg`` and LS means are changes in ln(mg/min); ratios and percent reductions are on the
rate scale. The REML log-likelihood is nlme's (Harville form without 1/2 log|X'X|).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import optimize, stats

from study import Study
from trial.models.covariance import CovarianceStructure
from trial.models.design import MmrmDesign, build_mmrm_design
from trial.models.reml import PatternData, RemlState
from trial.models.result import ModelResult
from trial.models.satterthwaite import KenwardRoger, kenward_roger, satterthwaite_df

MODEL_NAME = "mmrm_primary"
NEWTON_DECREMENT_TOL = 1e-8
"""Converged when the predicted further decrease of -2 l_R (Newton decrement) is below this."""
GRADIENT_TOL = 1e-3
"""... and the largest absolute gradient element of -2 l_R is below this."""
PD_RELATIVE_TOL = 1e-9
"""A symmetric matrix counts as positive definite when min eigenvalue > this x max eigenvalue."""
HESSIAN_STEP = 1e-5
MAX_NEWTON_STEPS = 12
DDF_METHODS = ("satterthwaite", "kenward_roger")


class CovarianceFitError(RuntimeError):
    """No covariance structure in the configured list could be fitted."""


@dataclass(frozen=True)
class StructureFit:
    """A converged REML fit under one covariance structure."""

    structure: CovarianceStructure
    theta: np.ndarray
    state: RemlState
    gradient: np.ndarray
    hessian: np.ndarray
    newton_decrement: float
    iterations: int
    optimizer_message: str

    @property
    def sigma(self) -> np.ndarray:
        return np.asarray(self.state.sigma[0])

    @property
    def reml_loglik(self) -> float:
        return -0.5 * float(self.state.m2loglik[0])


@dataclass(frozen=True)
class Inference:
    """Estimate, standard error and denominator df of linear combinations L beta."""

    estimate: np.ndarray
    std_error: np.ndarray
    df: np.ndarray


@dataclass
class MmrmFit:
    """Typed MMRM fit: design, pattern sums, the accepted structure and the rejected ones."""

    design: MmrmDesign
    data: PatternData
    result: StructureFit
    rejected: list[tuple[str, str]]
    ddf: str
    alpha: float
    _kr: KenwardRoger | None = field(default=None, repr=False)

    @property
    def beta(self) -> np.ndarray:
        return np.asarray(self.result.state.beta[0])

    @property
    def vcov(self) -> np.ndarray:
        """Model-based covariance (X' Sigma^-1 X)^-1 of the fixed effects (nlme's vcov)."""
        return np.asarray(self.result.state.xtwx_inv[0])

    @property
    def sigma(self) -> np.ndarray:
        return self.result.sigma

    @property
    def cov_theta(self) -> np.ndarray:
        """A = 2 H^-1: covariance of the covariance parameters (observed REML information)."""
        return 2.0 * np.linalg.inv(self.result.hessian)

    def satterthwaite(self, rows: np.ndarray) -> Inference:
        """L beta with model-based SE and Satterthwaite df for each row of ``rows`` (n, p)."""
        rows = np.atleast_2d(rows)
        variance = np.einsum("np,pq,nq->n", rows, self.vcov, rows)
        grad_sigma = self.data.quadratic_form_gradient(self.result.state, rows)
        jac = self.result.structure.jacobian(self.result.theta)
        grad = grad_sigma.reshape(len(rows), -1) @ jac.reshape(len(jac), -1).T
        df = satterthwaite_df(variance, grad, self.cov_theta)
        return Inference(rows @ self.beta, np.sqrt(variance), df)

    def kenward_roger(self, rows: np.ndarray) -> Inference:
        """L beta with the Kenward-Roger adjusted SE and df for each row of ``rows``."""
        kr = self._kenward_roger_terms()
        rows = np.atleast_2d(rows)
        pairs = [kr.contrast(r) for r in rows]
        variance = np.array([v for v, _ in pairs])
        return Inference(rows @ self.beta, np.sqrt(variance), np.array([d for _, d in pairs]))

    def inference(self, rows: np.ndarray) -> Inference:
        """The configured method (``satterthwaite`` or ``kenward_roger``)."""
        return self.kenward_roger(rows) if self.ddf == "kenward_roger" else self.satterthwaite(rows)

    def _kenward_roger_terms(self) -> KenwardRoger:
        if self._kr is not None:
            return self._kr
        structure, theta = self.result.structure, self.result.theta
        jac = structure.jacobian(theta)
        cov_theta = self.cov_theta
        if structure.name == "unstructured":
            # Use the unique elements of Sigma as parameters: Sigma is linear in them, so the
            # second-derivative term R_ij of KR vanishes exactly.
            t = structure.n_visits
            rows, cols = np.triu_indices(t)
            to_elements = jac[:, rows, cols].T
            cov_theta = to_elements @ cov_theta @ to_elements.T
            jac = np.zeros((len(rows), t, t))
            jac[np.arange(len(rows)), rows, cols] = 1.0
            jac[np.arange(len(rows)), cols, rows] = 1.0
        n_par = len(jac)
        w = self.result.state.w_padded[:1]
        w_d = w @ (jac[:, None] * self.data.pair_mask[None])  # W_P Sigma_i,P
        p_mats = self.data.contract_xx(-(w_d @ w))
        q_pad = w_d[:, None] @ w_d[None, :] @ w[None]
        q_mats = self.data.contract_xx(q_pad.reshape(n_par * n_par, *q_pad.shape[2:]))
        q_mats = q_mats.reshape(n_par, n_par, *p_mats.shape[1:])
        self._kr = kenward_roger(self.vcov, p_mats, q_mats, cov_theta)
        return self._kr


def _is_positive_definite(matrix: np.ndarray) -> bool:
    eig = np.linalg.eigvalsh(0.5 * (matrix + matrix.T))
    return bool(eig[-1] > 0 and eig[0] > PD_RELATIVE_TOL * eig[-1])


def _moment_sigma(design: MmrmDesign, data: PatternData) -> np.ndarray:
    """Pairwise covariance of OLS residuals by visit, made positive definite (a start value)."""
    t = data.n_visits
    ols = data.evaluate(np.eye(t)[None])
    resid = design.y - design.x @ ols.beta[0]
    wide = np.zeros((design.n_subjects, t))
    seen = np.zeros((design.n_subjects, t))
    wide[design.subject, design.visit] = resid
    seen[design.subject, design.visit] = 1.0
    pairs = np.maximum(seen.T @ seen, 1.0)
    sigma0 = (wide.T @ wide) / pairs
    eig, vec = np.linalg.eigh(sigma0)
    floor = 1e-2 * max(float(eig[-1]), 1e-8)
    return np.asarray((vec * np.maximum(eig, floor)) @ vec.T)


def _fit_structure(
    data: PatternData, structure: CovarianceStructure, sigma0: np.ndarray, max_iter: int
) -> StructureFit | str:
    """Fit one structure; a converged :class:`StructureFit`, or the reason it failed."""
    q = structure.n_params

    def batch(thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-2 l_R and its gradient at a batch of parameter vectors (B, q)."""
        state = data.evaluate(structure.sigma(thetas))
        return state.m2loglik, structure.chain_gradient(thetas, data.gradient_sigma(state))

    def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            values, grads = batch(theta[None])
        except np.linalg.LinAlgError:
            return np.inf, np.zeros(q)
        return float(values[0]), grads[0]

    def hessian(theta: np.ndarray) -> np.ndarray:
        """Central differences of the analytic gradient, all 2q points in one batch."""
        steps = HESSIAN_STEP * np.eye(q)
        _, grads = batch(np.concatenate([theta + steps, theta - steps]))
        h = (grads[:q] - grads[q:]) / (2.0 * HESSIAN_STEP)
        return 0.5 * (h + h.T)

    opt = optimize.minimize(
        value_and_gradient,
        structure.start(sigma0),
        jac=True,
        method="BFGS",
        options={"maxiter": max_iter, "gtol": 1e-3},
    )
    theta, iterations = np.asarray(opt.x), int(opt.nit)
    message = str(opt.message)
    for _ in range(MAX_NEWTON_STEPS):
        value, grad = value_and_gradient(theta)
        if not np.isfinite(value):
            return f"optimiser failed ({message}): REML criterion not finite at its end point"
        try:
            h = hessian(theta)
        except np.linalg.LinAlgError:
            return f"REML criterion not defined near the optimiser's end point ({message})"
        if not _is_positive_definite(h):
            return (
                f"Hessian of the REML criterion not positive definite "
                f"(eigenvalues {np.linalg.eigvalsh(h)[:2].round(10).tolist()} ...; "
                f"optimiser: {message})"
            )
        step = np.linalg.solve(h, grad)
        decrement = float(grad @ step)
        if decrement < NEWTON_DECREMENT_TOL and float(np.max(np.abs(grad))) < GRADIENT_TOL:
            sigma = structure.sigma(theta)
            if not _is_positive_definite(sigma):
                return "fitted covariance matrix not positive definite"
            state = data.evaluate(sigma[None])
            return StructureFit(structure, theta, state, grad, h, decrement, iterations, message)
        length = 1.0
        while length > 1e-6 and not value_and_gradient(theta - length * step)[0] <= value:
            length /= 2.0
        if length <= 1e-6:
            break
        theta = theta - length * step
        iterations += 1
    return f"optimiser failed ({message}); Newton refinement did not reach a stationary point"


def fit_mmrm_model(
    frame: pl.DataFrame,
    study: Study,
    *,
    structures: Sequence[str] | None = None,
    ddf: str | None = None,
    max_iter: int = 1000,
) -> MmrmFit:
    """Fit the MMRM to an ``analysis_long`` frame; the typed fit (see :func:`fit_mmrm`).

    ``structures`` overrides the configured list (covariance, then fallbacks) and ``ddf``
    the configured df method (``satterthwaite`` or ``kenward_roger``).
    """
    config = study.models.mmrm
    names = list(structures or config.structures)
    ddf = ddf or config.ddf
    if ddf not in DDF_METHODS:
        raise ValueError(f"unknown ddf method {ddf!r}; known: {DDF_METHODS}")
    design = build_mmrm_design(frame, study)
    alpha = study.alpha
    return fit_design(design, names, ddf=ddf, alpha=alpha, max_iter=max_iter)


def fit_design(
    design: MmrmDesign,
    structures: Sequence[str],
    *,
    ddf: str = "satterthwaite",
    alpha: float = 0.05,
    max_iter: int = 1000,
) -> MmrmFit:
    """Fit the MMRM to a prepared design, trying ``structures`` in order (see module doc)."""
    t = len(design.visits)
    data = PatternData(design.x, design.y, design.subject, design.visit, t)
    xtx = data.xtx()
    scale = np.sqrt(np.diag(xtx))
    if np.any(scale == 0) or not _is_positive_definite(xtx / np.outer(scale, scale)):
        raise ValueError(
            "the MMRM model matrix is rank deficient: some arm x visit cell or factor level has "
            "no data"
        )
    sigma0 = _moment_sigma(design, data)
    rejected: list[tuple[str, str]] = []
    for name in structures:
        outcome = _fit_structure(data, CovarianceStructure(name, t), sigma0, max_iter)
        if isinstance(outcome, StructureFit):
            return MmrmFit(design, data, outcome, rejected, ddf, alpha)
        rejected.append((name, outcome))
    raise CovarianceFitError(
        "no covariance structure could be fitted: "
        + "; ".join(f"{n}: {why}" for n, why in rejected)
    )


def _t_columns(inf: Inference, alpha: float) -> dict[str, np.ndarray]:
    stat = inf.estimate / inf.std_error
    crit = stats.t.ppf(1.0 - alpha / 2.0, inf.df)
    return {
        "estimate": inf.estimate,
        "std_error": inf.std_error,
        "df": inf.df,
        "statistic": stat,
        "p_value": 2.0 * stats.t.sf(np.abs(stat), inf.df),
        "ci_low": inf.estimate - crit * inf.std_error,
        "ci_high": inf.estimate + crit * inf.std_error,
    }


def lsmeans_table(fit: MmrmFit) -> pl.DataFrame:
    """LS mean change per arm and visit (emmeans defaults), with CI and percent reduction."""
    d = fit.design
    keys = [(v, a) for v in d.visits for a in d.arms]
    inf = fit.inference(np.array([d.lsmean_vector(a, v) for v, a in keys]))
    cols = _t_columns(inf, fit.alpha)
    return pl.DataFrame(
        {
            "visit": [v for v, _ in keys],
            "arm": [a for _, a in keys],
            **cols,
            "percent_reduction": 100.0 * (1.0 - np.exp(cols["estimate"])),
            "percent_reduction_ci_low": 100.0 * (1.0 - np.exp(cols["ci_high"])),
            "percent_reduction_ci_high": 100.0 * (1.0 - np.exp(cols["ci_low"])),
            "logbase": np.full(len(keys), d.logbase_mean),
        }
    )


def contrasts_table(fit: MmrmFit) -> pl.DataFrame:
    """Each arm minus the reference arm at every visit, with the ratio of geometric means."""
    d = fit.design
    keys = [(v, a) for v in d.visits for a in d.arms[1:]]
    rows = np.array([d.lsmean_vector(a, v) - d.lsmean_vector(d.arms[0], v) for v, a in keys])
    cols = _t_columns(fit.inference(rows), fit.alpha)
    return pl.DataFrame(
        {
            "visit": [v for v, _ in keys],
            "contrast": [f"{a}-{d.arms[0]}" for _, a in keys],
            **cols,
            "ratio_geometric_means": np.exp(cols["estimate"]),
            "ratio_ci_low": np.exp(cols["ci_low"]),
            "ratio_ci_high": np.exp(cols["ci_high"]),
        }
    )


def covariance_table(fit: MmrmFit) -> pl.DataFrame:
    """Fitted Sigma as a long table (row visit, column visit, covariance, correlation)."""
    visits = fit.design.visits
    sigma = fit.sigma
    sd = np.sqrt(np.diag(sigma))
    corr = sigma / np.outer(sd, sd)
    t = len(visits)
    return pl.DataFrame(
        {
            "visit_row": [visits[j] for j in range(t) for _ in range(t)],
            "visit_col": [visits[k] for _ in range(t) for k in range(t)],
            "covariance": sigma.ravel(),
            "correlation": corr.ravel(),
        }
    )


def fit_summary(fit: MmrmFit) -> dict[str, object]:
    """The one-row fit summary of :class:`ModelResult` (matrices as JSON strings)."""
    visits = fit.design.visits
    sd = np.sqrt(np.diag(fit.sigma))
    corr = fit.sigma / np.outer(sd, sd)
    summary: dict[str, object] = {
        "n_subjects": fit.design.n_subjects,
        "n_observations": fit.design.n_obs,
        "n_missingness_patterns": fit.data.n_patterns,
        "n_fixed_effects": len(fit.design.terms),
        "n_covariance_parameters": fit.result.structure.n_params,
        "reml_loglik": fit.result.reml_loglik,
        "covariance_structure": fit.result.structure.name,
        "structures_rejected": json.dumps(dict(fit.rejected)),
        "converged": True,
        "iterations": fit.result.iterations,
        "gradient_norm": float(np.linalg.norm(fit.result.gradient)),
        "newton_decrement": fit.result.newton_decrement,
        "optimizer_message": fit.result.optimizer_message,
        "ddf_method": fit.ddf,
        "logbase_mean": fit.design.logbase_mean,
        "sd_by_visit": json.dumps(dict(zip(visits, sd.tolist(), strict=True))),
        "correlation_matrix": json.dumps(corr.tolist()),
        "covariance_matrix": json.dumps(fit.sigma.tolist()),
        "matrix_order": json.dumps(visits),
    }
    summary.update({f"sd_{v}": float(s) for v, s in zip(visits, sd, strict=True)})
    return summary


def fit_mmrm(
    frame: pl.DataFrame,
    study: Study,
    *,
    structures: Sequence[str] | None = None,
    ddf: str | None = None,
    name: str = MODEL_NAME,
) -> ModelResult:
    """Primary MMRM as a :class:`ModelResult`.

    ``estimates``: fixed effects (R term names) with model-based SE (KR-adjusted when
    ``ddf="kenward_roger"``), df, t, p and CI; ``tables``: ``lsmeans``, ``contrasts``,
    ``covariance``; ``notes``: the covariance structure used and any fallback taken.
    """
    fit = fit_mmrm_model(frame, study, structures=structures, ddf=ddf)
    d = fit.design
    fixed = _t_columns(fit.inference(np.eye(len(d.terms))), fit.alpha)
    estimates = pl.DataFrame({"term": d.terms, **fixed})
    notes = [f"Within-subject covariance: {fit.result.structure.name.replace('_', ' ')}."]
    notes += [
        f"Fallback taken: {n.replace('_', ' ')} was rejected ({why})." for n, why in fit.rejected
    ]
    notes.append(
        f"LS means at logbase = {d.logbase_mean:.5f} (mean over analysed rows), equal weights "
        f"over centre and stratum levels; df: {fit.ddf.replace('_', '-')}."
    )
    return ModelResult(
        name=name,
        estimates=estimates,
        fit=fit_summary(fit),
        tables={
            "lsmeans": lsmeans_table(fit),
            "contrasts": contrasts_table(fit),
            "covariance": covariance_table(fit),
        },
        notes=notes,
    )
