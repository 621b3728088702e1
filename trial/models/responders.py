"""Responder endpoints at the primary visit (SAP sections 5 and 7).

Two responder definitions, thresholds from the study's ``endpoints.responder``:

- ``hdss_responder``: HDSS improved by at least ``hdss_improvement_points`` from baseline
  (``adhdss.CHG <= -points``; HDSS runs 1-4, lower is better);
- ``sweat_responder``: the primary region's sweat rate reduced by at least ``sweat_reduction_pct``
  (``adsweat.PCHG <= -pct`` for the primary region's PARAMCD, analysable records only).

A FAS subject with no value at the primary visit counts as a non-responder.

Per endpoint and each arm against the reference arm:

- logistic regression ``responder ~ arm + centre + stratum`` (statsmodels ``Logit``, ML):
  odds ratio, Wald CI (coverage 1 - ``endpoints.alpha``), Wald p. When the ML fit shows
  separation (statsmodels' separation
  warning, no convergence, or non-finite / huge coefficients or SEs), the fallback is Firth's
  penalised likelihood (bias-reduced logistic regression, Wald CI from the penalised
  information); the notes and the ``method`` column say so;
- Cochran-Mantel-Haenszel by centre (the two arms only): Mantel-Haenszel common odds ratio
  with the Robins-Breslow-Greenland CI and the CMH chi-square (no continuity correction);
- responder share per arm beside the mean percent reduction of the rate per arm,
  ``100 (1 - exp(mean CHG))``: the literature's "81.2 %" is a share of responders, not a mean
  reduction, and the report shows both.

Blinded (no ``arm`` in ADSL): shares are pooled; the models are not fitted (note
``"not fitted: blinded run"``).
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from scipy import special

from study import Study
from trial.models.ancova import present_factors
from trial.models.result import ModelResult
from trial.models.tidy import (
    BLINDED_NOTE,
    Factor,
    empty_estimates,
    tidy_estimates,
    treatment_design,
)

NAME = "responders"
ENDPOINTS = ("hdss_responder", "sweat_responder")
MAX_ABS_COEF = 15.0
MAX_SE = 50.0


def derive_responders(
    adsl: pl.DataFrame,
    adhdss: pl.DataFrame,
    adsweat: pl.DataFrame,
    study: Study,
    population_flag: str = "FASFL",
) -> pl.DataFrame:
    """One row per subject of the population: responder flags at the primary visit.

    Reads ``adsl``: ``subject_id, centre_id, stratum, <population_flag>`` (+ ``arm``);
    ``adhdss``: ``subject_id, AVISIT, CHG``; ``adsweat``: ``subject_id, PARAMCD, AVISIT,
    CHG, PCHG`` (+ ``ANL01FL`` when present). Returns ``subject, [arm,] centre, stratum,
    hdss_chg, sweat_chg, hdss_responder, sweat_responder`` (missing value -> False).
    """
    points = float(study.endpoints.responder.hdss_improvement)
    pct = study.endpoints.responder.sweat_reduction_pct
    visit = study.primary_visit
    keep = ["subject_id", "centre_id", "stratum"] + (["arm"] if "arm" in adsl.columns else [])
    subjects = adsl.filter(pl.col(population_flag) == "Y").select(keep)
    hdss = adhdss.filter((pl.col("AVISIT") == visit) & pl.col("CHG").is_not_null()).select(
        "subject_id", pl.col("CHG").cast(pl.Float64).alias("hdss_chg")
    )
    sweat_rows = adsweat.filter(
        (pl.col("PARAMCD") == study.primary_region.paramcd)
        & (pl.col("AVISIT") == visit)
        & pl.col("CHG").is_not_null()
    )
    if "ANL01FL" in sweat_rows.columns:
        sweat_rows = sweat_rows.filter(pl.col("ANL01FL") == "Y")
    sweat = sweat_rows.select(
        "subject_id", pl.col("CHG").alias("sweat_chg"), pl.col("PCHG").alias("sweat_pchg")
    )
    for name, frame in (("adhdss", hdss), ("adsweat", sweat)):
        if frame.select(pl.col("subject_id").is_duplicated().any()).item():
            raise ValueError(f"{name}: a subject has two records at {visit}")
    return (
        subjects.join(hdss, on="subject_id", how="left")
        .join(sweat, on="subject_id", how="left")
        .with_columns(
            hdss_responder=(pl.col("hdss_chg") <= -points).fill_null(False),
            sweat_responder=(pl.col("sweat_pchg") <= -pct).fill_null(False),
        )
        .rename({"subject_id": "subject", "centre_id": "centre"})
        .sort("subject")
    )


def firth_logit(
    x: np.ndarray, y: np.ndarray, max_iter: int = 200, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Firth's bias-reduced logistic regression: ``(beta, cov, converged)``.

    Newton steps on the modified score ``X'(y - p + h (1/2 - p))`` (``h`` the hat values),
    halved while the penalised log-likelihood ``l(b) + 1/2 log|X'WX|`` decreases; ``cov`` is
    the inverse information at the optimum.
    """

    def penalised(beta: np.ndarray) -> float:
        eta = x @ beta
        w = special.expit(eta) * special.expit(-eta)
        loglik = float(y @ eta - np.logaddexp(0.0, eta).sum())
        return loglik + 0.5 * float(np.linalg.slogdet((x * w[:, None]).T @ x)[1])

    beta = np.zeros(x.shape[1])
    current = penalised(beta)
    for _ in range(max_iter):
        pr = special.expit(x @ beta)
        w = pr * (1.0 - pr)
        info_inv = np.linalg.inv((x * w[:, None]).T @ x)
        h = np.einsum("ij,jk,ik->i", x, info_inv, x) * w
        step = info_inv @ (x.T @ (y - pr + h * (0.5 - pr)))
        scale = 1.0
        while scale > 1e-6:
            trial = beta + scale * step
            value = penalised(trial)
            if value >= current - 1e-12:
                break
            scale /= 2.0
        beta, current = trial, value
        if np.max(np.abs(scale * step)) < tol:
            pr = special.expit(x @ beta)
            w = pr * (1.0 - pr)
            return beta, np.linalg.inv((x * w[:, None]).T @ x), True
    return beta, np.linalg.inv((x * w[:, None]).T @ x), False


