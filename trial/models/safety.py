"""Adverse-event summaries on the Safety set (SAP section 7, "Safety").

Number and percent of subjects with each AE term, by arm (``pooled`` in a blinded run), also
by worst severity and by strongest relatedness per subject and term, plus a listing of
serious events. Denominators are Safety-set subjects (``SAFFL == "Y"``) per arm; subjects are
analysed by the ``arm`` ADSL carries (as treated: the studies have no cross-over, so randomised
and treated arms coincide). Treatment-emergent events only when ADAE has ``TRTEMFL``.
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
NOT_CODED = "Not coded"
"""SOC and PT of an event the study dictionary does not code (counted, never dropped)."""
HIERARCHY_KEYS = ("arm", "soc", "pt")
"""Keys of the SOC/PT tables: ``soc == pt == ANY`` is any event, ``pt == ANY`` a SOC total."""


def _coded(events: pl.DataFrame) -> pl.DataFrame:
    """``events`` with ``soc`` and ``pt`` (ADAE ``AEBODSYS``/``AEDECOD``; :data:`NOT_CODED`
    where null; the form's ``term`` as the PT when ADAE carries no coding)."""
    if "AEDECOD" not in events.columns:
        return events.with_columns(soc=pl.lit(NOT_CODED), pt=pl.col("term"))
    return events.with_columns(
        soc=pl.col("AEBODSYS").fill_null(NOT_CODED),
        pt=pl.when(pl.col("AEDECOD").is_null())
        .then(pl.format("{}: {}", pl.lit(NOT_CODED), pl.col("verbatim")))
        .otherwise(pl.col("AEDECOD")),
    )


def _levels(events: pl.DataFrame) -> pl.DataFrame:
    """Each event three times: under any event, its SOC, and its SOC and PT."""
    any_row = events.with_columns(soc=pl.lit(ANY_TERM), pt=pl.lit(ANY_TERM))
    soc_row = events.with_columns(pt=pl.lit(ANY_TERM))
    return pl.concat([any_row, soc_row, events], how="vertical_relaxed")


def hierarchy_counts(events: pl.DataFrame, denominators: pl.DataFrame) -> pl.DataFrame:
    """Subjects (``n_subjects``) and events (``n_events``) by ``arm, soc, pt`` with ``N`` and
    ``pct`` of subjects; ``events`` has ``arm, subject_id, soc, pt`` (one row per event)."""
    counts = (
        _levels(events)
        .group_by(*HIERARCHY_KEYS)
        .agg(n_subjects=pl.col("subject_id").n_unique(), n_events=pl.len())
    )
    return _with_pct(counts, denominators).sort(*HIERARCHY_KEYS)


def hierarchy_by_category(
    events: pl.DataFrame, denominators: pl.DataFrame, column: str, rank: dict[str, int]
) -> pl.DataFrame:
    """Subjects by the highest-``rank`` category of ``column`` among their events at each SOC
    and PT level (worst severity, strongest relatedness): one category per subject and level,
    so the categories of a level add up to its subjects. Columns ``arm, soc, pt, <column>,
    n_subjects, N, pct``."""
    worst = (
        _levels(events)
        .with_columns(_rank=pl.col(column).replace_strict(rank, return_dtype=pl.Int64))
        .group_by(*HIERARCHY_KEYS, "subject_id")
        .agg(pl.col("_rank").max())
    )
    names = {r: c for c, r in rank.items()}
    counts = (
        worst.group_by(*HIERARCHY_KEYS, "_rank")
        .agg(n_subjects=pl.len())
        .with_columns(pl.col("_rank").replace_strict(names, return_dtype=pl.String).alias(column))
    )
    return (
        _with_pct(counts, denominators)
        .sort(*HIERARCHY_KEYS, "_rank")
        .select(*HIERARCHY_KEYS, column, "n_subjects", "N", "pct")
    )


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
    relatedness), ``serious`` (listing, with ``soc`` and ``pt``).

    Coded tables (ADAE ``AEBODSYS``/``AEDECOD``; uncoded events under :data:`NOT_CODED`):
    ``soc_pt`` (:func:`hierarchy_counts`: subjects and events by SOC and PT, any event and SOC
    totals included), ``soc_pt_severity`` and ``soc_pt_related`` (:func:`hierarchy_by_category`:
    worst severity, strongest relatedness per subject and level) and ``soc_pt_discontinuation``
    (events leading to withdrawal, :func:`_leading_to_discontinuation`; ``adsl`` then needs
    ``disposition_reason`` and optionally ``disposition_date``).
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

    coded = _coded(in_set)
    severity_order = {str(v): i for i, v in enumerate(severities)}
    soc_pt = hierarchy_counts(coded, denominators)
    soc_pt_severity = hierarchy_by_category(coded, denominators, "severity", severity_order)
    soc_pt_related = hierarchy_by_category(coded, denominators, "related", RELATEDNESS_STRENGTH)
    discontinued = _leading_to_discontinuation(coded, adsl, study)
    notes.append(
        f"{discontinued.height} AEs of subjects withdrawn because of an AE (onset on or before "
        "the withdrawal date)"
    )
    soc_pt_discontinuation = hierarchy_counts(discontinued, denominators)

    listing_cols = [
        c
        for c in (
            "subject_id",
            "arm",
            "ae_id",
            "term",
            "soc",
            "pt",
            "verbatim",
            "onset_date",
            "end_date",
            "ASTDY",
            "severity",
            "related",
        )
        if c in coded.columns and not (c == "arm" and "arm" not in adsl.columns)
    ]
    serious = coded.filter(pl.col("serious") == "Y").select(listing_cols).sort("subject_id")
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
            "soc_pt": soc_pt,
            "soc_pt_severity": soc_pt_severity,
            "soc_pt_related": soc_pt_related,
            "soc_pt_discontinuation": soc_pt_discontinuation,
        },
        notes=notes,
    )


def _leading_to_discontinuation(
    events: pl.DataFrame, adsl: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """Events of subjects whose disposition reason is the study's AE withdrawal reason
    (``ae_coding.discontinuation_reason``), with onset on or before the withdrawal date (any
    onset when the date is missing; none when ADSL has no disposition): the AE form has no
    action-taken field, so the AEs a subject had by the time of an AE withdrawal are the ones
    that led to it."""
    if study.ae_coding is None or "disposition_reason" not in adsl.columns:
        return events.head(0)
    date = "disposition_date" if "disposition_date" in adsl.columns else None
    reason = study.ae_coding.discontinuation_reason
    withdrawn = adsl.filter(pl.col("disposition_reason") == reason).select(
        "subject_id", *([pl.col(date).alias("_until")] if date else [])
    )
    joined = events.join(withdrawn, on="subject_id", how="inner")
    if date is None:
        return joined
    return joined.filter(
        pl.col("_until").is_null() | (pl.col("onset_date") <= pl.col("_until"))
    ).drop("_until")
