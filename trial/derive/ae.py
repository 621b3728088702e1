"""ADAE: one row per adverse event of the latest EDC snapshot, coded with the study's dictionary.

``TRTEMFL = "Y"`` when the onset is on or after the subject's first treatment session
(``adsl.trt_start_date``, the UTC date of the first session on one of their serials); an
untreated subject's events are not treatment-emergent. ``ASTDY`` / ``AENDY`` are study days of
onset and end (SAP section 10, no day 0).

Coding (study configuration section ``ae_coding``): ``AEDECOD`` (preferred term) and
``AEBODSYS`` (system organ class) from the dictionary entry of the AE form's ``term``, or, for
the configured ``other_term`` (``OTHER``), of its ``verbatim`` (lower case, runs of white space
as one space, ends trimmed). An event the dictionary does not code keeps null codes and is a
data-quality finding (:func:`ae_coding_findings`, ``AE_NOT_CODED``); the safety tables count
it under "Not coded", never drop it.
"""

from __future__ import annotations

import polars as pl

from study import Study
from study.config import AeCoding
from trial.derive.findings import FINDINGS_SCHEMA
from trial.derive.schedule import study_day

NOT_CODED = "AE_NOT_CODED"
"""Finding code of an AE the study dictionary does not code."""


def normalise_verbatim(text: str) -> str:
    """A verbatim as the dictionary compares it: lower case, white space runs as one space."""
    return " ".join(text.lower().split())


def _verbatim_key() -> pl.Expr:
    return pl.col("verbatim").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def code_events(ae: pl.LazyFrame, coding: AeCoding | None) -> pl.LazyFrame:
    """``ae`` with ``AEDECOD`` and ``AEBODSYS`` (null where the dictionary has no entry, and
    everywhere when the study configures none)."""
    terms = coding.terms if coding else {}
    verbatims = {normalise_verbatim(k): v for k, v in (coding.verbatims if coding else {}).items()}
    by_term = pl.LazyFrame(
        {
            "term": list(terms),
            "_pt_t": [v.pt for v in terms.values()],
            "_soc_t": [v.soc for v in terms.values()],
        },
        schema={"term": pl.String, "_pt_t": pl.String, "_soc_t": pl.String},
    )
    by_verbatim = pl.LazyFrame(
        {
            "_vkey": list(verbatims),
            "_pt_v": [v.pt for v in verbatims.values()],
            "_soc_v": [v.soc for v in verbatims.values()],
        },
        schema={"_vkey": pl.String, "_pt_v": pl.String, "_soc_v": pl.String},
    )
    other = pl.col("term") == (coding.other_term if coding else None)
    return (
        ae.with_columns(_vkey=_verbatim_key())
        .join(by_term, on="term", how="left", maintain_order="left")
        .join(by_verbatim, on="_vkey", how="left", maintain_order="left")
        .with_columns(
            AEDECOD=pl.when(other).then(pl.col("_pt_v")).otherwise(pl.col("_pt_t")),
            AEBODSYS=pl.when(other).then(pl.col("_soc_v")).otherwise(pl.col("_soc_t")),
        )
        .drop("_vkey", "_pt_t", "_soc_t", "_pt_v", "_soc_v")
    )


def derive_adae(ae: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """ADAE: the AE form's columns plus ``STUDYID``, ``AEDECOD``, ``AEBODSYS``, ``TRTEMFL``,
    ``ASTDY``, ``AENDY`` (and ``arm`` when ADSL carries it: an unblinded run)."""
    keep = ["subject_id", "bl_date", "trt_start_date"]
    if "arm" in adsl.columns:
        keep.append("arm")
    emergent = pl.col("onset_date") >= pl.col("trt_start_date")
    return (
        code_events(ae.lazy(), study.ae_coding)
        .join(adsl.lazy().select(keep), on="subject_id", how="left")
        .with_columns(
            STUDYID=pl.lit(study.study_id),
            TRTEMFL=pl.when(emergent.fill_null(False)).then(pl.lit("Y")).otherwise(pl.lit("N")),
            ASTDY=study_day(pl.col("onset_date"), pl.col("bl_date")),
            AENDY=study_day(pl.col("end_date"), pl.col("bl_date")),
        )
        .drop("bl_date", "trt_start_date")
        .select(
            "STUDYID", *ae.columns, "AEDECOD", "AEBODSYS", "TRTEMFL", "ASTDY", "AENDY", *keep[3:]
        )
        .sort("subject_id", "ae_id")
        .collect()
    )


def ae_coding_findings(adae: pl.DataFrame, study: Study) -> pl.DataFrame:
    """One finding per AE the study dictionary does not code (:data:`NOT_CODED`), with the AE
    form's file and line, in the derivation findings' schema."""
    other = study.ae_coding.other_term if study.ae_coding else None
    uncoded = adae.filter(pl.col("AEDECOD").is_null())
    why = (
        pl.when(pl.col("term") == other)
        .then(
            pl.format(
                "its verbatim '{}' is not in the study AE dictionary (ae_coding.verbatims)",
                pl.col("verbatim"),
            )
        )
        .otherwise(
            pl.format("its term {} is not in the study AE dictionary (ae_coding.terms)", "term")
        )
    )
    return uncoded.select(
        dataset=pl.lit("ae"),
        subject_id=pl.col("subject_id"),
        finding=pl.lit(NOT_CODED),
        detail=pl.format(
            "AE {} of {} is not coded: {}. Add the coding to the study configuration or query "
            "the site for a codable verbatim; until then it is counted under 'Not coded'.",
            pl.col("ae_id"),
            pl.col("subject_id"),
            why,
        ),
        source_file=pl.col("source_file"),
        source_line=pl.col("source_line").cast(pl.Int64),
    ).cast(FINDINGS_SCHEMA)
