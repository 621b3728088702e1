"""Sensitivity 4 (SAP section 7): complete-case ANCOVA at the primary visit.

    chg ~ arm + logbase + centre + stratum      (OLS, rows observed at the primary visit)

Contrasts of each arm against the reference arm (the study's first arm) use t with the
residual df; LS means use the emmeans grid of the MMRM (equal weights over centre and
stratum, ``logbase`` at its mean over the analysed rows).

:func:`fit_ols` and :func:`present_factors` are the OLS core reused by the subgroup,
plantar and durability analyses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from study import Study
from trial.models.result import ModelResult
from trial.models.tidy import (
    Factor,
    arm_comparisons,
    is_blinded,
    not_fitted_blinded,
    tidy_estimates,
    treatment_design,
)

NAME = "ancova_sensitivity4"


@dataclass(frozen=True)
class OlsFit:
    """OLS estimates, their covariance ``s2 (X'X)^-1`` and the residual df."""

    names: list[str]
    beta: np.ndarray
    cov: np.ndarray
    sigma2: float
    df_resid: int
    n: int
    rss: float


def present_factors(frame: pl.DataFrame, main: Sequence[Factor | str]) -> list[Factor | str]:
    """``main`` with each factor's levels cut to those present, and single-level factors dropped.

    Level order (and so the reference level) stays the configuration's. Used where a subset
    (a subgroup, the plantar subjects) lacks some centre or stratum.
    """
    out: list[Factor | str] = []
    for term in main:
        if isinstance(term, Factor):
            present = set(frame.get_column(term.column).cast(pl.String).unique().to_list())
            levels = [lev for lev in term.levels if lev in present]
            if len(levels) >= 2:
                out.append(Factor(term.column, levels))
        else:
            out.append(term)
    return out


def fit_ols(
    frame: pl.DataFrame,
    main: Sequence[Factor | str],
    response: str,
    interactions: Sequence[tuple[str, str]] = (),
) -> OlsFit:
    """OLS of ``response`` on the treatment-coded terms; a rank-deficient design is an error."""
    design = treatment_design(frame, main, interactions)
    x = design.matrix
    y = frame.get_column(response).cast(pl.Float64).to_numpy()
    n, p = x.shape
    beta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    if rank < p:
        raise np.linalg.LinAlgError(
            f"design of {response} ~ {design.names} is rank deficient ({rank} < {p})"
        )
    if n <= p:
        raise np.linalg.LinAlgError(f"{n} rows cannot estimate {p} coefficients")
    resid = y - x @ beta
    rss = float(resid @ resid)
    sigma2 = rss / (n - p)
    cov = sigma2 * np.linalg.inv(x.T @ x)
    return OlsFit(design.names, beta, cov, sigma2, n - p, n, rss)


def ancova_terms(study: Study, covariates: Sequence[str] = ("logbase",)) -> list[Factor | str]:
    """``arm + covariates + centre + stratum`` in formula order."""
    return [
        Factor("arm", study.arm_codes),
        *covariates,
        Factor("centre", study.centres),
        Factor("stratum", study.stratum_codes),
    ]


def ancova_result(
    frame: pl.DataFrame,
    study: Study,
    name: str,
    response: str = "chg",
    covariates: Sequence[str] = ("logbase",),
    visit: str | None = None,
) -> ModelResult:
    """Fit ``response ~ arm + covariates + centre + stratum`` on ``frame`` (one row per subject).

    Reads ``subject, arm, centre, stratum``, ``response`` and ``covariates``; rows with a null
    response are dropped and counted in notes (complete case). Factor levels absent from the
    data are left out of the design (said in notes).
    """
    if is_blinded(frame):
        return not_fitted_blinded(name, covariance_structure="none (OLS)")
    notes: list[str] = []
    n_missing = frame.get_column(response).null_count()
    data = frame.filter(pl.col(response).is_not_null())
    if n_missing:
        notes.append(f"complete case: {n_missing} subjects without {response} left out")
    full = ancova_terms(study, covariates)
    main = present_factors(data, full)
    dropped = [
        f.column for f in full if isinstance(f, Factor) and f.column != "arm" and f not in main
    ]
    if dropped:
        notes.append(f"factor levels absent from the data are not in the design: {dropped}")
    arm_factor = next((t for t in main if isinstance(t, Factor) and t.column == "arm"), None)
    if arm_factor is None or arm_factor.levels[0] != study.reference_arm:
        return ModelResult(
            name=name,
            estimates=tidy_estimates([], np.array([]), np.array([]), None),
            fit={
                "n_subjects": data.height,
                "covariance_structure": "none (OLS)",
                "converged": False,
            },
            notes=[*notes, "not fitted: the reference arm and another arm are needed"],
        )
    fit = fit_ols(data, main, response)
    level = study.confidence_level
    estimates = tidy_estimates(fit.names, fit.beta, np.sqrt(np.diag(fit.cov)), fit.df_resid, level)
    means = {c: float(data.get_column(c).mean()) for c in covariates}  # type: ignore[arg-type]
    lsmeans, contrasts = arm_comparisons(
        fit.beta, fit.cov, main, [], means, arm_factor.levels, [visit], float(fit.df_resid), level
    )
    n_by_arm = data.group_by("arm").len().rename({"len": "n"})
    lsmeans = lsmeans.join(n_by_arm, on="arm", how="left")
    fit_dict = {
        "n_subjects": data.height,
        "n_observations": data.height,
        "covariance_structure": "none (OLS)",
        "converged": True,
        "df_residual": fit.df_resid,
        "sigma": float(np.sqrt(fit.sigma2)),
        **{f"{c}_mean": v for c, v in means.items()},
    }
    return ModelResult(
        name=name,
        estimates=estimates,
        fit=fit_dict,
        tables={"lsmeans": lsmeans, "contrasts": contrasts},
        notes=notes,
    )


def fit_ancova(analysis_long: pl.DataFrame, study: Study, visit: str | None = None) -> ModelResult:
    """Sensitivity 4 on ``analysis_long`` at ``visit`` (default: the study's primary visit).

    Reads ``subject, arm, centre, stratum, visit, logbase, chg``. Subjects with no row at the
    visit are not analysed (complete case). Blinded input: not fitted.
    """
    visit = visit or study.primary_visit
    at_visit = analysis_long.filter(pl.col("visit") == visit)
    if at_visit.select(pl.col("subject").is_duplicated().any()).item():
        raise ValueError(f"a subject has two rows at {visit}")
    result = ancova_result(at_visit, study, NAME, visit=visit)
    if not is_blinded(at_visit):
        result.notes.append(f"complete-case ANCOVA at {visit}: subjects without a value left out")
    return result
