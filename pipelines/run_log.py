"""Where a run's messages go: everything to ``OUT/logs/run-<UTC time>.log``, only progress to
the terminal.

Dagster's console logger prints a line per event (about 60 INFO lines for a small trial) and
Python warnings print theirs; ``ionto run`` gives Dagster :func:`file_logger` instead, sends the
``ionto`` logger and warnings to the same file, and follows the steps through
:class:`StepEvents`, which hands each step's start and end to a progress display.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STEP_EVENTS = {"STEP_START": "start", "STEP_SUCCESS": "success", "STEP_FAILURE": "failure"}
"""Dagster event types (``DagsterEvent.event_type_value``) a progress display follows."""

StepCallback = Callable[[str, str], None]
"""``(step key, "start" | "success" | "failure")``."""


def logs_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "logs"


def new_log_path(out_dir: Path, kind: str = "run") -> Path:
    """``OUT/logs/<kind>-<UTC time to the microsecond>.log`` (the folder is created)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = logs_dir(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}-{stamp}.log"


class StepEvents(logging.Handler):
    """Passes the step events of Dagster's log records to ``on_step``; ignores the rest."""

    def __init__(self, on_step: StepCallback) -> None:
        super().__init__(level=logging.DEBUG)
        self.on_step = on_step

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_event", None)
        what = STEP_EVENTS.get(getattr(event, "event_type_value", ""))
        step = getattr(event, "step_key", None)
        if what is not None and step is not None:
            self.on_step(step, what)


@contextmanager
def run_logging(log_path: Path, on_step: StepCallback | None = None) -> Iterator[logging.Logger]:
    """For the ``with`` block: the ``ionto`` logger, its child ``ionto.dagster`` (give it to
    Dagster with :func:`file_logger`) and Python warnings write to ``log_path`` and nowhere
    else; step events also go to ``on_step``. Handlers are removed afterwards."""
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    file_handler.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [file_handler]
    if on_step is not None:
        handlers.append(StepEvents(on_step))
    ionto, warnings_log = logging.getLogger("ionto"), logging.getLogger("py.warnings")
    saved = [(lg, lg.level, lg.propagate) for lg in (ionto, warnings_log)]
    for lg in (ionto, warnings_log):
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
    for handler in handlers:
        ionto.addHandler(handler)
    warnings_log.addHandler(file_handler)
    logging.captureWarnings(True)
    try:
        yield logging.getLogger("ionto.dagster")
    finally:
        logging.captureWarnings(False)
        for handler in handlers:
            ionto.removeHandler(handler)
        warnings_log.removeHandler(file_handler)
        file_handler.close()
        for lg, level, propagate in saved:
            lg.setLevel(level)
            lg.propagate = propagate


def file_logger(logger: logging.Logger) -> dg.LoggerDefinition:
    """A Dagster logger that writes through ``logger`` (see :func:`run_logging`)."""
    return dg.LoggerDefinition(lambda _context: logger, description="ionto run log file")
