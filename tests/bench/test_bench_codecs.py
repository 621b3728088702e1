"""Golden lines for the IBU-1 codec and the MT-SICS codec (every response in the spec)."""

from __future__ import annotations

import pytest

from ingest.bench.ibu_codec import (
    BadFrame,
    Frame,
    FrameSplitter,
    crc16_ccitt_false,
    escape_bytes,
    format_command,
    format_frame,
    parse_command,
    parse_frame,
    unescape_bytes,
)
from ingest.bench.mtsics import (
    ReplyFormatError,
    format_weight_reply,
    parse_reply,
    parse_weight,
)


def test_crc_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@pytest.mark.parametrize(
    "line",
    [
        "$HELLO,5e21a09c,0,IBU-00031,2.4.1,812*CF95",
        "$SMP,5e21a09c,1042,S0007,60300,15.02,23.7*08CA",
    ],
)
def test_spec_examples_are_good(line: str) -> None:
    frame = parse_frame(line.encode())
    assert isinstance(frame, Frame) and frame.raw == line


def _wire(frame_type: str, *fields: str, boot: str = "5e21a09c", seq: int = 7) -> bytes:
    return format_frame(frame_type, boot, seq, fields)[:-2]


GOOD = [
    (("HELLO", "IBU-00031", "2.4.1", "812"), "HELLO"),
    (("SES", "S0007", "START", "15.00", "1200"), "SES"),
    (("SMP", "S0007", "0", "15.02", "23.7"), "SMP"),
    (("SMP", "S0007", "100", "-4.10", "-9.0"), "SMP"),
    (("EVT", "S0007", "60000", "POLARITY"), "EVT"),
    (("EVT", "S0007", "61000", "FAULT", "E03"), "EVT"),
    (("SES", "S0007", "END", "COMPLETED", "1199900"), "SES"),
    (("SES", "S0007", "END", "STOPPED", "500"), "SES"),
    (("SES", "S0007", "END", "FAULT", "61000"), "SES"),
    (("NAK", "GONE", "1200"), "NAK"),
    (("NAK", "RANGE", "88"), "NAK"),
    (("NAK", "BADCMD", "FOO BAR"), "NAK"),
]


@pytest.mark.parametrize(("parts", "frame_type"), GOOD)
def test_every_frame_type_round_trips(parts: tuple[str, ...], frame_type: str) -> None:
    raw = _wire(*parts)
    frame = parse_frame(raw)
    assert isinstance(frame, Frame)
    assert (frame.type, frame.boot, frame.seq, frame.fields) == (
        frame_type,
        "5e21a09c",
        7,
        parts[1:],
    )


