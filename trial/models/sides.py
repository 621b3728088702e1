"""Sensitivity 3 (SAP section 7): paper sides as separate observations.

    CHG_side ~ arm * visit + logbase * visit + centre + stratum
               + (1 | subject) + (1 | subject:side),    REML

One row per subject, model visit and side (``adsweat_side``, primary region); ``logbase`` is
the region baseline (``BASE``). The fixed part is the primary MMRM's; the within-subject
correlation comes from a random intercept per subject and one per side within subject
(variance ``s2 t0^2`` and ``s2 t1^2``). Fitted with the pattern REML engine
(:mod:`trial.models.reml_patterns`): a subject's covariance depends only on which
visit x side cells it has. The tests check it against statsmodels ``MixedLM`` with
``vc_formula``. SEs are the conditional ``(X'V^-1X)^-1``; Wald tests use the normal reference.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from study import Study
from trial.models.reml_patterns import PatternReml
from trial.models.result import ModelResult
from trial.models.tidy import (
    Factor,
    arm_comparisons,
    is_blinded,
    not_fitted_blinded,
    tidy_estimates,
    treatment_design,
)

NAME = "sides_sensitivity3"
STRUCTURE = "random intercepts: subject, side within subject"


def side_terms(study: Study) -> tuple[list[Factor | str], list[tuple[str, str]]]:
    """``arm*visit + logbase*visit + centre + stratum`` in R's term order."""
    main: list[Factor | str] = [
        Factor("arm", study.arm_codes),
        Factor("visit", study.model_visits),
        "logbase",
        Factor("centre", study.centres),
        Factor("stratum", study.stratum_codes),
    ]
    return main, [("arm", "visit"), ("visit", "logbase")]


def sides_long(
    adsweat_side: pl.DataFrame, adsl: pl.DataFrame, study: Study, population_flag: str = "FASFL"
) -> pl.DataFrame:
    """Model rows: ``subject, [arm,] centre, stratum, visit, side, logbase, chg``.

    Reads ``adsweat_side``: ``subject_id, PARAMCD, AVISIT, side, BASE, CHG`` (primary
    region, model visits, non-null CHG) and ``adsl``: ``subject_id, centre_id, stratum,
    <population_flag>`` (+ ``arm``).
    """
    keep = ["subject_id", "centre_id", "stratum"] + (["arm"] if "arm" in adsl.columns else [])
    subjects = adsl.filter(pl.col(population_flag) == "Y").select(keep)
    rows = adsweat_side.filter(
        (pl.col("PARAMCD") == study.primary_region.paramcd)
        & pl.col("AVISIT").is_in(study.model_visits)
        & pl.col("CHG").is_not_null()
        & pl.col("BASE").is_not_null()
    )
    return (
        rows.join(subjects, on="subject_id", how="inner")
        .select(
            pl.col("subject_id").alias("subject"),
            *([pl.col("arm")] if "arm" in adsl.columns else []),
            pl.col("centre_id").alias("centre"),
            "stratum",
            pl.col("AVISIT").alias("visit"),
            "side",
            pl.col("BASE").alias("logbase"),
            pl.col("CHG").alias("chg"),
        )
        .sort("subject", "visit", "side")
    )


def _lambda(theta: np.ndarray) -> np.ndarray:
    return np.diag([theta[0], theta[1], theta[1]])


def fit_sides(frame: pl.DataFrame, study: Study) -> ModelResult:
    """Fit sensitivity 3 on :func:`sides_long` rows.

    Estimates: fixed effects (R term names); tables ``lsmeans`` and ``contrasts`` per model
    visit (emmeans grid, logbase at its mean over analysed rows); fit: variance components.
    """
    if is_blinded(frame):
        return not_fitted_blinded(NAME, covariance_structure=STRUCTURE)
    sides = study.sides
    visits = study.model_visits
    bad = frame.filter(~pl.col("side").is_in(sides))
    if bad.height:
        raise ValueError(f"sides {bad['side'].unique().to_list()} are not the study's {sides}")
    main, interactions = side_terms(study)
    design = treatment_design(frame, main, interactions)
    visit_idx = frame.get_column("visit").replace_strict(
        visits, list(range(len(visits))), return_dtype=pl.Int64
    )
    side_idx = frame.get_column("side").replace_strict(
        sides, list(range(len(sides))), return_dtype=pl.Int64
    )
    slot = (visit_idx * len(sides) + side_idx).to_numpy()
    z_full = np.column_stack(
        [np.ones(len(visits) * len(sides)), np.tile(np.eye(len(sides)), (len(visits), 1))]
    )
    if len(sides) != 2:
        raise ValueError("the side model expects two sides per region")
    engine = PatternReml(
        y=frame.get_column("chg").to_numpy().astype(float),
        x=design.matrix,
        subject=frame.get_column("subject").to_numpy(),
        slot=slot,
        z_full=z_full,
        lam=_lambda,
    )
    fit = engine.fit(np.array([1.0, 0.5]), [(0.0, None), (0.0, None)])
    notes = [] if fit.converged else [f"REML optimiser did not report convergence: {fit.message}"]
    logbase_mean = float(frame.get_column("logbase").mean())  # type: ignore[arg-type]
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
    variance = {
        "var_subject": float(fit.g[0, 0]),
        "var_side_within_subject": float(fit.g[1, 1]),
        "var_residual": fit.sigma2,
        "sd_subject": float(np.sqrt(fit.g[0, 0])),
        "sd_side_within_subject": float(np.sqrt(fit.g[1, 1])),
        "sd_residual": float(np.sqrt(fit.sigma2)),
    }
    if fit.theta[1] < 1e-4:
        notes.append("the side-within-subject variance is estimated at (or near) zero")
    notes.append(
        "fixed part as the primary MMRM (arm*visit + logbase*visit + centre + stratum); "
        "conditional SEs, normal reference"
    )
    return ModelResult(
        name=NAME,
        estimates=tidy_estimates(
            design.names,
            fit.beta,
            np.sqrt(np.diag(fit.cov_beta)),
            level=study.confidence_level,
        ),
        fit={
            "n_subjects": engine.n_subjects,
            "n_observations": engine.n_obs,
            "reml_loglik": fit.reml_loglik,
            "covariance_structure": STRUCTURE,
            "converged": fit.converged,
            "logbase_mean": logbase_mean,
            **variance,
        },
        tables={"lsmeans": lsmeans, "contrasts": contrasts},
        notes=notes,
    )
