"""Diagnostics helpers of the model notebook: residuals and empirical covariance."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trial.derive.analysis_long import build_analysis_long
from trial.models.mmrm import fit_mmrm
from trial.report.diagnostics import covariance_comparison, empirical_covariance, marginal_residuals


@pytest.fixture(scope="module")
def fitted(unblinded_tables, study):
    analysis_long = build_analysis_long(
        unblinded_tables["adsl"], unblinded_tables["adsweat"], study
    )
    return analysis_long, fit_mmrm(analysis_long, study, name="mmrm_primary")


def test_residuals_are_observed_minus_x_beta(fitted, study):
    analysis_long, result = fitted
    r = marginal_residuals(analysis_long, result.estimates, study)
    assert r.height == analysis_long.height
    assert np.allclose(r["observed"] - r["fitted"], r["residual"])
    # GLS residuals average near zero at every visit for this model (intercept per visit).
    assert r.group_by("visit").agg(pl.col("residual").mean().abs())["residual"].max() < 0.1
    sd = r.group_by("visit").agg(pl.col("standardised").std())["standardised"]
    assert np.allclose(sd.to_numpy(), 1.0)


def test_empirical_covariance_matches_numpy_on_complete_pairs():
    residuals = pl.DataFrame(
        {
            "subject": ["a", "a", "b", "b", "c", "c", "d"],
            "visit": ["W1", "W2", "W1", "W2", "W1", "W2", "W1"],
            "residual": [0.1, 0.3, -0.2, -0.1, 0.4, 0.2, 1.0],
        }
    )
    cov = empirical_covariance(residuals, ["W1", "W2"])
    w1 = cov.filter((pl.col("visit_row") == "W1") & (pl.col("visit_col") == "W1"))
    assert w1["covariance"][0] == pytest.approx(np.var([0.1, -0.2, 0.4, 1.0], ddof=1))
    assert w1["n_pairs"][0] == 4
    w12 = cov.filter((pl.col("visit_row") == "W1") & (pl.col("visit_col") == "W2"))
    assert w12["covariance"][0] == pytest.approx(np.cov([0.1, -0.2, 0.4], [0.3, -0.1, 0.2])[0, 1])
    assert w12["n_pairs"][0] == 3


def test_fitted_and_empirical_side_by_side(fitted, study):
    analysis_long, result = fitted
    r = marginal_residuals(analysis_long, result.estimates, study)
    both = covariance_comparison(
        result.tables["covariance"], empirical_covariance(r, study.model_visits)
    )
    assert both.height == len(study.model_visits) ** 2
    diagonal = both.filter(pl.col("visit_row") == pl.col("visit_col"))
    # The unstructured REML variances are close to the residual variances on this data.
    assert np.allclose(diagonal["fitted"], diagonal["empirical"], rtol=0.5)
