"""The emulators' side of a serial line: a pseudo-terminal or a TCP server.

``PtyLine`` owns a pty pair and (optionally) a symlink to the slave, like a
``/dev/serial/by-id/...`` link; ``unplug()`` closes the pair (the driver's reads fail) and
``replug()`` opens a new pair, under a new link name when asked. ``TcpLine`` listens on a port
for one client at a time (``socket://127.0.0.1:PORT``); ``unplug()`` drops the client and stops
listening. Writes never block: with no peer or a full buffer the bytes are lost, as on a wire.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
import tty


class PtyLine:
    """A pseudo-terminal whose slave the driver opens as a serial port."""

    def __init__(self, link: str | None = None) -> None:
        self._link_base = link
        self._generation = 0
        self._master = -1
        self._slave = -1
        self.link: str | None = None
        self.slave_name = ""
        self._open()

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        if self._link_base is not None:
            link = self._link_base
            if self._generation:
                link = f"{link}.{self._generation}"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            os.symlink(self.slave_name, link)
            self.link = link

    @property
    def name(self) -> str:
        """What a driver opens: the link if there is one, else the slave path."""
        return self.link or self.slave_name

    @property
    def connected(self) -> bool:
        return self._master >= 0

    def write(self, data: bytes) -> int:
        """Write what fits; return the number of bytes accepted."""
        if self._master < 0:
            return 0
        try:
            return os.write(self._master, data)
        except BlockingIOError:
            return 0
        except OSError:
            return 0

    def read(self) -> bytes:
        if self._master < 0:
            return b""
        try:
            return os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def wait(self, timeout: float) -> None:
        if self._master < 0:
            time.sleep(timeout)
            return
        select.select([self._master], [], [], max(0.0, timeout))

    def unplug(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)

    def replug(self, rename: bool = False) -> None:
        if rename:
            self._generation += 1
        self._open()

    def close(self) -> None:
        self.unplug()


class TcpLine:
    """A TCP server for one client at a time (pyserial ``socket://host:port``)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._server: socket.socket | None = None
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self._listen()

    def _listen(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.port))
        server.listen(1)
        server.setblocking(False)
        self.port = server.getsockname()[1]
        self._server = server

    @property
    def name(self) -> str:
        return f"socket://{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    def _accept(self) -> None:
        if self._server is None:
            return
        try:
            conn, _ = self._server.accept()
        except (BlockingIOError, OSError):
            return
        if self._client is not None:
            conn.close()
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = conn

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.close()
            self._client = None

    def write(self, data: bytes) -> int:
        self._accept()
        if self._client is None:
            return 0
        try:
            return self._client.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            self._drop_client()
            return 0

    def read(self) -> bytes:
        self._accept()
        if self._client is None:
            return b""
        try:
            data = self._client.recv(4096)
        except BlockingIOError:
            return b""
        except OSError:
            self._drop_client()
            return b""
        if not data:
            self._drop_client()
        return data

    def wait(self, timeout: float) -> None:
        socks = [s for s in (self._server, self._client) if s is not None]
        if socks:
            select.select(socks, [], [], max(0.0, timeout))
        else:
            time.sleep(timeout)

    def unplug(self) -> None:
        self._drop_client()
        if self._server is not None:
            self._server.close()
            self._server = None

    def replug(self, rename: bool = False) -> None:
        del rename  # a TCP port keeps its number
        self._listen()

    def close(self) -> None:
        self.unplug()


class EmuClock:
    """Emulated time: ``speed`` emulated seconds pass per real second."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.speed
