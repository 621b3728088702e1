"""Device API for an IBU-1 unit on a ``Transport``: commands out, judged frames in."""

from __future__ import annotations

import time

from ingest.bench.ibu_codec import BadFrame, Frame, FrameSplitter, format_command, parse_frame
from ingest.bench.transport import Transport


class IbuLink:
    """One connection to an IBU-1 unit.

    ``poll()`` returns the frames (good or bad) completed by the bytes that arrived within the
    transport's read timeout; commands are fire-and-forget (their replies are frames too).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._splitter = FrameSplitter()

    def hello(self) -> None:
        self.transport.write(format_command("HELLO?"))

    def resend(self, seq: int) -> None:
        self.transport.write(format_command("RESEND", seq))

    def stream(self, on: bool) -> None:
        self.transport.write(format_command("STREAM", "ON" if on else "OFF"))

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        """Judge the parts completed by ``data``."""
        return [parse_frame(part) for part in self._splitter.feed(data)]

    def poll(self) -> list[Frame | BadFrame]:
        return self.feed(self.transport.read())

    def identify(self, timeout: float) -> tuple[Frame | None, list[Frame | BadFrame]]:
        """Send ``HELLO?`` and wait up to ``timeout`` s for a ``HELLO`` frame.

        Returns the first ``HELLO`` seen (``None`` if none came) and every frame judged on the
        way, in order (the ``HELLO`` included), so that nothing read here is lost.
        """
        self.hello()
        seen: list[Frame | BadFrame] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.poll():
                seen.append(item)
                if isinstance(item, Frame) and item.type == "HELLO":
                    return item, seen
        return None, seen
