"""IBU-1 line protocol codec: pure functions, no I/O.

A unit-to-host frame is ``$TYPE,boot,seq,fields...*CRC\\r\\n``; the CRC is CRC-16/CCITT-FALSE
(poly 0x1021, init 0xFFFF, no reflection, no final xor) over the bytes strictly between ``$``
and ``*``, written as 4 upper-case hex digits. A frame is at most 128 bytes. Bytes that run two
frames together are split at ``$`` and each part is judged alone (``FrameSplitter``).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_FRAME_BYTES = 128
"""Longest frame the unit sends, ``$`` to the last CRC digit (CR LF excluded)."""

_BOOT = re.compile(r"[0-9a-f]{8}\Z")
_UINT = re.compile(r"(0|[1-9][0-9]*)\Z")
_MA = re.compile(r"-?[0-9]+\.[0-9]{2}\Z")
_VOLT = re.compile(r"-?[0-9]+\.[0-9]\Z")
_CRC_HEX = re.compile(rb"[0-9A-F]{4}\Z")
_FAULT_CODE = re.compile(r"E[0-9]{2}\Z")
_TOKEN = re.compile(r"[^,*$\r\n]+\Z")

END_REASONS = ("COMPLETED", "STOPPED", "FAULT")


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value for ``b"123456789"``: 0x29B1)."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame with a good CRC whose fields fit its TYPE.

    ``fields`` are the texts after ``boot`` and ``seq``; ``raw`` the frame as received without
    CR LF (ASCII).
    """

    type: str
    boot: str
    seq: int
    fields: tuple[str, ...]
    raw: str


@dataclass(frozen=True, slots=True)
class BadFrame:
    """Bytes that are not a good frame, with a reason code.

    Reasons: ``NOISE`` (bytes before a ``$``), ``NOT_ASCII``, ``TOO_LONG``, ``NO_CRC`` (no
    ``*``: truncated), ``CRC_FORMAT`` (not 4 upper-case hex digits), ``CRC`` (mismatch),
    ``TYPE`` (unknown frame type), ``FIELDS`` (good CRC, fields do not fit the TYPE).
    """

    raw: bytes
    reason: str


def _fields_fit(frame_type: str, f: tuple[str, ...]) -> bool:
    """Whether the fields after boot and seq fit ``frame_type`` (spec section 2 table)."""
    if not all(_TOKEN.match(x) for x in f):
        return False
    if frame_type == "SMP":
        return (
            len(f) == 4
            and bool(_UINT.match(f[1]))
            and bool(_MA.match(f[2]))
            and bool(_VOLT.match(f[3]))
        )
    if frame_type == "HELLO":
        return len(f) == 3 and bool(_UINT.match(f[2]))
    if frame_type == "SES":
        if len(f) == 4 and f[1] == "START":
            return bool(_MA.match(f[2])) and bool(_UINT.match(f[3]))
        if len(f) == 4 and f[1] == "END":
            return f[2] in END_REASONS and bool(_UINT.match(f[3]))
        return False
    if frame_type == "EVT":
        if len(f) == 3 and f[2] == "POLARITY":
            return bool(_UINT.match(f[1]))
        if len(f) == 4 and f[2] == "FAULT":
            return bool(_UINT.match(f[1])) and bool(_FAULT_CODE.match(f[3]))
        return False
    if frame_type == "NAK":
        if len(f) != 2:
            return False
        if f[0] in ("GONE", "RANGE"):
            return bool(_UINT.match(f[1]))
        return True
    return False


FRAME_TYPES = ("HELLO", "SES", "SMP", "EVT", "NAK")


