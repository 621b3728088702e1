"""The whole graph through Dagster on a small simulated trial, blinded and unblinded."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import pipelines.freshness as freshness
import trial.report.investigator as investigator
from ingest.registry import SOURCES
from ingest.source_format import Resolution, Resolved
from pipelines.assets import analysis_ready
from pipelines.assets.raw import DELIVERIES_NAME
from pipelines.blinding_record import OutputFolderRefused
from pipelines.definitions import build_definitions, defs
from pipelines.resources import TrialSettings
from pipelines.run import RunReport, run_pipeline
from study import load_study
from trial.report.blinding import scan_for_arm_leaks, scan_metadata
from trial.report.pdf import Chromium, PdfPrint, PrintBrowser, find_chromium


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
def unblinded_report(
    small_raw: Path, sealed_list: Path, tmp_path_factory: pytest.TempPathFactory
) -> RunReport:
    out = tmp_path_factory.mktemp("unblinded")
    report = run_pipeline(raw_dir=small_raw, out_dir=out, unblind_path=sealed_list)
    assert report.success, report.describe()
    assert not report.failed_checks
    return report


@pytest.fixture(scope="module")
def unblinded_run(unblinded_report: RunReport) -> Path:
    return unblinded_report.out_dir


@pytest.fixture(scope="module")
def blinded_report(small_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> RunReport:
    out = tmp_path_factory.mktemp("blinded")
    report = run_pipeline(raw_dir=small_raw, out_dir=out)
    assert report.success, report.describe()
    assert not report.failed_checks
    return report


@pytest.fixture(scope="module")
def blinded_run(blinded_report: RunReport) -> Path:
    return blinded_report.out_dir


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
    # Every N the report states is its analysis set's size in ADSL, by arm; none is a finding.
    counts = pl.read_parquet(
        unblinded_run / "reports" / "investigator_report_data" / "count_reconciliation.parquet"
    )
    assert counts.height and (counts["agrees"] == "Y").all(), counts.filter(agrees="N")
    assert set(counts["group"]) > {"TOTAL"}
    issues = pl.read_csv(unblinded_run / "reports" / "data_quality_issues.csv")
    assert "COUNT_NOT_RECONCILED" not in set(issues["code"])
    assert {p.name for p in (unblinded_run / "exports" / "xpt").iterdir()} >= {
        "adsl.xpt",
        "adsweat.xpt",
        "define.csv",
    }


def test_blinded_run_leaks_no_arm_anywhere(
    blinded_run: Path, blinded_report: RunReport, sealed_list: Path
) -> None:
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
    metadata = blinded_report.metadata
    assert {"adsl", "investigator_report"} <= set(metadata)
    for asset, values in metadata.items():
        assert scan_metadata(values, asset, randomisation, study) == []
    assert "BLINDED" in (blinded_run / "reports" / "investigator_report.html").read_text("utf-8")


def test_failing_blocking_check_stops_what_depends_on_it(small_raw: Path, tmp_path: Path) -> None:
    """A dm frame with a duplicated subject breaks dm's primary key: the blocking contract
    check fails and nothing downstream of dm (ADSL and the models) is materialised."""
    (dm_format,) = [s for s in SOURCES if s.kind == "dm"]
    assert dm_format.resolve is not None
    real = dm_format.resolve

    def duplicated_dm(resolution: Resolution) -> Resolved:
        resolved = real(resolution)
        dm = resolved.datasets["dm"]
        assert isinstance(dm, pl.DataFrame)
        return replace(resolved, datasets={"dm": pl.concat([dm, dm.head(1)])})

    sources = [replace(s, resolve=duplicated_dm) if s is dm_format else s for s in SOURCES]
    report = run_pipeline(raw_dir=small_raw, out_dir=tmp_path, sources=sources)
    assert not report.success
    assert "dm:contract" in report.failed_checks
    # The summary names the rule that failed, with the count and a sample, not only the check.
    subject = pl.read_parquet(tmp_path / "tables" / "dm.parquet")["subject_id"][0]
    assert f"  failed check: dm:contract: {report.failing_rules['dm:contract']}" in (
        report.describe().splitlines()
    )
    assert report.failed_steps == [
        "raw_datasets: 3 blocking asset checks failed with ERROR severity: "
        "dm: contract, visits: contract, hdss: contract"
    ]
    # Both rows of the duplicated subject fail the key.
    assert report.failing_rules["dm:contract"] == (
        f"primaryKey (blocking): 2 failing, e.g. {subject}, {subject}"
    )
    assert not (tmp_path / "tables" / "adsl.parquet").exists()
    assert report.outputs_to_read == []  # a failed run names no report as current
    assert not (tmp_path / "models" / "mmrm_primary_estimates.parquet").exists()
    assert (tmp_path / "tables" / "gravimetry.parquet").exists()
    assert pl.read_parquet(tmp_path / "tables" / "dm.parquet").height > 0


def test_the_summary_names_what_a_person_must_act_on(
    blinded_run: Path, blinded_report: RunReport
) -> None:
    """The data-quality items (the quarantined among them) and the exports' v5 changes, with
    the file to open, counted from what the run wrote."""
    issues = pl.read_csv(blinded_run / "reports" / "data_quality_issues.csv")
    quarantined = issues.filter(pl.col("category") == "QUARANTINE").height
    lines = blinded_report.describe().splitlines()
    assert (
        f"  data quality: {issues.height} items, {quarantined} of them quarantined rows or "
        f"files: {blinded_run / 'reports' / 'data_quality_report.html'}"
    ) in lines
    notes = (blinded_run / "exports" / "xpt" / "export_notes.txt").read_text("utf-8")
    v5 = [line for line in lines if line.startswith("  SAS v5 exports:")]
    assert len(v5) == (0 if notes.startswith("No value") else 1)


def test_an_unchanged_rerun_recomputes_nothing(
    blinded_run: Path, small_raw: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(blinded_run, out)
    report = run_pipeline(raw_dir=small_raw, out_dir=out)
    assert report.success
    assert (report.deliveries_read, report.recomputed) == ([], [])
    assert "nothing changed" in report.describe()
    assert report.dagster_runs == []  # no Dagster run was launched: no asset materialised


def _descendants(keys: set[dg.AssetKey]) -> set[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    found, todo = set(keys), list(keys)
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _names(keys: set[dg.AssetKey]) -> set[str]:
    return {k.to_user_string() for k in keys}


def test_a_code_change_recomputes_what_depends_on_it(
    blinded_run: Path, small_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asset whose code changed is recomputed. What depends on it is recomputed when the
    asset's content changed (here ADHDSS, its rows in another order), reused when it came out
    the same (the safety summary, recomputed to the same content: the reports reuse theirs)."""
    out = tmp_path / "out"
    shutil.copytree(blinded_run, out)
    changed = {dg.AssetKey("safety"), dg.AssetKey("adhdss")}
    original = freshness.code_version
    monkeypatch.setattr(
        freshness,
        "code_version",
        lambda a: original(a) + ("edited" if changed & set(a.keys) else ""),
    )
    derive = analysis_ready.derive_adhdss
    monkeypatch.setattr(analysis_ready, "derive_adhdss", lambda *args: derive(*args).reverse())
    report = run_pipeline(raw_dir=small_raw, out_dir=out)
    assert report.success, report.describe()
    graph = defs.resolve_asset_graph()
    adhdss_children = graph.get(dg.AssetKey("adhdss")).child_keys
    assert set(report.recomputed) >= _names(changed | adhdss_children)
    assert set(report.recomputed) | set(report.reused) == _names(_descendants(changed))
    assert {"investigator_report", "data_quality_report"} <= set(report.recomputed)  # ADHDSS
    assert "device" not in report.recomputed + report.reused  # not downstream of either
    assert len(report.dagster_runs) == 1  # no delivery read: the refresh run only
    assert set(report.metadata) == set(report.recomputed) | set(report.reused)
    again = run_pipeline(raw_dir=small_raw, out_dir=out)
    assert (again.recomputed, again.reused) == ([], [])


