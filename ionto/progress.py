"""What ``ionto run`` and ``ionto demo`` show on the terminal while they work: one line per
phase, and within a phase a bar of the Dagster steps done, redrawn in place.

On a terminal the bar is redrawn on one line; elsewhere (a log file, CI) each phase is one
line and only failed steps add a line, so nothing floods a captured log. Everything else a run
says goes to its log file under ``OUT/logs/``.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

BAR_WIDTH = 30


class TerminalProgress:
    """A :class:`pipelines.run.RunProgress` that draws on ``stream`` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.redraw = self.stream.isatty()
        self.title = ""
        self.total = self.done = 0
        self.current = ""
        self.failed: list[str] = []
        self.started = time.perf_counter()
        self.open_line = False

    def phase(self, title: str, steps: int) -> None:
        self.close()
        self.title, self.total, self.done, self.current = title, steps, 0, ""
        self.started = time.perf_counter()
        if self.redraw and steps:
            self._draw()
        else:
            suffix = f" ({steps} step{'s' if steps > 1 else ''})" if steps else ""
            print(f"{title}{suffix} ...", file=self.stream, flush=True)

    def step(self, step_key: str, what: str) -> None:
        if what == "start":
            self.current = step_key
        else:
            self.done += 1
            if what == "failure":
                self.failed.append(step_key)
                self._line(f"  step failed: {step_key} (the log says why)")
        if self.redraw and self.total:
            self._draw()

    def close(self) -> None:
        """End the current phase's line with its time."""
        if self.open_line:
            self._draw(f" done in {time.perf_counter() - self.started:.1f} s")
            print(file=self.stream, flush=True)
            self.open_line = False

    def _line(self, text: str) -> None:
        if self.open_line:
            print(file=self.stream)
            self.open_line = False
        print(text, file=self.stream, flush=True)

    def _draw(self, tail: str | None = None) -> None:
        total = max(self.total, 1)
        filled = BAR_WIDTH * min(self.done, total) // total
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        what = tail if tail is not None else f" {self.current}"
        text = f"[{bar}] {self.done}/{self.total} {self.title}:{what}"
        width = shutil.get_terminal_size().columns - 1
        print(f"\r{text[:width]:<{width}}", end="", file=self.stream, flush=True)
        self.open_line = True
