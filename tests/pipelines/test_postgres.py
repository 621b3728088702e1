"""The production set-up: the demo graph materialised against a real PostgreSQL server, and
the executor choice of a production host.

A throw-away server from Debian's packages (``/usr/lib/postgresql/<v>/bin``) is initialised in
a temporary folder, listens on 127.0.0.1 only (a free port, its unix socket in the same
folder) and is always stopped afterwards. ``DAGSTER_HOME`` holds ``deploy/dagster.yaml``
unchanged: the documented file is the one tested. Without the server binaries the test fails
in CI (``CI=true``: the test command installs ``postgresql``) and is skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from pipelines.definitions import build_definitions, executor_from_env
from pipelines.resources import TrialSettings
from pipelines.run import run_pipeline
from study import load_study
from trial.simulate import simulate_trial

DEPLOY_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
PG_USER = "dagster"
PG_PASSWORD = "test-only-secret"
PG_DB = "dagster_test"
SERVICE_USER = "postgres"
"""The OS user that runs the server when the tests run as root (initdb refuses root)."""


def _server_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl."""
    candidates = [
        p.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (p.parent / "pg_ctl").exists()
    ]
    candidates.sort(key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    port: int

    def connect(self) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, password=PG_PASSWORD, dbname=PG_DB
        )


def _as_service_user(cmd: list[str]) -> list[str]:
    """Root cannot run the server: run ``cmd`` as the ``postgres`` OS user instead."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("running as root without runuser: cannot start PostgreSQL as a non-root user")
    return [runuser, "-u", SERVICE_USER, "--", *cmd]


@pytest.fixture
def postgres() -> Iterator[Server]:
    """A PostgreSQL server on 127.0.0.1 with role ``dagster`` (password auth) owning an empty
    database; stopped and deleted whatever the test does."""
    bindir = _server_bin()
    if bindir is None:
        reason = "PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: CI must install the 'postgresql' package")
        pytest.skip(f"{reason}; apt-get install postgresql to run this test")
    # Not tmp_path: pytest's folder is private to root and the server runs as another user.
    root = Path(tempfile.mkdtemp(prefix="ionto-pg-"))
    data, pwfile = root / "data", root / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, SERVICE_USER)
        shutil.chown(pwfile, SERVICE_USER)
    port = _free_port()
    subprocess.run(
        _as_service_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        _as_service_user([*pg_ctl, "-o", options, "-l", str(root / "server.log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        admin = psycopg2.connect(
            host="127.0.0.1", port=port, user=PG_USER, password=PG_PASSWORD, dbname="postgres"
        )
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {PG_DB}")
        admin.close()
        yield Server(port=port)
    finally:
        subprocess.run(
            _as_service_user([*pg_ctl, "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_demo_graph_is_recorded_in_postgres(
    postgres: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(postgres.port))
    monkeypatch.setenv("DAGSTER_PG_DB", PG_DB)
    monkeypatch.setenv("DAGSTER_PG_USERNAME", PG_USER)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", PG_PASSWORD)
    raw = tmp_path / "raw"
    simulate_trial(load_study(), n_subjects=36, seed=11, raw_dir=raw)

    report = run_pipeline(raw_dir=raw, out_dir=tmp_path / "out")

    assert not (tmp_path / "out" / ".dagster").exists(), "the embedded instance was used"
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = {r.job_name: r for r in instance.get_runs()}
        # One run reads every delivery (a partition range), one refreshes the rest.
        assert set(runs) == {"process_delivery", "refresh_analysis"}
        expected = "SUCCESS" if report.success else "FAILURE"
        assert {r.status.value for r in runs.values()} == {expected}
        assert len(instance.get_dynamic_partitions("deliveries")) == report.deliveries_total
        run_id = runs["refresh_analysis"].run_id
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs")
        assert sorted(cur.fetchall()) == sorted((r.run_id, expected) for r in runs.values())
        cur.execute(
            "SELECT count(DISTINCT asset_key) FROM event_logs "
            "WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        row = cur.fetchone()
        assert row is not None and row[0] >= 10
    assert report.success, report.describe()


def test_executor_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = TrialSettings(raw_dir=str(tmp_path), out_dir=str(tmp_path / "out"))
    monkeypatch.delenv("IONTO_EXECUTOR", raising=False)
    default = build_definitions(settings).resolve_implicit_global_asset_job_def()
    assert default.executor_def.name == "in_process"
    monkeypatch.setenv("IONTO_EXECUTOR", "multiprocess")
    chosen = build_definitions(settings).resolve_implicit_global_asset_job_def().executor_def
    assert chosen.name == "multiprocess"
    config = chosen.apply_config_mapping({}).value
    assert config is not None and config["config"]["max_concurrent"] == os.cpu_count()
    with pytest.raises(ValueError, match="IONTO_EXECUTOR='celery'"):
        executor_from_env("celery")