def test_a_code_change_with_the_same_content_reuses_what_depends_on_it(
    blinded_run: Path, small_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed code version of the safety summary recomputes it; its content comes out the
    same, so the reports downstream of it reuse their stored files (not rewritten)."""
    out = tmp_path / "out"
    shutil.copytree(blinded_run, out)
    original = freshness.code_version
    monkeypatch.setattr(
        freshness,
        "code_version",
        lambda a: original(a) + ("edited" if dg.AssetKey("safety") in a.keys else ""),
    )
    html = out / "reports" / "investigator_report.html"
    written = html.stat().st_mtime_ns
    report = run_pipeline(raw_dir=small_raw, out_dir=out)
    assert report.success, report.describe()
    assert report.recomputed == ["safety"]
    assert set(report.reused) == {"investigator_report", "data_quality_report"}
    assert "1 of 50 recomputed, 2 unchanged and reused" in report.describe()
    assert html.stat().st_mtime_ns == written
    assert run_pipeline(raw_dir=small_raw, out_dir=out).recomputed == []


def test_a_telemetry_only_delivery_reuses_what_does_not_depend_on_telemetry(
    blinded_run: Path, small_raw: Path, tmp_path: Path
) -> None:
    """The vendor-B files of the last delivery that has them arrive after the rest of the
    trial: the refresh recomputes the telemetry and what depends on it, reuses the sweat-rate
    and HDSS tables (from the run's records, their files not rewritten), and ends with the
    tables and model results of a full rebuild (``blinded_run``, the same raw tree)."""
    raw = tmp_path / "raw"
    shutil.copytree(small_raw, raw)
    telemetry = sorted(raw.glob("*/*/ionto-b_*.jsonl"), key=lambda p: p.parent.name)
    held = [p for p in telemetry if p.parent == telemetry[-1].parent]
    aside = tmp_path / "held"
    aside.mkdir()
    for path in held:
        path.rename(aside / path.name)
    out = tmp_path / "out"
    assert run_pipeline(raw_dir=raw, out_dir=out).success
    kept = {p: p.stat().st_mtime_ns for p in (out / "tables").glob("ad*.parquet")}
    for path in held:
        (aside / path.name).rename(path)

    report = run_pipeline(raw_dir=raw, out_dir=out)
    assert report.success, report.describe()
    reused = {"sweat_papers", "superseded_papers", "adsweat", "adsweat_side", "adhdss"}
    assert reused <= set(report.reused)
    assert {"vendor_b_events", "vendor_b_sessions", "device_sessions", "addev"} <= set(
        report.recomputed
    )
    for name in ("adsweat", "adhdss"):
        path = out / "tables" / f"{name}.parquet"
        assert path.stat().st_mtime_ns == kept[path]  # reused: not written again
    for folder in ("tables", "models"):
        for path in sorted((blinded_run / folder).glob("*.parquet")):
            assert_frame_equal(pl.read_parquet(out / folder / path.name), pl.read_parquet(path))


def test_a_run_from_dagster_reuses_what_is_unchanged(
    blinded_run: Path, small_raw: Path, tmp_path: Path
) -> None:
    """A refresh started in Dagster (the UI's "materialize all", or the sensor's
    ``refresh_analysis``), not by ``ionto run``: the raw group is computed (Dagster did not
    list the raw tree), its content comes out the same, and every asset downstream of it is
    reused, its files not rewritten. ``ionto run`` then computes the raw group again (it has
    no fingerprint from Dagster's run) and reuses the rest once more."""
    out = tmp_path / "out"
    shutil.copytree(blinded_run, out)
    html = out / "reports" / "investigator_report.html"
    written = html.stat().st_mtime_ns
    settings = TrialSettings(raw_dir=str(small_raw), out_dir=str(out))
    job = build_definitions(settings).resolve_job_def("refresh_analysis")
    stored = sorted(p.name for p in (out / "partitions" / "delivery_frames").iterdir())
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DELIVERIES_NAME, stored)  # as the sensor registers them
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    materialised = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key
    }
    reused = {name for name, metadata in materialised.items() if freshness.was_reused(metadata)}
    graph = defs.resolve_asset_graph()
    raw_group = {
        k.to_user_string()
        for k in graph.get_all_asset_keys()
        if graph.get(k).group_name == "raw" and not graph.get(k).is_partitioned
    }
    assert set(materialised) - reused == raw_group
    assert {"adsl", "mmrm_primary", "investigator_report"} <= reused
    assert html.stat().st_mtime_ns == written
    again = run_pipeline(raw_dir=small_raw, out_dir=out)
    assert again.success, again.describe()
    assert set(again.recomputed) == raw_group
    assert set(again.reused) == set(materialised) - raw_group
    assert html.stat().st_mtime_ns == written


def test_a_deleted_output_file_recomputes_the_asset_that_wrote_it(
    blinded_run: Path, small_raw: Path, tmp_path: Path
) -> None:
    """A report or export asset's fingerprint trusts the files it reported: one XPT file or
    the PDF deleted, the next run writes it again and recomputes nothing else."""
    out = tmp_path / "out"
    shutil.copytree(blinded_run, out)
    (out / "exports" / "xpt" / "adsl.xpt").unlink()
    (out / "reports" / "investigator_report.pdf").unlink()
    report = run_pipeline(raw_dir=small_raw, out_dir=out)
    assert report.success, report.describe()
    assert sorted(report.recomputed) == ["investigator_report", "xpt_exports"]
    assert (out / "exports" / "xpt" / "adsl.xpt").is_file()
    assert (out / "reports" / "investigator_report.pdf").is_file()


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed")
def test_the_refresh_starts_chromium_ahead_for_a_stale_report_and_stops_it(
    blinded_run: Path, small_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ionto run`` starts Chromium before the refresh when the investigator report is to be
    refreshed (not otherwise), the report prints with that Chromium, and the run ends with it
    stopped."""
    started: list[Chromium | None] = []
    used: list[Chromium | None] = []
    start, start_print = PrintBrowser.start, investigator.start_pdf_print

    def recorded_start(browser: PrintBrowser) -> None:
        start(browser)
        started.append(browser.chromium)

    def recorded_print(html: Path, pdf: Path, chromium: Chromium | None = None) -> PdfPrint:
        used.append(chromium)
        return start_print(html, pdf, chromium=chromium)

    monkeypatch.setattr(PrintBrowser, "start", recorded_start)
    monkeypatch.setattr(investigator, "start_pdf_print", recorded_print)
    out = tmp_path / "out"
    shutil.copytree(blinded_run, out)
    (out / "exports" / "xpt" / "adsl.xpt").unlink()
    assert run_pipeline(raw_dir=small_raw, out_dir=out).recomputed == ["xpt_exports"]
    assert started == []
    (out / "reports" / "investigator_report.pdf").unlink()
    assert run_pipeline(raw_dir=small_raw, out_dir=out).recomputed == ["investigator_report"]
    assert len(started) == 1 and started[0] is not None and used == started
    assert not started[0].is_running()
    assert (out / "reports" / "investigator_report.pdf").is_file()


def test_code_versions_follow_the_modules_an_asset_reaches() -> None:
    graph = defs.resolve_asset_graph()
    safety = graph.assets_def_for_key(dg.AssetKey("safety"))
    modules: set[str] = set()
    freshness._reached(safety.op.compute_fn.decorated_fn, modules, {})
    reached = freshness.module_closure(modules)
    assert "trial.models.safety" in reached
    assert "trial.models.mmrm" not in reached  # editing the MMRM does not recompute safety


def test_a_code_version_covers_the_rules_file_a_module_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``data_contracts/trial_rules.py`` reads ``trial_rules.yaml``: an edit of the rules
    makes ``raw_datasets`` stale (and, through its code version, every telemetry range)."""
    graph = defs.resolve_asset_graph()
    raw = graph.assets_def_for_key(dg.AssetKey("dm"))
    before = freshness.code_version(raw)
    rules = Path(freshness.CONTRACTS / "trial_rules.yaml")
    read_bytes = Path.read_bytes

    def edited(path: Path) -> bytes:
        return read_bytes(path) + (b"# edited\n" if path == rules else b"")

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert freshness.code_version(raw) != before


def test_a_blinded_run_refuses_the_unblinded_runs_folder(
    small_raw: Path, unblinded_run: Path, unblinded_report: RunReport
) -> None:
    """Issue 12: a blinded run on an unblinded run's folder used to succeed and leave the
    unblinded models beside its own. It is refused before anything is written, and the
    unblinded run's metadata holds no preview row of the sealed list."""
    before = {p: p.stat().st_mtime_ns for p in unblinded_run.rglob("*") if p.is_file()}
    with pytest.raises(OutputFolderRefused, match="give --out another folder"):
        run_pipeline(raw_dir=small_raw, out_dir=unblinded_run)
    assert {p: p.stat().st_mtime_ns for p in unblinded_run.rglob("*") if p.is_file()} == before
    sealed = unblinded_report.metadata["randomisation"]
    assert sealed["dagster/row_count"].value > 0
    assert sealed["preview"].value.count("\n") == 1  # the header line and rule only


def _truth_ices(small_raw: Path) -> list[tuple[str, str, str, str]]:
    truth = pl.read_csv(Path(str(small_raw) + "_sealed") / "ices_truth.csv")
    return sorted(truth.select("subject_id", "ice", "basis", "date").rows())


def test_estimand_assets_in_an_unblinded_run(unblinded_run: Path, small_raw: Path) -> None:
    """ADICE equals the simulator's truth; the estimand and tipping-point results, and the
    report's estimands section, are written."""
    adice = pl.read_parquet(unblinded_run / "tables" / "adice.parquet")
    got = adice.select("subject_id", "ICE", "basis", pl.col("ICEDT").cast(pl.String)).rows()
    assert sorted(got) == _truth_ices(small_raw) and got
    assert "arm" in adice.columns
    models = unblinded_run / "models"
    at_visit = pl.read_parquet(models / "estimands_primary_visit.parquet")
    assert {"primary analysis", "E1", "E2", "E3-CR", "E3-CIR"} <= set(at_visit["estimand"])
    assert at_visit["estimate"].is_finite().all()
    curve = pl.read_parquet(models / "tipping_point_curve.parquet")
    assert curve.height > 0 and curve["delta"].min() == 0.0
    html = (unblinded_run / "reports" / "investigator_report.html").read_text("utf-8")
    assert 'id="estimands"' in html and 'id="tipping-point"' in html


def test_estimand_assets_in_a_blinded_run(blinded_run: Path, small_raw: Path) -> None:
    """Blinded: ADICE without arms, the estimands table and pooled ICE counts, nothing fitted
    (said in the notes), the results withheld in the report."""
    adice = pl.read_parquet(blinded_run / "tables" / "adice.parquet")
    assert "arm" not in adice.columns
    got = adice.select("subject_id", "ICE", "basis", pl.col("ICEDT").cast(pl.String)).rows()
    assert sorted(got) == _truth_ices(small_raw)
    models = blinded_run / "models"
    assert pl.read_parquet(models / "estimands_estimates.parquet").height == 0
    assert "not fitted: blinded run" in pl.read_parquet(models / "estimands_notes.parquet")["note"]
    counts = pl.read_parquet(models / "estimands_ice_counts.parquet")
    assert counts["group"].unique().to_list() == ["TOTAL"]
    assert pl.read_parquet(models / "tipping_point_estimates.parquet").height == 0
    assert not (models / "tipping_point_curve.parquet").exists()
    html = (blinded_run / "reports" / "investigator_report.html").read_text("utf-8")
    assert 'id="estimands"' in html and 'id="tipping-point"' not in html
