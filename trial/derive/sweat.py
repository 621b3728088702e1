"""ADSWEAT (BDS, one row per subject x region x visit) and ADSWEAT_SIDE (one row per valid
paper side), on the natural-log scale.

Baseline of a region (protocol section 4, SAP section 10): the value at the study's
``baseline_visit``; when that region value is missing (no valid side), the value at
``baseline_fallback_visit``. A one-sided baseline is still the baseline. ``BASE_VISIT`` says
which visit gave it and that record has ``ABLFL = "Y"``.

``CHG = AVAL - BASE`` and ``PCHG = 100 * (exp(CHG) - 1)`` (percent change of the rate) are
derived for visits after the baseline visit in schedule order, null elsewhere.
``ANL01FL = "Y"`` marks the records analysable: a value exists and the region applies to the
subject (a region with ``requires_involvement`` needs ``dm.plantar_involved = "Y"``).

Per subject: ADSWEAT rows of one subject use only that subject's papers, visit dates and
``dm`` row, and the study (schedule, regions, baseline visits); nothing is taken across
subjects or centres, so the pipeline recomputes it per subject (``pipelines/subject_store.py``).
ADSWEAT_SIDE is per subject too but is a join of two stored tables, left whole.
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.derive.gravimetry import RATE_VALID, region_values
from trial.derive.schedule import (
    baseline_dates,
    schedule_frame,
    source_record,
    study_day,
    window_flag,
)


def _region_frame(study: Study) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "region": [r.code for r in study.regions],
            "PARAMCD": [r.paramcd for r in study.regions],
            "PARAM": [r.param for r in study.regions],
            "requires_involvement": [r.requires_involvement for r in study.regions],
        }
    )


def _baseline_candidates(study: Study) -> list[str]:
    fallback = study.baseline_fallback_visit
    return [study.baseline_visit] + ([fallback] if fallback is not None else [])


def _post_baseline_min_avisitn(study: Study) -> int:
    return study.visit_codes.index(study.baseline_visit) + 2


def region_baselines(values: pl.DataFrame, study: Study) -> pl.DataFrame:
    """``subject_id``, ``region``, ``BASE``, ``BASE_VISIT`` from region values with
    ``AVISIT`` and ``AVAL``: the first candidate visit (baseline, then fallback) with a value."""
    candidates = _baseline_candidates(study)
    order = pl.DataFrame({"AVISIT": candidates, "_pref": list(range(len(candidates)))})
    return (
        values.lazy()
        .filter(pl.col("AVAL").is_not_null())
        .join(order.lazy(), on="AVISIT", how="inner")
        .sort("_pref")
        .group_by("subject_id", "region")
        .agg(BASE=pl.col("AVAL").first(), BASE_VISIT=pl.col("AVISIT").first())
        .collect()
    )


def derive_adsweat(
    papers: pl.DataFrame, visits: pl.DataFrame, dm: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """ADSWEAT from per-paper rates (:func:`trial.derive.gravimetry.paper_rates`), the visit
    form and demographics. Papers at visits or regions outside the study configuration are
    not analysis records (the findings frame reports them)."""
    sched = schedule_frame(study).filter(pl.col("gravimetry"))
    values = (
        region_values(papers)
        .rename({"visit": "AVISIT"})
        .join(sched, on="AVISIT", how="inner")
        .join(_region_frame(study), on="region", how="inner")
    )
    base = region_baselines(values, study)
    visit_dates = (
        visits.lazy()
        .filter(pl.col("visit_date").is_not_null())
        .group_by("subject_id", "visit")
        .agg(visit_date=pl.col("visit_date").max())
        .rename({"visit": "AVISIT"})
    )
    involved = dm.select("subject_id", "plantar_involved")
    post = pl.col("AVISITN") >= _post_baseline_min_avisitn(study)
    chg = pl.when(post).then(pl.col("AVAL") - pl.col("BASE"))
    applies = ~pl.col("requires_involvement") | (pl.col("plantar_involved") == "Y")
    yes_no = {True: "Y", False: "N"}
    return (
        values.lazy()
        .join(base.lazy(), on=["subject_id", "region"], how="left")
        .join(visit_dates, on=["subject_id", "AVISIT"], how="left")
        .join(baseline_dates(visits, study).lazy(), on="subject_id", how="left")
        .join(involved.lazy(), on="subject_id", how="left")
        .with_columns(
            STUDYID=pl.lit(study.study_id),
            ADT=pl.coalesce(pl.col("visit_date"), pl.col("collected_at_utc").dt.date()),
        )
        .with_columns(ADY=study_day(pl.col("ADT"), pl.col("bl_date")))
        .with_columns(
            out_of_window=window_flag(pl.col("ADY")),
            CHG=chg,
            ABLFL=pl.when(pl.col("AVISIT") == pl.col("BASE_VISIT"))
            .then(pl.lit("Y"))
            .otherwise(pl.lit("N")),
            ANL01FL=(pl.col("AVAL").is_not_null() & applies.fill_null(False)).replace_strict(
                yes_no, return_dtype=pl.String
            ),
        )
        .with_columns(PCHG=100.0 * (pl.col("CHG").exp() - 1.0))
        .select(
            "STUDYID",
            "subject_id",
            "PARAMCD",
            "PARAM",
            "region",
            "AVISIT",
            "AVISITN",
            "week",
            "ADT",
            "ADY",
            "AVAL",
            "rate_mg_min",
            "n_sides",
            "BASE",
            "BASE_VISIT",
            "CHG",
            "PCHG",
            "ABLFL",
            "ANL01FL",
            "out_of_window",
            "source_records",
        )
        .sort("subject_id", "PARAMCD", "AVISITN")
        .collect()
    )


def derive_adsweat_side(papers: pl.DataFrame, adsweat: pl.DataFrame, study: Study) -> pl.DataFrame:
    """ADSWEAT_SIDE: one row per valid paper side at a scheduled visit, ``AVAL`` = ln rate of
    that side, ``BASE`` = the region baseline (from ADSWEAT), ``CHG`` = AVAL - BASE after the
    baseline visit (SAP sensitivity 3)."""
    region_rows = adsweat.select(
        "subject_id",
        "region",
        "AVISIT",
        "PARAMCD",
        "AVISITN",
        "week",
        "BASE",
        "BASE_VISIT",
        "out_of_window",
        "ANL01FL",
    )
    post = pl.col("AVISITN") >= _post_baseline_min_avisitn(study)
    return (
        papers.lazy()
        .filter(pl.col("rate_status") == RATE_VALID)
        .rename({"visit": "AVISIT"})
        .join(region_rows.lazy(), on=["subject_id", "region", "AVISIT"], how="inner")
        .with_columns(
            STUDYID=pl.lit(study.study_id),
            AVAL=pl.col("sweat_rate_mg_min").log(),
            source_records=source_record(),
        )
        .with_columns(CHG=pl.when(post).then(pl.col("AVAL") - pl.col("BASE")))
        .select(
            "STUDYID",
            "subject_id",
            "PARAMCD",
            "region",
            "AVISIT",
            "AVISITN",
            "week",
            "side",
            "AVAL",
            "sweat_rate_mg_min",
            "BASE",
            "BASE_VISIT",
            "CHG",
            "out_of_window",
            "ANL01FL",
            "source_records",
        )
        .sort("subject_id", "PARAMCD", "AVISITN", "side")
        .collect()
    )
