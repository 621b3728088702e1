"""End to end on a small simulated trial of each example study: simulate, run every asset
(blinded and unblinded, reports and exports included), then check what the runs wrote.

Slow (two pipeline runs): ``pytest -m slow tests/report/test_report_end_to_end.py``."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from study import example_study_path
from trial.report.blinding import Leak, scan_for_arm_leaks, scan_metadata
from trial.report.load import read_model_results, read_tables
from trial.report.run_info import RunInfo
from trial.report.summaries import TOTAL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory, study):
    from pipelines.run import run_pipeline
    from trial.simulate import simulate_trial

    root = tmp_path_factory.mktemp("e2e")
    summary = simulate_trial(study, n_subjects=36, seed=5, raw_dir=root / "raw")
    sealed = summary.sealed_dir / "randomisation.csv"
    out, metadata = {}, {}
    for blinded in (True, False):
        folder = root / ("blinded" if blinded else "unblinded")
        report = run_pipeline(
            root / "raw",
            folder,
            study_path=example_study_path(Path(study.source).stem),
            unblind_path=None if blinded else sealed,
        )
        assert report.success, report.describe()
        out[blinded] = folder
        metadata[blinded] = report.metadata
    return out, pl.read_csv(sealed), metadata


def test_blinded_run_leaks_no_arm(runs, study):
    (out, randomisation, metadata) = runs
    folder = out[True]
    leaks = scan_for_arm_leaks(
        [folder / "tables", folder / "models", folder / "reports", folder / "exports"],
        randomisation,
        study,
    )
    assert leaks == []
    assert "adsl" in metadata[True]
    found: list[Leak] = []
    for asset, values in metadata[True].items():
        found += scan_metadata(values, asset, randomisation, study)
    assert found == []


def test_unblinded_report_numbers_follow_the_run(runs, study):
    from trial.report.data import build_report_data

    (out, randomisation, _) = runs
    folder = out[False]
    tables, models = read_tables(folder), read_model_results(folder)
    run = RunInfo("2026-11-16", False, "sha256:test", "git test")
    data = build_report_data(tables, models, study, run)
    allocated = data.consort.filter((pl.col("stage") == "allocated") & pl.col("reason").is_null())
    counts = randomisation.group_by("arm").len()
    for arm, n in counts.iter_rows():
        assert allocated.filter(pl.col("group") == arm)["n"][0] == n
    assert allocated.filter(pl.col("group") == TOTAL)["n"][0] == randomisation.height
    lsm = models["mmrm_primary"].tables["lsmeans"]
    joined = data.primary_lsmeans.join(lsm, on=["visit", "arm"], suffix="_model")
    assert joined.height == lsm.height
    assert (joined["estimate"] - joined["estimate_model"]).abs().max() == 0.0
    assert data.covariance_structure == models["mmrm_primary"].fit["covariance_structure"]
    # Notes survive the trip through OUT/models into the rebuilt report's methods block.
    notes = set(data.model_notes.iter_rows())
    assert notes and {("device", n) for n in models["device"].notes} <= notes
    assert models["device"].notes
    html = (folder / "reports" / "investigator_report.html").read_text("utf-8")
    assert "UNBLINDED" in html
