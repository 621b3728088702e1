"""Questions asked of a landing manifest (contract ``landing_manifest``, made by
:func:`ingest.landing.scan_raw`): which file versions are current, by kind, and how many were
superseded. Kept apart from the landing scan so that readers can ask them without importing
the registry of formats the scan classifies files by."""

from __future__ import annotations

import polars as pl


def current_files(manifest: pl.DataFrame, kind: str | None = None) -> pl.DataFrame:
    """Current versions (optionally of one kind), in delivery order (date, centre, file name)."""
    current = manifest.filter(pl.col("is_current"))
    if kind is not None:
        current = current.filter(pl.col("kind") == kind)
    return current.sort("delivery_date", "centre_id", "file_name", nulls_last=True)


def current_by_kind(manifest: pl.DataFrame) -> dict[str, list[str]]:
    """Kind -> relative paths of its current files, in delivery order."""
    current = current_files(manifest)
    return {
        str(kind): frame["source_file"].to_list()
        for (kind,), frame in current.group_by("kind", maintain_order=True)
    }


def n_superseded(manifest: pl.DataFrame) -> int:
    """File versions superseded by a later delivery of the same (centre, file name)."""
    return int(manifest.filter(~pl.col("is_current")).height)
