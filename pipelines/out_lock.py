"""One run at a time per output folder: ``OUT/.ionto.lock``, held with ``flock`` for a whole run.

Two runs writing one folder at once break it for good (two processes creating the Dagster
instance's SQLite schema, two writers of one partition). ``ionto run`` takes this lock before
it touches anything else in ``OUT``; a second run on the same folder exits with one line
instead of waiting, so a scheduled run never piles up behind a slow one.

The kernel releases an ``flock`` when the holding process ends, however it ends (SIGKILL
included): a killed run never leaves the folder locked. The file's content (pid and start time
of the holder) is only for the message the refused run prints.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pipelines.preflight import UsageError

LOCK_NAME = ".ionto.lock"
HOLDER_BYTES = 200


class OutFolderBusy(UsageError):
    """Another process holds the output folder's lock; the message says which and what to do."""


@contextmanager
def out_folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``OUT/.ionto.lock`` (``out_dir`` must exist) for the ``with`` block, or raise
    :class:`OutFolderBusy` at once when another process holds it."""
    path = Path(out_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, HOLDER_BYTES, 0).decode("utf-8", "replace").strip()
            raise OutFolderBusy(
                f"another ionto run ({holder or 'starting'}) is writing to {out_dir}; "
                "wait for it to finish, or give another --out"
            ) from None
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {since}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
