"""Deliveries: the ``<raw>/<centre>/<YYYY-MM-DD>/`` folders, each keyed by its content.

A delivery's key is ``<centre>_<date>_<hash>``, ``hash`` being the first 8 hex digits of the
SHA-256 of its sorted ``name<TAB>sha256`` lines: the same bytes always give the same key, and a
correction (a file replaced or added in the same folder) gives a new key. Incremental runs
process each key once (``docs/incremental.md``).

Completeness rule: a file is part of a delivery only once it has its final name. Uploaders
write under a temporary name and rename when the file is whole; names starting with ``.`` or
ending in ``.tmp`` or ``.part`` are still being written and are ignored (no done-marker is
needed). A folder with no complete file is no delivery yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingest.landing import delivery_date, is_centre_folder, sha256_of

TEMPORARY_SUFFIXES = (".tmp", ".part")
KEY_HASH_CHARS = 8


def is_complete_name(file_name: str) -> bool:
    """False for a file still being written: a name starting with ``.`` or ending in
    ``.tmp``/``.part``."""
    return not file_name.startswith(".") and not file_name.endswith(TEMPORARY_SUFFIXES)


def delivery_key(centre_id: str, delivery_date: str, files: Iterable[tuple[str, str]]) -> str:
    """``<centre>_<date>_<hash8>`` from the folder's (file name, sha256) pairs (any order)."""
    lines = "".join(f"{name}\t{sha}\n" for name, sha in sorted(files))
    digest = hashlib.sha256(lines.encode()).hexdigest()[:KEY_HASH_CHARS]
    return f"{centre_id}_{delivery_date}_{digest}"


def key_folder(key: str) -> str:
    """The folder ``<centre>/<date>`` a delivery key names."""
    centre, day, _digest = key.rsplit("_", 2)
    return f"{centre}/{day}"


@dataclass(frozen=True)
class Delivery:
    """One delivery folder: ``folder`` is ``<centre>/<date>``; ``files`` its complete files as
    sorted (name, sha256) pairs; ``signature`` the files' (name, size, mtime) for cheap change
    detection."""

    folder: str
    key: str
    files: tuple[tuple[str, str], ...]
    signature: str


def _real_folder(path: Path) -> bool:
    """A folder that is not a symbolic link (links are never followed, ``ingest.landing``)."""
    return path.is_dir() and not path.is_symlink()


def delivery_folders(raw_root: Path) -> list[Path]:
    """Every ``<centre>/<YYYY-MM-DD>`` folder under ``raw_root`` (a real date; neither folder
    a symbolic link: the landing manifest lists a link, and no reader follows it), sorted."""
    raw_root = Path(raw_root)
    if not raw_root.is_dir():
        return []
    return sorted(
        day
        for centre in raw_root.iterdir()
        if _real_folder(centre) and is_centre_folder(centre.name)
        for day in centre.iterdir()
        if _real_folder(day) and delivery_date(day.name) is not None
    )