def parse_frame(part: bytes) -> Frame | BadFrame:
    """Judge one part (CR/LF already removed, split at ``$``) as a ``Frame`` or a ``BadFrame``."""
    if not part.startswith(b"$"):
        return BadFrame(part, "NOISE")
    if len(part) > MAX_FRAME_BYTES:
        return BadFrame(part, "TOO_LONG")
    if not part.isascii():
        return BadFrame(part, "NOT_ASCII")
    star = part.rfind(b"*")
    if star < 0:
        return BadFrame(part, "NO_CRC")
    crc_text = part[star + 1 :]
    if not _CRC_HEX.match(crc_text):
        return BadFrame(part, "CRC_FORMAT")
    body = part[1:star]
    if crc16_ccitt_false(body) != int(crc_text, 16):
        return BadFrame(part, "CRC")
    tokens = body.decode("ascii").split(",")
    frame_type = tokens[0]
    if frame_type not in FRAME_TYPES:
        return BadFrame(part, "TYPE")
    if len(tokens) < 3 or not _BOOT.match(tokens[1]) or not _UINT.match(tokens[2]):
        return BadFrame(part, "FIELDS")
    fields = tuple(tokens[3:])
    if not _fields_fit(frame_type, fields):
        return BadFrame(part, "FIELDS")
    return Frame(frame_type, tokens[1], int(tokens[2]), fields, part.decode("ascii"))


def format_frame(frame_type: str, boot: str, seq: int, fields: tuple[str, ...]) -> bytes:
    """The wire bytes of a frame, CR LF included (used by the emulator and the tests)."""
    body = ",".join((frame_type, boot, str(seq), *fields)).encode("ascii")
    return b"$" + body + b"*" + f"{crc16_ccitt_false(body):04X}".encode("ascii") + b"\r\n"


def format_command(command: str, *args: int | str) -> bytes:
    """A host-to-unit command line: ``HELLO?``, ``RESEND <seq>``, ``STREAM ON|OFF``."""
    return " ".join((command, *(str(a) for a in args))).encode("ascii") + b"\r\n"


def parse_command(line: bytes) -> tuple[str, int | None] | None:
    """The unit's reading of a command line (no CR LF): ``(name, seq or None)`` or ``None``."""
    text = line.strip(b"\r\n ")
    if text in (b"HELLO?", b"STREAM ON", b"STREAM OFF"):
        return text.decode("ascii"), None
    parts = text.split(b" ")
    if len(parts) == 2 and parts[0] == b"RESEND" and parts[1].isdigit():
        return "RESEND", int(parts[1])
    return None


def escape_bytes(data: bytes) -> str:
    """Printable ASCII as is, backslash as ``\\\\``, every other byte as ``\\xNN`` (lossless)."""
    out = []
    for byte in data:
        if byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def unescape_bytes(text: str) -> bytes:
    """Inverse of ``escape_bytes``."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1] == "\\":
            out.append(0x5C)
            i += 2
        elif ch == "\\" and text[i + 1] == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out.append(ord(ch))
            i += 1
    return bytes(out)


class FrameSplitter:
    """Cuts a byte stream into parts to judge: at CR LF and before every ``$``.

    Stray CR or LF around a part are dropped (they are line terminators, partly lost); a part
    that grows past ``MAX_FRAME_BYTES`` without a terminator is cut and judged (``TOO_LONG``).
    """

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield every complete part in ``data`` (plus what was buffered), in arrival order."""
        buf = self._buf + data
        start = 0
        n = len(buf)
        while start < n:
            dollar = buf.find(b"$", start + 1)
            newline = buf.find(b"\n", start)
            cr = buf.find(b"\r", start)
            ends = [i for i in (dollar, newline, cr) if i >= 0]
            if not ends:
                break
            end = min(ends)
            part = buf[start:end]
            if part:
                yield part
            start = end + 1 if end in (newline, cr) else end
        rest = buf[start:]
        while len(rest) > MAX_FRAME_BYTES:
            yield rest[: MAX_FRAME_BYTES + 1]
            rest = rest[MAX_FRAME_BYTES + 1 :]
        self._buf = rest

    def pending(self) -> bytes:
        """Bytes held while waiting for the end of a part."""
        return self._buf
