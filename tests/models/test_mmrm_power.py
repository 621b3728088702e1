"""Analysis-level trial simulator and the MMRM power engine."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from study import load_study
from trial.models.mmrm import fit_design, fit_mmrm
from trial.models.power import simulate_power, simulate_trial, true_contrasts


def test_true_contrasts_from_config() -> None:
    truth = true_contrasts(load_study())
    assert truth["W4"] == pytest.approx({"GLY-TAP": -0.4, "OXY-TAP": -0.2})
    assert truth["W1"]["GLY-TAP"] == pytest.approx(-0.4 * 0.6)


def test_simulated_trial_is_an_analysis_long_frame() -> None:
    study = load_study()
    trial = simulate_trial(study, 300, np.random.default_rng(5))
    frame = trial.frame()
    assert frame.get_column("subject").n_unique() == 300
    assert set(frame.get_column("visit").unique()) <= set(study.model_visits)
    assert not frame.select(pl.struct("subject", "visit").is_duplicated().any()).item()
    # entry criterion on the screening value: baselines sit well above ln(20) on average
    assert frame.get_column("logbase").mean() > np.log(20.0) + 1.0
    result = fit_mmrm(frame, study)
    assert result.fit["n_subjects"] == 300


def test_large_simulated_trial_recovers_the_truth() -> None:
    study = load_study()
    design = simulate_trial(study, 4000, np.random.default_rng(17)).design()
    fit = fit_design(design, ["unstructured"])
    truth = true_contrasts(study)["W4"]
    for arm in ("GLY", "OXY"):
        row = design.lsmean_vector(arm, "W4") - design.lsmean_vector("TAP", "W4")
        inf = fit.satterthwaite(row[None])
        assert abs(inf.estimate[0] - truth[f"{arm}-TAP"]) < 3.5 * inf.std_error[0]
        assert inf.std_error[0] < 0.04


def test_power_table_shape_and_sequence() -> None:
    result = simulate_power(load_study(), [60, 90], 4, seed=1)
    table = result.table
    assert table.height == 4
    assert table.get_column("hypothesis").to_list() == ["H1", "H2", "H1", "H2"]
    assert table.get_column("power").is_between(0.0, 1.0).all()
    assert (table["power_sequential"] <= table["power"]).all()
    h1 = table.filter(pl.col("hypothesis") == "H1")
    assert (h1["power_sequential"] == h1["power"]).all()
    assert result.replicates_per_second > 0
