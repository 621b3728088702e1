"""Adverse-event summaries on the Safety set (SAP section 7, "Safety").

Number and percent of subjects with each AE term, by arm (``pooled`` in a blinded run), also
by worst severity and by strongest relatedness per subject and term, plus a listing of
serious events. Denominators are Safety-set subjects (``SAFFL == "Y"``) per arm; subjects are
analysed by the ``arm`` ADSL carries (as treated: ION-301 has no cross-over, so randomised and
treated arms coincide). Treatment-emergent events only when ADAE has ``TRTEMFL``.
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.models.result import ModelResult
from trial.models.tidy import empty_estimates

NAME = "safety"
POOLED = "pooled"
RELATEDNESS_STRENGTH = {"Y": 2, "POSSIBLE": 1, "N": 0}
"""Order used to keep a subject's strongest relatedness for a term."""
ANY_TERM = "ANY"


def _arm_frame(adsl: pl.DataFrame) -> pl.DataFrame:
    """Safety-set subjects with their arm (``pooled`` when ADSL has no ``arm``)."""
    arm = pl.col("arm") if "arm" in adsl.columns else pl.lit(POOLED)
    return adsl.filter(pl.col("SAFFL") == "Y").select("subject_id", arm.alias("arm"))


def _with_pct(counts: pl.DataFrame, denominators: pl.DataFrame) -> pl.DataFrame:
    return counts.join(denominators, on="arm", how="left").with_columns(
        pct=100.0 * pl.col("n_subjects") / pl.col("N")
    )


def safety_summary(adae: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> ModelResult:
    """AE tables for the Safety set.

    Reads ``adsl``: ``subject_id, SAFFL`` (+ ``arm``); ``adae``: ``subject_id, ae_id, term,
    severity, serious, related`` (+ ``TRTEMFL``, and ``verbatim, onset_date, end_date, ASTDY``
    for the listing when present). Tables: ``denominators`` (arm, N), ``by_term`` (arm, term,
    n_subjects, n_events, N, pct; term ``ANY`` = any AE), ``by_severity`` and
    ``by_relatedness`` (one category per subject and term: worst severity, strongest
    relatedness), ``serious`` (listing).
    """
    notes: list[str] = []
    subjects = _arm_frame(adsl)
    if "arm" not in adsl.columns:
        notes.append("blinded run: arms pooled")
    denominators = subjects.group_by("arm").agg(N=pl.len()).sort("arm")
    events = adae
    if "TRTEMFL" in adae.columns:
        events = adae.filter(pl.col("TRTEMFL") == "Y")
        if adae.height - events.height:
            notes.append(f"{adae.height - events.height} AEs not treatment-emergent: not counted")
    in_set = events.join(subjects, on="subject_id", how="inner")
    if events.height - in_set.height:
        notes.append(f"{events.height - in_set.height} AEs of subjects outside the Safety set")
    terms = study.codelists.ae_term
    severities = study.codelists.ae_severity
    term_rank = pl.col("term").replace_strict(terms, list(range(len(terms))), default=len(terms))

    any_ae = in_set.with_columns(term=pl.lit(ANY_TERM))
    by_term = _with_pct(
        pl.concat([in_set, any_ae], how="diagonal_relaxed")
        .group_by("arm", "term")
        .agg(n_subjects=pl.col("subject_id").n_unique(), n_events=pl.len()),
        denominators,
    ).sort("arm", pl.col("term") != ANY_TERM, term_rank)

    severity_rank = pl.col("severity").replace_strict(
        severities, list(range(len(severities))), return_dtype=pl.Int64
    )
    worst = (
        in_set.with_columns(_rank=severity_rank)
        .sort("_rank")
        .group_by("arm", "subject_id", "term")
        .agg(pl.col("severity").last())
    )
    by_severity = _with_pct(
        worst.group_by("arm", "term", "severity").agg(n_subjects=pl.len()), denominators
    ).sort(
        "arm",
        term_rank,
        pl.col("severity").replace_strict(severities, list(range(len(severities)))),
    )

    strength = pl.col("related").replace_strict(RELATEDNESS_STRENGTH, return_dtype=pl.Int64)
    strongest = (
        in_set.with_columns(_rank=strength)
        .sort("_rank")
        .group_by("arm", "subject_id", "term")
        .agg(pl.col("related").last())
    )
    by_related = _with_pct(
        strongest.group_by("arm", "term", "related").agg(n_subjects=pl.len()), denominators
    ).sort("arm", term_rank, strength.alias("_s"), descending=[False, False, True])

    listing_cols = [
        c
        for c in (
            "subject_id",
            "arm",
            "ae_id",
            "term",
            "verbatim",
            "onset_date",
            "end_date",
            "ASTDY",
            "severity",
            "related",
        )
        if c in in_set.columns and not (c == "arm" and "arm" not in adsl.columns)
    ]
    serious = in_set.filter(pl.col("serious") == "Y").select(listing_cols).sort("subject_id")
    notes.append(f"{serious.height} serious adverse events listed")
    return ModelResult(
        name=NAME,
        estimates=empty_estimates(),
        fit={
            "n_subjects": subjects.height,
            "n_observations": in_set.height,
            "n_serious": serious.height,
        },
        tables={
            "denominators": denominators,
            "by_term": by_term,
            "by_severity": by_severity,
            "by_relatedness": by_related,
            "serious": serious,
        },
        notes=notes,
    )
