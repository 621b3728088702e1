"""An emulated IBU-1 bench unit with scripted faults.

The unit runs in emulated time (``EmuClock``: a time-acceleration factor). Scenario steps
(``at`` in emulated seconds from start) are applied in order:

- ``session: {sid, ma_set, duration_s, polarity_every_s, end}``: a session, 10 Hz samples;
  ``end`` is ``COMPLETED`` (default), or ``STOPPED``/``FAULT`` with ``end_at_s`` (``FAULT``
  sends ``EVT FAULT`` with ``fault_code`` first);
- ``drop: n`` / ``corrupt: n`` / ``truncate: n`` / ``glue: n``: the next ``n`` live frames are
  lost, sent with a wrong CRC, cut short without CR LF, or sent without CR LF;
- ``unplug: seconds`` (with ``rename: true`` the port comes back under another name);
- ``power_cycle: seconds``: power off (the session is cut, no ``END``) then a new boot;
- ``rate_hz: f``: sample rate for later sessions (benchmarks; the protocol says 10 Hz);
- ``stop: true``: the emulator ends.

``script_done`` is set once every step has run, the line is plugged in, the unit powered and
no session running.

``generated`` is the emulator's own record of every frame it produced (boot, seq, raw),
which the tests compare with the capture.
"""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.bench.emulators.lines import EmuClock, PtyLine, TcpLine
from ingest.bench.ibu_codec import FrameSplitter, format_frame, parse_command

RING_FRAMES = 8192


@dataclass
class _Session:
    sid: str
    ma_set: float
    duration_s: int
    polarity_every_s: float | None
    end: str
    end_at_s: float | None
    fault_code: str
    start_t: float
    next_sample_ms: int = 0


@dataclass
class IbuScenario:
    """Scripted behaviour of an emulated unit (see module docstring)."""

    serial: str = "IBU-00031"
    firmware: str = "2.4.1"
    seed: int = 1
    ring_frames: int = RING_FRAMES
    steps: list[dict[str, Any]] = field(default_factory=list)
    speed: float | None = None

    @classmethod
    def load(cls, path: str | Path) -> IbuScenario:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls(
            serial=str(data.get("serial", "IBU-00031")),
            firmware=str(data.get("firmware", "2.4.1")),
            seed=int(data.get("seed", 1)),
            ring_frames=int(data.get("ring_frames", RING_FRAMES)),
            steps=list(data.get("steps", [])),
            speed=data.get("speed"),
        )


