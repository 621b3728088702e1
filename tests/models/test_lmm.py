"""Sensitivity 1 LMM against lme4 on ref1 (``expected/results.json`` -> ``lmm``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from study import Study, load_study
from trial.models.lmm import fit_lmm
from trial.models.result import ModelResult
from trial.models.tidy import BLINDED_NOTE

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


@pytest.fixture(scope="module")
def ref1_long(ref1_dir: Path) -> pl.DataFrame:
    return pl.read_csv(ref1_dir / "expected" / "analysis_long.csv")


@pytest.fixture(scope="module")
def expected(ref1_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ref1_dir / "expected" / "results.json").read_text())
    return data["lmm"]


def _check_against_lme4(result: ModelResult, expected: dict[str, Any]) -> None:
    est = {r["term"]: r for r in result.estimates.iter_rows(named=True)}
    assert set(est) == {fe["term"] for fe in expected["fixed_effects"]}
    for fe in expected["fixed_effects"]:
        assert est[fe["term"]]["estimate"] == pytest.approx(fe["estimate"], abs=5e-4)
        assert est[fe["term"]]["std_error"] == pytest.approx(fe["se"], rel=5e-3)
    for key, value in expected["variance_components"].items():
        if key.startswith(("sd_", "corr_")):
            assert result.fit[key] == pytest.approx(value, rel=2e-2), key
    assert result.fit["reml_loglik"] == pytest.approx(expected["reml_loglik"], abs=1e-4)
    assert result.fit["n_observations"] == expected["n_obs"]
    assert result.fit["n_subjects"] == expected["n_subjects"]
    assert result.fit["converged"] is True
    assert result.fit["theta"] == pytest.approx(expected["theta"], rel=2e-2)
    ls = result.tables["lsmeans"]
    for visit, arms in expected["lsmeans"].items():
        for arm, ref in arms.items():
            row = ls.filter((pl.col("visit") == visit) & (pl.col("arm") == arm)).row(0, named=True)
            assert row["estimate"] == pytest.approx(ref["estimate"], abs=5e-4)
            assert row["std_error"] == pytest.approx(ref["se"], rel=5e-3)
            assert row["percent_reduction"] == pytest.approx(ref["percent_reduction"], abs=5e-2)
    ct = result.tables["contrasts"]
    for visit, contrasts in expected["contrasts"].items():
        for label, ref in contrasts.items():
            row = ct.filter((pl.col("visit") == visit) & (pl.col("contrast") == label)).row(
                0, named=True
            )
            assert row["estimate"] == pytest.approx(ref["estimate"], abs=5e-4)
            assert row["std_error"] == pytest.approx(ref["se"], rel=5e-3)
            ratio = ref["ratio_geometric_means"]
            assert row["ratio_geometric_means"] == pytest.approx(ratio, rel=5e-4)


def test_own_engine_matches_lme4(
    study: Study, ref1_long: pl.DataFrame, expected: dict[str, Any]
) -> None:
    _check_against_lme4(fit_lmm(ref1_long, study, engine="own"), expected)


def test_statsmodels_matches_lme4(
    study: Study, ref1_long: pl.DataFrame, expected: dict[str, Any]
) -> None:
    result = fit_lmm(ref1_long, study, engine="statsmodels")
    _check_against_lme4(result, expected)
    assert not any("warning recorded" in n for n in result.notes)


@pytest.mark.slow
def test_engines_agree_closely(study: Study, ref1_long: pl.DataFrame) -> None:
    own = fit_lmm(ref1_long, study, engine="own")
    sm = fit_lmm(ref1_long, study, engine="statsmodels")
    np.testing.assert_allclose(own.estimates["estimate"], sm.estimates["estimate"], atol=1e-5)
    np.testing.assert_allclose(own.estimates["std_error"], sm.estimates["std_error"], rtol=1e-4)
    assert own.fit["reml_loglik"] == pytest.approx(sm.fit["reml_loglik"], abs=1e-6)


def test_time_scale_is_a_reparametrisation(study: Study, ref1_long: pl.DataFrame) -> None:
    a = fit_lmm(ref1_long, study, time_scale=1.0)
    b = fit_lmm(ref1_long, study, time_scale=8.0)
    np.testing.assert_allclose(a.estimates["estimate"], b.estimates["estimate"], atol=1e-5)
    assert a.fit["sd_week"] == pytest.approx(b.fit["sd_week"], rel=1e-3)


def test_blinded_run_is_not_fitted(study: Study, ref1_long: pl.DataFrame) -> None:
    result = fit_lmm(ref1_long.drop("arm"), study)
    assert result.estimates.height == 0
    assert result.notes == [BLINDED_NOTE]


@pytest.mark.slow
def test_statsmodels_boundary_warning_on_raw_weeks_is_recorded(
    study: Study, ref1_long: pl.DataFrame, expected: dict[str, Any]
) -> None:
    result = fit_lmm(ref1_long, study, engine="statsmodels", time_scale=1.0)
    boundary = [n for n in result.notes if "boundary" in n]
    assert boundary and "false alarm" in boundary[0]
    assert result.fit["reml_loglik"] == pytest.approx(expected["reml_loglik"], abs=1e-4)
    assert result.fit["sd_week"] == pytest.approx(
        expected["variance_components"]["sd_week"], rel=2e-2
    )


R_LMM = """
options(digits = 15)
d <- read.csv(commandArgs(TRUE)[1])
d$arm <- factor(d$arm, c("TAP", "GLY", "OXY"))
d$visit <- factor(d$visit, c("W1", "W2", "W3", "W4", "W8", "W12"))
d$centre <- factor(d$centre); d$stratum <- factor(d$stratum)
suppressMessages(library(lme4))
fit <- lmer(chg ~ arm * visit + logbase + centre + stratum + (1 + week | subject), d, REML = TRUE)
cat(fixef(fit), "\\n")
cat(sqrt(diag(as.matrix(vcov(fit)))), "\\n")
cat(getME(fit, "theta"), "\\n")
cat(as.numeric(logLik(fit)), "\\n")
"""


@pytest.mark.r
def test_own_engine_matches_lme4_on_a_larger_resample(
    study: Study, ref1_long: pl.DataFrame, tmp_path: Path
) -> None:
    """600 subjects drawn with replacement from ref1 (new ids), fitted here and by lme4."""
    import shutil
    import subprocess

    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("Rscript is not on the PATH")
    ids = ref1_long.get_column("subject").unique().sort().to_numpy()
    draw = np.random.default_rng(5).choice(ids, size=600, replace=True)
    pick = pl.DataFrame({"subject": draw, "new": [f"R{i:04d}" for i in range(600)]})
    frame = (
        pick.join(ref1_long, on="subject")
        .drop("subject")
        .rename({"new": "subject"})
        .sort("subject", "visit_index")
    )
    frame.write_csv(tmp_path / "d.csv")
    (tmp_path / "fit.R").write_text(R_LMM)
    out = subprocess.run(
        [rscript, str(tmp_path / "fit.R"), str(tmp_path / "d.csv")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    fixef, se, theta = (np.array(line.split(), dtype=float) for line in out[:3])
    result = fit_lmm(frame, study)
    np.testing.assert_allclose(result.estimates["estimate"], fixef, atol=5e-4)
    np.testing.assert_allclose(result.estimates["std_error"], se, rtol=5e-3)
    np.testing.assert_allclose(result.fit["theta"], theta, rtol=2e-2)
    assert result.fit["reml_loglik"] == pytest.approx(float(out[3]), abs=1e-3)
