"""Other secondary endpoints (SAP section 5): plantar sweat rate and durability.

Plantar: change in the log rate of the region that requires involvement
(``Study.involvement_region``) in subjects with plantar involvement
(``adsl.plantar_involved == "Y"``); not applicable (a result with a note, no estimates) in a
study whose regions are all measured in every subject.
``method="ancova"`` (default): ``chg ~ arm + logbase + centre + stratum`` at the primary
visit, complete case, as sensitivity 4; ``method="mmrm"``: the primary MMRM
(:func:`trial.models.mmrm.fit_mmrm`) on the plantar long table, all model visits - with
fewer subjects its covariance fallback may well be taken, and its notes say so.

Durability: per subject ``d = AVAL(later) - AVAL(earlier)`` of the primary region, the visits
``endpoints.durability_visits = [earlier, later]``: the log of the ratio of rates later /
earlier (values above 0 = sweating came back). Per arm: ANCOVA LS mean of ``d``
(``d ~ arm + logbase + centre + stratum``) with its ratio ``exp(d)`` and CI, and contrasts
against the reference arm; beside it the raw mean of ``d`` per arm with a t CI. Subjects need
both visits (complete case).

Blinded: models not fitted (note ``"not fitted: blinded run"``); a pooled descriptive table.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from scipy import special

from study import Region, Study
from trial.models.ancova import ancova_result
from trial.models.result import ModelResult
from trial.models.tidy import BLINDED_NOTE, empty_estimates

PLANTAR_NAME = "plantar"
DURABILITY_NAME = "durability"


NOT_APPLICABLE_NOTE = (
    "not applicable: the study measures no region only in subjects with plantar involvement"
)


def involvement_region(study: Study) -> Region:
    """The region analysed only in involved subjects (``KeyError`` when the study has none)."""
    region = study.involvement_region
    if region is None:
        raise KeyError(f"{study.source}: no region has requires_involvement: true")
    return region


def plantar_long(
    adsweat: pl.DataFrame, adsl: pl.DataFrame, study: Study, population_flag: str = "FASFL"
) -> pl.DataFrame:
    """``analysis_long``-shaped rows of the involvement region for involved subjects.

    Reads ``adsweat``: ``subject_id, PARAMCD, AVISIT, AVAL, BASE, CHG`` (+ ``ANL01FL``) and
    ``adsl``: ``subject_id, centre_id, stratum, plantar_involved, <population_flag>`` (+
    ``arm``). Returns ``subject, [arm,] centre, stratum, visit, visit_index, week, logbase,
    chg, aval_log`` at the model visits.
    """
    region = involvement_region(study)
    visits = study.model_visits
    order = pl.DataFrame(
        {
            "visit": visits,
            "visit_index": list(range(1, len(visits) + 1)),
            "week": [study.visit(v).week for v in visits],
        },
        schema={"visit": pl.String, "visit_index": pl.Int64, "week": pl.Int64},
    )
    keep = ["subject_id", "centre_id", "stratum"] + (["arm"] if "arm" in adsl.columns else [])
    subjects = adsl.filter(
        (pl.col(population_flag) == "Y") & (pl.col("plantar_involved") == "Y")
    ).select(keep)
    rows = adsweat.filter(
        (pl.col("PARAMCD") == region.paramcd)
        & pl.col("CHG").is_not_null()
        & pl.col("BASE").is_not_null()
    )
    if "ANL01FL" in rows.columns:
        rows = rows.filter(pl.col("ANL01FL") == "Y")
    return (
        rows.rename({"AVISIT": "visit"})
        .join(order, on="visit", how="inner")
        .join(subjects, on="subject_id", how="inner")
        .select(
            pl.col("subject_id").alias("subject"),
            *([pl.col("arm")] if "arm" in adsl.columns else []),
            pl.col("centre_id").alias("centre"),
            "stratum",
            "visit",
            "visit_index",
            "week",
            pl.col("BASE").alias("logbase"),
            pl.col("CHG").alias("chg"),
            pl.col("AVAL").alias("aval_log"),
        )
        .sort("subject", "visit_index")
    )


def _pooled(frame: pl.DataFrame, value: str, level: float) -> pl.DataFrame:
    """n, mean, SD and t CI of coverage ``level`` of ``value`` over all rows (blinded
    description)."""
    stats = frame.select(
        n=pl.col(value).count(), mean=pl.col(value).mean(), sd=pl.col(value).std()
    ).row(0, named=True)
    n = int(stats["n"])
    half = (
        float(special.stdtrit(n - 1, 0.5 + level / 2.0) * stats["sd"] / np.sqrt(n))
        if n > 1
        else float("nan")
    )
    return pl.DataFrame(
        {
            "arm": ["pooled"],
            "n": [n],
            "mean": [stats["mean"]],
            "sd": [stats["sd"]],
            "ci_low": [None if n < 2 else stats["mean"] - half],
            "ci_high": [None if n < 2 else stats["mean"] + half],
        },
        # typed, so that a subset with no rows (e.g. before anyone reached the last
        # follow-up visit) still gives a row of missing values rather than a Null column
        schema={
            "arm": pl.String,
            "n": pl.Int64,
            "mean": pl.Float64,
            "sd": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
        },
    )


def fit_plantar(
    adsweat: pl.DataFrame,
    adsl: pl.DataFrame,
    study: Study,
    method: Literal["ancova", "mmrm"] = "ancova",
) -> ModelResult:
    """Plantar endpoint in involved subjects (see the module docstring)."""
    if study.involvement_region is None:
        return ModelResult(
            name=PLANTAR_NAME,
            estimates=empty_estimates(),
            fit={"n_subjects": 0, "converged": False},
            notes=[NOT_APPLICABLE_NOTE],
        )
    long = plantar_long(adsweat, adsl, study)
    if "arm" not in long.columns:
        at_visit = long.filter(pl.col("visit") == study.primary_visit)
        return ModelResult(
            name=PLANTAR_NAME,
            estimates=empty_estimates(),
            fit={"n_subjects": at_visit.height, "converged": False, "blinded": True},
            tables={"pooled": _pooled(at_visit, "chg", study.confidence_level)},
            notes=[BLINDED_NOTE, f"pooled change at {study.primary_visit} only"],
        )
    if method == "mmrm":
        from trial.models.mmrm import fit_mmrm

        result = fit_mmrm(long.drop("aval_log"), study, name=f"{PLANTAR_NAME}_mmrm")
        result.notes.append(f"plantar: primary MMRM on {long['subject'].n_unique()} subjects")
        return result
    at_visit = long.filter(pl.col("visit") == study.primary_visit)
    result = ancova_result(at_visit, study, PLANTAR_NAME, visit=study.primary_visit)
    result.notes.append(
        f"plantar ({involvement_region(study).paramcd}): ANCOVA at {study.primary_visit} "
        "in subjects with plantar involvement, complete case"
    )
    return result


def durability_frame(
    adsweat: pl.DataFrame, adsl: pl.DataFrame, study: Study, population_flag: str = "FASFL"
) -> pl.DataFrame:
    """Per subject with both durability visits: ``subject, [arm,] centre, stratum, logbase,
    log_ratio`` (primary region, ``AVAL`` at the later visit minus the earlier)."""
    first, last = study.durability_visits
    keep = ["subject_id", "centre_id", "stratum"] + (["arm"] if "arm" in adsl.columns else [])
    subjects = adsl.filter(pl.col(population_flag) == "Y").select(keep)
    rows = adsweat.filter(
        (pl.col("PARAMCD") == study.primary_region.paramcd)
        & pl.col("AVISIT").is_in([first, last])
        & pl.col("AVAL").is_not_null()
    )
    if "ANL01FL" in rows.columns:
        rows = rows.filter(pl.col("ANL01FL") == "Y")
    wide = rows.pivot(on="AVISIT", index="subject_id", values="AVAL", aggregate_function=None)
    base = rows.group_by("subject_id").agg(pl.col("BASE").first())
    if first not in wide.columns or last not in wide.columns:
        wide = wide.with_columns(
            [
                pl.lit(None, dtype=pl.Float64).alias(v)
                for v in (first, last)
                if v not in wide.columns
            ]
        )
    return (
        wide.join(base, on="subject_id")
        .join(subjects, on="subject_id", how="inner")
        .filter(pl.col(first).is_not_null() & pl.col(last).is_not_null())
        .select(
            pl.col("subject_id").alias("subject"),
            *([pl.col("arm")] if "arm" in adsl.columns else []),
            pl.col("centre_id").alias("centre"),
            "stratum",
            pl.col("BASE").alias("logbase"),
            (pl.col(last) - pl.col(first)).alias("log_ratio"),
        )
        .sort("subject")
    )


def fit_durability(adsweat: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> ModelResult:
    """Durability: log ratio of the rate at the last over the first durability visit.

    Tables ``lsmeans`` (per arm: LS mean of the log ratio and ``ratio = exp``),
    ``contrasts`` (arm vs reference, ratio of ratios) and ``by_arm`` (raw mean log ratio per
    arm with t CI and its exp). Blinded: the pooled raw table only.
    """
    first, last = study.durability_visits
    frame = durability_frame(adsweat, adsl, study)
    label = f"{last}/{first}"
    if "arm" not in frame.columns:
        return ModelResult(
            name=DURABILITY_NAME,
            estimates=empty_estimates(),
            fit={"n_subjects": frame.height, "converged": False, "blinded": True},
            tables={"by_arm": _with_ratio(_pooled(frame, "log_ratio", study.confidence_level))},
            notes=[BLINDED_NOTE, f"pooled raw log ratio {label}"],
        )
    result = ancova_result(frame, study, DURABILITY_NAME, response="log_ratio", visit=label)
    if "lsmeans" in result.tables:
        result.tables["lsmeans"] = (
            result.tables["lsmeans"]
            .drop(pl.selectors.starts_with("percent_reduction"))
            .with_columns(
                ratio=pl.col("estimate").exp(),
                ratio_ci_low=pl.col("ci_low").exp(),
                ratio_ci_high=pl.col("ci_high").exp(),
            )
        )
    by_arm = pl.concat(
        [
            _pooled(
                frame.filter(pl.col("arm") == arm), "log_ratio", study.confidence_level
            ).with_columns(arm=pl.lit(arm))
            for arm in study.arm_codes
        ]
    )
    result.tables["by_arm"] = _with_ratio(by_arm)
    result.notes.append(
        f"durability: log({label}) of the {study.primary_region.code} rate per subject with "
        "both visits; "
        "ratio > 1 means sweating increased after treatment stopped"
    )
    return result


def _with_ratio(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        ratio=pl.col("mean").exp(),
        ratio_ci_low=pl.col("ci_low").exp(),
        ratio_ci_high=pl.col("ci_high").exp(),
    )
