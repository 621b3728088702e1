"""An incomplete sealed list stops an unblinded run before anything is derived from it: no
table with arms, no model, no report is written, and the run's summary says why in one line."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.run import run_pipeline


def test_incomplete_list_leaves_no_unblinded_output(small_raw: Path, tmp_path: Path) -> None:
    full = pl.read_csv(Path(str(small_raw) + "_sealed") / "randomisation.csv")
    dropped = full["subject_id"][3]
    incomplete = tmp_path / "randomisation.csv"
    full.filter(pl.col("subject_id") != dropped).write_csv(incomplete)
    out = tmp_path / "out"
    report = run_pipeline(raw_dir=small_raw, out_dir=out, unblind_path=incomplete)
    assert not report.success
    [failed] = report.failed_steps
    assert failed.startswith("randomisation: the sealed randomisation list")
    assert f"{dropped} randomised (baseline visit done) but not in the list" in failed
    assert "\n" not in failed
    tables = {p.stem: p for p in (out / "tables").glob("*.parquet")}
    assert "adsl" not in tables and "randomisation" not in tables
    for name, path in tables.items():
        assert "arm" not in pl.read_parquet_schema(path), name
    assert not (out / "models").exists() or not any((out / "models").iterdir())
    assert not (out / "reports").exists() or not any((out / "reports").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["PLACEBO"])
def test_unknown_arm_code_stops_the_run_too(small_raw: Path, tmp_path: Path, arm: str) -> None:
    full = pl.read_csv(Path(str(small_raw) + "_sealed") / "randomisation.csv")
    wrong = tmp_path / "randomisation.csv"
    full.with_columns(
        arm=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(arm)).otherwise(pl.col("arm"))
    ).write_csv(wrong)
    report = run_pipeline(raw_dir=small_raw, out_dir=tmp_path / "out", unblind_path=wrong)
    assert not report.success
    [failed] = report.failed_steps
    assert failed.startswith("randomisation: the sealed randomisation list") and arm in failed
    assert not (tmp_path / "out" / "tables" / "adsl.parquet").exists()
