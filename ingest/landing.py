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

A file's kind is that of the first raw format of the registry (:mod:`ingest.registry`) whose
pattern its name matches; which versions are current is asked of the manifest with
:mod:`ingest.manifest`. Where a file lies never stops a run: a file whose path is not
``<centre>/<YYYY-MM-DD>/<file>`` (``YYYY-MM-DD`` a real date) or whose name matches no
registered format has kind ``unknown``, and :func:`landing_quarantine` lists it
(``UNKNOWN_FILE`` for a file at the root, at centre level or of an unknown name;
``UNKNOWN_FOLDER`` for a file in a folder that is no delivery folder:
``latest``, ``2026-02-30``, a folder nested in a delivery). Symbolic links are never followed
(kind ``symlink``, reason ``SYMLINK``: a link out of the raw root would let any file of the
machine into the quarantine; a linked delivery folder is listed, not read). A copy of the
sealed randomisation list - by its name, or by its header or rows whatever its name and
place (:mod:`ingest.sealed`) - has kind ``randomisation`` and is never opened by a reader
(``SEALED_LIST_IN_RAW``, without any of its content).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import polars as pl

from data_contracts.contracts import QUARANTINE_SCHEMA, load_contract
from ingest.readers.edc import SEALED_LIST
from ingest.registry import SOURCES
from ingest.sealed import SNIFF_BYTES, SealedListSignature, file_looks_sealed, looks_sealed
from ingest.source_format import SourceFormat

UNKNOWN = "unknown"
SYMLINK = "symlink"
"""Kind of a symbolic link anywhere under the raw root (never followed)."""
SEALED = SEALED_LIST.kind
"""Kind of a copy of the sealed list (by name or by content): never read."""
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def classify(file_name: str, sources: Sequence[SourceFormat] = SOURCES) -> str:
    """The kind of a raw file from its name: the kind of the first registered format whose
    pattern it matches (:mod:`ingest.registry`), or ``unknown``."""
    for source in sources:
        if source.matches(file_name):
            return source.kind
    return UNKNOWN


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def delivery_date(folder: str) -> date | None:
    """The date a delivery folder's name gives (``YYYY-MM-DD``, a real date), else None."""
    if not _DATE_DIR.match(folder):
        return None
    try:
        return date.fromisoformat(folder)
    except ValueError:
        return None


def is_centre_folder(name: str) -> bool:
    """A folder at the raw root holds a centre's deliveries unless hidden (``.name``)."""
    return not name.startswith(".")


def placed_delivery_date(parts: tuple[str, ...]) -> date | None:
    """The delivery date of a path (relative parts) laid out as ``<centre>/<YYYY-MM-DD>/<file>``,
    else None."""
    if len(parts) != 3 or not is_centre_folder(parts[0]):
        return None
    return delivery_date(parts[1])


HASHES_SCHEMA = pl.Schema(
    {
        "source_file": pl.String,
        "size_bytes": pl.Int64,
        "mtime_ns": pl.Int64,
        "sha256": pl.String,
        "symlink": pl.Boolean,
        "sealed": pl.Boolean,
    }
)
"""Columns of :func:`file_hashes`."""


