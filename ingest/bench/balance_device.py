"""Device API for an MT-SICS balance on a ``Transport`` (one command at a time)."""

from __future__ import annotations

import logging
import time

from ingest.bench.mtsics import (
    GENERAL_ERRORS,
    Reply,
    ReplyFormatError,
    Weight,
    format_command,
    parse_reply,
    parse_weight,
)
from ingest.bench.transport import LineReader, Transport

log = logging.getLogger("ingest.bench.balance")


class BalanceError(Exception):
    """A reply that is not the value asked for; the message tells the operator what to do."""

    def __init__(self, message: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class BalanceBusy(BalanceError):
    """``I``: busy, or the pan did not settle within the balance's stability timeout."""


class BalanceOverload(BalanceError):
    """``+``: above capacity (or above the zero/tare range)."""


class BalanceUnderload(BalanceError):
    """``-``: below zero range (pan missing?)."""


class BalanceCommandError(BalanceError):
    """``ES``/``ET``/``EL`` or status ``L``."""


class BalanceTimeout(BalanceError):
    """No reply within the timeout."""


def _status_error(command: str, reply: Reply) -> BalanceError:
    if reply.is_general_error:
        return BalanceCommandError(
            f"{command}: {reply.status} {GENERAL_ERRORS[reply.status]}", reply.raw
        )
    if reply.status == "I":
        return BalanceBusy(
            f"{command}: balance busy or the pan did not settle in time (draught, vibration, "
            "a paper touching the draught shield?); weighing again",
            reply.raw,
        )
    if reply.status == "+":
        return BalanceOverload(
            f"{command}: overload, the load is above the balance's range; remove it", reply.raw
        )
    if reply.status == "-":
        return BalanceUnderload(
            f"{command}: underload, below the zero range; is the pan in place?", reply.raw
        )
    if reply.status == "L":
        return BalanceCommandError(f"{command}: parameter not allowed (L)", reply.raw)
    return BalanceError(f"{command}: unexpected reply {reply.raw!r}", reply.raw)


class Balance:
    """An MT-SICS balance. Times in seconds.

    ``stable_timeout`` must exceed the balance's own stability timeout (at most 10 s), since
    ``S`` is answered only when the pan settles or that timeout runs out.
    """

    def __init__(
        self,
        transport: Transport,
        reply_timeout: float = 2.0,
        stable_timeout: float = 15.0,
    ) -> None:
        self.lines = LineReader(transport)
        self.reply_timeout = reply_timeout
        self.stable_timeout = stable_timeout
        self._desync = False

    def _resync(self) -> None:
        """Send ``@`` and drop every line up to its ``I4 A`` reply."""
        self.lines.clear()
        self.lines.write_line(format_command("@"))
        deadline = time.monotonic() + self.reply_timeout
        while (line := self.lines.read_line(max(0.0, deadline - time.monotonic()))) is not None:
            if line.startswith(b"I4 A"):
                self._desync = False
                return
        raise BalanceTimeout("@: no reply from the balance (cable, baud?)")

    def ask(self, command: str, ident: str, timeout: float | None = None) -> Reply:
        """Send ``command`` and return its reply (ID ``ident`` or a general error).

        Lines with another ID (a late reply to an earlier command) are logged and skipped.
        After a timeout the next call first resynchronises with ``@`` (which cancels what the
        balance still has pending), so a late reply is never taken for a new command's.
        """
        if self._desync:
            self._resync()
        self.lines.write_line(format_command(command))
        deadline = time.monotonic() + (self.reply_timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            line = self.lines.read_line(max(0.0, remaining))
            if line is None:
                self._desync = True
                raise BalanceTimeout(f"{command}: no reply from the balance (cable, baud?)")
            text = line.decode("ascii", "replace")
            try:
                reply = parse_reply(text)
            except ReplyFormatError as exc:
                log.warning("ignoring unreadable line from the balance: %s", exc)
                continue
            if reply.is_general_error or reply.ident == ident:
                return reply
            log.warning("ignoring stale reply %r to an earlier command", reply.raw)

    def reset(self) -> str:
        """``@``: cancel pending commands; returns the serial number (``I4`` format)."""
        reply = self.ask("@", "I4")
        if reply.status != "A" or not reply.params:
            raise _status_error("@", reply)
        return reply.params[0]

    def serial_number(self, attempts: int = 5, pause: float = 0.5) -> str:
        """``I4``, asked again while the balance answers ``I4 I`` (not ready)."""
        for _ in range(attempts):
            reply = self.ask("I4", "I4")
            if reply.status == "A" and reply.params:
                return reply.params[0]
            if reply.status != "I":
                raise _status_error("I4", reply)
            time.sleep(pause)
        raise BalanceBusy(f"I4: balance not ready after {attempts} attempts; check its display")

    def model(self) -> str:
        reply = self.ask("I2", "I2")
        if reply.status != "A" or not reply.params:
            raise _status_error("I2", reply)
        return reply.params[0]

    def stable_weight(self) -> Weight:
        """``S``: a stable net weight. ``S D`` is never accepted as a weighing.

        ``S`` and ``SI`` replies share the ID ``S``, so a late ``SI`` reply could pass for the
        answer to ``S``: the balance is first resynchronised with ``@`` (which cancels anything
        pending) so the next line is the answer to this ``S``.
        """
        self._resync()
        reply = self.ask("S", "S", self.stable_timeout)
        if reply.status == "S":
            return parse_weight(reply)
        if reply.status == "D":
            raise BalanceError("S: dynamic value in reply to S; not recorded", reply.raw)
        raise _status_error("S", reply)

    def weight_now(self) -> Weight:
        """``SI``: the weight now, stable (``S S``) or dynamic (``S D``)."""
        reply = self.ask("SI", "S")
        if reply.status in ("S", "D"):
            return parse_weight(reply)
        raise _status_error("SI", reply)

    def zero(self) -> None:
        """``Z``: zero an empty pan (waits for stability)."""
        reply = self.ask("Z", "Z", self.stable_timeout)
        if reply.status != "A":
            raise _status_error("Z", reply)
