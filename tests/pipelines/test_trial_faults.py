"""The simulator's trial-level faults (``faults.json`` ``trial_faults``) through the pipeline:
each is quarantined or found at its file and line; in a whole run no analysis table holds a
subject absent from ADSL, the report's counts reconcile, and the list missing a subject stops
an unblinded run before anything is unblinded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from data_contracts.contracts import use_study
from ingest.deliveries import manifest_delivery_keys
from ingest.incremental import read_delivery_folder, resolve_raw_datasets
from ingest.landing import scan_raw
from ingest.sealed import sealed_signature
from pipelines.run import run_pipeline
from study import load_study
from trial.simulate import SimulationSummary, simulate_trial
from trial.simulate.trial_faults import MISSING_LIST

KINDS = {
    "UNKNOWN_SUBJECT",
    "VISIT_BEFORE_CONSENT",
    "SERIAL_DOUBLE_ASSIGNED",
    "SNAPSHOT_ROW_MISSING",
    "TIMESTAMP_BACKWARDS",
    "NON_FINITE",
    "MISSING_FROM_LIST",
}
ANALYSIS_TABLES = ("adsweat", "adsweat_side", "adhdss", "adae", "addev", "analysis_long")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    raw = tmp_path_factory.mktemp("trial_faults") / "raw"
    return simulate_trial(load_study(), 40, 7, raw, faults=True)


def trial_faults(run: SimulationSummary) -> list[dict[str, Any]]:
    faults = json.loads((run.sealed_dir / "faults.json").read_text("utf-8"))
    return list(faults["trial_faults"])


def test_every_rule_has_its_fault_kind(faulty: SimulationSummary) -> None:
    assert {f["reason_code"] for f in trial_faults(faulty)} == KINDS
    assert (faulty.sealed_dir / MISSING_LIST).is_file()


def test_each_trial_fault_is_quarantined_or_found_at_its_line(
    faulty: SimulationSummary, tmp_path: Path
) -> None:
    study = load_study()
    use_study(study)
    raw = faulty.raw_dir
    manifest = scan_raw(raw)
    folders = manifest_delivery_keys(manifest)["folder"]
    frames = [read_delivery_folder(raw, f, sealed_signature(study)) for f in folders]
    out = resolve_raw_datasets(
        manifest, frames, raw, study.current_tolerance_pct, tmp_path / "scratch"
    )
    quarantine, findings = out["quarantine"], out["integrity_findings"]
    assert isinstance(quarantine, pl.DataFrame) and isinstance(findings, pl.DataFrame)
    for fault in trial_faults(faulty):
        if fault["outcome"] == "stop":
            continue
        frame, code = (
            (quarantine, "reason_code")
            if fault["outcome"] == "quarantine"
            else (findings, "finding")
        )
        hits = frame.filter(
            (pl.col("source_file") == fault["file"])
            & (pl.col("source_line") == fault["line"])
            & (pl.col(code) == fault["reason_code"])
            & (pl.col("dataset") == fault["dataset"])
        )
        assert hits.height == 1, fault
    unknown = next(f for f in trial_faults(faulty) if f["reason_code"] == "UNKNOWN_SUBJECT")
    papers = out["gravimetry"]
    assert isinstance(papers, pl.DataFrame)
    assert (
        not papers.filter(pl.col("source_file") == unknown["file"])["source_line"]
        .is_in([unknown["line"]])
        .any()
    )


@pytest.mark.slow
def test_whole_run_accounts_for_every_subject(faulty: SimulationSummary, tmp_path: Path) -> None:
    out = tmp_path / "blinded"
    report = run_pipeline(raw_dir=faulty.raw_dir, out_dir=out)
    assert report.success, report.describe()
    tables = out / "tables"
    adsl = pl.read_parquet(tables / "adsl.parquet")
    assert adsl["subject_id"].is_unique().all()
    for name in ANALYSIS_TABLES:
        frame = pl.read_parquet(tables / f"{name}.parquet")
        column = "subject" if "subject" in frame.columns else "subject_id"
        stray = set(frame[column]) - set(adsl["subject_id"])
        assert not stray, (name, stray)
    unknown = next(f for f in trial_faults(faulty) if f["reason_code"] == "UNKNOWN_SUBJECT")
    ghost = adsl.filter(pl.col("subject_id").str.ends_with("-9853")).row(0, named=True)
    assert ghost["dm_status"] == "ABSENT" and ghost["RANDFL"] == "N"
    assert f"{unknown['file']} line {unknown['line']}" in ghost["data_issues"]
    double = [f for f in trial_faults(faulty) if f["reason_code"] == "SERIAL_DOUBLE_ASSIGNED"]
    owner = double[0]["note"].split(" of ")[1].split(" ")[0]
    assert "SERIAL_DOUBLE_ASSIGNED" in adsl.filter(subject_id=owner)["data_issues"][0]
    data = out / "reports" / "investigator_report_data"
    reconciled = pl.read_parquet(data / "accountability.parquet")
    assert reconciled.height and (reconciled["reconciles"] != "N").all(), reconciled
    ledger = pl.read_parquet(out / "reports" / "findings_ledger.parquet")
    assert ledger["finding_id"].is_unique().all() and set(ledger["status"]) == {"OPEN"}
    assert {f["file"] for f in trial_faults(faulty) if f["outcome"] != "stop"} <= set(
        ledger["source_file"]
    )
    html = (out / "reports" / "data_quality_report.html").read_text("utf-8")
    assert "Open findings per centre" in html
    consort = pl.read_parquet(data / "consort.parquet")
    screened = consort.filter((pl.col("stage") == "screened") & pl.col("reason").is_null())
    assert int(screened["n"].sum()) == adsl.filter(pl.col("dm_status") != "ABSENT").height


@pytest.mark.slow
def test_list_missing_a_subject_stops_the_unblinded_run(
    faulty: SimulationSummary, tmp_path: Path
) -> None:
    fault = next(f for f in trial_faults(faulty) if f["reason_code"] == "MISSING_FROM_LIST")
    dropped = fault["note"].split(",")[0]
    out = tmp_path / "unblinded"
    report = run_pipeline(
        raw_dir=faulty.raw_dir, out_dir=out, unblind_path=faulty.sealed_dir / MISSING_LIST
    )
    assert not report.success
    assert any(f"{dropped} " in s and "not in the list" in s for s in report.failed_steps)
    assert not (out / "tables" / "adsl.parquet").exists()
    assert not (out / "models").exists() or not any((out / "models").iterdir())
