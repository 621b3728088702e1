"""The bench CLI: registration on the ionto parser, and a driver that loads no Dagster."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ingest.bench.cli import add_bench_commands

REPO = Path(__file__).resolve().parents[2]


def test_commands_register_on_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="ionto")
    add_bench_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["capture", "ibu", "--port", "loop://", "--out", "x"])
    assert callable(args.func) and args.baud == 115200 and args.discover is None
    args = parser.parse_args(
        [
            "capture",
            "balance",
            "--port",
            "/dev/ttyUSB0",
            "--out",
            "x",
            "--operator",
            "anna",
            "--worklist",
            "w.csv",
            "--handshake",
            "xonxoff",
        ]
    )
    assert (args.baud, args.handshake, args.worklist) == (9600, "xonxoff", "w.csv")
    args = parser.parse_args(["emulate", "ibu", "--tcp", "7000", "--speed", "10"])
    assert (args.tcp, args.pty, args.speed) == (7000, False, 10.0)
    args = parser.parse_args(["emulate", "balance", "--pty", "--link", "/tmp/ttyBAL"])
    assert args.pty and args.link == "/tmp/ttyBAL"


def test_driver_never_imports_dagster_or_polars() -> None:
    code = (
        "import sys, ingest.bench.cli, ingest.bench.ibu_capture, ingest.bench.balance_capture, "
        "ingest.bench.emulators.ibu, ingest.bench.emulators.balance; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'polars')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_example_scenarios_load() -> None:
    from ingest.bench.emulators.balance import BalanceScenario
    from ingest.bench.emulators.ibu import IbuScenario

    folder = REPO / "ingest" / "bench" / "emulators" / "scenarios"
    ibu = IbuScenario.load(folder / "ibu_faults.yaml")
    kinds = {k for step in ibu.steps for k in step if k != "at"}
    assert {"session", "corrupt", "drop", "truncate", "glue", "unplug", "power_cycle"} <= kinds
    balance = BalanceScenario.load(folder / "balance_worklist.yaml")
    assert balance.operator is not None and len(balance.operator["loads_g"]) == 4
    assert {s.get("reply") for s in balance.steps} >= {"S I", "S +", "ES"}


def test_emulator_and_capture_processes_end_to_end(tmp_path: Path) -> None:
    """``ionto emulate ibu --tcp`` and ``ionto capture ibu`` as separate processes."""
    import signal
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "steps:\n  - {at: 0.2, session: {sid: S1, ma_set: 9.0, duration_s: 3}}\n",
        encoding="utf-8",
    )
    cli = [sys.executable, "-m", "ingest.bench.cli"]
    emu = subprocess.Popen(
        [
            *cli,
            "emulate",
            "ibu",
            "--tcp",
            str(port),
            "--speed",
            "10",
            "--scenario",
            str(scenario),
            "--record",
            str(tmp_path / "sent.jsonl"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    assert emu.stdout is not None and b"socket://" in emu.stdout.readline()
    cap = subprocess.Popen(
        [
            *cli,
            "capture",
            "ibu",
            "--port",
            f"socket://127.0.0.1:{port}",
            "--out",
            str(tmp_path / "out"),
            "--time-scale",
            "10",
        ],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            files = list((tmp_path / "out").glob("ibu_*.jsonl"))
            if files and b"END" in files[0].read_bytes():
                break
            time.sleep(0.1)
    finally:
        cap.send_signal(signal.SIGTERM)
        assert cap.wait(timeout=10) == 0
        emu.send_signal(signal.SIGTERM)
        assert emu.wait(timeout=10) == 0
    import json

    sent = [json.loads(x) for x in (tmp_path / "sent.jsonl").read_text().splitlines()]
    got = [
        json.loads(x)
        for f in sorted((tmp_path / "out").glob("ibu_*.jsonl"))
        for x in f.read_text().splitlines()
    ]
    got_raw = [r["raw"] for r in got if r["type"] not in ("BAD", "GAP")]
    assert got_raw == [r["raw"] for r in sent][: len(got_raw)]
    assert any(",END,COMPLETED," in raw for raw in got_raw)
