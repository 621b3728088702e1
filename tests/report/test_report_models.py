"""Model sections of the report read the model results as the model modules write them."""

from __future__ import annotations

import math

import polars as pl
import pytest

from trial.models.tidy import not_fitted_blinded
from trial.report import model_tables as mt


def test_primary_lsmeans_percent_reduction(models, study):
    lsm = mt.primary_lsmeans(models["mmrm_primary"])
    arm, visit = study.treated_arms[0], study.primary_visit
    row = lsm.filter((pl.col("arm") == arm) & (pl.col("visit") == visit))
    assert row.height == 1
    est = row["estimate"][0]
    assert row["percent_reduction"][0] == pytest.approx(100 * (1 - math.exp(est)))
    # A larger reduction goes with the lower log-scale bound.
    assert row["percent_reduction_ci_high"][0] == pytest.approx(
        100 * (1 - math.exp(row["ci_low"][0]))
    )


def _contrast(study, arm: str) -> str:
    return f"{arm}-{study.reference_arm}"


def test_contrast_ratio_of_geometric_means(models, study):
    ct = mt.contrasts_with_ratio(models["mmrm_primary"].tables["contrasts"])
    contrast = _contrast(study, study.treated_arms[-1])
    row = ct.filter((pl.col("contrast") == contrast) & (pl.col("visit") == study.primary_visit))
    assert row.height == 1
    assert row["ratio"][0] == pytest.approx(math.exp(row["estimate"][0]))
    assert row["ratio_ci_low"][0] == pytest.approx(math.exp(row["ci_low"][0]))


def test_sensitivity_side_by_side_at_the_primary_visit(models, study):
    s = mt.sensitivity_comparison(models, study)
    assert s["model"].unique(maintain_order=True).to_list()[0] == "mmrm_primary"
    # Primary + 4 sensitivities, one contrast per treated arm each, only at the primary visit.
    assert s.height == 5 * len(study.treated_arms)
    contrast = _contrast(study, study.treated_arms[0])
    primary = s.filter((pl.col("model") == "mmrm_primary") & (pl.col("contrast") == contrast))
    expected = (
        models["mmrm_primary"]
        .tables["contrasts"]
        .filter((pl.col("visit") == study.primary_visit) & (pl.col("contrast") == contrast))
    )
    assert primary["estimate"][0] == pytest.approx(expected["estimate"][0])
    assert s["analysis"][0].startswith("Primary")


def test_models_not_fitted_in_a_blinded_run_are_left_out(models, study):
    blinded = {**models, "mmrm_primary": not_fitted_blinded("mmrm_primary")}
    s = mt.sensitivity_comparison(blinded, study)
    assert "mmrm_primary" not in s["model"].to_list()
    assert not mt.fitted(blinded["mmrm_primary"])


def test_responder_odds_ratios_carry_the_cmh_check(models, study):
    r = mt.responder_models(models)
    assert r.height == 2 * len(study.treated_arms)  # two endpoints
    contrast = _contrast(study, study.treated_arms[0])
    row = r.filter((pl.col("endpoint") == "hdss_responder") & (pl.col("contrast") == contrast))
    assert row["cmh_p_value"][0] == pytest.approx(row["p_value"][0] * 1.25)


def test_subgroup_effects_for_the_forest_plot(models, study):
    f = mt.subgroup_effects(models)
    # Every configured subgroup, two levels each (synthetic), one contrast per treated arm.
    assert f.height == len(study.models.subgroups) * 2 * len(study.treated_arms)
    assert (f["ratio"] == f["estimate"].exp()).all()


def test_covariance_structure_reported(models, study):
    assert mt.covariance_used(models["mmrm_primary"]) == study.models.mmrm.fallback[0]


def test_secondary_endpoint_contrasts(models, study):
    sec = mt.secondary_contrasts(models)
    plantar = ["Plantar sweat rate, subjects with plantar involvement"]
    # A study that measures every region in every subject has no plantar analysis.
    assert sec["endpoint"].unique(maintain_order=True).to_list() == (
        plantar if study.involvement_region is not None else []
    ) + ["Durability: ratio of rates, later / earlier durability visit"]
    assert (sec["ratio"] == sec["estimate"].exp()).all()