def complete_files(folder: Path) -> list[Path]:
    """The folder's regular files (no symbolic link) that have their final name, sorted by
    name."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and not p.is_symlink() and is_complete_name(p.name)
    )


def files_signature(entries: Iterable[tuple[str, int, int]]) -> str:
    """(name, size, mtime in ns) of each file, as one text: changes whenever a file does."""
    return ";".join(f"{name}:{size}:{mtime}" for name, size, mtime in entries)


def folder_signature(files: list[Path]) -> str:
    """:func:`files_signature` of ``files`` as they are on disk."""
    stats = [(p.name, p.stat()) for p in files]
    return files_signature((name, st.st_size, st.st_mtime_ns) for name, st in stats)


def folder_delivery(
    raw_root: Path, folder: str, earlier: Delivery | None = None
) -> Delivery | None:
    """The delivery ``<raw_root>/<folder>`` holds now (None without a complete file);
    ``earlier`` (an earlier scan of the folder) is reused when the signature is unchanged."""
    path = Path(raw_root) / folder
    linked = path.is_symlink() or path.parent.is_symlink()
    files = complete_files(path) if path.is_dir() and not linked else []
    if not files:
        return None
    signature = folder_signature(files)
    if earlier is not None and earlier.signature == signature:
        return earlier
    pairs = tuple((p.name, sha256_of(p)) for p in files)
    key = delivery_key(path.parent.name, path.name, pairs)
    return Delivery(folder=folder, key=key, files=pairs, signature=signature)


def scan_deliveries(raw_root: Path, known: Mapping[str, Delivery] | None = None) -> list[Delivery]:
    """Every delivery folder holding at least one complete file, keyed by content, sorted by
    folder. ``known`` (folder -> an earlier scan's delivery) avoids hashing again a folder
    whose files kept their names, sizes and modification times."""
    known = known or {}
    found = []
    for path in delivery_folders(raw_root):
        folder = f"{path.parent.name}/{path.name}"
        delivery = folder_delivery(raw_root, folder, known.get(folder))
        if delivery is not None:
            found.append(delivery)
    return found


def deliveries_from_hashes(hashes: pl.DataFrame) -> dict[str, Delivery]:
    """Folder -> :class:`Delivery` from a table of file hashes
    (:func:`ingest.landing.file_hashes`), signed as :func:`folder_signature` signs a folder on
    disk, for :func:`scan_deliveries`' ``known``: a folder none of whose files changed since
    the table was made is not hashed again."""
    placed = hashes.with_columns(
        _parts=pl.col("source_file").str.split("/"),
    ).filter(
        (pl.col("_parts").list.len() == 3)
        & ~pl.col("symlink")
        & ~pl.col("_parts").list.get(0).str.starts_with(".")
        & pl.col("_parts")
        .list.get(1, null_on_oob=True)
        .str.to_date("%Y-%m-%d", strict=False)
        .is_not_null()
        & pl.col("_parts").list.get(1, null_on_oob=True).str.contains(r"^\d{4}-\d{2}-\d{2}$")
    )
    found: dict[str, Delivery] = {}
    rows = placed.with_columns(
        folder=pl.col("_parts").list.slice(0, 2).list.join("/"),
        name=pl.col("_parts").list.get(2),
    ).sort("folder", "name")
    for (folder,), frame in rows.group_by("folder", maintain_order=True):
        files = [
            (name, size, mtime, sha)
            for name, size, mtime, sha in frame.select(
                "name", "size_bytes", "mtime_ns", "sha256"
            ).iter_rows()
            if is_complete_name(name)
        ]
        if not files:
            continue
        centre, day = str(folder).split("/")
        pairs = tuple((name, sha) for name, _, _, sha in files)
        found[str(folder)] = Delivery(
            folder=str(folder),
            key=delivery_key(centre, day, pairs),
            files=pairs,
            signature=files_signature((name, size, mtime) for name, size, mtime, _ in files),
        )
    return found


def manifest_delivery_keys(manifest: pl.DataFrame) -> pl.DataFrame:
    """Per delivery folder of a landing manifest: ``folder``, ``delivery_key`` (as
    :func:`scan_deliveries` computes it), sorted by folder."""
    placed = manifest.filter(pl.col("delivery_date").is_not_null())
    rows = []
    for (centre, day), frame in placed.group_by("centre_id", "delivery_date"):
        pairs = [
            (name, sha)
            for name, sha in zip(frame["file_name"], frame["sha256"], strict=True)
            if is_complete_name(name)
        ]
        if pairs:
            folder = f"{centre}/{day}"
            rows.append({"folder": folder, "delivery_key": delivery_key(centre, str(day), pairs)})
    schema = {"folder": pl.String, "delivery_key": pl.String}
    return pl.DataFrame(rows, schema=schema).sort("folder")
