"""EDC snapshots in force: a shrinking cumulative snapshot never makes rows vanish.

An EDC export is a cumulative snapshot: a centre's latest ``<table>.csv`` replaces its earlier
ones (``specs/site-exports.md`` section 1). When the latest snapshot lacks a row (by the table's
key) that an earlier snapshot of the same centre had - because the row was cut, quarantined, or
the whole file is empty, cut to its header or unreadable - the row of the latest earlier
snapshot that has it stays in force, and a finding names it (``SNAPSHOT_ROW_MISSING``; an
unreadable latest file is also named once, ``SNAPSHOT_UNREADABLE``). A later snapshot that has
the row again settles it: its row is then the one in force and the finding is gone.
"""

from __future__ import annotations

import polars as pl

from data_contracts.contracts import load_contract
from data_contracts.trial_rules import FINDINGS_SCHEMA, rule_message
from ingest.integrity import quarantined_keys

SNAPSHOT_KEYS = {"devices": ["subject_id", "device_serial"]}
"""Keys that differ from the contract's primary key: a corrected ``from_date`` of an assignment
is the same assignment, not a vanished one."""


def snapshot_key(table: str) -> list[str]:
    """Columns that identify a row across snapshots of ``table``: the contract's primary key
    (with ``subject_id`` first when the key lacks it), or :data:`SNAPSHOT_KEYS`."""
    if table in SNAPSHOT_KEYS:
        return SNAPSHOT_KEYS[table]
    key = list(load_contract(table).primary_key)
    return key if "subject_id" in key else ["subject_id", *key]


def carried_rows(
    table: str, rows: pl.DataFrame, manifest: pl.DataFrame, quarantine: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of every delivered version of ``table`` (each with ``source_file``) -> (rows of
    earlier versions that stay in force beside the current versions' rows, by file and line;
    findings).

    ``manifest``: the landing manifest (versions, ``is_current``); ``quarantine``: the readers'
    quarantine (an unreadable current file is one with a whole-file row)."""
    files = manifest.filter(pl.col("kind") == table).select(
        "source_file", _centre="centre_id", _delivered="delivery_date", _current="is_current"
    )
    if rows.height == 0 or files.height == 0:
        return rows.clear(), pl.DataFrame(schema=FINDINGS_SCHEMA)
    key = snapshot_key(table)
    located = rows.join(files, on="source_file", how="inner")
    current = located.filter(pl.col("_current"))
    earlier = located.filter(~pl.col("_current"))
    latest_file = files.filter(pl.col("_current")).select("_centre", latest="source_file")
    carried = (
        earlier.sort("_delivered", "source_line")
        .unique([*key, "_centre"], keep="last", maintain_order=True)
        .join(current.select("_centre", *key), on=["_centre", *key], how="anti")
        .join(latest_file, on="_centre", how="left")
        .sort("source_file", "source_line")
    )
    whole = quarantine.filter(pl.col("source_line").is_null()).select(
        latest="source_file", _why="reason_code"
    )
    unreadable = latest_file.join(whole, on="latest", how="inner").unique("latest")
    held = (
        quarantined_keys(quarantine, table, key)
        .select(*key, latest="source_file", _held="source_line")
        .unique([*key, "latest"])
    )
    carried_by_file = (
        carried.join(unreadable.select("latest", "_why"), on="latest", how="left")
        .with_columns(pl.col(k).cast(pl.String).alias(f"_k{i}") for i, k in enumerate(key))
        .join(
            held.rename({k: f"_k{i}" for i, k in enumerate(key)}),
            on=[*(f"_k{i}" for i in range(len(key))), "latest"],
            how="left",
        )
    )
    what = pl.format(
        "{} row {} of an earlier snapshot is {} the latest {}",
        pl.lit(table),
        pl.concat_str([pl.col(k).cast(pl.String) for k in key], separator="/"),
        pl.when(pl.col("_why").is_not_null())
        .then(pl.format("not readable in (whole file quarantined, {})", pl.col("_why")))
        .when(pl.col("_held").is_not_null())
        .then(pl.format("quarantined at line {} of", pl.col("_held")))
        .otherwise(pl.lit("absent from")),
        pl.col("latest"),
    )
    row_findings = carried_by_file.select(
        dataset=pl.lit(table),
        subject_id=pl.col("subject_id"),
        finding=pl.lit("SNAPSHOT_ROW_MISSING"),
        detail=rule_message("SNAPSHOT_ROW_MISSING", what),
        source_file=pl.col("source_file"),
        source_line=pl.col("source_line").cast(pl.Int64),
    )
    file_findings = unreadable.with_columns(
        source_file=pl.col("latest"), source_line=pl.lit(None, dtype=pl.Int64)
    ).select(
        dataset=pl.lit(table),
        subject_id=pl.lit(None, dtype=pl.String),
        finding=pl.lit("SNAPSHOT_UNREADABLE"),
        detail=rule_message(
            "SNAPSHOT_UNREADABLE",
            pl.format("{} snapshot quarantined whole ({})", pl.lit(table), pl.col("_why")),
        ).alias("detail"),
        source_file=pl.col("source_file"),
        source_line=pl.col("source_line"),
    )
    findings = pl.concat([file_findings, row_findings]).cast(dict(FINDINGS_SCHEMA))  # type: ignore[arg-type]
    return carried.select(rows.columns), findings
