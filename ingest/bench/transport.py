"""Byte transport over pyserial: one open call for a device path, ``loop://``, ``socket://``
and a pseudo-terminal.

Every port is opened with ``serial_for_url(..., exclusive=True)`` (a second process cannot
open it on POSIX) and carries a read and a write timeout, so no call blocks forever. A port
that disappears raises ``PortError``; the capture loops reopen it with ``Backoff``. A device
path (a ``/dev/serial/by-id/...`` symlink included) is re-resolved at every open.
"""

from __future__ import annotations

import contextlib
import glob
import os
import time
from dataclasses import dataclass
from typing import Protocol

import serial
from serial.tools import list_ports


class PortError(Exception):
    """The port cannot be opened, or failed while open (unplugged, closed by the peer)."""


class NoDeviceError(Exception):
    """No device answered on the port within the wait for a first connection (a wrong
    ``--port`` or a unit not plugged in); once a capture has connected, it retries for ever."""


def first_connect_deadline(wait_s: float | None) -> float | None:
    """The ``time.monotonic()`` by which a first connection must be made (None: no limit)."""
    return None if wait_s is None else time.monotonic() + wait_s


def no_device(port: str, wait_s: float | None, what: str) -> NoDeviceError:
    """The error for ``what`` (e.g. "unit") not found on ``port`` within ``wait_s`` seconds."""
    return NoDeviceError(
        f"no {what} answered on {port} within {wait_s:g} s; check the cable and --port, "
        "or give a longer --wait"
    )


class Transport(Protocol):
    """What the device APIs and capture loops need from a port."""

    name: str

    def read(self) -> bytes:
        """Bytes that arrived, waiting at most the read timeout; ``b""`` when none did."""
        ...

    def write(self, data: bytes) -> None:
        """Send ``data`` within the write timeout."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings and timeouts (seconds). pty and ``socket://`` ignore the line settings."""

    baudrate: int = 115200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    xonxoff: bool = False
    rtscts: bool = False
    read_timeout: float = 0.05
    write_timeout: float = 2.0


def is_url(port: str) -> bool:
    """Whether ``port`` is a pyserial URL (``loop://``, ``socket://host:port``...)."""
    return "://" in port


def resolve_port(port: str) -> str:
    """The name to open now: a URL as is; a device path with its symlinks resolved."""
    if is_url(port):
        return port
    if not os.path.exists(port):
        raise PortError(f"port {port} does not exist (unplugged?)")
    return os.path.realpath(port)


class SerialTransport:
    """A ``Transport`` on an open pyserial port."""

    def __init__(self, port: serial.SerialBase, name: str) -> None:
        self._port = port
        self.name = name

    @property
    def serial(self) -> serial.SerialBase:
        return self._port

    def read(self) -> bytes:
        try:
            first = self._port.read(1)
            if not first:
                return b""
            waiting = self._port.in_waiting
            return first + self._port.read(waiting) if waiting else first
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"read from {self.name} failed: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"write to {self.name} failed: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()


def open_port(port: str, settings: SerialSettings) -> SerialTransport:
    """Open ``port`` (re-resolving a device path) exclusively with timeouts."""
    target = resolve_port(port)
    try:
        handle = serial.serial_for_url(
            target,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            xonxoff=settings.xonxoff,
            rtscts=settings.rtscts,
            timeout=settings.read_timeout,
            write_timeout=settings.write_timeout,
            exclusive=True,
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortError(f"cannot open {port} ({target}): {exc}") from exc
    return SerialTransport(handle, target if target == port else f"{port} -> {target}")


def discover_ports(patterns: list[str]) -> list[str]:
    """Candidate ports for re-discovery: the OS's serial ports plus ``patterns``.

    A pattern is a glob over device paths (``/dev/ttyUSB*``) or a literal pyserial URL.
    """
    found: list[str] = [p.device for p in list_ports.comports()]
    for pattern in patterns:
        if is_url(pattern):
            found.append(pattern)
        else:
            found.extend(sorted(glob.glob(pattern)))
    unique: list[str] = []
    for name in found:
        if name not in unique:
            unique.append(name)
    return unique


class Backoff:
    """Exponential backoff for reopening a port: ``initial`` doubling up to ``cap`` seconds."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0) -> None:
        self.initial = initial
        self.cap = cap
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.initial


class LineReader:
    """Reads CR LF terminated lines from a ``Transport`` with a deadline per line."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._buf = b""

    def read_line(self, timeout: float) -> bytes | None:
        """The next line without CR LF, or ``None`` if none completed within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + 2 :]
                return line
            if time.monotonic() >= deadline:
                return None
            self._buf += self.transport.read()

    def write_line(self, data: bytes) -> None:
        self.transport.write(data)

    def clear(self) -> None:
        """Forget a partial line (after a reconnect)."""
        self._buf = b""
