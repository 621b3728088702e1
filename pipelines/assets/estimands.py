"""Estimands group (SAP section 11): the estimands declared in the study file and the
tipping-point analysis, as model results under ``OUT/models/``. Blinded runs fit nothing that
needs arms and say so in the results' notes (the estimands table and pooled ICE counts still
come out)."""

import dagster as dg
import polars as pl

from pipelines.asset_step import pipeline_asset
from pipelines.resources import TrialSettings
from trial.estimands.results import estimand_results, tipping_point_result
from trial.models.result import ModelResult

GROUP = "estimands"


def _populations(
    analysis_long: pl.DataFrame, analysis_long_pp: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    return {"FAS": analysis_long, "PP": analysis_long_pp}


@pipeline_asset(dg.asset, group_name=GROUP)
def estimands(
    settings: TrialSettings,
    analysis_long: pl.DataFrame,
    analysis_long_pp: pl.DataFrame,
    adsl: pl.DataFrame,
    adice: pl.DataFrame,
    mmrm_primary: ModelResult,
) -> ModelResult:
    """E1 (MMRM, post-rescue values set missing), E2 (jump to reference, conditional mean
    imputation with jackknife; checked by approximate Bayesian MI with Rubin's rules), E3
    (copy reference, copy increments in reference): every model visit, each estimand's visit
    beside the primary analysis, and ICE counts per arm."""
    return estimand_results(
        _populations(analysis_long, analysis_long_pp), adsl, adice, mmrm_primary, settings.study()
    )


@pipeline_asset(dg.asset, group_name=GROUP)
def tipping_point(
    settings: TrialSettings,
    analysis_long: pl.DataFrame,
    analysis_long_pp: pl.DataFrame,
    adsl: pl.DataFrame,
    adice: pl.DataFrame,
) -> ModelResult:
    """Delta added to one arm's imputed values at a time (MAR imputation) until the 95 % CI of
    its contrast with the reference arm first includes 0: the curve and the tipping deltas."""
    return tipping_point_result(
        _populations(analysis_long, analysis_long_pp), adsl, adice, settings.study()
    )
