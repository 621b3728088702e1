"""``ionto rbi``: tidy tables from CSV inputs; bad input ends in one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ionto.cli import main
from trial.rbi import RbiSpec, run_rbi
from trial.rbi.simulate import TrialDesign, simulate_trial


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path, pl.DataFrame, pl.DataFrame]:
    data, ice = simulate_trial(TrialDesign(n_subjects=40, n_visits=3), seed=3)
    data = data.rename({"subject": "USUBJID", "visit": "AVISIT", "arm": "TRT", "y": "CHG"})
    ice = ice.rename({"subject": "USUBJID", "visit": "AVISIT"})
    data.write_csv(tmp_path / "long.csv")
    ice.write_csv(tmp_path / "ice.csv")
    return tmp_path / "long.csv", tmp_path / "ice.csv", data, ice


def _args(data: Path, ice: Path, out: Path, **over: str) -> list[str]:
    args = {
        "--data": str(data),
        "--subject": "USUBJID",
        "--visit": "AVISIT",
        "--group": "TRT",
        "--reference": "PBO",
        "--outcome": "CHG",
        "--covariates": "base*AVISIT",
        "--analysis-covariates": "base",
        "--ice": str(ice),
        "--strategy": "CIR",
        "--method": "condmean-jackknife",
        "--out": str(out),
        **over,
    }
    return ["rbi", *(x for kv in args.items() for x in kv)]


def test_rbi_command_writes_the_pooled_table(
    inputs: tuple[Path, Path, pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    data_csv, ice_csv, data, ice = inputs
    out = tmp_path / "out"
    assert main(_args(data_csv, ice_csv, out)) == 0
    pooled = pl.read_csv(out / "pooled.csv")
    assert pooled.columns == ["visit", "parameter", "estimate", "se", "lci", "uci", "pvalue", "df"]
    assert pl.read_parquet(out / "pooled.parquet").height == pooled.height == 9
    spec = RbiSpec(
        subject="USUBJID",
        visit="AVISIT",
        group="TRT",
        reference="PBO",
        outcome="CHG",
        covariates=["base*AVISIT"],
        analysis_covariates=["base"],
        strategy="CIR",
    )
    expected = run_rbi(data, ice, spec).pooled
    np.testing.assert_allclose(pooled["estimate"].to_numpy(), expected["estimate"].to_numpy())
    np.testing.assert_allclose(pooled["se"].to_numpy(), expected["se"].to_numpy())
    for name in ("samples", "imputed", "model_coefficients", "model_covariance"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.parquet").is_file()
    assert (out / "fit.json").is_file()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"--outcome": "AVAL"}, "the data has no column 'AVAL'"),
        ({"--reference": "PLACEBO"}, "reference level 'PLACEBO' is not a level of 'TRT'"),
        ({"--covariates": "AGE*AVISIT"}, "the data has no column 'AGE'"),
        ({"--data": "nowhere.csv"}, "data file nowhere.csv does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    inputs: tuple[Path, Path, pl.DataFrame, pl.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    over: dict[str, str],
    message: str,
) -> None:
    data_csv, ice_csv, _, _ = inputs
    assert main(_args(data_csv, ice_csv, tmp_path / "out", **over)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_ice_visit_not_in_data_is_one_line(
    inputs: tuple[Path, Path, pl.DataFrame, pl.DataFrame],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_csv, _, _, ice = inputs
    bad = tmp_path / "bad_ice.csv"
    ice.with_columns(pl.lit("W9").alias("AVISIT")).write_csv(bad)
    assert main(_args(data_csv, bad, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "visit 'W9'" in err and "not a visit of the data" in err
