"""Transport layer: pyserial URLs, timeouts, exclusive open, re-resolved device paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.bench.emulators.lines import PtyLine, TcpLine
from ingest.bench.transport import (
    Backoff,
    LineReader,
    PortError,
    SerialSettings,
    discover_ports,
    open_port,
    resolve_port,
)

FAST = SerialSettings(read_timeout=0.01, write_timeout=0.5)


def test_loop_url_round_trip_and_read_timeout() -> None:
    port = open_port("loop://", FAST)
    try:
        assert port.read() == b""  # times out, never blocks
        port.write(b"HELLO?\r\n")
        lines = LineReader(port)
        assert lines.read_line(0.5) == b"HELLO?"
        port.write(b"partial")
        assert lines.read_line(0.05) is None  # a partial line is not a line
    finally:
        port.close()


def test_missing_device_path_is_a_port_error(tmp_path: Path) -> None:
    with pytest.raises(PortError, match="does not exist"):
        open_port(str(tmp_path / "ttyUSB9"), FAST)


def test_symlink_is_resolved_at_every_open(tmp_path: Path) -> None:
    link = tmp_path / "by-id-unit"
    first, second = PtyLine(), PtyLine()
    try:
        os.symlink(first.slave_name, link)
        assert resolve_port(str(link)) == first.slave_name
        link.unlink()
        os.symlink(second.slave_name, link)
        port = open_port(str(link), FAST)
        second.write(b"x")
        assert port.read() == b"x"
        port.close()
    finally:
        first.close()
        second.close()


def test_pty_is_opened_exclusively() -> None:
    line = PtyLine()
    try:
        port = open_port(line.slave_name, FAST)
        with pytest.raises(PortError):
            open_port(line.slave_name, FAST)
        port.close()
    finally:
        line.close()


def test_unplugged_pty_raises_port_error() -> None:
    line = PtyLine()
    port = open_port(line.slave_name, FAST)
    line.unplug()
    with pytest.raises(PortError):
        for _ in range(50):
            port.read()
    port.close()


def test_socket_url_and_closed_server() -> None:
    line = TcpLine()
    port = open_port(line.name, FAST)
    try:
        port.write(b"HELLO?\r\n")
        got = b""
        for _ in range(100):
            got += line.read()
            if got:
                break
        assert got == b"HELLO?\r\n"
        line.unplug()
        with pytest.raises(PortError):
            for _ in range(50):
                port.read()
        with pytest.raises(PortError):
            open_port(line.name, FAST)
    finally:
        port.close()
        line.close()


def test_discover_globs_and_urls(tmp_path: Path) -> None:
    (tmp_path / "ttyIBU.1").touch()
    (tmp_path / "ttyIBU").touch()
    found = discover_ports([str(tmp_path / "ttyIBU*"), "socket://127.0.0.1:1"])
    assert found[-3:] == [
        str(tmp_path / "ttyIBU"),
        str(tmp_path / "ttyIBU.1"),
        "socket://127.0.0.1:1",
    ]


def test_backoff_doubles_to_a_cap() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
