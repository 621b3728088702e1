"""Numbers behind the model sections of the investigator report, read from model results.

A model result (``trial.models.result.ModelResult``) carries, where it compares arms,
``tables["lsmeans"]`` (``visit, arm, estimate, std_error, df, ci_low, ci_high, p_value``, and
optionally ``percent_reduction``) and ``tables["contrasts"]`` (``visit, contrast, estimate,
std_error, df, ci_low, ci_high, p_value``, optionally ``ratio, ratio_ci_low, ratio_ci_high``),
on the log scale of a change from baseline (``trial.models.tidy.arm_comparisons``). A model
fitted without arms (blinded run) has an empty estimates table and says so in its notes; the
report then shows none of its numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from study import Study
from trial.models import multiplicity as multiplicity_model
from trial.models.result import ModelResult


@dataclass(frozen=True)
class ModelRoles:
    """Which model result plays which part in the report, by ``ModelResult.name`` (the name
    its files carry under ``OUT/models/``).

    ``sensitivity`` lists the analyses shown beside the primary, in order, with their labels;
    ``secondary`` the other secondary endpoints shown with their contrasts."""

    primary: str = "mmrm_primary"
    sensitivity: Mapping[str, str] = field(
        default_factory=lambda: {
            "lmm_sensitivity1": "Sensitivity 1: LMM, random intercept and slope on week",
            "mmrm_pp": "Sensitivity 2: primary MMRM on the per-protocol set",
            "sides_sensitivity3": "Sensitivity 3: sides as observations, nested intercepts",
            "ancova_sensitivity4": "Sensitivity 4: complete-case ANCOVA at the primary visit",
        }
    )
    subgroups: str = "subgroups"
    responders: str = "responders"
    secondary: Mapping[str, str] = field(
        default_factory=lambda: {
            "plantar": "Plantar sweat rate, subjects with plantar involvement",
            "durability": "Durability: ratio of rates, later / earlier durability visit",
        }
    )


DEFAULT_ROLES = ModelRoles()
"""The result names the model modules use."""


def fitted(result: ModelResult | None) -> bool:
    """A result that holds estimates (a model not fitted in a blinded run holds none)."""
    return result is not None and result.estimates.height > 0


def primary_lsmeans(result: ModelResult) -> pl.DataFrame:
    """LS mean change in ln palmar rate per arm and visit, with the within-arm percent
    reduction ``100 * (1 - exp(LS mean))`` and its CI (from the LS mean's CI)."""
    lsm = result.tables["lsmeans"]
    return lsm.select(
        "visit",
        "arm",
        "estimate",
        "std_error",
        *(["df"] if "df" in lsm.columns else []),
        "ci_low",
        "ci_high",
        (100.0 * (1.0 - pl.col("estimate").exp())).alias("percent_reduction"),
        (100.0 * (1.0 - pl.col("ci_high").exp())).alias("percent_reduction_ci_low"),
        (100.0 * (1.0 - pl.col("ci_low").exp())).alias("percent_reduction_ci_high"),
    )


def contrasts_with_ratio(contrasts: pl.DataFrame) -> pl.DataFrame:
    """Contrasts (difference in LS mean change of ln rate) with the ratio of geometric means
    ``exp(estimate)`` and its CI; ``visit`` kept when present."""
    visit = (
        [pl.col("visit")]
        if "visit" in contrasts.columns
        else [pl.lit(None, pl.String).alias("visit")]
    )
    return contrasts.select(
        *visit,
        "contrast",
        "estimate",
        "std_error",
        *(["df"] if "df" in contrasts.columns else []),
        "ci_low",
        "ci_high",
        "p_value",
        pl.col("estimate").exp().alias("ratio"),
        pl.col("ci_low").exp().alias("ratio_ci_low"),
        pl.col("ci_high").exp().alias("ratio_ci_high"),
    )


def covariance_used(result: ModelResult) -> str:
    """The covariance structure the primary model actually used, as its fit says."""
    for key in ("covariance_structure", "structure", "covariance"):
        if result.fit.get(key):
            return str(result.fit[key])
    return "not reported by the model"


def sensitivity_comparison(
    models: Mapping[str, ModelResult], study: Study, roles: ModelRoles = DEFAULT_ROLES
) -> pl.DataFrame:
    """Each fitted analysis's contrasts at the primary visit, primary first, side by side.

    Columns ``analysis, model, contrast, estimate, ci_low, ci_high, p_value, ratio,
    ratio_ci_low, ratio_ci_high, n_subjects``. A result without a visit column (e.g. an ANCOVA
    at the primary visit) contributes its contrasts as they are."""
    names = [roles.primary, *roles.sensitivity]
    frames = []
    for rank, name in enumerate(names):
        result = models.get(name)
        if not fitted(result) or result is None or "contrasts" not in result.tables:
            continue
        label = (
            "Primary: MMRM, full analysis set"
            if name == roles.primary
            else (roles.sensitivity.get(name, name))
        )
        ct = contrasts_with_ratio(result.tables["contrasts"])
        ct = ct.filter(pl.col("visit").is_null() | (pl.col("visit") == study.primary_visit))
        n = result.fit.get("n_subjects")
        frames.append(
            ct.with_columns(
                pl.lit(rank).alias("_rank"),
                pl.lit(label).alias("analysis"),
                pl.lit(name).alias("model"),
                pl.lit(None if n is None else int(n), pl.Int64).alias("n_subjects"),
            )
        )
    columns = [
        "analysis",
        "model",
        "contrast",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "ratio",
        "ratio_ci_low",
        "ratio_ci_high",
        "n_subjects",
    ]
    if not frames:
        return pl.DataFrame(
            schema={c: (pl.String if c in columns[:3] else pl.Float64) for c in columns}
        ).with_columns(pl.col("n_subjects").cast(pl.Int64))
    return pl.concat(frames, how="vertical_relaxed").sort("_rank", "contrast").select(columns)


def subgroup_effects(
    models: Mapping[str, ModelResult], roles: ModelRoles = DEFAULT_ROLES
) -> pl.DataFrame:
    """Treatment effects at the primary visit by subgroup level, for the forest plot.

    Reads ``tables["forest"]`` of the subgroup result (``trial.models.subgroups``): ``subgroup,
    level, contrast, n, estimate, ci_low, ci_high`` (log scale), in the model's order (an
    ``overall`` row first); adds ``ratio`` and its CI."""
    result = models.get(roles.subgroups)
    if not fitted(result) or result is None or "forest" not in result.tables:
        return pl.DataFrame()
    table = result.tables["forest"]
    return table.with_columns(
        pl.col("estimate").exp().alias("ratio"),
        pl.col("ci_low").exp().alias("ratio_ci_low"),
        pl.col("ci_high").exp().alias("ratio_ci_high"),
    )


def responder_models(
    models: Mapping[str, ModelResult], roles: ModelRoles = DEFAULT_ROLES
) -> pl.DataFrame:
    """Odds ratios of the responder analyses (logistic regression; CMH check when given).

    Takes ``tables["odds_ratios"]`` of every fitted responder result as it is; without such a
    table, the estimates with ``odds_ratio = exp(estimate)`` and its CI."""
    frames = []
    for name, result in models.items():
        if name != roles.responders or not fitted(result):
            continue
        if "odds_ratios" in result.tables:
            table = result.tables["odds_ratios"].with_columns(pl.lit(name).alias("model"))
            cmh = result.tables.get("cmh")
            if cmh is not None and {"endpoint", "contrast", "p_value"} <= set(cmh.columns):
                table = table.join(
                    cmh.select("endpoint", "contrast", pl.col("p_value").alias("cmh_p_value")),
                    on=["endpoint", "contrast"],
                    how="left",
                )
            frames.append(table)
        else:
            frames.append(
                result.estimates.select(
                    pl.lit(name).alias("model"),
                    "term",
                    pl.col("estimate").exp().alias("odds_ratio"),
                    pl.col("ci_low").exp().alias("ci_low"),
                    pl.col("ci_high").exp().alias("ci_high"),
                    "p_value",
                )
            )
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def secondary_contrasts(
    models: Mapping[str, ModelResult], roles: ModelRoles = DEFAULT_ROLES
) -> pl.DataFrame:
    """Contrasts of the other secondary endpoints (plantar rate, durability) with their ratio
    of geometric means: ``endpoint, visit, contrast, estimate, ci_low, ci_high, p_value,
    ratio, ratio_ci_low, ratio_ci_high``."""
    frames = []
    for name, label in roles.secondary.items():
        result = models.get(name)
        if not fitted(result) or result is None or "contrasts" not in result.tables:
            continue
        frames.append(
            contrasts_with_ratio(result.tables["contrasts"]).select(
                pl.lit(label).alias("endpoint"), pl.all()
            )
        )
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


def by_result_name(models: Mapping[str, ModelResult]) -> dict[str, ModelResult]:
    """Model results keyed by their own ``name`` (asset names may differ from result names)."""
    return {result.name: result for result in models.values()}


def model_notes(models: Mapping[str, ModelResult]) -> pl.DataFrame:
    """Every note of every result (fallbacks taken, warnings, blinding), for the methods block."""
    rows = [(name, note) for name, r in models.items() for note in r.notes]
    return pl.DataFrame(rows, schema={"model": pl.String, "note": pl.String}, orient="row")


def multiplicity(models: Mapping[str, ModelResult]) -> pl.DataFrame:
    """The fixed-sequence testing of the key secondary family (``trial.models.multiplicity``):
    ``step, id, endpoint, contrast, p_value, alpha, decision, reason``; empty when absent."""
    result = models.get(multiplicity_model.NAME)
    if result is None or "fixed_sequence" not in result.tables:
        return pl.DataFrame()
    return result.tables["fixed_sequence"]
