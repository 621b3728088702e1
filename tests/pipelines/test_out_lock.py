"""One run at a time per output folder, and a folder a killed run leaves is usable.

The fast tests hold the lock from another process; the slow ones start real ``ionto run``
processes: two at once on one fresh folder (before the lock both failed, and every later run
on that folder failed too), and a run SIGKILLed mid-read and mid-refresh, then run again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.out_lock import LOCK_NAME, OutFolderBusy, out_folder_lock

HOLD = (
    "import sys, time; from pathlib import Path; from pipelines.out_lock import out_folder_lock\n"
    "with out_folder_lock(Path(sys.argv[1])):\n"
    "    print('held', flush=True); time.sleep(600)\n"
)


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        busy = f"another ionto run \\(pid {holder.pid}, since"
        with pytest.raises(OutFolderBusy, match=busy), out_folder_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_the_folder_free(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with out_folder_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text("utf-8").startswith("pid ")


def ionto_run(raw: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ionto.cli", "run", "--raw", str(raw), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(raw: Path, out: Path) -> tuple[int, str, str]:
    run = ionto_run(raw, out)
    stdout, stderr = run.communicate(timeout=900)
    return run.returncode, stdout, stderr


def kill_when(run: subprocess.Popen[str], ready: Path, glob: str) -> None:
    """SIGKILL ``run`` as soon as something matching ``glob`` exists under ``ready``."""
    while not any(ready.glob(glob)):
        assert run.poll() is None, "the run ended before the moment to kill it"
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.communicate()


TABLES = ("adsl", "analysis_long", "quarantine", "device_sessions")


def tables(out: Path) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(out / "tables" / f"{t}.parquet") for t in TABLES}


@pytest.mark.slow
def test_two_runs_at_once_then_later_runs(small_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runs = [ionto_run(small_raw, out), ionto_run(small_raw, out)]
    outputs = [run.communicate(timeout=900) for run in runs]
    results = [(run.returncode, o, e) for run, (o, e) in zip(runs, outputs, strict=True)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert "Traceback" not in refused
    assert len(refused.strip().splitlines()) == 1
    assert "another ionto run (pid " in refused and f"is writing to {out}" in refused
    winner = next(err for code, _, err in results if code == 0)
    assert winner.splitlines()[:2] == [
        "landing area: hashing new and changed files ...",
        f"reading {len(list(small_raw.glob('*/*')))} of "
        f"{len(list(small_raw.glob('*/*')))} deliveries (1 step) ...",
    ]
    assert " - dagster - " not in winner and "INFO" not in winner  # Dagster's lines: the log
    (log,) = (out / "logs").glob("run-*.log")
    assert "ionto.dagster: process_delivery" in log.read_text("utf-8")
    code, stdout, stderr = finished(small_raw, out)
    assert code == 0, stderr
    assert "deliveries: 0 of " in stdout and "Traceback" not in stderr


@pytest.fixture(scope="module")
def reference_tables(
    small_raw: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, pl.DataFrame]:
    """The tables of an uninterrupted run on ``small_raw``."""
    out = tmp_path_factory.mktemp("reference") / "out"
    code, _, stderr = finished(small_raw, out)
    assert code == 0, stderr
    return tables(out)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("moment", "glob"),
    [("mid-read", "partitions/delivery_frames/*"), ("mid-refresh", "tables/*.parquet")],
)
def test_a_run_killed_at_a_moment_leaves_the_folder_usable(
    small_raw: Path,
    tmp_path: Path,
    moment: str,
    glob: str,
    reference_tables: dict[str, pl.DataFrame],
) -> None:
    out = tmp_path / moment
    kill_when(ionto_run(small_raw, out), out, glob)
    code, stdout, stderr = finished(small_raw, out)
    assert code == 0, stdout + stderr
    again = tables(out)
    for name, frame in reference_tables.items():
        assert again[name].equals(frame), name
