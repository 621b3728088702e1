"""Subject accountability: every subject seen anywhere keeps a row in ADSL.

A subject is seen when any delivered row names them: a ``dm.csv`` row (read or quarantined), a
row of another subject-keyed table (kept or quarantined: the first CSV field of a quarantined
row, when it has the form of a subject id), or the sealed randomisation list in an unblinded
run. :func:`subjects_seen` says for each one what is missing or quarantined and why:

- ``dm_status``: ``READ`` (their ``dm.csv`` row was read), ``QUARANTINED`` (a ``dm.csv`` names
  them but the row was quarantined: demographics and stratum unknown) or ``ABSENT`` (in no
  ``dm.csv``: seen only elsewhere, e.g. a paper for an unknown subject, whose rows the
  trial-level rules quarantined);
- ``data_issues``: one sentence per issue with file and line (the quarantined ``dm`` row's
  message; per other dataset the number of quarantined rows, their reason codes and the first
  row), ``; ``-joined; null when there is none.

:func:`trial.derive.subjects.derive_adsl` adds a row for each subject not in ``dm`` with these
columns: a subject without readable demographics can still be randomised and treated, but not
analysed in a model that needs centre and stratum (FAS and PP require ``dm_status`` READ).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from data_contracts.contracts import load_contract

DM_READ = "READ"
DM_QUARANTINED = "QUARANTINED"
DM_ABSENT = "ABSENT"
SUBJECT_TABLES = ("eligibility", "visits", "hdss", "ae", "cm", "disposition", "devices")
"""Raw tables whose first CSV field is the subject id (besides ``dm`` and ``gravimetry``)."""
MAX_LISTED = 3
"""Quarantined rows named one by one per subject and dataset before '... and n more'."""


def _folder_centre() -> pl.Expr:
    return pl.col("source_file").str.split("/").list.first()


def _quarantined(quarantine: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows of subject-keyed CSV datasets with the subject id of their first field
    (rows whose first field is not a subject id are left out: nothing to attribute)."""
    pattern = load_contract("dm").prop("subject_id").pattern or r"^[A-Z0-9]+-[0-9]+$"
    datasets = ("dm", "gravimetry", *SUBJECT_TABLES)
    return (
        quarantine.filter(
            pl.col("dataset").is_in(datasets)
            & pl.col("source_line").is_not_null()
            & pl.col("raw_text").is_not_null()
        )
        .with_columns(
            subject_id=pl.col("raw_text")
            .str.strip_prefix("\ufeff")
            .str.split(",")
            .list.first()
            .str.strip_chars(' "')
        )
        .filter(pl.col("subject_id").str.contains(pattern))
    )


def subjects_seen(
    dm: pl.DataFrame,
    quarantine: pl.DataFrame,
    tables: Mapping[str, pl.DataFrame],
    randomisation: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per subject seen anywhere: ``subject_id``, ``centre_id`` (dm's, else the folder
    of the first file naming them), ``dm_status``, ``data_issues`` and ``source_records``
    (``<file>:<line>`` of the row that registers them). ``tables``: the kept raw tables keyed
    by dataset name (any of ``gravimetry`` and :data:`SUBJECT_TABLES`)."""
    held = _quarantined(quarantine)
    record = pl.format("{}:{}", pl.col("source_file"), pl.col("source_line"))
    sightings = [
        dm.select("subject_id", centre_id="centre_id", _order=pl.lit(0), _record=record),
        held.filter(pl.col("dataset") == "dm").select(
            "subject_id", centre_id=_folder_centre(), _order=pl.lit(1), _record=record
        ),
    ]
    for frame in tables.values():
        if frame.height and "subject_id" in frame.columns:
            sightings.append(
                frame.select(
                    "subject_id", centre_id=_folder_centre(), _order=pl.lit(2), _record=record
                )
            )
    sightings.append(
        held.filter(pl.col("dataset") != "dm").select(
            "subject_id", centre_id=_folder_centre(), _order=pl.lit(3), _record=record
        )
    )
    if randomisation is not None and randomisation.height:
        sightings.append(
            randomisation.select(
                "subject_id",
                centre_id=pl.lit(None, dtype=pl.String),
                _order=pl.lit(4),
                _record=record,
            )
        )
    seen = (
        pl.concat(sightings, how="vertical_relaxed")
        .sort("_order", "_record")
        .group_by("subject_id", maintain_order=True)
        .agg(
            centre_id=pl.col("centre_id").drop_nulls().first(),
            _best=pl.col("_order").min(),
            source_records=pl.col("_record").first(),
        )
        .with_columns(
            dm_status=pl.when(pl.col("_best") == 0)
            .then(pl.lit(DM_READ))
            .when(pl.col("_best") == 1)
            .then(pl.lit(DM_QUARANTINED))
            .otherwise(pl.lit(DM_ABSENT))
        )
    )
    return seen.join(_issues(held), on="subject_id", how="left").select(
        "subject_id", "centre_id", "dm_status", "data_issues", "source_records"
    )


def _issues(held: pl.DataFrame) -> pl.DataFrame:
    """``subject_id, data_issues`` from their quarantined rows: a quarantined dm row with its
    message; per other dataset, the count, reason codes and the first rows' places."""
    dm_rows = held.filter(pl.col("dataset") == "dm").select(
        "subject_id", _issue=pl.format("dm row quarantined ({})", pl.col("message")), _k=pl.lit(0)
    )
    others = (
        held.filter(pl.col("dataset") != "dm")
        .sort("source_file", "source_line")
        .group_by("subject_id", "dataset", maintain_order=True)
        .agg(
            n=pl.len(),
            codes=pl.col("reason_code").unique().sort().str.join(", "),
            places=pl.format("{} line {}", "source_file", "source_line").head(MAX_LISTED),
        )
        .select(
            "subject_id",
            _issue=pl.format(
                "{} {} row(s) quarantined ({}): {}{}",
                pl.col("n"),
                pl.col("dataset"),
                pl.col("codes"),
                pl.col("places").list.join(", "),
                pl.when(pl.col("n") > MAX_LISTED)
                .then(pl.format(" and {} more", pl.col("n") - MAX_LISTED))
                .otherwise(pl.lit("")),
            ),
            _k=pl.lit(1),
        )
    )
    return (
        pl.concat([dm_rows, others])
        .sort("subject_id", "_k", "_issue")
        .group_by("subject_id", maintain_order=True)
        .agg(data_issues=pl.col("_issue").str.join("; "))
    )