def tree_entries(root: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry under ``root`` (files, folders, links, special files) with its path
    relative to ``root`` (POSIX), never following a link: a folder's entries sorted by name,
    then the entries of each of its subfolders in that order. A folder that cannot be listed
    is skipped, as ``os.walk`` skips it. One ``os.scandir`` per folder; an entry's ``lstat``
    is its ``stat(follow_symlinks=False)`` (the walk with ``pathlib`` it replaces took two to
    five times as long on the demo's 3,207 files)."""

    def visit(folder: str, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        try:
            with os.scandir(folder) as listing:
                found = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            return
        for entry in found:
            yield prefix + entry.name, entry
        for entry in found:
            if entry.is_dir(follow_symlinks=False):
                yield from visit(entry.path, f"{prefix}{entry.name}/")

    yield from visit(str(root), "")


def raw_entries(raw_root: Path) -> list[tuple[str, os.stat_result, bool]]:
    """Every regular file and every symbolic link (to a file or a folder, dangling or not)
    under ``raw_root``, never following a link: a linked folder is one entry, not its files.
    Each as (its path relative to ``raw_root``, POSIX; its own ``lstat``; whether it is a
    link), sorted by path as ``pathlib`` sorts paths (part by part)."""
    found = [
        (rel, entry.stat(follow_symlinks=False), entry.is_symlink())
        for rel, entry in tree_entries(raw_root)
        if entry.is_symlink() or entry.is_file(follow_symlinks=False)
    ]
    return sorted(found, key=lambda item: item[0].split("/"))


def _hash_and_judge(path: Path, signature: SealedListSignature) -> tuple[str, bool]:
    """SHA-256 of a regular file and whether its first bytes are the sealed list's, in one
    read of the file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
        digest.update(head)
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest(), looks_sealed(head, signature)


def _link_sha256(path: Path) -> str:
    """A link's hash is that of the path it holds (its target is never opened)."""
    return hashlib.sha256(os.fsencode(os.readlink(path))).hexdigest()


def file_hashes(
    raw_root: Path,
    earlier: pl.DataFrame | None = None,
    sealed: SealedListSignature | None = None,
) -> pl.DataFrame:
    """Every entry of :func:`raw_entries`: ``source_file`` (relative path), ``size_bytes``,
    ``mtime_ns`` (modification time, ns), ``sha256``, ``symlink`` (a link: size, time and hash
    are the link's own, its target is never opened) and ``sealed`` (the file's first bytes are
    the sealed randomisation list's, :mod:`ingest.sealed`; ``sealed``: the study's signature,
    None for the header rule only), sorted by path.

    A file whose path, size and modification time equal a row of ``earlier`` (an earlier
    call's result) keeps that row's hash and ``sealed`` instead of being read again: in the
    landing area a file is only ever written whole under its final name
    (``ingest.deliveries``), and writing it again changes its modification time. This keeps a
    refresh from re-reading gigabytes of earlier telemetry; ``ionto run --verify`` passes no
    ``earlier`` and so reads every file (``docs/incremental.md``)."""
    raw_root = Path(raw_root)
    signature = sealed or SealedListSignature.header_only()
    known: dict[tuple[str, int, int], tuple[str, bool]] = {}
    if earlier is not None:
        rows = earlier.filter(~pl.col("symlink")).select(
            "source_file", "size_bytes", "mtime_ns", "sha256", "sealed"
        )
        for rel, size, mtime, sha, is_sealed in rows.iter_rows():
            known[(rel, size, mtime)] = (sha, is_sealed)
    found = []
    for rel, stat, link in raw_entries(raw_root):
        path = raw_root / rel
        if link:
            found.append((rel, stat.st_size, stat.st_mtime_ns, _link_sha256(path), True, False))
            continue
        sha, is_sealed = known.get((rel, stat.st_size, stat.st_mtime_ns)) or _hash_and_judge(
            path, signature
        )
        found.append((rel, stat.st_size, stat.st_mtime_ns, sha, False, is_sealed))
    return pl.DataFrame(found, schema=HASHES_SCHEMA, orient="row")


def file_kind(
    path: Path, sealed: SealedListSignature, sources: Sequence[SourceFormat] = SOURCES
) -> str:
    """The kind of the regular file ``path`` in a delivery folder: ``randomisation`` if its
    name or its first bytes are the sealed list's, else its name's :func:`classify`."""
    if file_looks_sealed(path, sealed):
        return SEALED
    return classify(path.name, sources)


def _kind(
    parts: tuple[str, ...],
    well_placed: bool,
    symlink: bool,
    sealed: bool,
    sources: Sequence[SourceFormat],
) -> str:
    if symlink:
        return SYMLINK
    kind = classify(parts[-1], sources)
    if sealed or kind == SEALED:
        return SEALED
    return kind if well_placed else UNKNOWN


def scan_raw(
    raw_root: Path,
    hashes: pl.DataFrame | None = None,
    sealed: SealedListSignature | None = None,
    sources: Sequence[SourceFormat] = SOURCES,
) -> pl.DataFrame:
    """The manifest of every entry under ``raw_root`` (contract ``landing_manifest``), sorted
    by centre, delivery date and file name; kinds from the registry ``sources``. ``hashes``:
    the entries' :func:`file_hashes` when the caller has them (else they are computed, with
    the sealed-list signature ``sealed``). Only a regular file in ``<centre>/<YYYY-MM-DD>/``
    has a centre and a delivery date."""
    raw_root = Path(raw_root)
    if hashes is None:
        hashes = file_hashes(raw_root, sealed=sealed)
    records: list[dict[str, object]] = []
    for rel_text, size, _mtime, sha, symlink, is_sealed in hashes.select(
        HASHES_SCHEMA.names()
    ).iter_rows():
        rel = Path(rel_text)
        parts = rel.parts
        delivered = None if symlink else placed_delivery_date(parts)
        well_placed = delivered is not None
        records.append(
            {
                "source_file": rel_text,
                "centre_id": parts[0] if well_placed else None,
                "delivery_date": delivered,
                "file_name": rel.name,
                "kind": _kind(parts, well_placed, symlink, is_sealed, sources),
                "size_bytes": size,
                "sha256": sha,
            }
        )
    contract = load_contract("landing_manifest")
    if not records:
        return pl.DataFrame(schema=contract.schema)
    base = pl.DataFrame(records, schema={k: contract.schema[k] for k in records[0]})
    # Version chains: (centre, file name) for well-placed files, the path itself otherwise; a
    # copy of the sealed list is a version of nothing (a copy named dm.csv does not supersede
    # the centre's dm snapshot).
    chain = (
        pl.when(pl.col("delivery_date").is_not_null() & (pl.col("kind") != SEALED))
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


def _misplaced_message() -> pl.Expr:
    """Why an ``unknown`` file is not read, from its place (see :func:`landing_quarantine`)."""
    parts = pl.col("source_file").str.split("/")
    depth = parts.list.len()
    folder = parts.list.head(depth - 1).list.join("/")
    return (
        pl.when(depth == 1)
        .then(
            pl.format(
                "{}: not read: a file at the raw root; deliveries go into "
                "<centre>/<YYYY-MM-DD>/ folders",
                pl.col("source_file"),
            )
        )
        .when(depth == 2)
        .then(
            pl.format(
                "{}: not read: a file in the centre folder {}, outside any delivery folder "
                "<centre>/<YYYY-MM-DD>/",
                pl.col("source_file"),
                parts.list.first(),
            )
        )
        .when(pl.col("delivery_date").is_not_null())
        .then(
            pl.format(
                "{}: not read: the file name matches no raw format of site-exports.md (or the "
                "file is still being written: a name starting with '.' or ending in .tmp/.part)",
                pl.col("source_file"),
            )
        )
        .when(depth == 3)
        .then(
            pl.format(
                "{}: not read: {} is not a delivery folder (its name must be a real date "
                "YYYY-MM-DD); move the files into <centre>/<YYYY-MM-DD>/",
                pl.col("source_file"),
                folder,
            )
        )
        .otherwise(
            pl.format(
                "{}: not read: it lies in the nested folder {}; a delivery folder "
                "<centre>/<YYYY-MM-DD>/ holds files, not folders",
                pl.col("source_file"),
                folder,
            )
        )
    )


def _misplaced_reason() -> pl.Expr:
    """``UNKNOWN_FOLDER`` for a file inside a folder that is no delivery folder (depth 3 with
    no date, or deeper), else ``UNKNOWN_FILE``."""
    depth = pl.col("source_file").str.split("/").list.len()
    in_odd_folder = (depth > 3) | ((depth == 3) & pl.col("delivery_date").is_null())
    return pl.when(in_odd_folder).then(pl.lit("UNKNOWN_FOLDER")).otherwise(pl.lit("UNKNOWN_FILE"))


def landing_quarantine(manifest: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows (dataset ``landing``, ``raw_text`` always null: none of these files is
    opened) for the entries the readers will not read: files outside the layout or of no known
    format (``UNKNOWN_FILE`` / ``UNKNOWN_FOLDER``), symbolic links (``SYMLINK``) and copies of
    the sealed randomisation list (``SEALED_LIST_IN_RAW``, dataset ``randomisation``)."""
    unknown = manifest.filter(pl.col("kind") == UNKNOWN).select(
        pl.lit("landing").alias("dataset"),
        pl.col("source_file"),
        pl.lit(None, dtype=pl.Int64).alias("source_line"),
        pl.lit(None, dtype=pl.String).alias("field"),
        _misplaced_reason().alias("reason_code"),
        _misplaced_message().alias("message"),
        pl.lit(None, dtype=pl.String).alias("raw_text"),
    )
    links = manifest.filter(pl.col("kind") == SYMLINK).select(
        pl.lit("landing").alias("dataset"),
        pl.col("source_file"),
        pl.lit(None, dtype=pl.Int64).alias("source_line"),
        pl.lit(None, dtype=pl.String).alias("field"),
        pl.lit("SYMLINK").alias("reason_code"),
        pl.format(
            "{}: not read: a symbolic link, and links are never followed (nothing it points "
            "to is opened); copy the files themselves into <centre>/<YYYY-MM-DD>/",
            pl.col("source_file"),
        ).alias("message"),
        pl.lit(None, dtype=pl.String).alias("raw_text"),
    )
    sealed = manifest.filter(pl.col("kind") == SEALED).select(
        pl.lit("randomisation").alias("dataset"),
        pl.col("source_file"),
        pl.lit(None, dtype=pl.Int64).alias("source_line"),
        pl.lit(None, dtype=pl.String).alias("field"),
        pl.lit("SEALED_LIST_IN_RAW").alias("reason_code"),
        pl.format(
            "{}: not read: by its name, header or rows this is the sealed randomisation list, "
            "which must never be in the raw tree; move it out and tell the unblinded "
            "statistician",
            pl.col("source_file"),
        ).alias("message"),
        pl.lit(None, dtype=pl.String).alias("raw_text"),
    )
    return pl.concat([unknown, links, sealed]).cast(dict(QUARANTINE_SCHEMA))  # type: ignore[arg-type]
