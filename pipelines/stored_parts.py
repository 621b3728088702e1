"""A table stored as a folder of Parquet parts: ``OUT/tables/<asset>/part-NNNNN.parquet``.

A table held in parts (:class:`ingest.source_format.TableParts`: the vendor-B events, one
part per range of devices, ``ingest.telemetry``) is stored without copying a byte: each part
is hard-linked into the table's folder, so a refresh that recomputed three ranges has written
three files (the resolver's) and linked the others, and 50 million events are not written
again for one delivery. The folder's files in name order are the table, in the order of the
parts (``pl.scan_parquet(folder)`` reads it too). The producer never writes a part in place
(it writes a new file and renames it over the old name), so a stored table keeps its content
whatever the producer does next.

Crash safety: the new folder is built aside (``tables/.<asset>.writing``) and swapped with the
old one by two renames. The asset's content hash (:mod:`pipelines.freshness`) is forgotten
before the swap and recorded after it by the IO manager, so a run killed at any moment leaves
the old folder or the new one, each whole, and never a content hash that a later run would
trust for another folder: without one, the asset is stale and computed again. No folder ever
holds some parts of one run and some of another.

The table's content hash is the hash of its parts' content hashes, in order. A part's hash is
computed once, when the part is first stored, and kept by the file's identity (device, inode,
size, modification time: a hard link has its file's) in ``tables/.<asset>.parts.json``, so a
refresh hashes only the new parts. The contract check reuses it too: a part's results are kept
by its hash (:func:`pipelines.checks.check_parts`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingest.source_format import TableParts
from pipelines.freshness import content_digest, file_digest, forget_content
from pipelines.write_whole import written_whole


@dataclass(frozen=True)
class StoredPart:
    """One part of a stored table: its file and the hash of its content."""

    path: Path
    digest: str


def parts_folder(out_dir: Path, asset: str) -> Path:
    """The folder of a table stored in parts (``OUT/tables/<asset>/``)."""
    return Path(out_dir) / "tables" / asset


def _index_path(out_dir: Path, asset: str) -> Path:
    return Path(out_dir) / "tables" / f".{asset}.parts.json"


Identity = tuple[int, int, int, int]


def _identity(path: Path) -> Identity:
    stat = path.stat()
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _known_digests(out_dir: Path, asset: str) -> dict[Identity, str]:
    """The part hashes kept by an earlier store, by file identity (none if unreadable)."""
    try:
        entries = json.loads(_index_path(out_dir, asset).read_text("utf-8"))
        return {(e[0], e[1], e[2], e[3]): str(e[4]) for e in entries}
    except (OSError, ValueError, TypeError, IndexError):
        return {}


def _stored_part(path: Path, known: dict[Identity, str]) -> StoredPart:
    return StoredPart(path, known.get(_identity(path)) or file_digest(path))


def store_parts(out_dir: Path, asset: str, parts: TableParts) -> tuple[str, list[Path]]:
    """Store ``parts`` as the table ``asset`` (links into a new folder, swapped in whole) ->
    (the table's content hash, the files that hold it). Call
    :func:`pipelines.freshness.record_content` with them: until then the asset's content is
    unknown (forgotten before the swap)."""
    folder = parts_folder(out_dir, asset)
    writing = folder.with_name(f".{asset}.writing")
    shutil.rmtree(writing, ignore_errors=True)
    writing.mkdir(parents=True)
    for number, source in enumerate(parts.paths):
        os.link(source, writing / f"part-{number:05d}.parquet")
    if not parts.paths:  # the folder of an empty table still gives its columns
        pl.DataFrame(schema=parts.schema).write_parquet(writing / "part-00000.parquet")
    known = _known_digests(out_dir, asset)
    stored = [_stored_part(p, known) for p in sorted(writing.iterdir())]
    forget_content(out_dir, asset)
    with written_whole(_index_path(out_dir, asset)) as aside:
        aside.write_text(json.dumps([[*_identity(p.path), p.digest] for p in stored]), "utf-8")
    old = folder.with_name(f".{asset}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    writing.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    folder.with_name(f"{asset}.parquet").unlink(missing_ok=True)  # stored whole before
    files = [folder / p.path.name for p in stored]
    return content_digest([p.digest for p in stored]), files


def stored_parts(out_dir: Path, asset: str) -> list[StoredPart] | None:
    """The parts of the stored table ``asset`` in order, with their content hashes (kept
    ones, or computed for a file the index does not know); None when it is not stored in
    parts."""
    folder = parts_folder(out_dir, asset)
    if not folder.is_dir():
        return None
    known = _known_digests(out_dir, asset)
    return [_stored_part(p, known) for p in sorted(folder.glob("part-*.parquet"))]


def scan_stored(out_dir: Path, asset: str) -> pl.LazyFrame | None:
    """The stored table ``asset`` as one lazy scan of its parts, in order; None when it is
    not stored in parts."""
    folder = parts_folder(out_dir, asset)
    if not folder.is_dir():
        return None
    return pl.scan_parquet(sorted(folder.glob("part-*.parquet")))
