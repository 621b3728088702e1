"""``dagster dev -w workspace.yaml`` serves the code location: the asset graph with its groups
and contract checks, as a user opening the UI sees it (queried over the UI's GraphQL API)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pipelines.preflight import UsageError
from pipelines.resources import TrialSettings

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _graphql(port: int, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.load(response)
    return result


def test_dagster_dev_shows_groups_and_checks(small_raw: Path, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IONTO_RAW": str(small_raw),
        "IONTO_OUT": str(tmp_path / "out"),
    }
    # The environment's own dagster (and the webserver and daemon it starts), beside its
    # Python: found whether or not its bin folder is on PATH (.venv/bin/python -m pytest).
    bin_dir = Path(sys.executable).parent
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    server = subprocess.Popen(
        [
            str(bin_dir / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert server.poll() is None, "dagster dev exited"
                assert time.monotonic() < deadline, "dagster dev did not answer in 120 s"
                time.sleep(0.5)
        nodes = _graphql(port, "{ assetNodes { assetKey { path } groupName hasAssetChecks } }")
        assets = {n["assetKey"]["path"][-1]: n for n in nodes["data"]["assetNodes"]}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert {n["groupName"] for n in assets.values()} == {
        "raw",
        "clean",
        "analysis_ready",
        "models",
        "estimands",
        "reports",
    }
    assert assets["adsl"]["groupName"] == "analysis_ready"
    assert assets["adsl"]["hasAssetChecks"] and assets["dm"]["hasAssetChecks"]
    assert assets["mmrm_primary"]["groupName"] == "models"


def test_an_output_folder_inside_the_raw_root_stops_the_code_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``dagster dev`` loads takes its folders from the environment: an ``IONTO_OUT``
    inside ``IONTO_RAW`` stops the load with the line the UI shows, naming the variables."""
    raw = tmp_path / "raw"
    monkeypatch.setenv("IONTO_RAW", str(raw))
    monkeypatch.setenv("IONTO_OUT", str(raw / "ui"))
    with pytest.raises(UsageError) as refused:
        TrialSettings.from_env()
    assert str(refused.value) == (
        f"IONTO_OUT {raw / 'ui'} is inside IONTO_RAW {raw}: the run's outputs would be read "
        "as deliveries; give an output folder outside the delivery root"
    )
    monkeypatch.setenv("IONTO_OUT", str(tmp_path / "ui"))
    assert TrialSettings.from_env().out_dir == str(tmp_path / "ui")
