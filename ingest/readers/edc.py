"""EDC exports (``dm``, ``eligibility``, ``visits``, ``hdss``, ``ae``, ``disposition``,
``devices``) and the sealed ``randomisation`` list: CSV with a header row.

Each centre delivers cumulative snapshots; the current snapshot of each centre (the landing
manifest's ``is_current``) is read and the centres are stacked. Columns and types come from the
table's contract (``data_contracts/<table>.odcs.yaml``); every row carries ``source_file`` and
``source_line``. A second row with the same primary key within one snapshot is quarantined as
``DUPLICATE_KEY`` (the first row is kept: a snapshot should not repeat a key).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import polars as pl

from data_contracts.contracts import (
    Contract,
    empty_frame,
    file_columns,
    load_contract,
    type_text_frame,
)
from ingest.manifest import current_files
from ingest.quarantine import combine, empty_quarantine
from ingest.readers.text import csv_text_frame, decode_file, relative_name
from ingest.snapshots import carried_rows
from ingest.source_format import Resolution, Resolved, SourceFormat


def duplicate_key_rows(
    typed: pl.DataFrame, raw: pl.DataFrame, contract: Contract, dataset: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split off rows repeating an earlier row's primary key in the same file."""
    key = contract.primary_key
    if not key or typed.height == 0:
        return typed, empty_quarantine()
    dup = pl.struct(key).is_first_distinct().over("source_file").not_()
    flagged = typed.with_columns(_dup=dup)
    bad = flagged.filter(pl.col("_dup")).join(
        raw.select("source_line", "raw_text"), on="source_line", how="left"
    )
    first_line = flagged.group_by(["source_file", *key]).agg(_first=pl.col("source_line").min())
    bad = bad.join(first_line, on=["source_file", *key], how="left")
    key_text = pl.concat_str([pl.col(k).cast(pl.String) for k in key], separator=", ")
    quarantine = bad.select(
        pl.lit(dataset).alias("dataset"),
        pl.col("source_file"),
        pl.col("source_line"),
        pl.lit(",".join(key)).alias("field"),
        pl.lit("DUPLICATE_KEY").alias("reason_code"),
        pl.format(
            "{} line {}: key ({})=({}) already on line {}; a snapshot holds one row per key",
            pl.col("source_file"),
            pl.col("source_line"),
            pl.lit(", ".join(key)),
            key_text,
            pl.col("_first"),
        ).alias("message"),
        pl.col("raw_text"),
    )
    return flagged.filter(~pl.col("_dup")).drop("_dup"), quarantine


def read_edc_file(path: Path, raw_root: Path, table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One EDC CSV (or the sealed list) -> (typed rows, quarantine)."""
    contract = load_contract(table)
    src = relative_name(Path(path), Path(raw_root))
    decoded, q_file = decode_file(Path(path).read_bytes(), src, table)
    if decoded is None:
        return empty_frame(contract), q_file
    text, q_rows = csv_text_frame(decoded, table, file_columns(contract))
    if text is None:
        return empty_frame(contract), q_rows
    typed, q_values = type_text_frame(text, contract, table)
    typed, q_dups = duplicate_key_rows(typed, text, contract, table)
    return typed.select(contract.columns), combine([q_rows, q_values, q_dups])


def read_edc_files(
    paths: Sequence[Path], raw_root: Path, table: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Several files of one table stacked (e.g. each centre's current snapshot)."""
    contract = load_contract(table)
    frames: list[pl.DataFrame] = [empty_frame(contract)]
    quarantines: list[pl.DataFrame] = []
    for path in paths:
        typed, q = read_edc_file(path, raw_root, table)
        frames.append(typed)
        quarantines.append(q)
    return pl.concat(frames, how="vertical"), combine(quarantines)


def read_edc_table(
    raw_root: Path, manifest: pl.DataFrame, table: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The current snapshot of ``table`` from every centre -> (typed rows, quarantine)."""
    paths = [Path(raw_root) / p for p in current_files(manifest, table)["source_file"]]
    return read_edc_files(paths, Path(raw_root), table)


def read_randomisation(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The sealed randomisation list (unblinded runs only); ``source_file`` is
    ``<folder>/randomisation.csv``, e.g. ``sealed/randomisation.csv``."""
    path = Path(path)
    return read_edc_file(path, path.parent.parent, "randomisation")


def snapshot_in_force(resolution: Resolution, table: str) -> Resolved:
    """``table`` from the rows of each centre's current snapshot (the landing manifest's
    current versions), centres in delivery order, plus the rows of earlier snapshots that stay
    in force when the latest lacks them (:func:`ingest.snapshots.carried_rows`, each named by
    a finding)."""
    contract = load_contract(table)
    rows = resolution.current_rows(table)
    carried, findings = carried_rows(
        table, resolution.delivered_rows(table), resolution.manifest, resolution.reader_quarantine
    )
    if carried.height:
        rows = pl.concat([rows.select(contract.columns), carried.select(contract.columns)])
    typed = rows.select(contract.columns) if rows.height else empty_frame(contract)
    return Resolved({table: typed}, findings=findings)


def edc_source(table: str) -> SourceFormat:
    """The registry entry of the EDC export ``<table>.csv`` (dataset and contract ``table``):
    read per delivery, resolved to the current snapshot of every centre."""
    return SourceFormat(
        kind=table,
        pattern=rf"^{table}\.csv$",
        datasets=(table,),
        read=partial(read_edc_files, table=table),
        resolve=partial(snapshot_in_force, table=table),
        edc=True,
    )


SEALED_LIST = SourceFormat(kind="randomisation", pattern=r"^randomisation\.csv$")
"""The sealed randomisation list: never read from the raw tree (a copy found in a centre
folder is quarantined by the landing area); an unblinded run reads it from its own path
(:func:`read_randomisation`)."""
