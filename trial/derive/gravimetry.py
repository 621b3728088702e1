"""Sweat rate per filter paper and the region value per subject, visit and region.

Rate, mg/min = (wet - dry) * unit_to_mg[unit] / (collection_s / 60)   (protocol section 4).

- ``wet - dry <= 0``: not a valid rate; ``invalid_rate`` is True with ``invalid_reason``
  ``NON_POSITIVE_WEIGHT_GAIN`` and the rate is null (excluded, never clipped).
- an empty weight: ``rate_status`` ``MISSING``, rate null, not invalid (a lost paper).
- ``collection_s`` empty: the study's ``gravimetry.collection_s_default`` is used and
  ``collection_s_defaulted`` says so; ``collection_s <= 0`` or a unit missing from
  ``gravimetry.unit_to_mg`` is invalid (``NON_POSITIVE_COLLECTION_TIME``, ``UNKNOWN_UNIT``).

Region value: ``AVAL`` = mean of the ln rates of the valid sides = ln of their geometric mean;
one side alone when the other is missing or invalid (``n_sides``).

Per subject: a paper's key starts with the subject, so the later-delivery rule, the rates and
the region values of one subject use only that subject's rows (in their order: two rows of a
paper in one delivery at the same line fall back to row order), the study's units and default
collection time, and the code. The pipeline recomputes them per subject
(``pipelines/subject_store.py``).
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.derive.schedule import source_record

PAPER_KEY = ["subject_id", "visit", "region", "side"]

RATE_VALID = "VALID"
RATE_MISSING = "MISSING"
RATE_INVALID = "INVALID"


def _delivery_order() -> pl.Expr:
    """Delivery folder of a raw path ``<centre>/<delivery_date>/<file>`` (ISO dates sort)."""
    return pl.col("source_file").str.split("/").list.get(1, null_on_oob=True)


def latest_papers(gravimetry: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Resolve a paper (subject, visit, region, side) held by two worksheets: the later
    delivery wins, then the later line (site-exports.md section 2).

    Returns ``(papers, superseded)``: one row per paper key, and the losing rows (for the
    data-quality report)."""
    ranked = gravimetry.with_columns(_delivery=_delivery_order()).with_columns(
        _rank=pl.struct("_delivery", "source_line").rank("ordinal", descending=True).over(PAPER_KEY)
    )
    keep = ranked.filter(pl.col("_rank") == 1).drop("_delivery", "_rank")
    lost = ranked.filter(pl.col("_rank") > 1).drop("_delivery", "_rank")
    return keep, lost


def paper_rates(gravimetry: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Per paper: the input columns plus ``weight_gain_mg``, ``collection_s_used``,
    ``collection_s_defaulted``, ``sweat_rate_mg_min``, ``rate_status``
    (VALID/MISSING/INVALID), ``invalid_rate`` (Boolean) and ``invalid_reason``."""
    units = study.unit_to_mg
    default_s = float(study.gravimetry.collection_s_default)
    factor = pl.col("unit").replace_strict(
        list(units), list(units.values()), default=None, return_dtype=pl.Float64
    )
    gain = (pl.col("wet_weight") - pl.col("dry_weight")) * factor
    seconds = pl.col("collection_s").cast(pl.Float64)
    reason = (
        pl.when(pl.col("wet_weight").is_null() | pl.col("dry_weight").is_null())
        .then(None)
        .when(factor.is_null())
        .then(pl.lit("UNKNOWN_UNIT"))
        .when(pl.col("collection_s_used") <= 0)
        .then(pl.lit("NON_POSITIVE_COLLECTION_TIME"))
        .when(pl.col("wet_weight") - pl.col("dry_weight") <= 0)
        .then(pl.lit("NON_POSITIVE_WEIGHT_GAIN"))
        .otherwise(None)
    )
    status = (
        pl.when(pl.col("wet_weight").is_null() | pl.col("dry_weight").is_null())
        .then(pl.lit(RATE_MISSING))
        .when(pl.col("invalid_reason").is_not_null())
        .then(pl.lit(RATE_INVALID))
        .otherwise(pl.lit(RATE_VALID))
    )
    return (
        gravimetry.lazy()
        .with_columns(
            collection_s_used=seconds.fill_null(default_s),
            collection_s_defaulted=seconds.is_null(),
            weight_gain_mg=gain,
        )
        .with_columns(invalid_reason=reason)
        .with_columns(rate_status=status)
        .with_columns(
            invalid_rate=pl.col("rate_status") == RATE_INVALID,
            sweat_rate_mg_min=pl.when(pl.col("rate_status") == RATE_VALID).then(
                pl.col("weight_gain_mg") / (pl.col("collection_s_used") / 60.0)
            ),
        )
        .collect()
    )


def region_values(rates: pl.DataFrame) -> pl.DataFrame:
    """Per subject, visit and region with at least one paper: ``AVAL`` (mean ln rate of the
    valid sides; null when none is valid), ``rate_mg_min`` (exp of ``AVAL``), ``n_sides``,
    ``n_papers``, ``collected_at_utc`` (first paper), ``source_records`` (every paper's
    ``file:line``, sorted, joined with ``; ``)."""
    valid = pl.col("rate_status") == RATE_VALID
    ln_rate = pl.col("sweat_rate_mg_min").log()
    return (
        rates.lazy()
        .group_by("subject_id", "visit", "region")
        .agg(
            AVAL=ln_rate.filter(valid).mean(),
            n_sides=valid.sum().cast(pl.Int64),
            n_papers=pl.len().cast(pl.Int64),
            collected_at_utc=pl.col("collected_at_utc").min(),
            source_records=source_record().sort().str.join("; "),
        )
        .with_columns(rate_mg_min=pl.col("AVAL").exp())
        .collect()
    )
