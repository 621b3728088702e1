"""An emulated MT-SICS balance with scripted faults and an optional scripted operator.

Emulated time runs ``speed`` times faster than real time. Scenario keys:

- ``serial``, ``model``, ``unit`` (``g``: 4 decimals, ``mg``: 1 decimal), ``capacity_g``,
  ``settle_s`` (time to settle after a load change), ``stability_timeout_s`` (``S``
  answers ``S I`` after it when the pan cannot settle), ``i4_busy`` (first ``I4`` answers
  ``I4 I`` this many times);
- ``steps``: ``{at, load_g}`` (what lies on the pan), ``{at, unsettled_s}`` (draught: dynamic
  readings for that long), ``{at, reply: "S +"}`` (the next ``S`` answers with that status:
  ``S I``, ``S +``, ``S -``; or a general error ``ES``/``ET``/``EL`` for the next command),
  ``{at, unit}``, ``{at, unplug: seconds, rename: bool}``, ``{at, stop: true}``; ``at`` is
  counted from the emulator's start, or, for a step with ``after_zero: true``, from the
  moment the driver first zeroed the pan (so a fault meant for an attached driver never
  comes before it, however slow the host);
- ``operator``: ``{loads_g: [...], dwell_s, gap_s, swap}``: once the pan has been zeroed,
  places each load on the empty pan after ``gap_s``, and clears the pan ``dwell_s`` after the
  balance has answered a stable ``S`` for it (the operator hears the beep). With ``swap:
  true`` the operator replaces each weighed paper by the next one at once (a swap faster than
  any poll: the pan never reads empty in between); after the last paper the pan is cleared.

``sent`` records every reply line the balance sent (the tests' reference).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from ingest.bench.emulators.lines import EmuClock, PtyLine, TcpLine
from ingest.bench.mtsics import format_weight_reply


@dataclass
class BalanceScenario:
    serial: str = "B123456789"
    model: str = "XPR205 220.00000 g"
    unit: str = "g"
    capacity_g: float = 220.0
    settle_s: float = 0.5
    stability_timeout_s: float = 10.0
    i4_busy: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)
    operator: dict[str, Any] | None = None
    speed: float | None = None

    @classmethod
    def load(cls, path: str | Path) -> BalanceScenario:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class BalanceModel:
    """Command handling in emulated time, one command at a time."""

    def __init__(self, scenario: BalanceScenario) -> None:
        self.sc = scenario
        self.unit = scenario.unit
        self.load = Decimal("0")
        self.zero_offset = Decimal("0")
        self.changed_at = -1e9
        self.unsettled_until = -1e9
        self.i4_busy = scenario.i4_busy
        self.next_reply: list[str] = []
        self.queue: list[tuple[str, float]] = []
        self.sir = False
        self._sir_next = 0.0
        self.sent: list[str] = []
        self.out = bytearray()
        self._buf = b""
        self.stable_replies = 0
        self.zeroed_at: float | None = None

    def set_load(self, grams: float, t: float) -> None:
        self.load = Decimal(str(grams))
        self.changed_at = t

    def stable(self, t: float) -> bool:
        return t - self.changed_at >= self.sc.settle_s and t >= self.unsettled_until

    def _display(self, t: float, stable: bool) -> str:
        net = self.load - self.zero_offset
        if not stable:
            net += Decimal("0.0007") if int(t * 10) % 2 else Decimal("-0.0004")
        if self.unit == "mg":
            return f"{net * 1000:.1f}"
        return f"{net:.4f}"

    def _send(self, line: str) -> None:
        self.sent.append(line)
        self.out += line.encode("ascii") + b"\r\n"

    def receive(self, data: bytes, t: float) -> None:
        self._buf += data
        while b"\n" in self._buf:
            raw, self._buf = self._buf.split(b"\n", 1)
            text = raw.rstrip(b"\r").decode("ascii", "replace")
            if text == "@":
                self.queue.clear()
                self.sir = False
                self._send(f'I4 A "{self.sc.serial}"')
            elif text:
                self.sir = False
                self.queue.append((text, t))

    def advance(self, t: float) -> None:
        while self.queue:
            command, since = self.queue[0]
            if not self._try(command, since, t):
                break
            self.queue.pop(0)
        if self.sir and t >= self._sir_next:
            stable = self.stable(t)
            self._send(
                format_weight_reply(
                    "S", "S" if stable else "D", self._display(t, stable), self.unit
                )
            )
            self._sir_next = t + 0.1

    def _overloaded(self) -> bool:
        return self.load > Decimal(str(self.sc.capacity_g))

    def _try(self, command: str, since: float, t: float) -> bool:
        """Answer ``command`` if it can be answered at ``t``; ``False`` to keep it waiting."""
        if self.next_reply and self.next_reply[0] in ("ES", "ET", "EL"):
            self._send(self.next_reply.pop(0))
            return True
        if command == "I4":
            if self.i4_busy > 0:
                self.i4_busy -= 1
                self._send("I4 I")
            else:
                self._send(f'I4 A "{self.sc.serial}"')
        elif command == "I2":
            self._send(f'I2 A "{self.sc.model}"')
        elif command == "SI":
            if self._overloaded():
                self._send("S +")
            else:
                stable = self.stable(t)
                self._send(
                    format_weight_reply(
                        "S", "S" if stable else "D", self._display(t, stable), self.unit
                    )
                )
        elif command == "SIR":
            self.sir = True
            self._sir_next = t
        elif command == "S":
            if self.next_reply and self.next_reply[0].startswith("S "):
                forced = self.next_reply[0]
                if forced == "S I" and t - since < self.sc.stability_timeout_s:
                    return False
                self._send(self.next_reply.pop(0))
            elif self._overloaded():
                self._send("S +")
            elif self.stable(t):
                self._send(format_weight_reply("S", "S", self._display(t, True), self.unit))
                self.stable_replies += 1
            elif t - since >= self.sc.stability_timeout_s:
                self._send("S I")
            else:
                return False
        elif command == "Z":
            if self._overloaded():
                self._send("Z +")
            elif self.stable(t):
                self.zero_offset = self.load
                self._send("Z A")
                if self.zeroed_at is None:
                    self.zeroed_at = t
            elif t - since >= self.sc.stability_timeout_s:
                self._send("Z I")
            else:
                return False
        elif command == "T":
            if self.stable(t):
                self._send(format_weight_reply("T", "S", self._display(t, True), self.unit))
            elif t - since >= self.sc.stability_timeout_s:
                self._send("T I")
            else:
                return False
        else:
            self._send("ES")
        return True


class BalanceEmulator:
    """Runs a ``BalanceModel`` on a line in real time scaled by ``speed``."""

    def __init__(self, line: PtyLine | TcpLine, scenario: BalanceScenario, speed: float = 1.0):
        self.line = line
        self.model = BalanceModel(scenario)
        self.clock = EmuClock(speed)
        self.stop_event = threading.Event()
        steps = sorted(scenario.steps, key=lambda s: float(s.get("at", 0.0)))
        self._steps = [s for s in steps if not s.get("after_zero")]
        self._steps_after_zero = [s for s in steps if s.get("after_zero")]
        self._operator = dict(scenario.operator) if scenario.operator else None
        self._op_index = 0
        self._op_state = "empty"
        self._op_at = 0.0
        self._op_seen = 0
        self._unplug_until: float | None = None
        self._rename = False

    @property
    def operator_done(self) -> bool:
        op = self._operator
        return op is None or (self._op_index >= len(op["loads_g"]) and self._op_state == "empty")

    def _apply(self, step: dict[str, Any], t: float) -> None:
        m = self.model
        if "load_g" in step:
            m.set_load(float(step["load_g"]), t)
        if "unsettled_s" in step:
            m.unsettled_until = t + float(step["unsettled_s"])
        if "reply" in step:
            m.next_reply.append(str(step["reply"]))
        if "unit" in step:
            m.unit = str(step["unit"])
        if "unplug" in step:
            self.line.unplug()
            self._unplug_until = t + float(step["unplug"])
            self._rename = bool(step.get("rename", False))
        if step.get("stop"):
            self.stop_event.set()

    def _operate(self, t: float) -> None:
        op = self._operator
        if op is None:
            return
        m = self.model
        loads = op["loads_g"]
        if m.zeroed_at is None:
            return  # the operator starts once the driver has zeroed the empty pan
        if self._op_state == "empty" and self._op_index < len(loads):
            if t - max(self._op_at, m.zeroed_at) >= float(op.get("gap_s", 0.5)):
                m.set_load(float(loads[self._op_index]), t)
                self._op_state = "loaded"
                self._op_seen = m.stable_replies
        elif self._op_state == "loaded" and m.stable_replies > self._op_seen:
            self._op_state = "weighed"
            self._op_at = t
        elif self._op_state == "weighed" and t - self._op_at >= float(op.get("dwell_s", 0.3)):
            self._op_index += 1
            if op.get("swap") and self._op_index < len(loads):
                m.set_load(float(loads[self._op_index]), t)
                self._op_state = "loaded"
                self._op_seen = m.stable_replies
            else:
                m.set_load(0.0, t)
                self._op_state = "empty"
            self._op_at = t

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                t = self.clock.now()
                while self._steps and float(self._steps[0].get("at", 0.0)) <= t:
                    self._apply(self._steps.pop(0), t)
                zeroed = self.model.zeroed_at
                while (
                    zeroed is not None
                    and self._steps_after_zero
                    and float(self._steps_after_zero[0].get("at", 0.0)) <= t - zeroed
                ):
                    self._apply(self._steps_after_zero.pop(0), t)
                if self._unplug_until is not None and t >= self._unplug_until:
                    self._unplug_until = None
                    self.line.replug(self._rename)
                self._operate(t)
                data = self.line.read()
                if data:
                    self.model.receive(data, t)
                self.model.advance(t)
                if self.model.out:
                    n = self.line.write(bytes(self.model.out))
                    del self.model.out[:n]
                    if not self.line.connected:
                        self.model.out.clear()
                self.line.wait(0.002)
        finally:
            self.line.close()