def _logistic(
    frame: pl.DataFrame, endpoint: str, study: Study
) -> tuple[list[str], np.ndarray, np.ndarray, str, list[str]]:
    """ML logistic fit (Firth on separation): names, beta, cov, method, notes."""
    from statsmodels.discrete.discrete_model import Logit

    main = present_factors(
        frame,
        [
            Factor("arm", study.arm_codes),
            Factor("centre", study.centres),
            Factor("stratum", study.stratum_codes),
        ],
    )
    design = treatment_design(frame, main)
    y = frame.get_column(endpoint).cast(pl.Float64).to_numpy()
    notes: list[str] = []
    problem = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = Logit(y, design.matrix).fit(disp=0, maxiter=100, method="newton")
            beta = np.asarray(res.params, dtype=float)
            cov = np.asarray(res.cov_params(), dtype=float)
            converged = bool(res.mle_retvals["converged"])
        except (np.linalg.LinAlgError, ValueError) as err:
            problem = f"ML fit failed ({err})"
            beta, cov, converged = np.full(design.matrix.shape[1], np.nan), np.eye(1), False
    separation = [w for w in caught if "separation" in str(w.message).lower()]
    se = np.sqrt(np.abs(np.diag(cov))) if cov.shape[0] == beta.size else np.array([np.nan])
    if not problem:
        if separation:
            problem = f"statsmodels: {separation[0].message}"
        elif not converged:
            problem = "ML fit did not converge"
        elif not (np.all(np.isfinite(beta)) and np.all(np.isfinite(se))):
            problem = "non-finite ML estimates"
        elif np.max(np.abs(beta)) > MAX_ABS_COEF or np.max(se) > MAX_SE:
            problem = "ML estimates or SEs diverge (quasi-separation)"
    for w in caught:
        if w not in separation:
            notes.append(f"{endpoint}: statsmodels warning recorded: {w.message}")
    if not problem:
        return design.names, beta, cov, "logistic (ML)", notes
    beta, cov, ok = firth_logit(design.matrix, y)
    notes.append(
        f"{endpoint}: separation in the logistic model ({problem}); fallback: Firth "
        "penalised likelihood with Wald CI" + ("" if ok else " (did not converge)")
    )
    return design.names, beta, cov, "logistic (Firth)", notes


