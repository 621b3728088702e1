"""Sensitivity 4 ANCOVA: hand-computed balanced case, statsmodels OLS on the study's
``analysis_long`` (ref1 for ION-301), blinding - for each example study (its arms, centres,
strata, primary visit and alpha)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from study import Study
from trial.models.ancova import fit_ancova
from trial.models.tidy import BLINDED_NOTE

SHIFTS = (0.0, -0.5, -0.2)
"""True effect of the study's arms, in their order (the first is the reference)."""


def balanced_frame(study: Study) -> pl.DataFrame:
    """Every arm has the same (centre, stratum, logbase) cells, so covariates are orthogonal
    to arm and the OLS arm effect is the difference of the arm means."""
    rows = []
    rng = np.random.default_rng(1)
    i = 0
    for arm, shift in zip(study.arm_codes, SHIFTS, strict=False):
        for centre in study.centres:
            for stratum in study.stratum_codes:
                for logbase in (3.5, 4.5):
                    i += 1
                    chg = -1.0 + shift + 0.1 * (logbase - 4) + rng.normal(0, 0.3)
                    rows.append(
                        (f"S{i:03d}", arm, centre, stratum, study.primary_visit, logbase, chg)
                    )
    return pl.DataFrame(
        rows,
        schema=["subject", "arm", "centre", "stratum", "visit", "logbase", "chg"],
        orient="row",
    )


def test_balanced_contrast_is_difference_of_means(study: Study) -> None:
    frame = balanced_frame(study)
    result = fit_ancova(frame, study)
    means = dict(frame.group_by("arm").agg(pl.col("chg").mean()).iter_rows())
    ref = study.reference_arm
    ct = {r["contrast"]: r for r in result.tables["contrasts"].iter_rows(named=True)}
    assert list(ct) == [f"{a}-{ref}" for a in study.treated_arms]
    # residual df = subjects - coefficients (intercept, arms, logbase, centres, strata)
    n_coef = (
        1 + len(study.treated_arms) + 1 + (len(study.centres) - 1) + (len(study.stratum_codes) - 1)
    )
    df = frame.height - n_coef
    t = stats.t.ppf(1 - study.alpha / 2, df)
    for arm in study.treated_arms:
        row = ct[f"{arm}-{ref}"]
        assert row["estimate"] == pytest.approx(means[arm] - means[ref], abs=1e-12)
        assert row["df"] == df
        # t interval of the study's coverage
        assert row["ci_high"] - row["estimate"] == pytest.approx(t * row["std_error"], rel=1e-10)
    ls = {r["arm"]: r for r in result.tables["lsmeans"].iter_rows(named=True)}
    # balanced grid: LS mean = raw arm mean, percent reduction from it
    assert ls[ref]["estimate"] == pytest.approx(means[ref], abs=1e-12)
    arm = study.treated_arms[0]
    assert ls[arm]["percent_reduction"] == pytest.approx(100 * (1 - np.exp(means[arm])))


def test_matches_statsmodels_ols(study: Study, design_long: pl.DataFrame) -> None:
    from statsmodels.regression.linear_model import OLS

    long = design_long
    result = fit_ancova(long, study)
    at_visit = long.filter((pl.col("visit") == study.primary_visit) & pl.col("chg").is_not_null())
    x = np.column_stack(
        [
            np.ones(at_visit.height),
            *[(at_visit["arm"] == a).to_numpy() for a in study.treated_arms],
            at_visit["logbase"].to_numpy(),
            *[(at_visit["centre"] == c).to_numpy() for c in study.centres[1:]],
            *[(at_visit["stratum"] == s).to_numpy() for s in study.stratum_codes[1:]],
        ]
    ).astype(float)
    ref = OLS(at_visit["chg"].to_numpy(), x).fit()
    np.testing.assert_allclose(result.estimates["estimate"], ref.params, atol=1e-10)
    np.testing.assert_allclose(result.estimates["std_error"], ref.bse, rtol=1e-10)
    np.testing.assert_allclose(result.estimates["p_value"], ref.pvalues, rtol=1e-8)
    low, high = ref.conf_int(alpha=study.alpha).T
    np.testing.assert_allclose(result.estimates["ci_low"], low, rtol=1e-8)
    np.testing.assert_allclose(result.estimates["ci_high"], high, rtol=1e-8)
    assert result.fit["n_subjects"] == at_visit.height


def test_subject_without_primary_visit_is_left_out(study: Study) -> None:
    frame = balanced_frame(study)
    other = next(v for v in study.model_visits if v != study.primary_visit)
    dropped = frame.with_columns(
        pl.when(pl.col("subject") == "S001").then(pl.lit(other)).otherwise("visit").alias("visit")
    )
    assert fit_ancova(dropped, study).fit["n_subjects"] == frame.height - 1


def test_blinded_run_is_not_fitted(study: Study) -> None:
    result = fit_ancova(balanced_frame(study).drop("arm"), study)
    assert result.notes[0] == BLINDED_NOTE
    assert result.estimates.height == 0
