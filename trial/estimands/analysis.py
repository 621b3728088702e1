"""The estimands of the study configuration on ``analysis_long`` and ``adice`` (SAP section 11).

For each estimand:

- observed values post an ICE whose handling is ``set_missing`` (hypothetical strategy) are
  set missing: the outcome of the rows of ``analysis_long`` at or after the ICE's
  ``first_visit`` (schedule order);
- ``method: mmrm``: section 7's primary MMRM (:func:`trial.models.mmrm.fit_mmrm`) on the rows
  left, missing values handled by the likelihood under MAR. With no such rows removed this is
  the primary analysis exactly;
- otherwise reference-based imputation (:mod:`trial.rbi`): each subject with an ICE whose
  missing values are imputed under a reference-based strategy gets one ICE row, the earliest
  ``first_visit`` of those ICEs, with that strategy (a post-ICE1 missing value switches at the
  ICE1 visit); other missing values (intermittent, or post-ICE under MAR) are imputed under MAR.
  Imputation model: ``outcome ~ arm * visit`` plus the configured covariates, unstructured
  covariance, fitted as SAP section 11 says on every value that is neither missing nor
  post-rescue (post-rescue values are set missing first), so observed values after a
  discontinuation are in the fit (``RbiSpec.fit_post_ice``; rbmi's default leaves them out);
  analysis: ANCOVA per visit on the configured covariates.

Results are tidy: ``estimand, method, strategy, visit, parameter, contrast, estimate, se, lci,
uci, pvalue, df`` with ``parameter`` ``trt_<arm>`` (arm minus reference) or ``lsm_<arm>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from study import Estimand, Study
from trial.estimands.config import EstimandsConfig
from trial.models.mmrm import fit_mmrm
from trial.rbi import RbiFits, RbiResult, RbiSpec, fit_rbi

RESULT_SCHEMA = {
    "estimand": pl.String,
    "method": pl.String,
    "strategy": pl.String,
    "visit": pl.String,
    "parameter": pl.String,
    "contrast": pl.String,
    "estimate": pl.Float64,
    "se": pl.Float64,
    "lci": pl.Float64,
    "uci": pl.Float64,
    "pvalue": pl.Float64,
    "df": pl.Float64,
}
"""Columns of every estimand result table."""
MC_SE_FLOOR = 1e-9
"""Below this Monte-Carlo SE nothing was imputed: estimates must then agree to it."""


def _first_visits(adice: pl.DataFrame, ices: list[str]) -> pl.DataFrame:
    """``subject, first_visit_index``: the earliest affected model visit over ``ices``."""
    return (
        adice.filter(pl.col("ICE").is_in(ices) & pl.col("first_visit_index").is_not_null())
        .group_by("subject_id")
        .agg(pl.col("first_visit_index").min())
        .rename({"subject_id": "subject"})
    )


def estimand_data(
    analysis_long: pl.DataFrame, adice: pl.DataFrame, estimand: Estimand
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(data, ice)`` of one estimand: ``analysis_long`` with the outcome (``chg``) set missing
    at and after the first visit of each ICE its hypothetical strategy handles (the rows stay,
    so that a subject with no value left is still imputed), and the ICE table of
    :mod:`trial.rbi` (``subject, visit, strategy``: the first visit of the subject's earliest
    ICE imputed under the estimand's reference-based strategy; no rows when every ICE is
    handled under MAR)."""
    removed = _first_visits(adice, estimand.set_missing())
    data = (
        analysis_long.join(removed, on="subject", how="left")
        .with_columns(
            chg=pl.when(
                pl.col("first_visit_index").is_null()
                | (pl.col("visit_index") < pl.col("first_visit_index"))
            )
            .then(pl.col("chg"))
            .otherwise(None)
        )
        .drop("first_visit_index")
    )
    strategy = estimand.imputation
    imputed = [ice for ice, h in estimand.ices.items() if h.missing != "MAR"]
    visits = analysis_long.select("visit", "visit_index").unique()
    ice = (
        _first_visits(adice, imputed)
        .join(analysis_long.select("subject").unique(), on="subject", how="semi")
        .join(visits, left_on="first_visit_index", right_on="visit_index", how="inner")
        .select("subject", "visit", strategy=pl.lit(strategy))
        .sort("subject")
    )
    return data, ice


