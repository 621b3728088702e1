"""An output folder is blinded or unblinded for life: ``OUT/blinding.json`` records which.

A blinded run writes tables, models, reports and Dagster metadata into ``OUT``; had an unblinded
run written there before, its arm-bearing files (models by arm, ADSL with ``arm``) would stay
beside the blinded ones, and a blinded reader of the folder would see them. So the first run
into a folder records its mode, and a run of the other mode is refused before it writes
anything: a blinded run never writes where an unblinded one did, nor an unblinded run where
blinded readers look.

A folder written by a version before the record existed is judged by its content: it is
unblinded if its randomisation table has rows or any other table has an ``arm`` column.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipelines.write_whole import written_whole

RECORD_NAME = "blinding.json"
"""The record, at the top of the output folder: ``{"mode": "blinded" | "unblinded", ...}``."""

BLINDED = "blinded"
UNBLINDED = "unblinded"


class OutputFolderRefused(Exception):
    """A run of one mode was asked to write into an output folder of the other mode; the
    message is one line that says what to do."""


def record_path(out_dir: Path) -> Path:
    return Path(out_dir) / RECORD_NAME


def _holds_arms(out_dir: Path) -> bool:
    """True if a table of ``out_dir`` (an earlier version's output) holds unblinded data."""
    tables = Path(out_dir) / "tables"
    randomisation = tables / "randomisation.parquet"
    if randomisation.is_file() and pl.scan_parquet(randomisation).select(pl.len()).collect().item():
        return True
    return any(
        "arm" in pl.scan_parquet(path).collect_schema().names()
        for path in sorted(tables.glob("*.parquet"))
        if path != randomisation  # a blinded run stores it empty, with its columns
    )


def folder_mode(out_dir: Path) -> str | None:
    """``blinded`` or ``unblinded`` as recorded in (or, without a record, judged from the
    tables of) ``out_dir``; None for a folder no run has written to."""
    record = record_path(out_dir)
    if record.is_file():
        try:
            content = json.loads(record.read_text("utf-8"))
        except json.JSONDecodeError:
            content = None
        mode = content.get("mode") if isinstance(content, dict) else content
        if mode not in (BLINDED, UNBLINDED):
            raise OutputFolderRefused(
                f"{record} does not say 'blinded' or 'unblinded' (it says {mode!r}); "
                "give --out another folder"
            )
        return str(mode)
    if not (Path(out_dir) / "tables").is_dir():
        return None
    return UNBLINDED if _holds_arms(out_dir) else BLINDED


def check_instance(blinded: bool) -> None:
    """``ionto run``: raise :class:`OutputFolderRefused` when an unblinded run would record
    its runs and metadata in the instance of ``$DAGSTER_HOME`` (the shared one blinded runs
    and readers use, ``docs/deployment.md``); an unblinded run keeps its Dagster records in
    memory, for the run only. (``dagster dev`` chooses its instance itself.)"""
    if not blinded and os.environ.get("DAGSTER_HOME"):
        raise OutputFolderRefused(
            "an unblinded run keeps its Dagster records in memory, never in the shared "
            f"instance DAGSTER_HOME={os.environ['DAGSTER_HOME']} that blinded runs use; "
            "unset DAGSTER_HOME for this run"
        )


def check_output_folder(out_dir: Path, blinded: bool) -> None:
    """Raise :class:`OutputFolderRefused` when ``out_dir`` belongs to the other mode. Writes
    nothing: the command line calls it before it loads the pipeline."""
    wanted = BLINDED if blinded else UNBLINDED
    found = folder_mode(out_dir)
    if found is not None and found != wanted:
        if blinded:
            raise OutputFolderRefused(
                f"{out_dir} holds an UNBLINDED run's outputs ({RECORD_NAME}): a blinded run "
                "never writes there; give --out another folder"
            )
        raise OutputFolderRefused(
            f"{out_dir} is a BLINDED output folder ({RECORD_NAME}): an unblinded run never "
            "writes where blinded readers look; give --out another folder"
        )


def claim_output_folder(out_dir: Path, blinded: bool) -> None:
    """Record ``out_dir``'s mode on its first run; raise :class:`OutputFolderRefused` when the
    folder belongs to the other mode. Call before writing anything into ``out_dir``."""
    check_output_folder(out_dir, blinded)
    wanted = BLINDED if blinded else UNBLINDED
    record = record_path(out_dir)
    if record.is_file():
        return
    since = datetime.now(UTC).isoformat(timespec="seconds")
    with written_whole(record) as writing:
        writing.write_text(json.dumps({"mode": wanted, "since": since}, indent=1) + "\n", "utf-8")
