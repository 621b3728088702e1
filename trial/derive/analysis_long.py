"""The model input: one row per analysed subject and observed model visit.

Columns are exactly those of ``shared/reference/ref1/expected/analysis_long.csv``:
``subject, arm, centre, stratum, visit, visit_index, week, logbase, chg, aval_log, n_sides,
base_visit`` (no ``arm`` when blinded). Rows: the primary region at the study's
``endpoints.model_visits`` with a value and a change from baseline, for subjects in the chosen
population. ``population="PP"`` keeps PP subjects and drops their out-of-window visits.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from study import Study

Population = Literal["FAS", "PP"]

_POPULATION_FLAG = {"FAS": "FASFL", "PP": "PPFL"}


def build_analysis_long(
    adsl: pl.DataFrame, adsweat: pl.DataFrame, study: Study, population: Population = "FAS"
) -> pl.DataFrame:
    """``analysis_long`` for ``population`` (``"FAS"`` or ``"PP"``) from ADSL and ADSWEAT."""
    if population not in _POPULATION_FLAG:
        raise ValueError(
            f"population must be one of {sorted(_POPULATION_FLAG)}, not {population!r}"
        )
    visits = study.model_visits
    order = pl.DataFrame(
        {"visit": visits, "visit_index": list(range(1, len(visits) + 1))},
        schema={"visit": pl.String, "visit_index": pl.Int64},
    )
    blinded = "arm" not in adsl.columns
    subject_cols = ["subject_id", "centre_id", "stratum"] + ([] if blinded else ["arm"])
    subjects = adsl.lazy().filter(pl.col(_POPULATION_FLAG[population]) == "Y").select(subject_cols)
    rows = (
        adsweat.lazy()
        .filter(
            (pl.col("PARAMCD") == study.primary_region.paramcd)
            & pl.col("AVAL").is_not_null()
            & pl.col("CHG").is_not_null()
        )
        .rename({"AVISIT": "visit"})
        .join(order.lazy(), on="visit", how="inner")
    )
    if population == "PP":
        rows = rows.filter(pl.col("out_of_window").not_() & pl.col("out_of_window").is_not_null())
    columns = [
        pl.col("subject_id").alias("subject"),
        *([] if blinded else [pl.col("arm")]),
        pl.col("centre_id").alias("centre"),
        pl.col("stratum"),
        pl.col("visit"),
        pl.col("visit_index"),
        pl.col("week").cast(pl.Int64),
        pl.col("BASE").alias("logbase"),
        pl.col("CHG").alias("chg"),
        pl.col("AVAL").alias("aval_log"),
        pl.col("n_sides").cast(pl.Int64),
        pl.col("BASE_VISIT").alias("base_visit"),
    ]
    return (
        rows.join(subjects, on="subject_id", how="inner")
        .select(columns)
        .sort("subject", "visit_index")
        .collect()
    )