class IbuUnit:
    """The unit's logic, independent of the line: frames in, frames out, in emulated time."""

    def __init__(self, scenario: IbuScenario, record_path: str | None = None) -> None:
        self.scenario = scenario
        self._rng = random.Random(scenario.seed)
        self.generated: list[tuple[str, int, str]] = []
        self._record = open(record_path, "a", encoding="utf-8") if record_path else None  # noqa: SIM115
        self.boot = ""
        self.seq = 0
        self.powered = False
        self.streaming = True
        self._ring: deque[tuple[int, bytes]] = deque(maxlen=scenario.ring_frames)
        self._session: _Session | None = None
        self._faults = {"drop": 0, "corrupt": 0, "truncate": 0, "glue": 0}
        self.rate_hz = 10.0
        self.tx_limit: int | None = None
        self.tx_overflow = 0
        self.out = bytearray()
        self._power_on_at: float | None = None
        self._boot_t = 0.0
        self._splitter = FrameSplitter()
        self._cmd_buf = b""

    # -- frames ------------------------------------------------------------------------------
    def _emit(self, frame_type: str, fields: tuple[str, ...], live: bool = True) -> None:
        wire = format_frame(frame_type, self.boot, self.seq, fields)
        self._ring.append((self.seq, wire))
        self.generated.append((self.boot, self.seq, wire[:-2].decode("ascii")))
        if self._record is not None:
            self._record.write(
                json.dumps({"boot": self.boot, "seq": self.seq, "raw": wire[:-2].decode()}) + "\n"
            )
            self._record.flush()
        self.seq += 1
        if live and self.streaming:
            damaged = self._damage(wire)
            if self.tx_limit is None or len(self.out) + len(damaged) <= self.tx_limit:
                self.out += damaged
            else:
                self.tx_overflow += 1

    def _damage(self, wire: bytes) -> bytes:
        if self._faults["drop"]:
            self._faults["drop"] -= 1
            return b""
        if self._faults["corrupt"]:
            self._faults["corrupt"] -= 1
            star = wire.rindex(b"*")
            digit = wire[star + 1 : star + 2]
            return wire[: star + 1] + (b"0" if digit != b"0" else b"1") + wire[star + 2 :]
        if self._faults["truncate"]:
            self._faults["truncate"] -= 1
            return wire[: len(wire) // 2]
        if self._faults["glue"]:
            self._faults["glue"] -= 1
            return wire[:-2]
        return wire

    def power_up(self, t: float) -> None:
        self.boot = f"{self._rng.getrandbits(32):08x}"
        self.seq = 0
        self._ring.clear()
        self.powered = True
        self.streaming = True
        self._session = None
        self._boot_t = t
        self._emit("HELLO", self._hello_fields(t))

    def power_off(self) -> None:
        self.powered = False
        self._session = None
        self.out.clear()

    def _hello_fields(self, t: float) -> tuple[str, ...]:
        return (self.scenario.serial, self.scenario.firmware, str(int((t - self._boot_t) * 1000)))

    # -- commands ----------------------------------------------------------------------------
    def receive(self, data: bytes, t: float) -> None:
        """Bytes from the host: complete CR LF lines are commands."""
        if not self.powered:
            return
        self._cmd_buf += data
        while b"\n" in self._cmd_buf:
            line, self._cmd_buf = self._cmd_buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            if line:
                self._command(line, t)

    def _command(self, line: bytes, t: float) -> None:
        parsed = parse_command(line)
        if parsed is None:
            text = line.decode("ascii", "replace").replace(",", " ").replace("*", " ")[:60]
            self._emit("NAK", ("BADCMD", text or "?"))
            return
        name, seq = parsed
        if name == "HELLO?":
            self._emit("HELLO", self._hello_fields(t))
        elif name == "STREAM ON":
            self.streaming = True
        elif name == "STREAM OFF":
            self.streaming = False
        elif name == "RESEND" and seq is not None:
            latest = self.seq - 1
            oldest = self._ring[0][0]
            if seq > latest:
                self._emit("NAK", ("RANGE", str(latest)))
            elif seq < oldest:
                # the NAK names the oldest seq still held once it has entered the buffer
                self._emit("NAK", ("GONE", str(self._oldest_after_push())))
            else:
                for ring_seq, wire in list(self._ring):
                    if ring_seq >= seq:
                        self.out += wire

    def _oldest_after_push(self) -> int:
        if len(self._ring) < (self._ring.maxlen or 0):
            return self._ring[0][0]
        return self._ring[1][0] if len(self._ring) > 1 else self.seq

    # -- time --------------------------------------------------------------------------------
    def advance(self, t: float) -> None:
        """Generate what is due up to emulated time ``t``."""
        if self._power_on_at is not None and t >= self._power_on_at:
            self._power_on_at = None
            self.power_up(t)
        s = self._session
        if s is None or not self.powered:
            return
        end_ms = s.duration_s * 1000 if s.end_at_s is None else int(s.end_at_s * 1000)
        while True:
            t_ms = s.next_sample_ms
            due_t = s.start_t + t_ms / 1000.0 / (self.rate_hz / 10.0)
            if due_t > t or t_ms >= end_ms:
                break
            if s.polarity_every_s and t_ms > 0 and t_ms % int(s.polarity_every_s * 1000) == 0:
                self._emit("EVT", (s.sid, str(t_ms), "POLARITY"))
            ma = s.ma_set + self._rng.uniform(-0.3, 0.3)
            v = 23.0 + self._rng.uniform(-1.0, 1.0)
            self._emit("SMP", (s.sid, str(t_ms), f"{ma:.2f}", f"{v:.1f}"))
            s.next_sample_ms += 100
        due_end = s.start_t + end_ms / 1000.0 / (self.rate_hz / 10.0)
        if s.next_sample_ms >= end_ms and t >= due_end:
            final_ms = s.next_sample_ms - 100 if s.next_sample_ms > 0 else 0
            if s.end == "FAULT":
                self._emit("EVT", (s.sid, str(final_ms), "FAULT", s.fault_code))
            self._emit("SES", (s.sid, "END", s.end, str(final_ms)))
            self._session = None

    def start_session(self, spec: dict[str, Any], t: float) -> None:
        s = _Session(
            sid=str(spec.get("sid", "S0001")),
            ma_set=float(spec.get("ma_set", 15.0)),
            duration_s=int(spec.get("duration_s", 10)),
            polarity_every_s=spec.get("polarity_every_s"),
            end=str(spec.get("end", "COMPLETED")),
            end_at_s=spec.get("end_at_s"),
            fault_code=str(spec.get("fault_code", "E03")),
            start_t=t,
        )
        self._session = s
        self._emit("SES", (s.sid, "START", f"{s.ma_set:.2f}", str(s.duration_s)))

    def fault(self, kind: str, count: int) -> None:
        self._faults[kind] += count

    def schedule_power_on(self, t: float) -> None:
        self._power_on_at = t

    @property
    def session_active(self) -> bool:
        return self._session is not None

    def close(self) -> None:
        if self._record is not None:
            self._record.close()


class IbuEmulator:
    """Runs an ``IbuUnit`` on a line (pty or TCP) in real time scaled by ``speed``.

    ``baud`` paces the output like a UART (bytes/s = baud/10); frames that do not fit the
    unit's 4 KiB transmit buffer are lost. ``None`` sends as fast as the line takes.
    """

    TX_BUFFER = 4096

    def __init__(
        self,
        line: PtyLine | TcpLine,
        scenario: IbuScenario,
        speed: float = 1.0,
        record_path: str | None = None,
        baud: int | None = None,
    ) -> None:
        self.line = line
        self.unit = IbuUnit(scenario, record_path)
        self.clock = EmuClock(speed)
        self.baud = baud
        if baud is not None:
            self.unit.tx_limit = self.TX_BUFFER
        self.stop_event = threading.Event()
        self.script_done = threading.Event()
        self._steps = sorted(scenario.steps, key=lambda s: float(s.get("at", 0.0)))
        self._unplug_until: float | None = None
        self._rename = False
        self._credit = 0.0

    def schedule(self, steps: list[dict[str, Any]]) -> None:
        """Run ``steps`` with ``at`` counted from now (e.g. once a driver is attached)."""
        now = self.clock.now()
        shifted = [{**step, "at": now + float(step.get("at", 0.0))} for step in steps]
        self._steps = sorted(self._steps + shifted, key=lambda s: float(s["at"]))
        self.script_done.clear()

    def _apply(self, step: dict[str, Any], t: float) -> None:
        unit = self.unit
        if "session" in step:
            unit.start_session(step["session"], t)
        for kind in ("drop", "corrupt", "truncate", "glue"):
            if kind in step:
                unit.fault(kind, int(step[kind]))
        if "rate_hz" in step:
            unit.rate_hz = float(step["rate_hz"])
        if "unplug" in step:
            self.line.unplug()
            self._unplug_until = t + float(step["unplug"])
            self._rename = bool(step.get("rename", False))
        if "power_cycle" in step:
            unit.power_off()
            unit.schedule_power_on(t + float(step["power_cycle"]))
        if step.get("stop"):
            self.stop_event.set()

    def run(self) -> None:
        """Serve until ``stop_event`` is set or a ``stop`` step runs."""
        unit = self.unit
        unit.power_up(0.0)
        sent_at = 0.0
        try:
            while not self.stop_event.is_set():
                t = self.clock.now()
                while self._steps and float(self._steps[0].get("at", 0.0)) <= t:
                    self._apply(self._steps.pop(0), t)
                if self._unplug_until is not None and t >= self._unplug_until:
                    self._unplug_until = None
                    self.line.replug(self._rename)
                unit.advance(t)
                if (
                    not self._steps
                    and self._unplug_until is None
                    and unit.powered
                    and not unit.session_active
                ):
                    self.script_done.set()
                data = self.line.read()
                if data:
                    unit.receive(data, t)
                self._send(t, sent_at)
                sent_at = t
                self.line.wait(0.002)
        finally:
            unit.close()
            self.line.close()

    def _send(self, t: float, last_t: float) -> None:
        out = self.unit.out
        if not out:
            return
        if self.baud is None:
            budget = len(out)
        else:
            self._credit += max(0.0, (t - last_t) / self.clock.speed) * self.baud / 10
            self._credit = min(self._credit, float(self.TX_BUFFER))
            budget = int(self._credit)
            self._credit -= budget
        n = self.line.write(bytes(out[:budget]))
        del out[:n]
        if not self.line.connected:
            out.clear()
