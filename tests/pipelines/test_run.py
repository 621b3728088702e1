"""The whole graph through Dagster on a small simulated trial, blinded and unblinded."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import pipelines.assets.raw as raw_assets
from pipelines.definitions import build_definitions, defs
from pipelines.resources import TrialSettings
from pipelines.run import run_pipeline


def test_definitions_load_with_groups_and_contract_checks() -> None:
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"raw", "clean", "analysis_ready", "models"} <= groups
    check_assets = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert {"dm", "gravimetry", "adsl", "adsweat", "quarantine"} <= check_assets


@pytest.fixture(scope="module")
def unblinded_run(small_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unblinded")
    sealed = Path(str(small_raw) + "_sealed") / "randomisation.csv"
    report = run_pipeline(raw_dir=small_raw, out_dir=out, unblind_path=sealed)
    assert report.success, report.describe()
    assert not report.failed_checks
    return out


def test_unblinded_run_writes_every_table_and_model(unblinded_run: Path) -> None:
    tables = {p.stem for p in (unblinded_run / "tables").glob("*.parquet")}
    expected = {"landing_manifest", "quarantine", "dm", "gravimetry", "device_sessions"}
    expected |= {"adsl", "adsweat", "adsweat_side", "adhdss", "adae", "addev", "analysis_long"}
    assert expected <= tables
    adsl = pl.read_parquet(unblinded_run / "tables" / "adsl.parquet")
    assert "arm" in adsl.columns
    est = pl.read_parquet(unblinded_run / "models" / "mmrm_primary_estimates.parquet")
    assert est.height > 0 and est["estimate"].is_finite().all()


def test_blinded_run_never_reads_the_list_and_carries_no_arm(
    small_raw: Path, tmp_path: Path
) -> None:
    report = run_pipeline(raw_dir=small_raw, out_dir=tmp_path)
    assert report.success, report.describe()
    adsl = pl.read_parquet(tmp_path / "tables" / "adsl.parquet")
    assert "arm" not in adsl.columns
    assert pl.read_parquet(tmp_path / "tables" / "randomisation.parquet").height == 0
    fit = pl.read_parquet(tmp_path / "models" / "mmrm_primary_estimates.parquet")
    assert fit.height == 0


def test_failing_blocking_check_stops_what_depends_on_it(
    small_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dm frame with a duplicated subject breaks dm's primary key: the blocking contract
    check fails and nothing downstream of dm (ADSL and the models) is materialised."""
    real = raw_assets.read_edc_table

    def duplicated_dm(raw_root: Path, manifest: pl.DataFrame, table: str):  # type: ignore[no-untyped-def]
        rows, q = real(raw_root, manifest, table)
        return (pl.concat([rows, rows.head(1)]) if table == "dm" else rows), q

    monkeypatch.setattr(raw_assets, "read_edc_table", duplicated_dm)
    settings = TrialSettings(raw_dir=str(small_raw), out_dir=str(tmp_path))
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(raise_on_error=False)
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert any(e.asset_check_key.asset_key.to_user_string() == "dm" for e in failed)
    materialised = {
        e.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None
    }
    assert "dm" in materialised
    assert "adsl" not in materialised
    assert "mmrm_primary" not in materialised
    assert (tmp_path / "tables" / "gravimetry.parquet").exists()
