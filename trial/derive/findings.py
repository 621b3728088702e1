"""Data-quality findings of the derivation step (the data-quality report lists them).

One row per finding: ``dataset``, ``subject_id``, ``finding`` (upper snake case), ``detail``
(a sentence a data manager can act on), ``source_file``, ``source_line`` (null for a
subject-level finding). Nothing here is dropped silently: every paper that does not become a
rate, and every paper outside the configured schedule or regions, appears.
"""

from __future__ import annotations

import polars as pl

from data_contracts.trial_rules import FINDINGS_SCHEMA
from study import Study
from trial.derive.gravimetry import RATE_INVALID, RATE_MISSING


def _paper_label() -> pl.Expr:
    return pl.format(
        "{} {} {} {} paper {}",
        pl.col("subject_id"),
        pl.col("visit"),
        pl.col("region"),
        pl.col("side"),
        pl.col("paper_id"),
    )


def gravimetry_findings(
    papers: pl.DataFrame, superseded: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """Invalid rates, missing weights, papers outside the schedule or regions, and paper rows
    superseded by a later worksheet holding the same paper."""
    visits = [v.code for v in study.visits if v.gravimetry]
    regions = [r.code for r in study.regions]
    lineage = [pl.col("source_file"), pl.col("source_line").cast(pl.Int64)]

    def rows(frame: pl.DataFrame, code: str, detail: pl.Expr) -> pl.DataFrame:
        return frame.select(
            dataset=pl.lit("gravimetry"),
            subject_id=pl.col("subject_id"),
            finding=pl.lit(code),
            detail=detail,
            source_file=lineage[0],
            source_line=lineage[1],
        )

    parts = [
        rows(
            papers.filter(pl.col("rate_status") == RATE_INVALID),
            "INVALID_RATE",
            pl.format(
                "{}: dry {} / wet {} {} over {} s is not a valid rate ({}); excluded, not clipped",
                _paper_label(),
                pl.col("dry_weight"),
                pl.col("wet_weight"),
                pl.col("unit"),
                pl.col("collection_s_used"),
                pl.col("invalid_reason"),
            ),
        ),
        rows(
            papers.filter(pl.col("rate_status") == RATE_MISSING),
            "MISSING_WEIGHT",
            pl.format("{}: empty weight, rate missing", _paper_label()),
        ),
        rows(
            papers.filter(pl.col("collection_s_defaulted")),
            "COLLECTION_S_DEFAULTED",
            pl.format(
                "{}: empty collection_s, study default {} s used",
                _paper_label(),
                pl.col("collection_s_used"),
            ),
        ),
        rows(
            papers.filter(~pl.col("visit").is_in(visits) | ~pl.col("region").is_in(regions)),
            "NOT_IN_SCHEDULE",
            pl.format("{}: visit or region not in the study configuration", _paper_label()),
        ),
        rows(
            superseded,
            "DUPLICATE_PAPER",
            pl.format("{}: superseded by a later worksheet holding the same paper", _paper_label()),
        ),
    ]
    return pl.concat(parts).cast(FINDINGS_SCHEMA)


def stratum_findings(adsl: pl.DataFrame, randomisation: pl.DataFrame) -> pl.DataFrame:
    """Unblinded only: subjects whose ``dm`` stratum differs from the sealed list's."""
    return (
        adsl.select("subject_id", "stratum")
        .join(randomisation.select("subject_id", rand_stratum="stratum"), on="subject_id")
        .filter(pl.col("stratum").ne_missing(pl.col("rand_stratum")))
        .select(
            dataset=pl.lit("randomisation"),
            subject_id=pl.col("subject_id"),
            finding=pl.lit("STRATUM_MISMATCH"),
            detail=pl.format(
                "{}: dm stratum {} but randomisation list {}",
                pl.col("subject_id"),
                pl.col("stratum"),
                pl.col("rand_stratum"),
            ),
            source_file=pl.lit(None, dtype=pl.String),
            source_line=pl.lit(None, dtype=pl.Int64),
        )
        .cast(FINDINGS_SCHEMA)
    )
