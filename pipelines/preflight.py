"""Checks made before a run touches anything: each expected user mistake raises
:class:`UsageError` whose message is the one line the command prints (what is wrong and what to
do), instead of a traceback minutes later.

Only the standard library is imported at module level, so that the ``ionto`` command line can
name :class:`UsageError` without loading Polars or Dagster; the checks that read a contract or
the landing area import what they need when they run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from study import Study


class UsageError(Exception):
    """An expected user mistake; the message is one line saying what is wrong and what to do."""


def check_run_arguments(
    raw_dir: Path, out_dir: Path, unblind_path: Path | None, study: Study
) -> None:
    """Everything about its folders ``ionto run`` can check before it starts (the study file
    is :func:`study.load_study`'s); the output folder is created last, so that a mistake
    elsewhere leaves no folder behind."""
    folders = check_raw_dir(raw_dir)
    check_centres(raw_dir, folders, study)
    check_out_outside_raw(raw_dir, out_dir)
    if unblind_path is not None:
        check_sealed_list(unblind_path, study)
    prepare_out_dir(out_dir)


def check_raw_dir(raw_dir: Path) -> list[Path]:
    """``--raw``: an existing folder with a ``<centre>/<YYYY-MM-DD>/`` folder that holds a
    complete file (:func:`ingest.deliveries.is_complete_name`); returns its delivery folders."""
    from ingest.deliveries import complete_files, delivery_folders

    layout = "the folder holding <centre>/<YYYY-MM-DD>/ delivery folders"
    if not raw_dir.exists():
        raise UsageError(f"--raw {raw_dir} does not exist; give the delivery root, {layout}")
    if not raw_dir.is_dir():
        raise UsageError(f"--raw {raw_dir} is a file; give the delivery root, {layout}")
    folders = delivery_folders(raw_dir)
    if not folders:
        raise UsageError(
            f"--raw {raw_dir} holds no delivery folder (<centre>/<YYYY-MM-DD>/); "
            + _root_hint(raw_dir)
        )
    if not any(complete_files(folder) for folder in folders):
        raise UsageError(
            f"--raw {raw_dir}: every delivery folder is empty or still being written (names "
            "starting with '.' or ending in .tmp/.part); wait for a complete delivery"
        )
    return folders


def check_centres(raw_dir: Path, folders: list[Path], study: Study) -> None:
    """At least one centre folder of ``--raw`` that holds a delivery (``folders``: its
    delivery folders) is a centre of the study: when none is, the deliveries belong to
    another trial, or the study file is another trial's (every subject would be quarantined,
    and the run would stop at the first table built from them). Some unknown centres among
    known ones are the data's problem, named in the data-quality report."""
    found = sorted({folder.parent.name for folder in folders})
    if found and not set(found) & set(study.centres):
        raise UsageError(
            f"--raw {raw_dir} holds deliveries of centres {', '.join(found[:6])}"
            f"{' ...' if len(found) > 6 else ''}, none of study {study.study_id}'s "
            f"({', '.join(study.centres)}); give this trial's study file with --study"
        )


def _root_hint(raw_dir: Path) -> str:
    """What to do about a ``--raw`` without delivery folders: give the root above a delivery
    or centre folder given by mistake, else check the path or wait."""
    from ingest.landing import delivery_date

    if delivery_date(raw_dir.name) is not None:
        return f"it is a delivery folder itself: give the delivery root, {raw_dir.parent.parent}"
    if any(delivery_date(p.name) is not None for p in raw_dir.iterdir() if p.is_dir()):
        return f"it is a centre's folder: give the delivery root, {raw_dir.parent}"
    return "check the path, or wait for the first delivery"


def check_out_outside_raw(
    raw_dir: Path, out_dir: Path, names: tuple[str, str] = ("--raw", "--out")
) -> None:
    """The output folder must not be the raw root or inside it: the landing scan reads every
    file under the raw root, so the run's own outputs would be quarantined as files outside
    any delivery folder (``UNKNOWN_FOLDER``, hundreds of rows in the data-quality report), and
    the raw tree would change with every run, which then never finds "nothing changed".
    Links are followed (:meth:`pathlib.Path.resolve`). ``names``: how the two folders are
    given (options of ``ionto run``, or the environment variables of ``dagster dev``)."""
    raw, out = Path(raw_dir).resolve(), Path(out_dir).resolve()
    if out == raw or raw in out.parents:
        raise UsageError(
            f"{names[1]} {out_dir} is inside {names[0]} {raw_dir}: the run's outputs would be "
            "read as deliveries; give an output folder outside the delivery root"
        )


def prepare_out_dir(out_dir: Path) -> None:
    """``--out``: create the folder if missing; it must be a folder this process can write."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"--out {out_dir} is a file; give a folder for the run's outputs (created if missing)"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--out {out_dir} cannot be created ({exc.strerror}); give a folder you can write to"
        ) from exc
    probe = out_dir / f".ionto-write-test-{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--out {out_dir} is not writable ({exc.strerror}); give a folder you can write to"
        ) from exc


def check_sealed_list(path: Path, study: Study) -> None:
    """``--unblind``: an existing file whose header is the sealed list's (the columns of its
    contract, resolved for ``study``, in order)."""
    from data_contracts.contracts import file_columns, load_contract

    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise UsageError(
            f"--unblind {path} {what}; give the sealed randomisation list (a CSV file), or "
            "leave --unblind out for a blinded run"
        )
    expected = file_columns(load_contract("randomisation", study))
    with path.open("rb") as handle:
        first = handle.readline(4096)
    header = first.decode("utf-8-sig", "replace").strip()
    if [c.strip() for c in header.split(",")] != expected:
        raise UsageError(
            f"--unblind {path} starts with {header[:80]!r}, not the sealed list's header "
            f"{','.join(expected)!r}; check that this file is the sealed randomisation list"
        )
