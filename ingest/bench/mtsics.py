"""MT-SICS subset codec (Mettler Toledo balances): pure functions, no I/O.

Replies are ``<ID> <status> [params]`` split on runs of blanks (never on fixed columns);
quoted parameters (``I4 A "B123456789"``) keep their blanks. ``ES``/``ET``/``EL`` are general
errors with no status. The weight value stays decimal text (never a float) for audit.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

COMMANDS = ("@", "I2", "I4", "S", "SI", "SIR", "Z", "T")
GENERAL_ERRORS = {
    "ES": "syntax error: the balance did not recognise the command",
    "ET": "transmission error: the balance received a garbled command (check baud/parity)",
    "EL": "logical error: the balance cannot execute the command",
}
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply line.

    ``ident`` is the reply ID (``S`` for ``S``/``SI``, ``I4``, ``Z``...), ``status`` one of
    ``A``/``S``/``D``/``I``/``L``/``+``/``-`` or the general error code (``ES``/``ET``/``EL``,
    then ``ident`` is empty); ``params`` the remaining tokens (quotes removed); ``raw`` the line
    without CR LF.
    """

    ident: str
    status: str
    params: tuple[str, ...]
    raw: str

    @property
    def is_general_error(self) -> bool:
        return self.ident == "" and self.status in GENERAL_ERRORS


@dataclass(frozen=True, slots=True)
class Weight:
    """A weight reply: ``stable`` for status ``S``; ``value`` the decimal text as sent."""

    value: str
    unit: str
    stable: bool
    raw: str


class ReplyFormatError(ValueError):
    """A line that is not an MT-SICS reply."""


def format_command(command: str) -> bytes:
    """Command text plus CR LF (commands are upper case)."""
    return command.encode("ascii") + b"\r\n"


def parse_reply(line: str) -> Reply:
    """Parse one reply line (CR LF may be present)."""
    raw = line.rstrip("\r\n")
    text = raw.strip()
    if text in GENERAL_ERRORS:
        return Reply("", text, (), raw)
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as exc:
        raise ReplyFormatError(f"unbalanced quotes in reply {raw!r}") from exc
    if len(tokens) < 2:
        raise ReplyFormatError(f"reply {raw!r} has no status field")
    return Reply(tokens[0], tokens[1], tuple(tokens[2:]), raw)


def parse_weight(reply: Reply) -> Weight:
    """The weight of an ``S S``/``S D``/``T S`` reply; ``ReplyFormatError`` if it has none."""
    if reply.status not in ("S", "D") or len(reply.params) != 2:
        raise ReplyFormatError(f"reply {reply.raw!r} carries no weight")
    value, unit = reply.params
    if not _DECIMAL.match(value):
        raise ReplyFormatError(f"weight {value!r} in reply {reply.raw!r} is not a decimal")
    return Weight(value, unit, reply.status == "S", reply.raw)


def format_weight_reply(ident: str, status: str, value: str, unit: str) -> str:
    """A weight reply as a balance prints it: value right-aligned in 10 characters."""
    return f"{ident} {status} {value:>10} {unit}"
