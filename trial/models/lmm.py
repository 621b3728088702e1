"""Sensitivity 1 (SAP section 7): linear mixed model with a random intercept and a random
slope on nominal week per subject.

    chg ~ arm * visit + logbase + centre + stratum + (1 + week | subject),  REML

Two engines give the same fit:

- ``engine="own"`` (default): :class:`trial.models.reml_patterns.PatternReml`, the profiled
  REML criterion evaluated on per-pattern sufficient statistics (a subject's marginal
  covariance depends only on which visits it has);
- ``engine="statsmodels"``: ``MixedLM(...).fit(reml=True, method="lbfgs")``.

Both report fixed-effect SEs from the conditional ``s2 (X'W^-1X)^-1`` at the REML optimum
(lme4's ``vcov``), not statsmodels' ``bse_fe`` (which inverts the joint Hessian and differs
by up to 1.4 %). Time enters the random part as ``week / time_scale`` (default 8): with weeks
up to 12 the slope variance is ~1/1000 of the intercept variance, and on that scale
statsmodels flags a spurious "MLE may be on the boundary"; rescaling only reparametrises the
slope, so estimates are identical, and the variance components are reported per week.
Any warning statsmodels still raises is recorded in the notes (never silenced).

LS means and contrasts use the MMRM's emmeans grid: equal weights over centre and stratum,
``logbase`` at its mean over the analysed rows. Wald tests use the normal reference
(``df`` null), as lme4 reports no denominator df.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import polars as pl

from study import Study
from trial.models.reml_patterns import PatternReml, RemlFit
from trial.models.result import ModelResult
from trial.models.tidy import (
    Factor,
    arm_comparisons,
    is_blinded,
    not_fitted_blinded,
    tidy_estimates,
    treatment_design,
)

NAME = "lmm_sensitivity1"
STRUCTURE = "random intercept + random slope on nominal week per subject (unstructured 2x2 G)"
Engine = Literal["own", "statsmodels"]
BOUNDARY_EIGEN = 1e-8
"""Smallest eigenvalue of G / s2 above which a boundary warning is a false alarm."""


def lmm_terms(study: Study) -> tuple[list[Factor | str], list[tuple[str, str]]]:
    """Main effects (formula order) and interactions of
    ``arm*visit + logbase + centre + stratum``."""
    main: list[Factor | str] = [
        Factor("arm", study.arm_codes),
        Factor("visit", study.model_visits),
        "logbase",
        Factor("centre", study.centres),
        Factor("stratum", study.stratum_codes),
    ]
    return main, [("arm", "visit")]


def _lambda(theta: np.ndarray) -> np.ndarray:
    """lme4's relative Cholesky factor of G / s2: [[t0, 0], [t1, t2]]."""
    return np.array([[theta[0], 0.0], [theta[1], theta[2]]])


def lmm_engine(
    frame: pl.DataFrame, study: Study, time_scale: float
) -> tuple[PatternReml, list[str], np.ndarray]:
    """The pattern REML engine for sensitivity 1 on model rows, with the fixed-effect names and
    the per-visit random-effects design ``[1, week / time_scale]``."""
    main, interactions = lmm_terms(study)
    design = treatment_design(frame, main, interactions)
    visits = study.model_visits
    slot = (
        frame.get_column("visit")
        .cast(pl.String)
        .replace_strict(visits, list(range(len(visits))), return_dtype=pl.Int64)
    )
    weeks = np.array([float(study.visit(v).week or 0) for v in visits]) / time_scale
    z_full = np.column_stack([np.ones(len(visits)), weeks])
    engine = PatternReml(
        y=frame.get_column("chg").to_numpy().astype(float),
        x=design.matrix,
        subject=frame.get_column("subject").to_numpy(),
        slot=slot.to_numpy(),
        z_full=z_full,
        lam=_lambda,
    )
    return engine, design.names, z_full


