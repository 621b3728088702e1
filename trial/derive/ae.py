"""ADAE: one row per adverse event of the latest EDC snapshot.

``TRTEMFL = "Y"`` when the onset is on or after the subject's first treatment session
(``adsl.trt_start_date``, the UTC date of the first session on one of their serials); an
untreated subject's events are not treatment-emergent. ``ASTDY`` / ``AENDY`` are study days of
onset and end (SAP section 10, no day 0).
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.derive.schedule import study_day


def derive_adae(ae: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """ADAE: the AE form's columns plus ``STUDYID``, ``TRTEMFL``, ``ASTDY``, ``AENDY`` (and
    ``arm`` when ADSL carries it: an unblinded run)."""
    keep = ["subject_id", "bl_date", "trt_start_date"]
    if "arm" in adsl.columns:
        keep.append("arm")
    emergent = pl.col("onset_date") >= pl.col("trt_start_date")
    return (
        ae.lazy()
        .join(adsl.lazy().select(keep), on="subject_id", how="left")
        .with_columns(
            STUDYID=pl.lit(study.study_id),
            TRTEMFL=pl.when(emergent.fill_null(False)).then(pl.lit("Y")).otherwise(pl.lit("N")),
            ASTDY=study_day(pl.col("onset_date"), pl.col("bl_date")),
            AENDY=study_day(pl.col("end_date"), pl.col("bl_date")),
        )
        .drop("bl_date", "trt_start_date")
        .select("STUDYID", *ae.columns, "TRTEMFL", "ASTDY", "AENDY", *keep[3:])
        .sort("subject_id", "ae_id")
        .collect()
    )