def _cmh(
    frame: pl.DataFrame, endpoint: str, arm: str, reference: str, alpha: float
) -> dict[str, object]:
    """CMH by centre of ``arm`` versus ``reference`` (strata missing either arm dropped)."""
    from statsmodels.stats.contingency_tables import StratifiedTable

    counts = (
        frame.filter(pl.col("arm").is_in([arm, reference]))
        .group_by("centre")
        .agg(
            a=(pl.col("arm") == arm).and_(pl.col(endpoint)).sum(),
            b=(pl.col("arm") == arm).and_(~pl.col(endpoint)).sum(),
            c=(pl.col("arm") == reference).and_(pl.col(endpoint)).sum(),
            d=(pl.col("arm") == reference).and_(~pl.col(endpoint)).sum(),
        )
        .filter((pl.col("a") + pl.col("b") > 0) & (pl.col("c") + pl.col("d") > 0))
        .sort("centre")
    )
    out: dict[str, object] = {
        "endpoint": endpoint,
        "contrast": f"{arm}-{reference}",
        "n_strata": counts.height,
    }
    tables = np.array(
        [[[r["a"], r["b"]], [r["c"], r["d"]]] for r in counts.iter_rows(named=True)], dtype=float
    )
    if counts.height == 0:
        return {**out, "mh_odds_ratio": None, "ci_low": None, "ci_high": None}
    st = StratifiedTable(np.moveaxis(tables, 0, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = st.oddsratio_pooled_confint(alpha=alpha)
        test = st.test_null_odds(correction=False)
    return {
        **out,
        "mh_odds_ratio": float(st.oddsratio_pooled),
        "ci_low": float(low),
        "ci_high": float(high),
        "cmh_statistic": float(test.statistic),
        "p_value": float(test.pvalue),
    }


CMH_SCHEMA = {
    "endpoint": pl.String,
    "contrast": pl.String,
    "n_strata": pl.Int64,
    "mh_odds_ratio": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "cmh_statistic": pl.Float64,
    "p_value": pl.Float64,
}


def responder_shares(responders: pl.DataFrame) -> pl.DataFrame:
    """Per endpoint and arm (``pooled`` when blinded): n, responders, share (%), and the mean
    percent reduction of the sweat rate ``100 (1 - exp(mean CHG))`` over observed values."""
    frame = (
        responders if "arm" in responders.columns else responders.with_columns(arm=pl.lit("pooled"))
    )
    parts = []
    for endpoint, chg in (("hdss_responder", "hdss_chg"), ("sweat_responder", "sweat_chg")):
        parts.append(
            frame.group_by("arm", maintain_order=True)
            .agg(
                n_subjects=pl.len(),
                n_responders=pl.col(endpoint).sum(),
                n_missing=pl.col(chg).null_count(),
                mean_chg=pl.col(chg).mean(),
            )
            .with_columns(
                pl.lit(endpoint).alias("endpoint"),
                (100.0 * pl.col("n_responders") / pl.col("n_subjects")).alias("responder_pct"),
                pl.when(pl.lit(endpoint == "sweat_responder"))
                .then(100.0 * (1.0 - pl.col("mean_chg").exp()))
                .otherwise(None)
                .alias("mean_percent_reduction"),
            )
        )
    return pl.concat(parts).select(
        "endpoint",
        "arm",
        "n_subjects",
        "n_responders",
        "n_missing",
        "responder_pct",
        "mean_chg",
        "mean_percent_reduction",
    )


def fit_responders(
    adsl: pl.DataFrame, adhdss: pl.DataFrame, adsweat: pl.DataFrame, study: Study
) -> ModelResult:
    """Both responder endpoints on the FAS at the primary visit.

    ``estimates``: log odds ratio per ``<endpoint>:<arm>-<reference>`` (logistic; z-based);
    tables ``odds_ratios`` (endpoint, contrast, odds_ratio, ci_low, ci_high, p_value, method),
    ``cmh``, ``shares`` and the per-subject ``responders``.
    """
    responders = derive_responders(adsl, adhdss, adsweat, study)
    shares = responder_shares(responders)
    if "arm" not in responders.columns:
        return ModelResult(
            name=NAME,
            estimates=empty_estimates(),
            fit={"n_subjects": responders.height, "converged": False, "blinded": True},
            tables={"shares": shares},
            notes=[BLINDED_NOTE, "shares are pooled over arms"],
        )
    ref = study.reference_arm
    notes: list[str] = []
    estimates = []
    or_rows = []
    cmh_rows = []
    for endpoint in ENDPOINTS:
        names, beta, cov, method, fit_notes = _logistic(responders, endpoint, study)
        notes.extend(fit_notes)
        idx = [i for i, n in enumerate(names) if n.startswith("arm")]
        labels = [f"{names[i].removeprefix('arm')}-{ref}" for i in idx]
        tidy = tidy_estimates(
            [f"{endpoint}:{lab}" for lab in labels],
            beta[idx],
            np.sqrt(np.diag(cov)[idx]),
            level=study.confidence_level,
        )
        estimates.append(tidy)
        or_rows.append(
            tidy.select(
                pl.lit(endpoint).alias("endpoint"),
                pl.Series("contrast", labels),
                pl.col("estimate").exp().alias("odds_ratio"),
                pl.col("ci_low").exp(),
                pl.col("ci_high").exp(),
                "p_value",
                pl.lit(method).alias("method"),
            )
        )
        for lab in labels:
            cmh_rows.append(_cmh(responders, endpoint, lab.split("-")[0], ref, study.alpha))
    notes.append(
        f"missing {study.primary_visit} value = non-responder; CMH stratified by centre, "
        "no continuity correction, Robins-Breslow-Greenland CI"
    )
    return ModelResult(
        name=NAME,
        estimates=pl.concat(estimates),
        fit={
            "n_subjects": responders.height,
            "n_observations": responders.height,
            "covariance_structure": "none (logistic: arm + centre + stratum)",
            "converged": True,
        },
        tables={
            "odds_ratios": pl.concat(or_rows),
            "cmh": pl.DataFrame(cmh_rows, schema=CMH_SCHEMA),
            "shares": shares,
            "responders": responders,
        },
        notes=notes,
    )