def _fit_statsmodels(
    frame: pl.DataFrame, engine: PatternReml, x: np.ndarray, z_full: np.ndarray
) -> tuple[RemlFit, list[str]]:
    """MixedLM fit; conditional SEs from its G and s2 through the pattern engine."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    visits_slot = frame.get_column("_slot").to_numpy()
    model = MixedLM(
        endog=frame.get_column("chg").to_numpy().astype(float),
        exog=x,
        groups=frame.get_column("subject").to_numpy(),
        exog_re=z_full[visits_slot],
    )
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(reml=True, method="lbfgs")
    scale = float(res.scale)
    g_rel = np.asarray(res.cov_re, dtype=float) / scale
    min_eig = float(np.linalg.eigvalsh(g_rel).min())
    for w in caught:
        note = f"statsmodels warning recorded ({w.category.__name__}): {w.message}"
        if "boundary" in str(w.message) and min_eig > BOUNDARY_EIGEN:
            note += (
                f" - judged a false alarm: the fitted G/s2 is positive definite (smallest "
                f"eigenvalue {min_eig:.2e}); rescaling time removes it with identical estimates"
            )
        notes.append(note)
    try:
        chol = np.linalg.cholesky(g_rel)
    except np.linalg.LinAlgError:
        chol = np.diag(np.sqrt(np.clip(np.diag(g_rel), 0.0, None)))
        notes.append("statsmodels G is singular; conditional SEs use its diagonal")
    theta = np.array([chol[0, 0], chol[1, 0], chol[1, 1]])
    cond = engine.conditional(theta, sigma2=scale)
    fit = RemlFit(
        theta=theta,
        beta=np.asarray(res.fe_params, dtype=float),
        cov_beta=cond.cov_beta,
        sigma2=scale,
        g=np.asarray(res.cov_re, dtype=float),
        reml_loglik=float(res.llf),
        converged=bool(res.converged),
        message="statsmodels MixedLM lbfgs",
        n_evaluations=0,
    )
    return fit, notes


def fit_lmm(
    analysis_long: pl.DataFrame,
    study: Study,
    engine: Engine = "own",
    time_scale: float = 8.0,
) -> ModelResult:
    """Fit sensitivity 1 on ``analysis_long``.

    Reads ``subject, arm, centre, stratum, visit, logbase, chg`` (rows with a null ``chg`` are
    not model rows and are left out, said in notes); visits, their nominal weeks, arms,
    centres and strata come from ``study``. Blinded input (no ``arm``): not fitted.

    Returns estimates = fixed effects (R term names), tables ``lsmeans`` and ``contrasts``
    (per model visit) and ``variance_components``; fit holds the variance parameters per week.
    """
    if is_blinded(analysis_long):
        return not_fitted_blinded(NAME, covariance_structure=STRUCTURE)
    notes: list[str] = []
    n_null = analysis_long.get_column("chg").null_count()
    frame = analysis_long.filter(pl.col("chg").is_not_null())
    if n_null:
        notes.append(f"{n_null} rows with a missing chg are not model rows")
    visits = study.model_visits
    frame = frame.filter(pl.col("visit").is_in(visits)).with_columns(
        pl.col("visit")
        .cast(pl.String)
        .replace_strict(visits, list(range(len(visits))), return_dtype=pl.Int64)
        .alias("_slot")
    )
    pattern_engine, names, z_full = lmm_engine(frame, study, time_scale)
    if engine == "own":
        fit = pattern_engine.fit(
            np.array([1.0, 0.0, 1.0]), [(0.0, None), (None, None), (0.0, None)]
        )
        if not fit.converged:
            notes.append(f"own REML engine did not report convergence: {fit.message}")
    else:
        main, interactions = lmm_terms(study)
        x = treatment_design(frame, main, interactions).matrix
        fit, sm_notes = _fit_statsmodels(frame, pattern_engine, x, z_full)
        notes.extend(sm_notes)
    notes.append(
        f"time in the random part is week/{time_scale:g} (a reparametrisation: identical "
        "estimates); variance components are reported per week"
    )
    if engine == "statsmodels":
        notes.append("fixed-effect SEs are conditional (X'V^-1X)^-1, as lme4, not bse_fe")

    se = np.sqrt(np.diag(fit.cov_beta))
    estimates = tidy_estimates(names, fit.beta, se, None, study.confidence_level)
    d = np.diag([1.0, 1.0 / time_scale])
    g = d @ fit.g @ d
    sd_int, sd_week = np.sqrt(np.diag(g))
    corr = float(g[0, 1] / (sd_int * sd_week)) if sd_int > 0 and sd_week > 0 else float("nan")
    variance = {
        "var_intercept": float(g[0, 0]),
        "var_week": float(g[1, 1]),
        "cov_intercept_week": float(g[0, 1]),
        "sd_intercept": float(sd_int),
        "sd_week": float(sd_week),
        "corr_intercept_week": corr,
        "var_residual": fit.sigma2,
        "sd_residual": float(np.sqrt(fit.sigma2)),
    }
    logbase_mean = float(frame.get_column("logbase").mean())  # type: ignore[arg-type]
    main, interactions = lmm_terms(study)
    lsmeans, contrasts = arm_comparisons(
        fit.beta,
        fit.cov_beta,
        main,
        interactions,
        {"logbase": logbase_mean},
        study.arm_codes,
        visits,
        None,
        level=study.confidence_level,
    )
    fit_dict = {
        "n_subjects": pattern_engine.n_subjects,
        "n_observations": pattern_engine.n_obs,
        "reml_loglik": fit.reml_loglik,
        "reml_criterion": -2.0 * fit.reml_loglik,
        "covariance_structure": STRUCTURE,
        "converged": fit.converged,
        "engine": engine,
        "time_scale": time_scale,
        "logbase_mean": logbase_mean,
        "n_patterns": int(pattern_engine.patterns.shape[0]),
        "theta": [float(fit.theta[0]), *(float(t) / time_scale for t in fit.theta[1:])],
        **variance,
    }
    return ModelResult(
        name=NAME,
        estimates=estimates,
        fit=fit_dict,
        tables={
            "lsmeans": lsmeans,
            "contrasts": contrasts,
            "variance_components": pl.DataFrame(
                {"parameter": list(variance), "value": list(variance.values())}
            ),
        },
        notes=notes,
    )
