"""Primary MMRM against nlme::gls on ref1 (shared reference, tolerances of its README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from study import load_study
from trial.models.mmrm import MmrmFit, fit_mmrm, fit_mmrm_model
from trial.models.result import ModelResult


@pytest.fixture(scope="module")
def ref(ref1_dir: Path) -> dict[str, Any]:
    return dict(json.loads((ref1_dir / "expected" / "results.json").read_text())["mmrm"])


@pytest.fixture(scope="module")
def frame(ref1_dir: Path) -> pl.DataFrame:
    return pl.read_csv(ref1_dir / "expected" / "analysis_long.csv")


@pytest.fixture(scope="module")
def fit(frame: pl.DataFrame) -> MmrmFit:
    return fit_mmrm_model(frame, load_study())


@pytest.fixture(scope="module")
def result(frame: pl.DataFrame) -> ModelResult:
    return fit_mmrm(frame, load_study())


def test_counts_structure_and_convergence(result: ModelResult, ref: dict[str, Any]) -> None:
    assert result.name == "mmrm_primary"
    assert result.fit["n_subjects"] == ref["n_subjects"] == 118
    assert result.fit["n_observations"] == ref["n_obs"] == 627
    assert result.fit["covariance_structure"] == "unstructured"
    assert result.fit["n_covariance_parameters"] == 21
    assert result.fit["converged"] is True
    assert json.loads(result.fit["structures_rejected"]) == {}
    assert result.fit["newton_decrement"] < 1e-8


def test_reml_loglik_nlme_convention(result: ModelResult, ref: dict[str, Any]) -> None:
    assert result.fit["reml_loglik"] == pytest.approx(ref["reml_loglik"], abs=1e-4)
    # and clearly not the variant with +1/2 log|X'X|
    assert abs(result.fit["reml_loglik"] - ref["reml_loglik_own_with_half_logdet_XtX"]) > 1.0


def test_fixed_effects_and_model_based_se(result: ModelResult, ref: dict[str, Any]) -> None:
    est = result.estimates
    assert est.get_column("term").to_list() == ref["vcov_names"]
    by_term = {r["term"]: r for r in est.iter_rows(named=True)}
    for fe in ref["fixed_effects"]:
        assert by_term[fe["term"]]["estimate"] == pytest.approx(fe["estimate"], abs=1e-4)
        assert by_term[fe["term"]]["std_error"] == pytest.approx(fe["se"], rel=1e-3)


def test_vcov_matches(fit: MmrmFit, ref: dict[str, Any]) -> None:
    np.testing.assert_allclose(fit.vcov, np.array(ref["vcov_fixed"]), rtol=2e-3, atol=1e-6)


def test_covariance_parameters(result: ModelResult, ref: dict[str, Any]) -> None:
    sd = json.loads(result.fit["sd_by_visit"])
    for visit, value in ref["sd_by_visit"].items():
        assert sd[visit] == pytest.approx(value, rel=1e-3)
        assert result.fit[f"sd_{visit}"] == pytest.approx(value, rel=1e-3)
    np.testing.assert_allclose(
        np.array(json.loads(result.fit["correlation_matrix"])),
        np.array(ref["correlation_matrix"]),
        atol=1e-3,
    )
    cov = result.tables["covariance"]
    assert cov.height == 36
    order = ref["matrix_order"]
    expected = np.array(ref["covariance_matrix"])
    for row in cov.iter_rows(named=True):
        j, k = order.index(row["visit_row"]), order.index(row["visit_col"])
        assert row["covariance"] == pytest.approx(expected[j, k], rel=1e-3)


def test_lsmeans_all_visits(result: ModelResult, ref: dict[str, Any]) -> None:
    lsm = result.tables["lsmeans"]
    assert lsm.height == 18
    assert lsm.get_column("logbase").unique().to_list() == [
        pytest.approx(ref["logbase_mean_over_rows"], abs=1e-9)
    ]
    assert result.fit["logbase_mean"] == pytest.approx(ref["logbase_mean_over_rows"], abs=1e-9)
    for row in lsm.iter_rows(named=True):
        expected = ref["lsmeans"][row["visit"]][row["arm"]]
        assert row["estimate"] == pytest.approx(expected["estimate"], abs=1e-4)
        assert row["std_error"] == pytest.approx(expected["se"], rel=1e-3)
        assert row["percent_reduction"] == pytest.approx(expected["percent_reduction"], abs=1e-2)
        if expected["df_satterthwaite"] is not None:
            assert row["df"] == pytest.approx(expected["df_satterthwaite"], rel=0.01)


def test_contrasts_all_visits(result: ModelResult, ref: dict[str, Any]) -> None:
    ct = result.tables["contrasts"]
    assert ct.height == 12
    for row in ct.iter_rows(named=True):
        expected = ref["contrasts"][row["visit"]][row["contrast"]]
        assert row["estimate"] == pytest.approx(expected["estimate"], abs=1e-4)
        assert row["std_error"] == pytest.approx(expected["se"], rel=1e-3)
        assert row["ratio_geometric_means"] == pytest.approx(
            expected["ratio_geometric_means"], rel=1e-4
        )


def test_w4_contrasts_df_p_and_ci(result: ModelResult, ref: dict[str, Any]) -> None:
    ct = result.tables["contrasts"].filter(pl.col("visit") == "W4")
    for row in ct.iter_rows(named=True):
        expected = ref["w4"]["contrasts"][row["contrast"]]
        assert row["df"] == pytest.approx(expected["df_satterthwaite"], rel=0.01)
        assert row["p_value"] == pytest.approx(expected["p_value"], rel=2e-3)
        assert row["statistic"] == pytest.approx(expected["estimate"] / expected["se"], rel=1e-3)
        assert [row["ci_low"], row["ci_high"]] == pytest.approx(expected["ci95"], abs=1e-4)
        assert [row["ratio_ci_low"], row["ratio_ci_high"]] == pytest.approx(
            expected["ratio_ci95"], abs=1e-4
        )


def test_w4_lsmean_confidence_interval_uses_t_df(result: ModelResult) -> None:
    from scipy import stats

    row = result.tables["lsmeans"].filter((pl.col("visit") == "W4") & (pl.col("arm") == "GLY"))
    r = row.row(0, named=True)
    half = stats.t.ppf(0.975, r["df"]) * r["std_error"]
    assert [r["ci_low"], r["ci_high"]] == pytest.approx(
        [r["estimate"] - half, r["estimate"] + half], abs=1e-12
    )
    assert r["percent_reduction_ci_low"] == pytest.approx(100 * (1 - np.exp(r["ci_high"])))


def test_kenward_roger_option(frame: pl.DataFrame, result: ModelResult) -> None:
    """KR: same estimates, adjusted SE never below the model-based SE, q = 1 df = Satterthwaite."""
    kr = fit_mmrm(frame, load_study(), ddf="kenward_roger")
    assert kr.fit["ddf_method"] == "kenward_roger"
    sat = result.tables["contrasts"].filter(pl.col("visit") == "W4")
    krc = kr.tables["contrasts"].filter(pl.col("visit") == "W4")
    np.testing.assert_allclose(krc["estimate"].to_numpy(), sat["estimate"].to_numpy())
    assert (krc["std_error"].to_numpy() >= sat["std_error"].to_numpy()).all()
    assert (krc["std_error"].to_numpy() < 1.05 * sat["std_error"].to_numpy()).all()
    # For one contrast (q = 1) A1 = A2 and the KR df reduces to the Satterthwaite df of the
    # unadjusted covariance: two independent code paths (P_i terms vs the gradient of l'Cl).
    np.testing.assert_allclose(krc["df"].to_numpy(), sat["df"].to_numpy(), rtol=1e-8)


def test_notes_name_the_structure(result: ModelResult) -> None:
    assert any("unstructured" in n for n in result.notes)
    assert not any("Fallback" in n for n in result.notes)


def test_result_round_trips_through_parquet(result: ModelResult, tmp_path: Path) -> None:
    from trial.models.result import write_result

    paths = write_result(result, tmp_path)
    assert {p.name for p in paths} >= {
        "mmrm_primary_estimates.parquet",
        "mmrm_primary_fit.parquet",
        "mmrm_primary_lsmeans.parquet",
        "mmrm_primary_contrasts.parquet",
        "mmrm_primary_covariance.parquet",
    }
    fit_row = pl.read_parquet(tmp_path / "mmrm_primary_fit.parquet").row(0, named=True)
    assert fit_row["covariance_structure"] == "unstructured"
    assert json.loads(fit_row["sd_by_visit"])["W4"] == pytest.approx(0.6233098, rel=1e-3)
