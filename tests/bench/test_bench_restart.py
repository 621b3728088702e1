"""The capture driver as a separate process: SIGKILL mid-session and restart loses nothing and
writes nothing twice; SIGTERM stops it with exit 0 and everything written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bench_helpers import IbuRun, assert_exactly_once, read_records

from ingest.bench.emulators.ibu import IbuEmulator, IbuScenario
from ingest.bench.emulators.lines import PtyLine

pytestmark = pytest.mark.timeout(60)  # a hung device test fails instead of blocking the suite

REPO = Path(__file__).resolve().parents[2]
SPEED = 10.0


def _driver(port: str, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest.bench.cli",
            "capture",
            "ibu",
            "--port",
            port,
            "--out",
            str(out),
            "--time-scale",
            str(SPEED),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _written(out: Path) -> int:
    return sum(1 for r in read_records(out) if r["type"] not in ("BAD", "GAP"))


def _wait(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sigkill_mid_session_then_restart(tmp_path: Path) -> None:
    line = PtyLine(str(tmp_path / "ttyIBU"))
    steps = [
        {"at": 0.2, "session": {"sid": "S0001", "ma_set": 12.0, "duration_s": 12}},
        {"at": 3.0, "drop": 2},
    ]
    emulator = IbuEmulator(line, IbuScenario(steps=steps), speed=SPEED)
    serve = threading.Thread(target=emulator.run)
    serve.start()
    out = tmp_path / "out"
    try:
        first = _driver(line.name, out)
        _wait(lambda: _written(out) >= 40)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = _written(out)
        time.sleep(0.2)  # the unit streams on while no driver runs
        second = _driver(line.name, out)
        _wait(emulator.script_done.is_set)
        snapshot = list(emulator.unit.generated)
        _wait(lambda: _written(out) >= len(snapshot))
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
    finally:
        emulator.stop_event.set()
        serve.join()
    records = read_records(out)
    run = IbuRun(records, snapshot, list(emulator.unit.generated), None, emulator)
    assert_exactly_once(run)
    assert [r for r in records if r["type"] == "GAP"] == []
    assert 40 <= killed_at < len(snapshot)
    assert len(list(out.glob("ibu_*.jsonl"))) == 2, "a restart starts a new file"
    names = sorted(p.name for p in out.glob("ibu_*.jsonl"))
    assert names[0].startswith("ibu_000001_IBU-00031_") and names[1].startswith("ibu_000002_")


def test_sigterm_with_no_unit_exits_zero(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-port"
    driver = _driver(str(missing), tmp_path / "out")
    assert driver.stderr is not None
    first = driver.stderr.readline()  # the handlers are installed before the first attempt
    assert b"does not exist" in first
    os.kill(driver.pid, signal.SIGINT)
    assert driver.wait(timeout=10) == 0
