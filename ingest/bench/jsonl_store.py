"""Durable JSON-lines output and checkpoints shared by both capture loops.

Output files are ``<prefix>_<NNNNNN>_<unit>_<yyyymmddTHHMMSSZ>.jsonl``: the six-digit counter
goes up with every new file in the folder, so name order is write order. Lines are buffered,
then written, flushed and fsynced together; only after that does the caller move its
checkpoint (``save_checkpoint``: temporary file, fsync, atomic rename, fsync of the folder).
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"[^A-Za-z0-9.-]+")


def utc_now_iso() -> str:
    """Host time as ISO 8601 UTC with offset, milliseconds (``2026-03-14T18:02:11.250+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def safe_name(text: str | None) -> str:
    """A file-name-safe token (``unknown`` when empty)."""
    cleaned = _SAFE.sub("-", text or "").strip("-")
    return cleaned or "unknown"


def output_files(out_dir: Path, prefix: str) -> list[Path]:
    """This prefix's output files in name (= write) order."""
    pattern = re.compile(rf"{re.escape(prefix)}_(\d{{6}})_.*\.jsonl\Z")
    return sorted(p for p in out_dir.iterdir() if pattern.match(p.name))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JsonlWriter:
    """Appends JSON lines to the current output file; ``sync()`` makes them durable."""

    def __init__(self, out_dir: Path, prefix: str) -> None:
        self.out_dir = out_dir
        self.prefix = prefix
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path: Path | None = None
        self.unit: str | None = None
        self._handle: Any = None
        self._lines: list[str] = []
        self.first_buffered_at: float | None = None
        self.offset = 0

    def _next_counter(self) -> int:
        files = output_files(self.out_dir, self.prefix)
        return int(files[-1].name.split("_")[1]) + 1 if files else 1

    def _open(self, unit: str | None) -> None:
        self.sync()
        if self._handle is not None:
            self._handle.close()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"{self.prefix}_{self._next_counter():06d}_{safe_name(unit)}_{stamp}.jsonl"
        self.path = self.out_dir / name
        self._handle = open(self.path, "ab")  # noqa: SIM115 - kept open across calls
        _fsync_dir(self.out_dir)
        self.unit = unit
        self.offset = 0

    def add(self, record: dict[str, Any], unit: str | None) -> None:
        """Buffer one record; a record of another unit starts a new file."""
        if self._handle is None or (unit is not None and unit != self.unit):
            self._open(unit)
        if self.first_buffered_at is None:
            self.first_buffered_at = time.monotonic()
        self._lines.append(json.dumps(record, separators=(",", ":")) + "\n")

    @property
    def buffered(self) -> int:
        return len(self._lines)

    def sync(self) -> bool:
        """Write, flush and fsync the buffered lines; ``True`` if anything was written."""
        if not self._lines or self._handle is None:
            return False
        data = "".join(self._lines).encode("utf-8")
        self._handle.write(data)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.offset += len(data)
        self._lines.clear()
        self.first_buffered_at = None
        return True

    def close(self) -> None:
        self.sync()
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically replace the checkpoint at ``path`` with ``state`` (durable on return)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def read_tail(path: Path, offset: int) -> list[dict[str, Any]]:
    """Complete JSON lines of ``path`` from byte ``offset``; a torn last line is cut off.

    A driver killed between writing and checkpointing leaves durable lines past the
    checkpoint: they are kept and returned so the caller can roll its state forward.
    """
    records: list[dict[str, Any]] = []
    with open(path, "rb+") as handle:
        handle.seek(offset)
        data = handle.read()
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                records.append(json.loads(line))
            except ValueError:
                break
            good_end += len(line)
        if good_end < len(data):
            handle.truncate(offset + good_end)
            handle.flush()
            os.fsync(handle.fileno())
    return records


def records_after_checkpoint(
    out_dir: Path, prefix: str, state: dict[str, Any]
) -> list[dict[str, Any]]:
    """Durable records written after the checkpoint ``state`` (its ``file`` past its
    ``offset``, then every later file), in write order; torn last lines are cut off."""
    cp_file = state.get("file")
    records: list[dict[str, Any]] = []
    for path in output_files(out_dir, prefix):
        if cp_file is not None and path.name < cp_file:
            continue
        offset = int(state.get("offset", 0)) if path.name == cp_file else 0
        records.extend(read_tail(path, offset))
    return records
