"""Device APIs replayed against scripted (sent, reply) pairs: no hardware, no emulator."""

from __future__ import annotations

import pytest
from bench_helpers import expected_protocol

from ingest.bench.balance_device import (
    Balance,
    BalanceBusy,
    BalanceCommandError,
    BalanceError,
    BalanceOverload,
    BalanceTimeout,
    BalanceUnderload,
)
from ingest.bench.ibu_codec import Frame, format_frame
from ingest.bench.ibu_device import IbuLink


def test_reset_returns_the_serial() -> None:
    with expected_protocol([(b"@\r\n", b'I4 A "B123456789"\r\n')]) as t:
        assert Balance(t).reset() == "B123456789"


def test_serial_number_retries_while_not_ready() -> None:
    pairs = [(b"I4\r\n", b"I4 I\r\n")] * 2 + [(b"I4\r\n", b'I4 A "B1"\r\n')]
    with expected_protocol(pairs) as t:
        assert Balance(t).serial_number(pause=0) == "B1"


def test_serial_number_gives_up_with_a_message() -> None:
    with expected_protocol([(b"I4\r\n", b"I4 I\r\n")] * 3) as t, pytest.raises(BalanceBusy):
        Balance(t).serial_number(attempts=3, pause=0)


def test_model() -> None:
    with expected_protocol([(b"I2\r\n", b'I2 A "XPR205 220.00000 g"\r\n')]) as t:
        assert Balance(t).model() == "XPR205 220.00000 g"


def test_stable_weight() -> None:
    pairs = [(b"@\r\n", b'I4 A "B1"\r\n'), (b"S\r\n", b"S S     100.1234 g\r\n")]
    with expected_protocol(pairs) as t:
        w = Balance(t).stable_weight()
    assert (w.value, w.unit, w.stable, w.raw) == ("100.1234", "g", True, "S S     100.1234 g")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"S D     99.9987 g\r\n", BalanceError),
        (b"S I\r\n", BalanceBusy),
        (b"S +\r\n", BalanceOverload),
        (b"S -\r\n", BalanceUnderload),
        (b"ES\r\n", BalanceCommandError),
        (b"ET\r\n", BalanceCommandError),
        (b"EL\r\n", BalanceCommandError),
    ],
)
def test_stable_weight_refuses_everything_but_s_s(reply: bytes, error: type) -> None:
    pairs = [(b"@\r\n", b'I4 A "B1"\r\n'), (b"S\r\n", reply)]
    with expected_protocol(pairs) as t, pytest.raises(error) as info:
        Balance(t).stable_weight()
    assert info.value.raw == reply.decode().strip()


def test_weight_now_accepts_dynamic() -> None:
    with expected_protocol([(b"SI\r\n", b"S D     99.9987 g\r\n")]) as t:
        w = Balance(t).weight_now()
    assert (w.value, w.stable) == ("99.9987", False)


def test_zero() -> None:
    with expected_protocol([(b"Z\r\n", b"Z A\r\n"), (b"Z\r\n", b"Z +\r\n")]) as t:
        balance = Balance(t)
        balance.zero()
        with pytest.raises(BalanceOverload):
            balance.zero()


def test_timeout_then_resync_with_reset() -> None:
    pairs = [
        (b"SI\r\n", None),
        (b"@\r\n", b'S S     1.0000 g\r\nI4 A "B1"\r\n'),
        (b"SI\r\n", b"S S     2.0000 g\r\n"),
    ]
    with expected_protocol(pairs) as t:
        balance = Balance(t, reply_timeout=0.05, stable_timeout=0.05)
        with pytest.raises(BalanceTimeout):
            balance.weight_now()
        assert balance.weight_now().value == "2.0000"


def test_stable_weight_never_takes_a_late_si_reply() -> None:
    pairs = [
        (b"@\r\n", b'S S     9.9999 g\r\nI4 A "B1"\r\n'),
        (b"S\r\n", b"S S     1.2345 g\r\n"),
    ]
    with expected_protocol(pairs) as t:
        assert Balance(t).stable_weight().value == "1.2345"


def test_ibu_identify_keeps_every_frame_read() -> None:
    smp = format_frame("SMP", "0000abcd", 5, ("S1", "0", "1.00", "2.0"))
    hello = format_frame("HELLO", "0000abcd", 6, ("IBU-7", "1.0", "10"))
    with expected_protocol([(b"HELLO?\r\n", smp + hello)]) as t:
        found, seen = IbuLink(t).identify(1.0)
    assert isinstance(found, Frame) and found.fields[0] == "IBU-7"
    assert [f.seq for f in seen if isinstance(f, Frame)] == [5, 6]


def test_ibu_commands() -> None:
    pairs = [(b"RESEND 17\r\n", None), (b"STREAM OFF\r\n", None), (b"STREAM ON\r\n", None)]
    with expected_protocol(pairs) as t:
        link = IbuLink(t)
        link.resend(17)
        link.stream(False)
        link.stream(True)
