"""Benchmark of ``ionto capture ibu`` on a pseudo-terminal.

1. CPU time per second of 10 Hz streaming: the driver runs as its own process against an
   emulated unit streaming a session at 10 Hz; its user+system CPU (``/proc/<pid>/stat``) is
   measured over a window after start-up. Target: under 2 % of a core.
2. Highest frame rate captured with zero loss at 115200 baud: the emulator paces its output like
   a UART at 115200 baud (8N1: 11520 bytes/s, a 4 KiB transmit buffer) and streams samples at
   increasing rates; a rate passes when every frame the unit produced is in the capture, none
   was lost on the line (no ``RESEND`` needed, no transmit-buffer overflow) and no ``GAP``.

Usage: ``python benchmarks/capture.py [--cpu-seconds 20] [--rate-seconds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.bench.emulators.ibu import IbuEmulator, IbuScenario  # noqa: E402
from ingest.bench.emulators.lines import PtyLine  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_driver(port: str, out: Path) -> subprocess.Popen[bytes]:
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
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def captured(out: Path) -> tuple[list[tuple[str, int]], int, int]:
    frames: list[tuple[str, int]] = []
    bad = gaps = 0
    for path in sorted(out.glob("ibu_*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec["type"] == "BAD":
                bad += 1
            elif rec["type"] == "GAP":
                gaps += 1
            else:
                frames.append((rec["boot"], rec["seq"]))
    return frames, bad, gaps


def run(work: Path, rate_hz: float, seconds: float, measure_cpu: bool) -> dict[str, float]:
    line = PtyLine(str(work / "ttyIBU"))
    duration_s = max(1, int(seconds * rate_hz / 10))
    steps = [
        {"at": 0.0, "rate_hz": rate_hz},
        {"at": 1.0, "session": {"sid": "S0001", "ma_set": 15.0, "duration_s": duration_s}},
    ]
    emulator = IbuEmulator(line, IbuScenario(steps=steps), speed=1.0, baud=115200)
    serve = threading.Thread(target=emulator.run)
    serve.start()
    out = work / "out"
    driver = start_driver(line.name, out)
    result: dict[str, float] = {"rate_hz": rate_hz}
    try:
        time.sleep(1.0)
        if measure_cpu:
            c0, t0 = cpu_seconds(driver.pid), time.monotonic()
            time.sleep(seconds)
            c1, t1 = cpu_seconds(driver.pid), time.monotonic()
            result["cpu_share"] = (c1 - c0) / (t1 - t0)
        deadline = time.monotonic() + seconds * 3 + 30
        while not emulator.script_done.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        generated = [(b, s) for b, s, _ in emulator.unit.generated]
        while time.monotonic() < deadline:
            frames, bad, gaps = captured(out)
            if set(generated) <= set(frames):
                break
            time.sleep(0.2)
    finally:
        driver.send_signal(signal.SIGTERM)
        stderr = driver.communicate(timeout=30)[1].decode()
        emulator.stop_event.set()
        serve.join()
    frames, bad, gaps = captured(out)
    stats = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    resends = int(stats.split("resends=")[1].split(",")[0]) if "resends=" in stats else -1
    result.update(
        generated=len(generated),
        captured=len(set(frames) & set(generated)),
        duplicates=len(frames) - len(set(frames)),
        bad=bad,
        gaps=gaps,
        overflow=emulator.unit.tx_overflow,
        resends=resends,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    parser.add_argument("--rate-seconds", type=float, default=3.0)
    parser.add_argument("--rates", default="50,100,150,200,240,260,280,300")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cpu = run(Path(tmp), 10.0, args.cpu_seconds, measure_cpu=True)
    print("## CPU per second of 10 Hz streaming (driver process, pty)")
    print()
    print("| window s | CPU share of one core | target | frames | captured | gaps |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.cpu_seconds:.0f} | {cpu['cpu_share'] * 100:.2f} % | < 2 % | "
        f"{cpu['generated']:.0f} | {cpu['captured']:.0f} | {cpu['gaps']:.0f} |"
    )
    print()
    print("## Frame rate at 115200 baud on a pty (UART-paced emulator, 4 KiB TX buffer)")
    print()
    print(
        "| rate Hz | frames | captured | duplicates | lost on line (TX overflow) | RESENDs "
        "| BAD | GAP | zero loss |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
    best = 0.0
    for rate in (float(r) for r in args.rates.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            r = run(Path(tmp), rate, args.rate_seconds, measure_cpu=False)
        ok = (
            r["captured"] == r["generated"]
            and r["overflow"] == 0
            and r["resends"] <= 1
            and r["gaps"] == 0
            and r["duplicates"] == 0
        )
        best = max(best, rate) if ok else best
        print(
            f"| {rate:.0f} | {r['generated']:.0f} | {r['captured']:.0f} | {r['duplicates']:.0f} "
            f"| {r['overflow']:.0f} | {r['resends']:.0f} | {r['bad']:.0f} | {r['gaps']:.0f} "
            f"| {'yes' if ok else 'no'} |",
            flush=True,
        )
    print()
    print(f"highest rate with zero loss: {best:.0f} frames/s")


if __name__ == "__main__":
    main()
