"""Analysis-level trial simulator and the MMRM power engine, for both example studies."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from study import Study, load_study
from trial.models.mmrm import fit_design, fit_mmrm
from trial.models.power import simulate_power, simulate_trial, true_contrasts


def test_true_contrasts_from_config() -> None:
    truth = true_contrasts(load_study())
    assert truth["W4"] == pytest.approx({"GLY-TAP": -0.4, "OXY-TAP": -0.2})
    assert truth["W1"]["GLY-TAP"] == pytest.approx(-0.4 * 0.6)
    other = true_contrasts(load_study("ion302"))  # SHAM -0.4, GLY -1.1; WK2 at half the effect
    assert other["WK6"] == pytest.approx({"GLY-SHAM": -0.7})
    assert other["WK2"]["GLY-SHAM"] == pytest.approx(-0.7 * 0.5)


def test_simulated_trial_is_an_analysis_long_frame(study: Study) -> None:
    trial = simulate_trial(study, 300, np.random.default_rng(5))
    frame = trial.frame()
    assert frame.get_column("subject").n_unique() == 300
    assert set(frame.get_column("visit").unique()) <= set(study.model_visits)
    assert not frame.select(pl.struct("subject", "visit").is_duplicated().any()).item()
    # entry criterion on the screening value: baselines sit well above the entry rate
    entry = np.log(study.gravimetry.entry_min_rate_mg_min)
    assert frame.get_column("logbase").mean() > entry + 0.5
    result = fit_mmrm(frame, study)
    assert result.fit["n_subjects"] == 300


def test_large_simulated_trial_recovers_the_truth(study: Study) -> None:
    design = simulate_trial(study, 4000, np.random.default_rng(17)).design()
    fit = fit_design(design, ["unstructured"])
    visit, ref = study.primary_visit, study.reference_arm
    truth = true_contrasts(study)[visit]
    for arm in study.treated_arms:
        row = design.lsmean_vector(arm, visit) - design.lsmean_vector(ref, visit)
        inf = fit.satterthwaite(row[None])
        assert abs(inf.estimate[0] - truth[f"{arm}-{ref}"]) < 3.5 * inf.std_error[0]
        assert inf.std_error[0] < 0.05


def test_power_table_shape_and_sequence(study: Study) -> None:
    result = simulate_power(study, [60, 90], 4, seed=1)
    table = result.table
    primary = [h.id for h in study.endpoints.key_secondary_sequence if h.endpoint == "primary"]
    assert table.height == 2 * len(primary)
    assert table.get_column("hypothesis").to_list() == primary * 2
    assert table.get_column("power").is_between(0.0, 1.0).all()
    assert table.get_column("alpha").unique().to_list() == [study.alpha]
    assert (table["power_sequential"] <= table["power"]).all()
    h1 = table.filter(pl.col("hypothesis") == "H1")
    assert (h1["power_sequential"] == h1["power"]).all()
    assert result.replicates_per_second > 0
