"""``ionto capture ibu``: stream an IBU-1 unit to the landing area, every good frame once.

Guarantees (bench-protocols.md section 2):

- every frame with a good CRC is written exactly once, in (boot, seq) order: frames that
  arrive after a seq gap wait in memory while ``RESEND <first missing>`` fills the gap;
- a gap ``RESEND`` cannot fill (``NAK,GONE``, or frames lost before the unit restarted) is one
  ``GAP`` record with inclusive bounds; ``to_seq`` is null when the driver lost contact with
  that boot (unplug, driver restart) before it ended, so its last frame is unknowable;
- bad frames are ``BAD`` records with their raw bytes escaped and a reason;
- boots are ordered by when the driver first saw them (kept in the checkpoint);
- records are fsynced at least every ``flush_interval`` s and at every session end before the
  checkpoint moves; after a SIGKILL the restart rolls its state forward over the durable lines
  written past the checkpoint, so nothing is lost or written twice;
- every read and write has a timeout; a port that fails is reopened with backoff, a device
  path re-resolved, and other ports searched for the unit's serial (``HELLO``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ingest.bench.ibu_codec import BadFrame, Frame, escape_bytes
from ingest.bench.ibu_device import IbuLink
from ingest.bench.jsonl_store import (
    JsonlWriter,
    load_checkpoint,
    records_after_checkpoint,
    save_checkpoint,
    utc_now_iso,
)
from ingest.bench.transport import (
    Backoff,
    PortError,
    SerialSettings,
    discover_ports,
    first_connect_deadline,
    is_url,
    no_device,
    open_port,
    resolve_port,
)

log = logging.getLogger("ingest.bench.ibu")

PREFIX = "ibu"
CHECKPOINT_NAME = "capture-ibu.checkpoint.json"


@dataclass(frozen=True, slots=True)
class IbuTiming:
    """Driver timers in seconds (``scaled`` divides them for time-accelerated emulators)."""

    flush_interval: float = 0.5
    idle_probe: float = 2.0
    resend_timeout: float = 1.0
    hello_timeout: float = 1.0
    backoff_initial: float = 0.5
    backoff_cap: float = 30.0
    shutdown_grace: float = 1.0

    def scaled(self, factor: float) -> IbuTiming:
        if factor <= 0:
            raise ValueError("time scale must be positive")
        return replace(
            self,
            idle_probe=self.idle_probe / factor,
            resend_timeout=self.resend_timeout / factor,
            hello_timeout=self.hello_timeout / factor,
            backoff_initial=self.backoff_initial / factor,
            backoff_cap=self.backoff_cap / factor,
            shutdown_grace=self.shutdown_grace / factor,
        )


@dataclass
class _Boot:
    boot: str
    unit: str | None
    next_seq: int = 0
    closed: bool = False
    known_latest: int = -1
    pending: dict[int, tuple[Frame, str]] = field(default_factory=dict)
    contact: int = 0
    resend_at: float | None = None
    resend_mark: int = -1


@dataclass
class CaptureStats:
    frames: int = 0
    bad: int = 0
    gaps: int = 0
    duplicates: int = 0
    resends: int = 0
    connects: int = 0


class IbuCapture:
    """The capture loop. ``run()`` returns 0 after ``stop_event`` is set; it raises
    :class:`NoDeviceError` when ``connect_wait`` seconds pass without a first connection (a
    port lost after that is retried for ever)."""

    def __init__(
        self,
        port: str,
        out_dir: str | Path,
        *,
        settings: SerialSettings | None = None,
        timing: IbuTiming | None = None,
        discover: list[str] | None = None,
        stop_event: threading.Event | None = None,
        connect_wait: float | None = None,
    ) -> None:
        self.port = port
        self.connect_wait = connect_wait
        self._said_waiting = False
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings or SerialSettings(baudrate=115200)
        self.timing = timing or IbuTiming()
        self.discover = discover
        self.stop_event = stop_event or threading.Event()
        self.stats = CaptureStats()
        self._writer = JsonlWriter(self.out_dir, PREFIX)
        self._checkpoint = self.out_dir / CHECKPOINT_NAME
        self._boots: dict[str, _Boot] = {}
        self._order: list[str] = []
        self._current: _Boot | None = None
        self._link: IbuLink | None = None
        self._conn = 0
        self._last_frame_at = 0.0
        self._last_probe_at = 0.0
        self._backoff = Backoff(self.timing.backoff_initial, self.timing.backoff_cap)
        self.unit_serial: str | None = None

    # -- state and recovery ------------------------------------------------------------------
    def _recover(self) -> None:
        """Load the checkpoint and roll it forward over durable lines written after it."""
        state = load_checkpoint(self._checkpoint) or {}
        for item in state.get("boots", []):
            b = _Boot(item["boot"], item.get("unit"), item["next_seq"], item["closed"])
            b.known_latest = item.get("known_latest", -1)
            self._boots[b.boot] = b
            self._order.append(b.boot)
        for rec in records_after_checkpoint(self.out_dir, PREFIX, state):
            self._roll_forward(rec)
        open_boots = [self._boots[b] for b in self._order if not self._boots[b].closed]
        self._current = open_boots[-1] if open_boots else None
        if self._current is not None:
            self.unit_serial = self._current.unit
        if self._order:
            log.info("resuming: %d boot(s) known, last %s", len(self._order), self._order[-1])

    def _roll_forward(self, rec: dict[str, Any]) -> None:
        kind = rec.get("type")
        boot_id = rec.get("boot")
        if kind == "BAD" or boot_id is None:
            return
        b = self._boots.get(boot_id)
        if b is None:
            for other in self._boots.values():
                other.closed = True
            b = _Boot(boot_id, rec.get("unit"))
            self._boots[boot_id] = b
            self._order.append(boot_id)
        if rec.get("unit"):
            b.unit = rec["unit"]
        if kind == "GAP":
            if rec.get("to_seq") is None:
                b.closed = True
            else:
                b.next_seq = max(b.next_seq, int(rec["to_seq"]) + 1)
        else:
            b.next_seq = max(b.next_seq, int(rec["seq"]) + 1)
        b.known_latest = max(b.known_latest, b.next_seq - 1)

    def _state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "file": self._writer.path.name if self._writer.path else None,
            "offset": self._writer.offset,
            "boots": [
                {
                    "boot": b.boot,
                    "unit": b.unit,
                    "next_seq": b.next_seq,
                    "closed": b.closed,
                    "known_latest": b.known_latest,
                }
                for b in (self._boots[x] for x in self._order)
            ],
        }

    def _sync(self) -> None:
        """Make buffered records durable, then move the checkpoint past them."""
        if self._writer.sync():
            save_checkpoint(self._checkpoint, self._state())

    # -- records -----------------------------------------------------------------------------
    def _write_frame(self, b: _Boot, frame: Frame, host_ts: str) -> None:
        rec = {
            "host_ts": host_ts,
            "unit": b.unit,
            "boot": frame.boot,
            "seq": frame.seq,
            "type": frame.type,
            "raw": frame.raw,
        }
        self._writer.add(rec, b.unit)
        b.next_seq = frame.seq + 1
        self.stats.frames += 1
        if frame.type == "SES" and frame.fields[1] == "END":
            self._sync()

    def _write_gap(self, b: _Boot, from_seq: int, to_seq: int | None) -> None:
        rec = {
            "host_ts": utc_now_iso(),
            "unit": b.unit,
            "type": "GAP",
            "boot": b.boot,
            "from_seq": from_seq,
            "to_seq": to_seq,
        }
        self._writer.add(rec, b.unit)
        self.stats.gaps += 1
        log.warning("gap in boot %s: seq %s..%s cannot be recovered", b.boot, from_seq, to_seq)
        if to_seq is not None:
            b.next_seq = to_seq + 1

    def _write_bad(self, raw: bytes, reason: str) -> None:
        rec = {
            "host_ts": utc_now_iso(),
            "unit": self.unit_serial,
            "type": "BAD",
            "raw": escape_bytes(raw),
            "reason": reason,
        }
        self._writer.add(rec, self.unit_serial or self._writer.unit)
        self.stats.bad += 1

    def _drain(self, b: _Boot) -> None:
        while b.next_seq in b.pending:
            frame, host_ts = b.pending.pop(b.next_seq)
            self._write_frame(b, frame, host_ts)

    def _write_held(self, b: _Boot, below: int | None) -> None:
        """Write the held frames of ``b`` with seq below ``below`` (all when ``None``) in order,
        each missing range before one as a ``GAP``: used when those ranges cannot be resent."""
        for seq in sorted(s for s in b.pending if below is None or s < below):
            frame, host_ts = b.pending.pop(seq)
            if seq > b.next_seq:
                self._write_gap(b, b.next_seq, seq - 1)
            self._write_frame(b, frame, host_ts)

    def _close_boot(self, b: _Boot) -> None:
        """The unit left boot ``b`` (new boot seen): write what is held and the lost ranges."""
        self._write_held(b, None)
        if b.known_latest >= b.next_seq:
            self._write_gap(b, b.next_seq, b.known_latest)
        if b.contact != self._conn:
            self._write_gap(b, b.next_seq, None)
        b.closed = True
        self._sync()

    # -- frames ------------------------------------------------------------------------------
    def _handle(self, item: Frame | BadFrame, now: float) -> None:
        if isinstance(item, BadFrame):
            self._write_bad(item.raw, item.reason)
            return
        host_ts = utc_now_iso()
        b = self._boots.get(item.boot)
        if b is None:
            b = _Boot(item.boot, None)
            if self._current is not None:
                self._close_boot(self._current)
            self._boots[item.boot] = b
            self._order.append(item.boot)
            self._current = b
            log.info("boot %s first seen", item.boot)
        elif b.closed:
            if item.seq >= b.next_seq:
                self._write_bad(item.raw.encode("ascii"), "LATE")
            return
        elif b is not self._current:
            self._current = b
        self._last_frame_at = now
        b.contact = self._conn
        if item.type == "HELLO":
            b.unit = item.fields[0]
            self.unit_serial = b.unit
        if item.seq > b.known_latest:
            b.known_latest = item.seq
        if item.type == "NAK":
            self._handle_nak(b, item)
        if item.seq < b.next_seq or item.seq in b.pending:
            self.stats.duplicates += 1
            return
        if item.seq == b.next_seq:
            self._write_frame(b, item, host_ts)
            self._drain(b)
        else:
            b.pending[item.seq] = (item, host_ts)

    def _handle_nak(self, b: _Boot, nak: Frame) -> None:
        reason, detail = nak.fields
        if reason == "GONE":
            oldest = int(detail)
            if oldest > b.next_seq:
                self._write_held(b, oldest)
                if oldest > b.next_seq:
                    self._write_gap(b, b.next_seq, oldest - 1)
                self._drain(b)
            b.resend_at = None
        elif reason == "RANGE":
            b.known_latest = max(b.known_latest, int(detail))
            b.resend_at = None
            log.warning("unit says RESEND is past its latest seq %s (boot %s)", detail, b.boot)

    # -- timers ------------------------------------------------------------------------------
    def _timers(self, now: float) -> None:
        link = self._link
        b = self._current
        if b is not None and not b.pending:
            b.resend_at = None
        elif link is not None and b is not None:
            if b.resend_at is None or (
                now - b.resend_at > self.timing.resend_timeout and b.next_seq == b.resend_mark
            ):
                link.resend(b.next_seq)
                log.debug("RESEND %d (boot %s, %d held)", b.next_seq, b.boot, len(b.pending))
                self.stats.resends += 1
                b.resend_at = now
                b.resend_mark = b.next_seq
            elif b.next_seq != b.resend_mark:
                b.resend_at = now
                b.resend_mark = b.next_seq
        if (
            link is not None
            and now - self._last_frame_at >= self.timing.idle_probe
            and now - self._last_probe_at >= self.timing.idle_probe
        ):
            link.hello()
            self._last_probe_at = now
        first = self._writer.first_buffered_at
        if first is not None and now - first >= self.timing.flush_interval:
            self._sync()

    # -- port --------------------------------------------------------------------------------
    def _candidates(self) -> list[str]:
        if self.unit_serial is None:
            return []
        if self.discover is None:
            if is_url(self.port):
                return []
            found = discover_ports([])
        else:
            found = discover_ports(self.discover)
        try:
            primary = resolve_port(self.port)
        except PortError:
            primary = self.port
        return [c for c in found if c not in (self.port, primary)]

    def _connect(self) -> bool:
        try:
            transport = open_port(self.port, self.settings)
        except PortError as exc:
            self._port_failed(exc)
        else:
            self._attach(IbuLink(transport), [])
            return True
        for candidate in self._candidates():
            try:
                transport = open_port(candidate, self.settings)
            except PortError:
                continue
            link = IbuLink(transport)
            try:
                hello, seen = link.identify(self.timing.hello_timeout)
            except PortError:
                transport.close()
                continue
            if hello is not None and hello.fields[0] == self.unit_serial:
                log.info("unit %s found on %s", self.unit_serial, candidate)
                self._attach(link, seen)
                return True
            transport.close()
        return False

    def _port_failed(self, exc: PortError) -> None:
        """Log a failed opening: every one once connected (an unplugged unit); before the
        first connection only the first, saying how long the capture waits."""
        if self.stats.connects:
            log.info("%s", exc)
        elif not self._said_waiting:
            limit = "until it answers" if self.connect_wait is None else f"{self.connect_wait:g} s"
            log.info("%s; waiting for the unit (%s)", exc, limit)
            self._said_waiting = True
        else:
            log.debug("%s", exc)

    def _attach(self, link: IbuLink, seen: list[Frame | BadFrame]) -> None:
        self._link = link
        self._conn += 1
        self.stats.connects += 1
        self._backoff.reset()
        log.info("connected to %s", link.transport.name)
        now = time.monotonic()
        for b in self._boots.values():
            b.resend_at = None
        if seen:
            for item in seen:
                self._handle(item, now)
        else:
            link.hello()
        self._last_probe_at = now
        self._last_frame_at = now

    def _disconnect(self, exc: Exception) -> None:
        log.warning("port lost: %s", exc)
        if self._link is not None:
            self._link.transport.close()
        self._link = None
        for b in self._boots.values():
            b.pending.clear()
            b.resend_at = None
        self._sync()

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> int:
        self._recover()
        deadline = first_connect_deadline(self.connect_wait)
        try:
            while not self.stop_event.is_set():
                if self._link is None:
                    if not self._connect():
                        self._sync()
                        delay = self._backoff.next_delay()
                        if deadline is not None and self.stats.connects == 0:
                            left = deadline - time.monotonic()
                            if left <= 0:
                                raise no_device(self.port, self.connect_wait, "unit")
                            delay = min(delay, left)
                        self.stop_event.wait(delay)
                    continue
                try:
                    self._step()
                except PortError as exc:
                    self._disconnect(exc)
            self._shutdown()
        finally:
            if self._link is not None:
                self._link.transport.close()
            self._writer.close()
        return 0

    def _step(self) -> None:
        assert self._link is not None
        items = self._link.poll()
        now = time.monotonic()
        for item in items:
            self._handle(item, now)
        self._timers(now)

    def _shutdown(self) -> None:
        """Stop cleanly: try briefly to fill open gaps, then write and checkpoint everything."""
        deadline = time.monotonic() + self.timing.shutdown_grace
        b = self._current
        while self._link is not None and b is not None and b.pending:
            if time.monotonic() >= deadline:
                log.warning(
                    "stopping with %d frame(s) of boot %s held behind a gap: not written; the "
                    "next start fetches them again from the unit",
                    len(b.pending),
                    b.boot,
                )
                break
            try:
                self._step()
            except PortError as exc:
                self._disconnect(exc)
        self._sync()
        if self._writer.path is not None and not self._checkpoint.exists():
            save_checkpoint(self._checkpoint, self._state())
