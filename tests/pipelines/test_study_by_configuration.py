"""A trial by configuration alone: the second example study (ION-302) and a copy of ION-301
with only its study id changed are simulated and run end to end, with no code or contract
edit, and pass every contract check."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from pipelines.run import run_pipeline
from study import example_study_path, load_study
from trial.simulate import simulate_trial

SUBJECTS = 40
SEED = 5


@pytest.fixture(scope="module")
def ion302_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ion302")
    summary = simulate_trial(
        load_study("ion302"), n_subjects=SUBJECTS, seed=SEED, raw_dir=root / "raw"
    )
    report = run_pipeline(
        raw_dir=root / "raw",
        out_dir=root / "out",
        study_path=example_study_path("ion302"),
        unblind_path=summary.sealed_dir / "randomisation.csv",
    )
    assert report.success, report.describe()
    assert report.failed_checks == []
    return root / "out"


def test_the_second_study_gets_every_table_model_report_and_export(ion302_run: Path) -> None:
    tables = {p.stem for p in (ion302_run / "tables").glob("*.parquet")}
    assert {"adsl", "adsweat", "adhdss", "adae", "addev", "analysis_long", "quarantine"} <= tables
    models = {p.name.split("_estimates")[0] for p in (ion302_run / "models").glob("*_estimates*")}
    assert {"mmrm_primary", "mmrm_pp", "responders", "durability", "fixed_sequence"} <= models
    assert (ion302_run / "reports" / "investigator_report.html").exists()
    assert (ion302_run / "reports" / "data_quality_report.html").exists()
    assert {"adsl.xpt", "adsweat.xpt", "define.csv"} <= {
        p.name for p in (ion302_run / "exports" / "xpt").iterdir()
    }
    contract = yaml.safe_load((ion302_run / "contracts" / "adsl.odcs.yaml").read_text("utf-8"))
    studyid = next(p for p in contract["schema"][0]["properties"] if p["name"] == "STUDYID")
    assert studyid["quality"][0]["arguments"]["validValues"] == ["ION-302"]


def test_the_second_studys_design_reaches_every_table(ion302_run: Path) -> None:
    study = load_study("ion302")
    adsl = pl.read_parquet(ion302_run / "tables" / "adsl.parquet")
    assert set(adsl["STUDYID"]) == {"ION-302"}
    assert set(adsl["arm"].drop_nulls()) == {"SHAM", "GLY"}
    assert set(adsl["centre_id"]) <= set(study.centres)
    assert set(adsl["stratum"].drop_nulls()) <= {"HDSS2", "HDSS34"}
    adsweat = pl.read_parquet(ion302_run / "tables" / "adsweat.parquet")
    assert set(adsweat["PARAMCD"]) == {"LSOLESR"}
    long = pl.read_parquet(ion302_run / "tables" / "analysis_long.parquet")
    assert set(long["visit"]) <= set(study.model_visits)
    contrasts = pl.read_parquet(ion302_run / "models" / "mmrm_primary_contrasts.parquet")
    assert set(contrasts["contrast"]) == {"GLY-SHAM"}
    assert "WK6" in set(contrasts["visit"])
    sequence = pl.read_parquet(ion302_run / "models" / "fixed_sequence_fixed_sequence.parquet")
    assert set(sequence["alpha"]) == {0.10}
    assert sequence["id"].to_list() == ["H1", "H2", "H3"]
    addev = pl.read_parquet(ion302_run / "tables" / "addev.parquet")
    assert set(addev["vendor"]) == {"A"}
    assert set(addev["phase"].drop_nulls()) <= {
        "pre_baseline",
        "loading",
        "consolidation",
        "follow_up",
        "post_schedule",
    }


def test_changing_only_the_study_id_passes_every_contract_check(tmp_path: Path) -> None:
    """Before contracts took their codelists from the study, this failed three blocking
    ``validValues:STUDYID`` checks (adsweat, adhdss, addev)."""
    text = example_study_path("ion301").read_text("utf-8")
    copy = tmp_path / "renamed.yaml"
    copy.write_text(text.replace("study_id: ION-301", "study_id: ION-399"), "utf-8")
    study = load_study(copy)
    assert study.study_id == "ION-399"
    simulate_trial(study, n_subjects=24, seed=SEED, raw_dir=tmp_path / "raw")
    report = run_pipeline(raw_dir=tmp_path / "raw", out_dir=tmp_path / "out", study_path=copy)
    assert report.success, report.describe()
    assert report.failed_checks == []
    for table in ("adsl", "adsweat", "adhdss", "addev"):
        frame = pl.read_parquet(tmp_path / "out" / "tables" / f"{table}.parquet")
        assert set(frame["STUDYID"]) == {"ION-399"}, table
