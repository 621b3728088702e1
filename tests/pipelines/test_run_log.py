"""A run's log file: an unexpected error ends the run with one line naming the log, and the
traceback is in ``OUT/logs/``; the output folder is free again afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipelines.run as run_module
from pipelines.out_lock import out_folder_lock
from pipelines.run import RunAborted, run_pipeline

MINI_RAW = Path(__file__).resolve().parents[1] / "fixtures" / "raw" / "mini"


def test_an_unexpected_error_is_one_line_and_a_logged_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_scan(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(run_module, "scan_deliveries", broken_scan)
    out = tmp_path / "out"
    with pytest.raises(RunAborted) as raised:
        run_pipeline(MINI_RAW, out)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("the run stopped on an unexpected error (RuntimeError: disk on fire)")
    logs = sorted((out / "logs").glob("run-*.log"))
    assert len(logs) == 1 and message.endswith(f"the traceback is in {logs[0]}")
    text = logs[0].read_text("utf-8")
    assert "Traceback (most recent call last)" in text and "RuntimeError: disk on fire" in text
    with out_folder_lock(out):  # the failed run released the folder
        pass
