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
