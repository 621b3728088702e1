"""ADHDSS: HDSS (1-4) per subject and visit with baseline, change and the responder flag.

Baseline follows the sweat-rate rule: the ``baseline_visit`` score, else the
``baseline_fallback_visit`` score (``BASE_VISIT``). ``CHG = AVAL - BASE`` after the baseline
visit. ``RESPFL = "Y"`` when the score improved (fell) by at least
``endpoints.responder.hdss_improvement_points``; null where ``CHG`` is null.
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.derive.schedule import schedule_frame, source_record, visit_days
from trial.derive.sweat import region_baselines


def derive_adhdss(hdss: pl.DataFrame, visits: pl.DataFrame, study: Study) -> pl.DataFrame:
    """ADHDSS: ``STUDYID, subject_id, PARAMCD (HDSS), AVISIT, AVISITN, week, ADT, ADY, AVAL,
    BASE, BASE_VISIT, CHG, ABLFL, RESPFL, out_of_window``."""
    points = study.endpoints.responder.hdss_improvement
    sched = schedule_frame(study).filter(pl.col("hdss")).select("AVISIT", "AVISITN", "week")
    post_min = study.visit_codes.index(study.baseline_visit) + 2
    values = (
        hdss.lazy()
        .filter(pl.col("hdss").is_not_null())
        .group_by("subject_id", "visit")
        .agg(
            AVAL=pl.col("hdss").last().cast(pl.Int64),
            source_records=source_record().last(),
        )
        .rename({"visit": "AVISIT"})
        .join(sched.lazy(), on="AVISIT", how="inner")
        .with_columns(region=pl.lit("HDSS"))
        .collect()
    )
    base = region_baselines(values, study).drop("region")
    chg = pl.when(pl.col("AVISITN") >= post_min).then(pl.col("AVAL") - pl.col("BASE"))
    return (
        values.lazy()
        .join(base.lazy(), on="subject_id", how="left")
        .join(visit_days(visits, study).lazy(), on=["subject_id", "AVISIT"], how="left")
        .with_columns(
            STUDYID=pl.lit(study.study_id),
            PARAMCD=pl.lit("HDSS"),
            CHG=chg,
            ABLFL=pl.when(pl.col("AVISIT") == pl.col("BASE_VISIT"))
            .then(pl.lit("Y"))
            .otherwise(pl.lit("N")),
        )
        .with_columns(
            RESPFL=pl.when(pl.col("CHG").is_not_null()).then(
                pl.when(pl.col("CHG") <= -points).then(pl.lit("Y")).otherwise(pl.lit("N"))
            )
        )
        .select(
            "STUDYID",
            "subject_id",
            "PARAMCD",
            "AVISIT",
            "AVISITN",
            "week",
            "ADT",
            "ADY",
            "AVAL",
            "BASE",
            "BASE_VISIT",
            "CHG",
            "ABLFL",
            "RESPFL",
            "out_of_window",
            "source_records",
        )
        .sort("subject_id", "AVISITN")
        .collect()
    )
