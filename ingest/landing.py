"""The landing area: every raw file on record, its kind, hash and which version is current.

A raw root is laid out as ``<raw>/<centre_id>/<delivery_date>/<file>`` (``specs/site-exports.md``).
Nothing under it is ever deleted. :func:`scan_raw` records every file version in a manifest
frame (contract ``landing_manifest``): relative path, centre, delivery date, file name, kind,
size, SHA-256, and its place in the version chain of (centre folder, file name):

- EDC tables are cumulative snapshots, gravimetry worksheets and device exports are
  incremental, but both follow one rule: the copy in the latest delivery folder of a centre
  supersedes earlier copies of the same file name whole (``superseded_by`` names the next
  version, ``is_current`` marks the last);
- a version whose bytes equal the previous version's is a repeat (``repeat_of``); its
  ``content_delivered`` stays the date its bytes first arrived, which is what later-delivery-wins
  rules between different files compare (so a repeat changes no outcome);
- the scan is a pure function of the tree, so re-reading a delivery changes nothing.

A file whose path is not ``<centre>/<YYYY-MM-DD>/<file>`` or whose name matches no known format
has kind ``unknown``; :func:`landing_quarantine` lists those (reason ``UNKNOWN_FILE``), plus any
sealed randomisation list found inside a centre folder (``SEALED_LIST_IN_RAW``: never read).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import polars as pl

from data_contracts.contracts import QUARANTINE_SCHEMA, load_contract

EDC_TABLES = ("dm", "eligibility", "visits", "hdss", "ae", "cm", "disposition", "devices")
"""EDC exports a centre delivers (``randomisation`` is sealed and never in a centre folder)."""

KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    *((t, re.compile(rf"^{t}\.csv$")) for t in EDC_TABLES),
    ("randomisation", re.compile(r"^randomisation\.csv$")),
    ("gravimetry", re.compile(r"^gravimetry_.+\.csv$")),
    ("vendor_a", re.compile(r"^ionto-a_[^_]+_\d{8}\.csv$")),
    ("vendor_b", re.compile(r"^ionto-b_[^_]+_\d{14}\.jsonl$")),
    ("bench_ibu", re.compile(r"^(bench_)?ibu[_-].*\.jsonl$")),
    ("balance", re.compile(r"^(bench_)?balance[_-].*\.jsonl$")),
    ("capture_state", re.compile(r"^capture-(ibu|balance)\.checkpoint\.json(\.tmp)?$")),
)
"""File name -> kind, first match wins (the bench readers' engineer owns the bench names)."""

UNKNOWN = "unknown"
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def classify(file_name: str) -> str:
    """The kind of a raw file from its name: an EDC table name, ``gravimetry``, ``vendor_a``,
    ``vendor_b``, ``bench_ibu``, ``balance``, or ``unknown``."""
    for kind, pattern in KIND_PATTERNS:
        if pattern.match(file_name):
            return kind
    return UNKNOWN


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _delivery_date(folder: str) -> date | None:
    if not _DATE_DIR.match(folder):
        return None
    try:
        return date.fromisoformat(folder)
    except ValueError:
        return None


HASHES_SCHEMA = pl.Schema(
    {"source_file": pl.String, "size_bytes": pl.Int64, "mtime_ns": pl.Int64, "sha256": pl.String}
)
"""Columns of :func:`file_hashes`."""


def file_hashes(raw_root: Path, earlier: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every file under ``raw_root``: ``source_file`` (relative path), ``size_bytes``,
    ``mtime_ns`` (modification time, ns) and ``sha256``, sorted by path.

    A file whose path, size and modification time equal a row of ``earlier`` (an earlier
    call's result) keeps that row's hash instead of being read again: in the landing area a
    file is only ever written whole under its final name (``ingest.deliveries``), and writing
    it again changes its modification time. This keeps a refresh from re-reading gigabytes
    of earlier telemetry."""
    raw_root = Path(raw_root)
    known: dict[tuple[str, int, int], str] = {}
    if earlier is not None:
        for rel, size, mtime, sha in earlier.select(HASHES_SCHEMA.names()).iter_rows():
            known[(rel, size, mtime)] = sha
    rows = []
    for path in sorted(p for p in raw_root.rglob("*") if p.is_file()):
        stat = path.stat()
        rel = path.relative_to(raw_root).as_posix()
        sha = known.get((rel, stat.st_size, stat.st_mtime_ns)) or sha256_of(path)
        rows.append((rel, stat.st_size, stat.st_mtime_ns, sha))
    return pl.DataFrame(rows, schema=HASHES_SCHEMA, orient="row")


def scan_raw(raw_root: Path, hashes: pl.DataFrame | None = None) -> pl.DataFrame:
    """The manifest of every file under ``raw_root`` (contract ``landing_manifest``), sorted by
    centre, delivery date and file name. ``hashes``: the files' :func:`file_hashes` when the
    caller has them (else they are computed)."""
    raw_root = Path(raw_root)
    if hashes is None:
        hashes = file_hashes(raw_root)
    records: list[dict[str, object]] = []
    for rel_text, size, _mtime, sha in hashes.iter_rows():
        rel = Path(rel_text)
        parts = rel.parts
        delivered = _delivery_date(parts[1]) if len(parts) == 3 else None
        well_placed = delivered is not None
        records.append(
            {
                "source_file": rel_text,
                "centre_id": parts[0] if well_placed else None,
                "delivery_date": delivered,
                "file_name": rel.name,
                "kind": classify(rel.name) if well_placed else UNKNOWN,
                "size_bytes": size,
                "sha256": sha,
            }
        )
    contract = load_contract("landing_manifest")
    if not records:
        return pl.DataFrame(schema=contract.schema)
    base = pl.DataFrame(records, schema={k: contract.schema[k] for k in records[0]})
    # Version chains: (centre, file name) for well-placed files, the path itself otherwise.
    chain = (
        pl.when(pl.col("delivery_date").is_not_null())
        .then(pl.concat_str("centre_id", "file_name", separator="/"))
        .otherwise(pl.col("source_file"))
    )
    manifest = (
        base.with_columns(_chain=chain)
        .sort("_chain", "delivery_date", "source_file")
        .with_columns(
            version=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("_chain"),
            superseded_by=pl.col("source_file").shift(-1).over("_chain"),
            _prev_file=pl.col("source_file").shift(1).over("_chain"),
            _prev_sha=pl.col("sha256").shift(1).over("_chain"),
        )
        .with_columns(
            is_current=pl.col("superseded_by").is_null(),
            repeat_of=pl.when(pl.col("_prev_sha") == pl.col("sha256")).then(pl.col("_prev_file")),
            _run=(pl.col("_prev_sha") != pl.col("sha256")).fill_null(True).cum_sum().over("_chain"),
        )
        .with_columns(
            content_delivered=pl.col("delivery_date").first().over("_chain", "_run"),
        )
        .sort("centre_id", "delivery_date", "file_name", "source_file", nulls_last=True)
    )
    return manifest.select(contract.columns)


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


def landing_quarantine(manifest: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows for files the readers will not read: unknown names or layout
    (``UNKNOWN_FILE``) and a sealed randomisation list in a centre folder
    (``SEALED_LIST_IN_RAW``)."""
    unknown = manifest.filter(pl.col("kind") == UNKNOWN).select(
        pl.lit("landing").alias("dataset"),
        pl.col("source_file"),
        pl.lit(None, dtype=pl.Int64).alias("source_line"),
        pl.lit(None, dtype=pl.String).alias("field"),
        pl.lit("UNKNOWN_FILE").alias("reason_code"),
        pl.format(
            "{}: not read: the path is not <centre>/<YYYY-MM-DD>/<file> or the file name "
            "matches no raw format of site-exports.md",
            pl.col("source_file"),
        ).alias("message"),
        pl.lit(None, dtype=pl.String).alias("raw_text"),
    )
    sealed = manifest.filter(pl.col("kind") == "randomisation").select(
        pl.lit("randomisation").alias("dataset"),
        pl.col("source_file"),
        pl.lit(None, dtype=pl.Int64).alias("source_line"),
        pl.lit(None, dtype=pl.String).alias("field"),
        pl.lit("SEALED_LIST_IN_RAW").alias("reason_code"),
        pl.format(
            "{}: not read: the sealed randomisation list must never be delivered into a "
            "centre folder; tell the unblinded statistician",
            pl.col("source_file"),
        ).alias("message"),
        pl.lit(None, dtype=pl.String).alias("raw_text"),
    )
    return pl.concat([unknown, sealed]).cast(dict(QUARANTINE_SCHEMA))  # type: ignore[arg-type]
