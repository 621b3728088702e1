"""Shared helpers of the bench tests: a scripted transport (pymeasure's ``expected_protocol``
pattern) and a harness that runs an emulated IBU-1 and the capture loop side by side."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.bench.emulators.ibu import IbuEmulator, IbuScenario
from ingest.bench.emulators.lines import PtyLine, TcpLine
from ingest.bench.ibu_capture import IbuCapture, IbuTiming

SPEED = 25.0


class ScriptedTransport:
    """A ``Transport`` that checks each write against the next expected command and then
    serves its reply. Terminators are part of the comparison (both protocols use CR LF)."""

    name = "scripted"

    def __init__(self, pairs: list[tuple[bytes, bytes | None]]) -> None:
        self.pairs = list(pairs)
        self._out = b""

    def write(self, data: bytes) -> None:
        assert self.pairs, f"unexpected write {data!r}: the script is finished"
        sent, reply = self.pairs.pop(0)
        assert data == sent, f"sent {data!r}, the script expected {sent!r}"
        if reply is not None:
            self._out += reply

    def read(self) -> bytes:
        data, self._out = self._out, b""
        if not data:
            time.sleep(0.001)
        return data

    def close(self) -> None:
        pass


@contextmanager
def expected_protocol(pairs: list[tuple[bytes, bytes | None]]) -> Iterator[ScriptedTransport]:
    """Yield a scripted transport; on exit every pair must have been used, no reply left."""
    transport = ScriptedTransport(pairs)
    yield transport
    assert transport.pairs == [], f"commands never sent: {transport.pairs}"
    assert transport.read() == b"", "a reply was never read"


def read_records(out_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(out_dir.glob("ibu_*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


@dataclass
class IbuRun:
    records: list[dict[str, Any]]
    expected: list[tuple[str, int, str]]
    generated: list[tuple[str, int, str]]
    capture: IbuCapture | None
    emulator: IbuEmulator


def make_line(kind: str, tmp_path: Path) -> PtyLine | TcpLine:
    return PtyLine(str(tmp_path / "ttyIBU")) if kind == "pty" else TcpLine()


def wait_caught_up(emulator: IbuEmulator, capture: IbuCapture, timeout: float = 15.0) -> list[Any]:
    """Wait until the scenario has run and the capture holds every frame of the unit's current
    boot; returns the emulator's record at that moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = list(emulator.unit.generated)
        boot, seq = emulator.unit.boot, emulator.unit.seq
        held = capture._boots.get(boot)
        if emulator.script_done.is_set() and held is not None and held.next_seq >= seq:
            return snapshot
        time.sleep(0.02)
    raise AssertionError("the capture did not catch up with the emulated unit")


def run_ibu(
    kind: str,
    tmp_path: Path,
    steps: list[dict[str, Any]],
    ring_frames: int = 8192,
    speed: float = SPEED,
) -> IbuRun:
    """Run a scenario with the capture attached, in-process, until the capture caught up.

    The steps start once the capture holds the unit's power-up frames, so that a fault is
    never spent before anyone listens."""
    line = make_line(kind, tmp_path)
    emulator = IbuEmulator(line, IbuScenario(ring_frames=ring_frames), speed=speed)
    discover = [str(tmp_path / "ttyIBU*")] if kind == "pty" else []
    capture = IbuCapture(
        line.name, tmp_path / "out", timing=IbuTiming().scaled(speed), discover=discover
    )
    t_emu = threading.Thread(target=emulator.run)
    t_cap = threading.Thread(target=capture.run)
    t_emu.start()
    t_cap.start()
    try:
        wait_caught_up(emulator, capture)
        emulator.schedule(steps)
        expected = wait_caught_up(emulator, capture)
    finally:
        emulator.stop_event.set()
        t_emu.join()
        capture.stop_event.set()
        t_cap.join()
    records = read_records(tmp_path / "out")
    return IbuRun(records, expected, list(emulator.unit.generated), capture, emulator)


def assert_exactly_once(run: IbuRun) -> None:
    """Every good frame the unit produced is written once, in (boot, seq) order, or lies in a
    GAP record; nothing is written that the unit did not produce."""
    frames = [
        (r["boot"], r["seq"], r["raw"]) for r in run.records if r["type"] not in ("BAD", "GAP")
    ]
    assert len(frames) == len(set(frames)), "a frame was written twice"
    generated = set(run.generated)
    assert all(f in generated for f in frames), "a frame the unit never sent was written"
    boot_order: list[str] = []
    for boot, _, _ in frames:
        if boot not in boot_order:
            boot_order.append(boot)
    keys = [(boot_order.index(b), s) for b, s, _ in frames]
    assert keys == sorted(keys), "frames are not in (boot, seq) order"
    gaps = [r for r in run.records if r["type"] == "GAP"]
    captured = set(frames)

    def covered(boot: str, seq: int) -> bool:
        return any(
            g["boot"] == boot
            and g["from_seq"] <= seq
            and (g["to_seq"] is None or seq <= g["to_seq"])
            for g in gaps
        )

    missing = [f for f in run.expected if f not in captured and not covered(f[0], f[1])]
    assert missing == [], f"frames neither captured nor reported as a gap: {missing[:5]}"
    for g in gaps:
        lost = [f for f in captured if f[0] == g["boot"] and covered(f[0], f[1])]
        assert lost == [], f"a GAP record covers captured frames: {g}"
