"""Visit schedule, study day and visit windows, all read from the study configuration.

Study day (SAP section 10): ``date - BL date + 1`` on or after the baseline date,
``date - BL date`` before it; there is no day 0. A visit is out of window when
``|study day - target day| > window_days``; a visit whose ``window_days`` is null (screening)
is never judged, so its ``out_of_window`` is False.
"""

from __future__ import annotations

import polars as pl

from study import Study


def schedule_frame(study: Study) -> pl.DataFrame:
    """One row per scheduled visit: ``AVISIT``, ``AVISITN`` (1-based schedule order),
    ``target_day``, ``window_days``, ``week`` (nominal; null for screening), ``gravimetry``,
    ``hdss``."""
    return pl.DataFrame(
        {
            "AVISIT": [v.code for v in study.visits],
            "AVISITN": list(range(1, len(study.visits) + 1)),
            "target_day": [v.target_day for v in study.visits],
            "window_days": [v.window_days for v in study.visits],
            "week": [v.week for v in study.visits],
            "gravimetry": [v.gravimetry for v in study.visits],
            "hdss": [v.hdss for v in study.visits],
        },
        schema={
            "AVISIT": pl.String,
            "AVISITN": pl.Int64,
            "target_day": pl.Int64,
            "window_days": pl.Int64,
            "week": pl.Int64,
            "gravimetry": pl.Boolean,
            "hdss": pl.Boolean,
        },
    )


def source_record() -> pl.Expr:
    """``<source_file>:<source_line>``: where a raw row came from (relative path, 1-based line)."""
    return pl.format("{}:{}", pl.col("source_file"), pl.col("source_line"))


def study_day(date: pl.Expr, bl_date: pl.Expr) -> pl.Expr:
    """Study day of ``date`` relative to ``bl_date`` (both Date); no day 0; null when either
    is null."""
    diff = (date - bl_date).dt.total_days()
    return pl.when(diff >= 0).then(diff + 1).otherwise(diff).cast(pl.Int64)


def baseline_dates(visits: pl.DataFrame, study: Study) -> pl.DataFrame:
    """``subject_id``, ``bl_date``: the date of the configured baseline visit, when done."""
    return (
        visits.lazy()
        .filter((pl.col("visit") == study.baseline_visit) & pl.col("visit_date").is_not_null())
        .group_by("subject_id")
        .agg(bl_date=pl.col("visit_date").min())
        .collect()
    )


def visit_days(visits: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Per subject and visit done: ``ADT`` (visit date), ``ADY`` and ``out_of_window``.

    Subjects without a baseline date get null ``ADY`` and null ``out_of_window`` (a window
    cannot be judged without day 1)."""
    bl = baseline_dates(visits, study)
    sched = schedule_frame(study).select("AVISIT", "target_day", "window_days")
    return (
        visits.lazy()
        .filter(pl.col("visit_date").is_not_null())
        .group_by("subject_id", "visit")
        .agg(ADT=pl.col("visit_date").max())
        .rename({"visit": "AVISIT"})
        .join(bl.lazy(), on="subject_id", how="left")
        .join(sched.lazy(), on="AVISIT", how="left")
        .with_columns(ADY=study_day(pl.col("ADT"), pl.col("bl_date")))
        .with_columns(out_of_window=window_flag(pl.col("ADY")))
        .select("subject_id", "AVISIT", "ADT", "ADY", "out_of_window")
        .collect()
    )


def window_flag(ady: pl.Expr) -> pl.Expr:
    """Out-of-window flag from study day; needs ``target_day`` and ``window_days`` columns."""
    return (
        pl.when(pl.col("window_days").is_null())
        .then(pl.when(ady.is_null()).then(None).otherwise(pl.lit(False)))
        .otherwise((ady - pl.col("target_day")).abs() > pl.col("window_days"))
    )
