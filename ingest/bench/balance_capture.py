"""``ionto capture balance``: weigh filter papers on an MT-SICS balance (``S``, stable only).

Each paper gets one JSON line once both phases are weighed (bench-protocols.md section 1):
``paper_id, subject_id, visit, region, side, balance_serial, operator`` and ``dry``/``wet``
objects ``{value, unit, raw, at}``. Every weighing is checkpointed (a half-weighed paper
included), so a restart resumes at the next unweighed phase and no phase is weighed or written
twice. Two modes:

- interactive: the operator types paper id, subject, visit, region, side and phase;
- worklist: a CSV gives them row by row; the driver polls ``SI`` until the pan holds more than
  5 mg, records a stable ``S``, then waits for the pan to be cleared. A weight is recorded for
  a row only after the driver has seen the pan cleared since the previous row (any reading
  below 1 mg, stable or not): a loaded pan never seen cleared (a paper swapped for the next
  faster than one poll, or a paper on the pan at the start) is refused with a prompt to lift
  it off, never taken for the next row. An error or ``S I`` (the pan did not settle within
  the balance's stability timeout: a draught) is reported and the row weighed again; the run
  ends (exit 0) when the list is done.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingest.bench.balance_device import Balance, BalanceBusy, BalanceError
from ingest.bench.jsonl_store import (
    JsonlWriter,
    load_checkpoint,
    records_after_checkpoint,
    save_checkpoint,
    utc_now_iso,
)
from ingest.bench.mtsics import Weight
from ingest.bench.transport import (
    Backoff,
    PortError,
    SerialSettings,
    SerialTransport,
    discover_ports,
    first_connect_deadline,
    is_url,
    no_device,
    open_port,
    resolve_port,
)

log = logging.getLogger("ingest.bench.balance")

PREFIX = "balance"
CHECKPOINT_NAME = "capture-balance.checkpoint.json"
WORKLIST_COLUMNS = ("paper_id", "subject_id", "visit", "region", "side", "phase")
META = ("paper_id", "subject_id", "visit", "region", "side")
PHASES = ("dry", "wet")
LOAD_MG = Decimal("5")
CLEAR_MG = Decimal("1")
REPLY_FLOOR = 0.5


class WorklistError(ValueError):
    """A worklist that cannot be run (missing column, bad phase, a phase listed twice)."""


@dataclass(frozen=True, slots=True)
class BalanceTiming:
    """Seconds; ``scaled`` divides them for a time-accelerated emulator."""

    reply_timeout: float = 2.0
    stable_timeout: float = 15.0
    poll_interval: float = 0.25
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0

    def scaled(self, factor: float) -> BalanceTiming:
        """Divide the pauses by ``factor``. Reply timeouts are limits, not waits: they shrink
        only down to ``REPLY_FLOOR`` s so that a busy host does not turn a slow reply into a
        timeout (``stable_timeout`` still exceeds the emulated balance's scaled one)."""
        return replace(
            self,
            reply_timeout=max(self.reply_timeout / factor, REPLY_FLOOR),
            stable_timeout=max(self.stable_timeout / factor, 2 * REPLY_FLOOR),
            poll_interval=self.poll_interval / factor,
            backoff_initial=self.backoff_initial / factor,
            backoff_cap=self.backoff_cap / factor,
        )


def to_mg(weight: Weight) -> Decimal:
    """The weight in mg (``g`` x 1000, ``mg`` as is)."""
    value = Decimal(weight.value)
    if weight.unit == "g":
        return value * 1000
    if weight.unit == "mg":
        return value
    raise BalanceError(f"unit {weight.unit!r} not supported (set the balance to g or mg)")


def read_worklist(path: Path) -> list[dict[str, str]]:
    """Rows of a worklist CSV (``paper_id, subject_id, visit, region, side, phase``)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in WORKLIST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise WorklistError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = [{c: (row[c] or "").strip() for c in WORKLIST_COLUMNS} for row in reader]
    seen: set[tuple[str, str]] = set()
    for line, row in enumerate(rows, start=2):
        if row["phase"] not in PHASES:
            raise WorklistError(f"{path} line {line}: phase {row['phase']!r} is not dry or wet")
        if not row["paper_id"]:
            raise WorklistError(f"{path} line {line}: empty paper_id")
        key = (row["paper_id"], row["phase"])
        if key in seen:
            raise WorklistError(f"{path} line {line}: paper {key[0]} {key[1]} listed twice")
        seen.add(key)
    return rows


class Stopped(Exception):
    """The stop event was set while waiting."""


class BalanceCapture:
    """Both modes; ``run()`` returns the exit code. ``regions`` and ``sides`` are the study's
    codes the interactive mode offers (``ionto capture balance --study``). It raises
    :class:`NoDeviceError` when ``connect_wait`` seconds pass without a first connection (a
    port lost after that is retried for ever)."""

    def __init__(
        self,
        port: str,
        out_dir: str | Path,
        operator: str,
        *,
        regions: Sequence[str],
        sides: Sequence[str],
        worklist: str | Path | None = None,
        settings: SerialSettings | None = None,
        timing: BalanceTiming | None = None,
        stop_event: threading.Event | None = None,
        discover: list[str] | None = None,
        ask: Callable[[str], str] = input,
        say: Callable[[str], None] = print,
        connect_wait: float | None = None,
    ) -> None:
        self.port = port
        self.connect_wait = connect_wait
        self._first_connect_by: float | None = None
        self.out_dir = Path(out_dir)
        self.operator = operator
        self.regions = tuple(regions)
        self.sides = tuple(sides)
        self.worklist = Path(worklist) if worklist else None
        self.settings = settings or SerialSettings(baudrate=9600, read_timeout=0.05)
        self.timing = timing or BalanceTiming()
        self.stop_event = stop_event or threading.Event()
        self.discover = discover
        self.ask = ask
        self.say = say
        self._writer = JsonlWriter(self.out_dir, PREFIX)
        self._checkpoint = self.out_dir / CHECKPOINT_NAME
        self._transport: SerialTransport | None = None
        self._balance: Balance | None = None
        self.serial: str | None = None
        self.pending: dict[str, dict[str, Any]] = {}
        self.done: set[tuple[str, str]] = set()
        self.awaiting_clear = False
        self.seen_clear = False
        self.busy_replies = 0
        self.papers_written = 0

    # -- checkpoint --------------------------------------------------------------------------
    def _recover(self) -> None:
        state = load_checkpoint(self._checkpoint) or {}
        self.pending = state.get("pending", {})
        self.done = {(p, ph) for p, ph in state.get("done", [])}
        self.awaiting_clear = bool(state.get("awaiting_clear", False))
        for rec in records_after_checkpoint(self.out_dir, PREFIX, state):
            self.pending.pop(rec["paper_id"], None)
            self.done.update({(rec["paper_id"], "dry"), (rec["paper_id"], "wet")})

    def _save(self) -> None:
        self._writer.sync()
        save_checkpoint(
            self._checkpoint,
            {
                "version": 1,
                "file": self._writer.path.name if self._writer.path else None,
                "offset": self._writer.offset,
                "pending": self.pending,
                "done": sorted(self.done),
                "awaiting_clear": self.awaiting_clear,
            },
        )

    # -- port --------------------------------------------------------------------------------
    def _open(self, port: str) -> tuple[SerialTransport, Balance, str]:
        transport = open_port(port, self.settings)
        try:
            balance = Balance(transport, self.timing.reply_timeout, self.timing.stable_timeout)
            balance.reset()
            serial = balance.serial_number(pause=self.timing.poll_interval)
        except (PortError, BalanceError):
            transport.close()
            raise
        return transport, balance, serial

    def _candidates(self) -> list[str]:
        """Other ports to search for this balance (by its ``I4`` serial) when its port is gone."""
        if self.serial is None or (self.discover is None and is_url(self.port)):
            return []
        found = discover_ports(self.discover or [])
        try:
            primary = resolve_port(self.port)
        except PortError:
            primary = self.port
        return [c for c in found if c not in (self.port, primary)]

    def _connect(self) -> Balance:
        """Open the port (retried with backoff, never fatal) and read the balance serial; when
        the port is gone, look for the same balance (``I4`` serial) on the other ports."""
        backoff = Backoff(self.timing.backoff_initial, self.timing.backoff_cap)
        while True:
            if self.stop_event.is_set():
                raise Stopped
            try:
                transport, balance, serial = self._open(self.port)
            except (PortError, BalanceError) as exc:
                found = None
                for candidate in self._candidates():
                    try:
                        opened = self._open(candidate)
                    except (PortError, BalanceError):
                        continue
                    if opened[2] == self.serial:
                        found = opened
                        break
                    opened[0].close()
                if found is None:
                    self._wait_to_reconnect(backoff, exc)
                    continue
                transport, balance, serial = found
                self.say(f"balance {serial} found on {transport.name}")
            if self.serial is not None and serial != self.serial:
                self.say(f"note: balance serial changed from {self.serial} to {serial}")
            self.serial = serial
            self._transport = transport
            self._balance = balance
            log.info("balance %s on %s", serial, transport.name)
            return balance

    def _wait_to_reconnect(self, backoff: Backoff, exc: Exception) -> None:
        """Wait before the next attempt; before the first connection, give up (raise
        :class:`NoDeviceError`) at the deadline, saying only the first failure."""
        delay = backoff.next_delay()
        by = self._first_connect_by
        if self.serial is None and by is not None:
            left = by - time.monotonic()
            if left <= 0:
                raise no_device(self.port, self.connect_wait, "balance")
            if delay == backoff.initial:
                self.say(
                    f"balance on {self.port} not reachable: {exc}; waiting up to "
                    f"{self.connect_wait:g} s"
                )
            delay = min(delay, left)
        else:
            self.say(f"balance on {self.port} not reachable: {exc}; retrying")
        self.stop_event.wait(delay)

    def _disconnect(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._balance = None

    def _call(self, action: Callable[[Balance], Any]) -> Any:
        """Run ``action`` on the balance, reconnecting when the port fails."""
        while True:
            balance = self._balance or self._connect()
            try:
                return action(balance)
            except PortError as exc:
                self.say(f"port lost ({exc}); reconnecting")
                self._disconnect()

    def _pause(self) -> None:
        if self.stop_event.wait(self.timing.poll_interval):
            raise Stopped

    # -- weighing ----------------------------------------------------------------------------
    def _weigh(self) -> Weight:
        """One stable ``S`` reading; ``BalanceError`` with an operator message otherwise."""
        weight: Weight = self._call(lambda b: b.stable_weight())
        to_mg(weight)
        return weight

    def _record(self, meta: dict[str, str], phase: str, weight: Weight) -> None:
        paper = self.pending.setdefault(meta["paper_id"], {k: meta[k] for k in META})
        paper[phase] = {
            "value": weight.value,
            "unit": weight.unit,
            "raw": weight.raw,
            "at": utc_now_iso(),
        }
        paper["balance_serial_" + phase] = self.serial
        self.done.add((meta["paper_id"], phase))
        if all(p in paper for p in PHASES):
            record = {k: paper[k] for k in META}
            record["balance_serial"] = paper.get("balance_serial_wet") or self.serial
            record["operator"] = self.operator
            record["dry"] = paper["dry"]
            record["wet"] = paper["wet"]
            self._writer.add(record, self.serial)
            del self.pending[meta["paper_id"]]
            self.papers_written += 1
        self.say(f"{meta['paper_id']} {phase}: {weight.value} {weight.unit}")

    def _poll(self) -> Weight | None:
        """One ``SI`` reading (None after reporting an error); a reading below 1 mg, stable or
        not, marks the pan as seen cleared."""
        try:
            weight: Weight = self._call(lambda b: b.weight_now())
        except BalanceError as exc:
            self.say(str(exc))
            return None
        if abs(to_mg(weight)) < CLEAR_MG:
            self.seen_clear = True
        return weight

    def _wait_load(self, paper: str) -> None:
        """Until the pan holds more than 5 mg after having been seen cleared since the previous
        row. A load on a pan never seen cleared is refused with a prompt (said once per
        episode), never weighed."""
        refused = False
        while True:
            weight = self._poll()
            if weight is not None and to_mg(weight) > LOAD_MG:
                if self.seen_clear:
                    return
                if not refused:
                    self.say(
                        f"refused: the pan holds {weight.value} {weight.unit} but was not seen "
                        f"empty since the last weighing; lift it off until the display reads "
                        f"0, then place paper {paper}"
                    )
                    refused = True
            self._pause()

    def _wait_clear(self, paper: str | None = None, weighed: Weight | None = None) -> None:
        """Until a reading below 1 mg (stable or not); asks once to clear the pan. A stable
        load that is not the ``weighed`` paper's (the next paper put on without the pan being
        seen empty) is refused with a prompt, once per load."""
        asked = False
        refused: Decimal | None = None
        while not self.seen_clear:
            weight = self._poll()
            if self.seen_clear:
                return
            if weight is not None and paper is not None:
                if not asked:
                    self.say(f"remove paper {paper} from the pan")
                    asked = True
                mg = to_mg(weight)
                other = weighed is not None and abs(mg - to_mg(weighed)) > CLEAR_MG
                if weight.stable and mg > LOAD_MG and other and mg != refused:
                    self.say(
                        f"refused: the pan holds {weight.value} {weight.unit}, not paper {paper} "
                        f"({weighed.value if weighed else '?'} {weighed.unit if weighed else ''}), "
                        "and was not seen empty since it was weighed: lift it off until the "
                        "display reads 0, then place it again"
                    )
                    refused = mg
            self._pause()

    def _zero_empty_pan(self) -> None:
        """Zero the pan at the start if it is empty (stable, below the 5 mg load threshold).

        A loaded pan is not zeroed (that would hide the load): the capture goes on with the
        balance's current zero and says so.
        """
        while True:
            try:
                weight: Weight = self._call(lambda b: b.weight_now())
            except BalanceError as exc:
                self.say(str(exc))
                self._pause()
                continue
            if not weight.stable:
                self._pause()
                continue
            if abs(to_mg(weight)) < CLEAR_MG:
                self.seen_clear = True
            if abs(to_mg(weight)) >= LOAD_MG:
                self.say(f"pan not empty at start ({weight.value} {weight.unit}): not zeroed")
                return
            try:
                self._call(lambda b: b.zero())
                return
            except BalanceError as exc:
                self.say(str(exc))
                self._pause()

    # -- modes -------------------------------------------------------------------------------
    def _run_worklist(self, rows: list[dict[str, str]]) -> None:
        if self.awaiting_clear:
            self.say("waiting for the pan to be cleared")
            self._wait_clear()
            self.awaiting_clear = False
            self._save()
        self._zero_empty_pan()
        for row in rows:
            if (row["paper_id"], row["phase"]) in self.done:
                continue
            self.say(f"place paper {row['paper_id']} ({row['phase']}) on the pan")
            while True:
                self._wait_load(row["paper_id"])
                try:
                    weight = self._weigh()
                except BalanceError as exc:
                    self.busy_replies += isinstance(exc, BalanceBusy)
                    self.say(f"{row['paper_id']} {row['phase']}: {exc}")
                    continue
                if to_mg(weight) <= LOAD_MG:
                    self.say("the pan was cleared during the weighing; weighing again")
                    continue
                break
            self._record(row, row["phase"], weight)
            self.seen_clear = False
            self.awaiting_clear = True
            self._save()
            self._wait_clear(row["paper_id"], weight)
            self.awaiting_clear = False
            self._save()
        retried = f"; {self.busy_replies} unsettled (S I) weighing(s) retried"
        self.say(
            f"worklist done: {self.papers_written} paper(s) written"
            + (retried if self.busy_replies else "")
        )

    def _prompt(self, text: str, allowed: tuple[str, ...] | None = None, default: str = "") -> str:
        while True:
            if self.stop_event.is_set():
                raise Stopped
            suffix = f" [{default}]" if default else ""
            try:
                answer = self.ask(f"{text}{suffix}: ").strip() or default
            except EOFError as exc:
                raise Stopped from exc
            if allowed is None or answer.upper() in allowed or answer.lower() in allowed:
                return (
                    answer.lower() if allowed == PHASES else answer.upper() if allowed else answer
                )
            self.say(f"{answer!r} is not one of {', '.join(allowed)}")

    def _run_interactive(self) -> None:
        self.say("clear the pan: it is zeroed before the first weighing")
        self._zero_empty_pan()
        while True:
            paper_id = self._prompt("paper id (empty to finish)")
            if not paper_id:
                return
            held = self.pending.get(paper_id)
            if held is not None:
                meta = {k: held[k] for k in META}
                phase = "wet" if "dry" in held else "dry"
                self.say(
                    f"{paper_id}: {meta['subject_id']} {meta['visit']} {meta['region']} "
                    f"{meta['side']}, {phase} phase next"
                )
            else:
                meta = {
                    "paper_id": paper_id,
                    "subject_id": self._prompt("subject"),
                    "visit": self._prompt("visit").upper(),
                    "region": self._prompt("region", self.regions),
                    "side": self._prompt("side", self.sides),
                }
                phase = self._prompt("phase", PHASES, "dry")
            if (paper_id, phase) in self.done:
                self.say(f"{paper_id} {phase} is already weighed; not weighed twice")
                continue
            while True:
                self._prompt("place the paper on the pan, then press Enter")
                try:
                    weight = self._weigh()
                    break
                except BalanceError as exc:
                    self.say(f"{exc}")
            self._record(meta, phase, weight)
            self._save()

    def run(self) -> int:
        rows = read_worklist(self.worklist) if self.worklist else None
        self._recover()
        self._first_connect_by = first_connect_deadline(self.connect_wait)
        try:
            if rows is not None:
                self._run_worklist(rows)
            else:
                self._run_interactive()
        except Stopped:
            self.say("stopped")
        finally:
            if self._writer.buffered:
                self._save()
            self._disconnect()
            self._writer.close()
        return 0