BAD = [
    (b"$HELLO,5e21a09c,0,IBU-00031,2.4.1,812*cf95", "CRC_FORMAT"),
    (b"$HELLO,5e21a09c,0,IBU-00031,2.4.1,812*CF96", "CRC"),
    (b"$HELLO,5e21a09c,0,IBU-00031,2.4.1,812", "NO_CRC"),
    (b"garbage", "NOISE"),
    (b"$" + b"A" * 130, "TOO_LONG"),
    (b"$SMP,5e21a09c,1,S1,0,15.0\xff,1.0*0000", "NOT_ASCII"),
    (_wire("SMP", "S0007", "0", "15.2", "23.7"), "FIELDS"),  # ma needs 2 decimals
    (_wire("SMP", "S0007", "0", "15.20"), "FIELDS"),
    (_wire("SES", "S0007", "END", "DONE", "5"), "FIELDS"),
    (_wire("EVT", "S0007", "5", "FAULT", "X1"), "FIELDS"),
    (_wire("HELLO", "IBU-1", "2.4.1", "812", boot="5E21A09C"), "FIELDS"),
    (_wire("PING", "x"), "TYPE"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD)
def test_bad_frames_have_a_reason(raw: bytes, reason: str) -> None:
    frame = parse_frame(raw)
    assert isinstance(frame, BadFrame) and frame.reason == reason and frame.raw == raw


def test_splitter_cuts_glued_truncated_and_noisy_streams() -> None:
    a = format_frame("SMP", "0000abcd", 1, ("S1", "0", "1.00", "2.0"))
    b = format_frame("SMP", "0000abcd", 2, ("S1", "100", "1.00", "2.0"))
    stream = b"xx" + a[:-2] + b[:20] + b + a[:-1] + b
    splitter = FrameSplitter()
    parts = [p for i in range(0, len(stream), 7) for p in splitter.feed(stream[i : i + 7])]
    judged = [parse_frame(p) for p in parts]
    kinds = [j.reason if isinstance(j, BadFrame) else j.seq for j in judged]
    assert kinds == ["NOISE", 1, "NO_CRC", 2, 1, 2]
    assert splitter.pending() == b""


def test_escape_is_lossless() -> None:
    data = bytes(range(256)) + b"\\x41"
    assert unescape_bytes(escape_bytes(data)) == data
    assert escape_bytes(b"$A\r\n\\") == "$A\\x0d\\x0a\\\\"


def test_commands() -> None:
    assert format_command("HELLO?") == b"HELLO?\r\n"
    assert format_command("RESEND", 42) == b"RESEND 42\r\n"
    assert parse_command(b"RESEND 42") == ("RESEND", 42)
    assert parse_command(b"STREAM OFF") == ("STREAM OFF", None)
    assert parse_command(b"RESEND x") is None


# -- MT-SICS ------------------------------------------------------------------------------
WEIGHTS = [
    ("S S     100.1234 g", "S", "100.1234", "g", True),
    ("S D     99.9987 g", "S", "99.9987", "g", False),
    ("S S  -0.0003 g", "S", "-0.0003", "g", True),
    ("S S      1234.5 mg", "S", "1234.5", "mg", True),
    ("T S     12.3456 g", "T", "12.3456", "g", True),
]


@pytest.mark.parametrize(("line", "ident", "value", "unit", "stable"), WEIGHTS)
def test_weight_replies(line: str, ident: str, value: str, unit: str, stable: bool) -> None:
    reply = parse_reply(line + "\r\n")
    weight = parse_weight(reply)
    assert reply.ident == ident and reply.raw == line
    assert (weight.value, weight.unit, weight.stable) == (value, unit, stable)


STATUS = [
    ('I4 A "B123456789"', "I4", "A", ("B123456789",)),
    ("I4 I", "I4", "I", ()),
    ('I2 A "XPR205 220.00000 g"', "I2", "A", ("XPR205 220.00000 g",)),
    ("S I", "S", "I", ()),
    ("S +", "S", "+", ()),
    ("S -", "S", "-", ()),
    ("Z A", "Z", "A", ()),
    ("Z I", "Z", "I", ()),
    ("Z +", "Z", "+", ()),
    ("Z -", "Z", "-", ()),
    ("T I", "T", "I", ()),
    ("T +", "T", "+", ()),
    ("T -", "T", "-", ()),
]


@pytest.mark.parametrize(("line", "ident", "status", "params"), STATUS)
def test_status_replies(line: str, ident: str, status: str, params: tuple[str, ...]) -> None:
    reply = parse_reply(line)
    assert (reply.ident, reply.status, reply.params) == (ident, status, params)
    assert not reply.is_general_error


@pytest.mark.parametrize("code", ["ES", "ET", "EL"])
def test_general_errors(code: str) -> None:
    reply = parse_reply(code + "\r\n")
    assert reply.is_general_error and reply.status == code and reply.ident == ""


def test_no_weight_in_status_reply() -> None:
    with pytest.raises(ReplyFormatError):
        parse_weight(parse_reply("S I"))
    with pytest.raises(ReplyFormatError):
        parse_weight(parse_reply("S S 1,5 g"))


def test_weight_field_is_right_aligned_in_ten_characters() -> None:
    assert format_weight_reply("S", "S", "100.1234", "g") == "S S   100.1234 g"
