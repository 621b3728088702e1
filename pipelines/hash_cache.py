"""The landing area's file hashes kept between runs (``OUT/.landing/file_hashes.parquet``).

Hashing every raw file on every run grows with the history (a trial's telemetry is several
GB). The landing manifest and ``ionto run``'s delivery keys take the hashes of files whose
path, size and modification time have not changed from this table
(:func:`ingest.landing.file_hashes`); the ``landing_manifest`` asset writes it afresh each
run.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ingest.landing import HASHES_SCHEMA
from pipelines.write_whole import written_whole


def hash_cache_path(out_dir: Path) -> Path:
    return Path(out_dir) / ".landing" / "file_hashes.parquet"


def read_hash_cache(out_dir: Path) -> pl.DataFrame | None:
    """The hashes an earlier run stored, or None (no earlier run, or a table of other columns:
    then everything is hashed again)."""
    path = hash_cache_path(out_dir)
    if not path.is_file():
        return None
    hashes = pl.read_parquet(path)
    return hashes if hashes.schema == HASHES_SCHEMA else None


def write_hash_cache(out_dir: Path, hashes: pl.DataFrame) -> None:
    """Store ``hashes`` (written aside, then renamed: a reader never sees half a table)."""
    with written_whole(hash_cache_path(out_dir)) as writing:
        hashes.write_parquet(writing)