def observed(data: pl.DataFrame) -> pl.DataFrame:
    """The rows of an estimand's data with an outcome (the MMRM's input)."""
    return data.filter(pl.col("chg").is_not_null())


def rbi_spec(
    config: EstimandsConfig, study: Study, method: str, n_samples: int = 200, seed: int = 2013
) -> RbiSpec:
    """The imputation and analysis models of the configuration, on ``analysis_long``'s
    columns, with the study's visit order, reference arm and alpha; the imputation model is
    fitted on observed post-discontinuation values too (SAP section 11)."""
    return RbiSpec(
        subject="subject",
        visit="visit",
        group="arm",
        reference=study.reference_arm,
        outcome="chg",
        covariates=config.imputation_covariates,
        analysis_covariates=config.analysis_covariates,
        visits=study.model_visits,
        method=method,
        n_samples=n_samples,
        seed=seed,
        alpha=study.alpha,
        fit_post_ice=True,
    )


def contrast_label(parameter: pl.Expr, reference: str) -> pl.Expr:
    """``<arm>-<reference>`` of a ``trt_<arm>`` parameter, ``<arm>`` of ``lsm_<arm>``."""
    arm = parameter.str.split_exact("_", 1).struct.field("field_1")
    return (
        pl.when(parameter.str.starts_with("trt_"))
        .then(pl.format("{}-{}", arm, pl.lit(reference)))
        .otherwise(arm)
    )


def tidy_rbi(
    result: RbiResult, estimand: str, method: str, strategy: str, reference: str
) -> pl.DataFrame:
    """An engine result as a tidy estimand result table (:data:`RESULT_SCHEMA`)."""
    return result.pooled.select(
        pl.lit(estimand).alias("estimand"),
        pl.lit(method).alias("method"),
        pl.lit(strategy).alias("strategy"),
        "visit",
        "parameter",
        contrast_label(pl.col("parameter"), reference).alias("contrast"),
        "estimate",
        "se",
        "lci",
        "uci",
        "pvalue",
        "df",
    ).cast(RESULT_SCHEMA)  # type: ignore[arg-type]


def mmrm_estimand(data: pl.DataFrame, estimand: Estimand, study: Study) -> pl.DataFrame:
    """Section 7's primary MMRM on an estimand's data as a tidy result table."""
    fit = fit_mmrm(data, study, name=f"estimand_{estimand.id}")
    common = [pl.lit(estimand.id).alias("estimand"), pl.lit("mmrm").alias("method")]
    columns = [
        pl.col("estimate"),
        pl.col("std_error").alias("se"),
        pl.col("ci_low").alias("lci"),
        pl.col("ci_high").alias("uci"),
        pl.col("p_value").alias("pvalue"),
        pl.col("df"),
    ]
    contrasts = fit.tables["contrasts"].select(
        *common,
        pl.lit("MAR").alias("strategy"),
        "visit",
        pl.format("trt_{}", pl.col("contrast").str.split("-").list.first()).alias("parameter"),
        "contrast",
        *columns,
    )
    lsmeans = fit.tables["lsmeans"].select(
        *common,
        pl.lit("MAR").alias("strategy"),
        "visit",
        pl.format("lsm_{}", pl.col("arm")).alias("parameter"),
        pl.col("arm").alias("contrast"),
        *columns,
    )
    return pl.concat([contrasts, lsmeans]).cast(RESULT_SCHEMA)  # type: ignore[arg-type]


def _population(populations: Mapping[str, pl.DataFrame], estimand: Estimand) -> pl.DataFrame:
    if estimand.population not in populations:
        raise ValueError(
            f"estimand {estimand.id}: population {estimand.population} is not one of "
            f"{', '.join(populations)}"
        )
    return populations[estimand.population]


