"""The whole graph through Dagster on a small simulated trial, blinded and unblinded."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

import pipelines.assets.raw as raw_assets
from pipelines.blinding_record import OutputFolderRefused
from pipelines.definitions import defs
from pipelines.run import run_pipeline
from study import load_study
from trial.report.blinding import scan_for_arm_leaks, scan_metadata


def test_definitions_load_with_groups_and_contract_checks() -> None:
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"raw", "clean", "analysis_ready", "models", "reports"} <= groups
    check_assets = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert {"dm", "gravimetry", "adsl", "adsweat", "quarantine"} <= check_assets


@pytest.fixture(scope="module")
def sealed_list(small_raw: Path) -> Path:
    return Path(str(small_raw) + "_sealed") / "randomisation.csv"


@pytest.fixture(scope="module")
def unblinded_run(
    small_raw: Path, sealed_list: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("unblinded")
    report = run_pipeline(raw_dir=small_raw, out_dir=out, unblind_path=sealed_list)
    assert report.success, report.describe()
    assert not report.failed_checks
    return out


@pytest.fixture(scope="module")
def blinded_run(small_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("blinded")
    report = run_pipeline(raw_dir=small_raw, out_dir=out)
    assert report.success, report.describe()
    assert not report.failed_checks
    return out


def test_unblinded_run_writes_every_table_model_report_and_export(unblinded_run: Path) -> None:
    tables = {p.stem for p in (unblinded_run / "tables").glob("*.parquet")}
    expected = {"landing_manifest", "quarantine", "dm", "gravimetry", "device_sessions"}
    expected |= {"adsl", "adsweat", "adsweat_side", "adhdss", "adae", "addev", "analysis_long"}
    assert expected <= tables
    adsl = pl.read_parquet(unblinded_run / "tables" / "adsl.parquet")
    assert "arm" in adsl.columns
    est = pl.read_parquet(unblinded_run / "models" / "mmrm_primary_estimates.parquet")
    assert est.height > 0 and est["estimate"].is_finite().all()
    html = (unblinded_run / "reports" / "investigator_report.html").read_text("utf-8")
    assert "UNBLINDED" in html
    assert (unblinded_run / "reports" / "data_quality_report.html").exists()
    assert {p.name for p in (unblinded_run / "exports" / "xpt").iterdir()} >= {
        "adsl.xpt",
        "adsweat.xpt",
        "define.csv",
    }


def _latest_metadata(out_dir: Path) -> dict[str, dict[str, object]]:
    """Latest materialisation metadata of every asset in the run's embedded instance."""
    found = {}
    with dg.DagsterInstance.from_config(str(out_dir / ".dagster")) as instance:
        for key in instance.get_asset_keys():
            for record in instance.fetch_materializations(key, limit=1).records:
                found[key.to_user_string()] = dict(record.asset_materialization.metadata)
    return found


def test_blinded_run_leaks_no_arm_anywhere(blinded_run: Path, sealed_list: Path) -> None:
    """Every blinded output - tables, model results, reports, exports and the Dagster
    metadata - is scanned for arm codes, arm names, masked labels and per-subject columns
    that split subjects along the sealed list."""
    adsl = pl.read_parquet(blinded_run / "tables" / "adsl.parquet")
    assert "arm" not in adsl.columns
    assert pl.read_parquet(blinded_run / "tables" / "randomisation.parquet").height == 0
    assert pl.read_parquet(blinded_run / "models" / "mmrm_primary_estimates.parquet").height == 0
    study = load_study()
    randomisation = pl.read_csv(sealed_list)
    outputs = ["tables", "models", "reports", "exports"]
    assert scan_for_arm_leaks([blinded_run / o for o in outputs], randomisation, study) == []
    metadata = _latest_metadata(blinded_run)
    assert {"adsl", "investigator_report"} <= set(metadata)
    for asset, values in metadata.items():
        assert scan_metadata(values, asset, randomisation, study) == []
    assert "BLINDED" in (blinded_run / "reports" / "investigator_report.html").read_text("utf-8")


def test_failing_blocking_check_stops_what_depends_on_it(
    small_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dm frame with a duplicated subject breaks dm's primary key: the blocking contract
    check fails and nothing downstream of dm (ADSL and the models) is materialised."""
    real = raw_assets.resolve_raw_datasets

    def duplicated_dm(
        manifest: pl.DataFrame, deliveries: list[dict[str, pl.DataFrame]], raw_root: Path
    ) -> dict[str, pl.DataFrame]:
        datasets = real(manifest, deliveries, raw_root)
        return {**datasets, "dm": pl.concat([datasets["dm"], datasets["dm"].head(1)])}

    monkeypatch.setattr(raw_assets, "resolve_raw_datasets", duplicated_dm)
    report = run_pipeline(raw_dir=small_raw, out_dir=tmp_path)
    assert not report.success
    assert "dm:contract" in report.failed_checks
    assert not (tmp_path / "tables" / "adsl.parquet").exists()
    assert not (tmp_path / "models" / "mmrm_primary_estimates.parquet").exists()
    assert (tmp_path / "tables" / "gravimetry.parquet").exists()
    assert pl.read_parquet(tmp_path / "tables" / "dm.parquet").height > 0


def test_a_blinded_run_refuses_the_unblinded_runs_folder(
    small_raw: Path, unblinded_run: Path
) -> None:
    """Issue 12: a blinded run on an unblinded run's folder used to succeed and leave the
    unblinded models beside its own. It is refused before anything is written, and the
    unblinded run's metadata holds no preview row of the sealed list."""
    before = {p: p.stat().st_mtime_ns for p in unblinded_run.rglob("*") if p.is_file()}
    with pytest.raises(OutputFolderRefused, match="give --out another folder"):
        run_pipeline(raw_dir=small_raw, out_dir=unblinded_run)
    assert {p: p.stat().st_mtime_ns for p in unblinded_run.rglob("*") if p.is_file()} == before
    sealed = _latest_metadata(unblinded_run)["randomisation"]
    assert sealed["dagster/row_count"].value > 0
    assert sealed["preview"].value.count("\n") == 1  # the header line and rule only
