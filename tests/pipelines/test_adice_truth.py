"""ADICE against the simulator's truth on a trial with every kind of ICE (slow: a blinded run
of 120 subjects; the default suite's small trial has withdrawals only)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.run import run_pipeline
from study import load_study
from trial.simulate import simulate_trial


@pytest.mark.slow
def test_adice_equals_the_truth_with_gaps_rescue_and_withdrawals(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    simulate_trial(load_study(), 120, 11, raw)
    report = run_pipeline(raw_dir=raw, out_dir=tmp_path / "out")
    assert report.success, report.describe()
    truth = pl.read_csv(tmp_path / "raw_sealed" / "ices_truth.csv")
    assert set(truth["basis"]) == {"WITHDRAWAL", "SESSION_GAP", "RESCUE"}
    adice = pl.read_parquet(tmp_path / "out" / "tables" / "adice.parquet")
    got = adice.select("subject_id", "ICE", "basis", pl.col("ICEDT").cast(pl.String)).rows()
    assert sorted(got) == sorted(truth.select("subject_id", "ice", "basis", "date").rows())