def estimand_fits(
    populations: Mapping[str, pl.DataFrame],
    adice: pl.DataFrame,
    estimand: Estimand,
    config: EstimandsConfig,
    study: Study,
    method: str,
    n_samples: int = 200,
    seed: int = 2013,
    reuse: Sequence[RbiFits] = (),
) -> RbiFits:
    """The imputation model of one estimand fitted by ``method`` (the parameter draws of the
    first of ``reuse`` fitted on the same rows are taken instead of drawing them again: with
    post-ICE values in the fit, estimands that differ only in their reference-based strategy
    share them; a check by another method on the same rows takes over the full-data fit)."""
    data, ice = estimand_data(_population(populations, estimand), adice, estimand)
    spec = rbi_spec(config, study, method, n_samples=n_samples, seed=seed)
    return fit_rbi(data, ice, spec, reuse=reuse)


def estimand_rbi(
    populations: Mapping[str, pl.DataFrame],
    adice: pl.DataFrame,
    estimand: Estimand,
    config: EstimandsConfig,
    study: Study,
    method: str,
    n_samples: int = 200,
    seed: int = 2013,
    reuse: Sequence[RbiFits] = (),
) -> RbiResult:
    """The reference-based imputation of one estimand by ``method`` (engine result; what of
    ``reuse`` applies is taken over: :func:`trial.rbi.fit_rbi`)."""
    fits = estimand_fits(
        populations, adice, estimand, config, study, method, n_samples, seed, reuse
    )
    return fits.analyse()


def fit_estimand(
    populations: Mapping[str, pl.DataFrame],
    adice: pl.DataFrame,
    estimand: Estimand,
    config: EstimandsConfig,
    study: Study,
    reuse: Sequence[RbiFits] = (),
) -> tuple[pl.DataFrame, RbiFits | None]:
    """:func:`run_estimand`'s table and the estimand's imputation-model fits (None for the
    MMRM), reusing the parameter draws of ``reuse`` where they apply (:func:`estimand_fits`)."""
    if estimand.method == "mmrm":
        data, _ = estimand_data(_population(populations, estimand), adice, estimand)
        return mmrm_estimand(observed(data), estimand, study), None
    fits = estimand_fits(populations, adice, estimand, config, study, estimand.method, reuse=reuse)
    table = tidy_rbi(
        fits.analyse(), estimand.id, estimand.method, estimand.imputation, study.reference_arm
    )
    return table, fits


def run_estimand(
    populations: Mapping[str, pl.DataFrame],
    adice: pl.DataFrame,
    estimand: Estimand,
    config: EstimandsConfig,
    study: Study,
) -> pl.DataFrame:
    """One estimand's result at every model visit by its own method (tidy).
    ``populations``: analysis set name -> its ``analysis_long`` (unblinded)."""
    return fit_estimand(populations, adice, estimand, config, study)[0]


def monte_carlo_agreement(
    primary: pl.DataFrame, check: RbiResult, z_limit: float = 3.0
) -> pl.DataFrame:
    """Compare a deterministic result with approximate Bayesian MI per visit and parameter.

    Monte-Carlo SE of the MI point estimate: ``sqrt(B / M)`` with ``B`` the between-imputation
    variance of the M imputation estimates; ``z`` = difference / that SE; ``agree`` when
    ``|z| <= z_limit``. Where nothing is imputed (every imputation gives the same estimate:
    Monte-Carlo SE below :data:`MC_SE_FLOOR`) ``z`` is null and they must agree to that
    floor."""
    mc = check.samples.group_by("visit", "parameter").agg(
        mi_estimate=pl.col("estimate").mean(),
        mc_se=(pl.col("estimate").var(ddof=1) / pl.len()).sqrt(),
        n_imputations=pl.len().cast(pl.Int64),
    )
    pooled = check.pooled.select("visit", "parameter", mi_se=pl.col("se"), mi_df=pl.col("df"))
    return (
        primary.select("estimand", "visit", "parameter", "contrast", "estimate", "se")
        .join(mc, on=["visit", "parameter"], how="inner")
        .join(pooled, on=["visit", "parameter"], how="inner")
        .with_columns(difference=pl.col("mi_estimate") - pl.col("estimate"))
        .with_columns(
            z=pl.when(pl.col("mc_se") > MC_SE_FLOOR)
            .then(pl.col("difference") / pl.col("mc_se"))
            .otherwise(None)
        )
        .with_columns(
            agree=pl.when(pl.col("z").is_null())
            .then(pl.col("difference").abs() <= MC_SE_FLOOR)
            .otherwise(pl.col("z").abs() <= z_limit)
        )
    )
