"""How the engine reads a long table, an ICE table and a delta table; and its imputations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from trial.rbi import RbiInputError, fit_rbi, run_rbi, run_rbi_deltas
from trial.rbi.simulate import TrialDesign, simulate_trial, simulated_trial_spec

SPEC = simulated_trial_spec()


@pytest.fixture(scope="module")
def trial() -> tuple[pl.DataFrame, pl.DataFrame]:
    return simulate_trial(TrialDesign(n_subjects=40, n_visits=3, p_discontinue=0.4), seed=8)


def _grid(data: pl.DataFrame) -> pl.DataFrame:
    """Every subject at every visit: missed visits as rows with an empty outcome and base."""
    keys = data.select("subject", "arm").unique(maintain_order=True)
    visits = data.select("visit").unique(maintain_order=True)
    full = keys.join(visits, how="cross").join(
        data.drop("arm"), on=["subject", "visit"], how="left"
    )
    return full.sort("subject", "visit")


def test_absent_rows_and_empty_outcomes_are_the_same(
    trial: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    data, ice = trial
    grid = _grid(data)
    assert grid.height > data.height and grid.get_column("base").null_count() > 0
    a = run_rbi(data, ice, SPEC).pooled
    b = run_rbi(grid, ice, SPEC).pooled
    assert a.equals(b)


def test_a_covariate_that_varies_within_subject_must_be_given(
    trial: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    data, ice = trial
    varying = data.with_columns((pl.col("base") + pl.int_range(pl.len())).alias("base"))
    with pytest.raises(RbiInputError, match=r"varies within subject .* no value at visit"):
        run_rbi(varying, ice, SPEC)


def test_visit_order_follows_the_data_unless_given(
    trial: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    data, ice = trial
    reordered = data.sort(pl.col("visit") != "W2")  # W2 rows first
    got = run_rbi(reordered, ice, SPEC).pooled.get_column("visit").unique(maintain_order=True)
    assert got.to_list() == ["W2", "W1", "W3"]
    given = run_rbi(reordered, ice, simulated_trial_spec(visits=["W1", "W2", "W3"]))
    assert given.pooled.get_column("visit").unique(maintain_order=True).to_list() == [
        "W1",
        "W2",
        "W3",
    ]
    base = run_rbi(data, ice, SPEC).pooled
    np.testing.assert_allclose(given.pooled["estimate"], base["estimate"], atol=1e-10)


def test_reference_level_comes_first(trial: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    data, _ = trial
    pbo = run_rbi(data, None, SPEC).pooled
    drug = run_rbi(data, None, simulated_trial_spec(reference="DRUG")).pooled
    assert drug.get_column("parameter").unique(maintain_order=True).to_list() == [
        "trt_PBO",
        "lsm_DRUG",
        "lsm_PBO",
    ]
    a = pbo.filter(pl.col("parameter") == "trt_DRUG").get_column("estimate").to_numpy()
    b = drug.filter(pl.col("parameter") == "trt_PBO").get_column("estimate").to_numpy()
    np.testing.assert_allclose(a, -b, atol=1e-8)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcome": "chg"}, "the data has no column 'chg'"),
        ({"reference": "TAP"}, "reference level 'TAP' is not a level"),
        ({"covariates": ["age*visit"]}, "no column 'age'"),
        ({"analysis_covariates": ["base:visit"]}, "may not involve the visit or group"),
    ],
)
def test_bad_spec_names_the_problem(
    trial: tuple[pl.DataFrame, pl.DataFrame], change: dict[str, object], message: str
) -> None:
    data, ice = trial
    with pytest.raises(RbiInputError, match=message):
        run_rbi(data, ice, simulated_trial_spec(**change))


@pytest.mark.parametrize(
    ("ice_change", "message"),
    [
        (pl.lit("W7").alias("visit"), "visit 'W7' .* not a visit of the data"),
        (pl.lit("J2R").alias("strategy"), "strategy 'J2R'"),
        (pl.lit("S99999").alias("subject"), "twice|no row in the data"),
    ],
)
def test_bad_ice_table_names_the_problem(
    trial: tuple[pl.DataFrame, pl.DataFrame], ice_change: pl.Expr, message: str
) -> None:
    data, ice = trial
    with pytest.raises(RbiInputError, match=message):
        run_rbi(data, ice.with_columns(ice_change), SPEC)


def test_duplicate_rows_are_refused(trial: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    data, ice = trial
    with pytest.raises(RbiInputError, match="two rows at visit"):
        run_rbi(pl.concat([data, data.head(1)]), ice, SPEC)


def test_spec_strategy_replaces_non_mar_strategies(
    trial: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    data, ice = trial
    mixed = ice.with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0)
        .then(pl.lit("MAR"))
        .otherwise(pl.lit("JR"))
        .alias("strategy")
    )
    as_cr = mixed.with_columns(
        pl.when(pl.col("strategy") == "MAR")
        .then(pl.lit("MAR"))
        .otherwise(pl.lit("CR"))
        .alias("strategy")
    )
    a = run_rbi(data, mixed, simulated_trial_spec(strategy="CR")).pooled
    b = run_rbi(data, as_cr, SPEC).pooled
    assert a.equals(b)
    c = run_rbi(data, mixed, SPEC).pooled
    assert not a.equals(c)


def test_delta_shifts_imputed_values_of_one_group(
    trial: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """No covariates: the mean of the drug arm moves by delta x its share of imputed values."""
    data, ice = trial
    spec = simulated_trial_spec(covariates=[], analysis_covariates=[])
    delta = pl.DataFrame({"arm": ["DRUG"], "visit": ["W3"], "delta": [0.7]})
    plain, shifted = run_rbi_deltas(data, ice, spec, [None, delta])
    alone = run_rbi(data, ice, spec, delta).pooled
    assert shifted.pooled.equals(alone)
    drug = data.filter(pl.col("arm") == "DRUG")
    n_drug = drug.get_column("subject").n_unique()
    n_seen = drug.filter(pl.col("visit") == "W3").height
    share = (n_drug - n_seen) / n_drug
    diff = shifted.pooled["estimate"].to_numpy() - plain.pooled["estimate"].to_numpy()
    names = plain.pooled.select(pl.format("{}/{}", "visit", "parameter")).to_series().to_list()
    moved = dict(zip(names, diff, strict=True))
    assert moved["W3/trt_DRUG"] == pytest.approx(0.7 * share, abs=1e-12)
    assert moved["W3/lsm_DRUG"] == pytest.approx(0.7 * share, abs=1e-12)
    assert all(abs(v) < 1e-12 for k, v in moved.items() if not k.startswith("W3/") or "PBO" in k)


@pytest.mark.parametrize("method", ["condmean-jackknife", "condmean-bootstrap"])
def test_scaled_delta_curve_is_the_analysis_of_each_delta(
    trial: tuple[pl.DataFrame, pl.DataFrame], method: str
) -> None:
    """The tipping point's route: a grid of deltas from two analyses (linear in delta) gives
    each delta's own analysis, pooling included, to rounding."""
    data, ice = trial
    fits = fit_rbi(data, ice, simulated_trial_spec(method=method, n_samples=30))
    scales = [0.0, 0.35, 1.0, 2.5]
    unit = pl.DataFrame({"arm": ["DRUG"], "delta": [1.0]})
    curve = fits.scaled_delta_curve(unit, scales)
    assert curve["scale"].unique(maintain_order=True).to_list() == scales
    for c in scales:
        alone = fits.analyse(unit.with_columns(delta=pl.lit(c))).pooled
        got = curve.filter(pl.col("scale") == c).drop("scale")
        assert got.select("visit", "parameter").equals(alone.select("visit", "parameter"))
        for column in ("estimate", "se", "lci", "uci", "pvalue"):
            np.testing.assert_allclose(got[column], alone[column], rtol=1e-11, atol=1e-13)
        assert got["df"].null_count() == got.height
    bayes = fit_rbi(data, ice, simulated_trial_spec(method="bayes-approx", n_samples=5))
    with pytest.raises(RbiInputError, match="conditional mean"):
        bayes.scaled_delta_curve(unit, scales)


def test_draws_are_reused_only_for_the_same_fit_rows(
    trial: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """ICEs from the first visit (observed values after them): under MAR those values are
    fitted, under JR only when post-ICE values are fitted (``fit_post_ice``). Same fit rows:
    the draws are taken over and the result is that of fitting again; other fit rows: drawn
    anew."""
    data, ice = trial
    jr = ice.with_columns(visit=pl.lit("W1"))
    mar = jr.with_columns(strategy=pl.lit("MAR"))
    for fit_post_ice, shared in ((True, True), (False, False)):
        spec = simulated_trial_spec(fit_post_ice=fit_post_ice)
        under_mar = fit_rbi(data, mar, spec)
        under_jr = fit_rbi(data, jr, spec, reuse=[under_mar])
        assert (under_jr.draws is under_mar.draws) is shared
        assert under_jr.analyse().pooled.equals(run_rbi(data, jr, spec).pooled)
        assert not under_jr.analyse().pooled.equals(under_mar.analyse().pooled)


def test_a_check_on_the_same_fit_rows_takes_over_the_full_fit(
    trial: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """Another method on the same fit rows (an estimand's check) takes over the full-data fit
    and draws its own samples: the result is that of fitting from scratch, to the last bit."""
    data, ice = trial
    spec = simulated_trial_spec(fit_post_ice=True)
    check_spec = simulated_trial_spec(fit_post_ice=True, method="bayes-approx", n_samples=20)
    primary = fit_rbi(data, ice, spec)
    check = fit_rbi(data, ice, check_spec, reuse=[primary])
    assert check.draws.full is primary.draws.full
    assert check.draws is not primary.draws
    assert check.analyse().pooled.equals(run_rbi(data, ice, check_spec).pooled)


def test_bad_delta_table_is_refused(trial: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    data, ice = trial
    with pytest.raises(RbiInputError, match="delta table names arm value"):
        run_rbi(data, ice, SPEC, pl.DataFrame({"arm": ["GLY"], "delta": [0.1]}))


def test_conditional_means_follow_each_strategy(trial: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    """Imputed values recomputed by hand from the fitted beta and Sigma (module doc of
    trial.rbi.impute): mean by strategy, then mu_M + S_MO S_OO^-1 (y_O - mu_O)."""
    data, ice = trial
    strategies = ["JR", "CR", "CIR", "MAR"]
    ice = ice.with_columns(pl.Series("strategy", [strategies[k % 4] for k in range(ice.height)]))
    result = run_rbi(data, ice, SPEC)
    b = dict(zip(result.coefficients["term"], result.coefficients["estimate"], strict=True))
    sigma = result.covariance["covariance"].to_numpy().reshape(3, 3)
    visits = ["W1", "W2", "W3"]

    def mean(arm: str, base: float) -> np.ndarray:
        drug = float(arm == "DRUG")
        return np.array(
            [
                b["(Intercept)"]
                + drug * b["armDRUG"]
                + b.get(f"visit{v}", 0.0)
                + drug * b.get(f"armDRUG:visit{v}", 0.0)
                + base * (b["base"] + b.get(f"base:visit{v}", 0.0))
                for v in visits
            ]
        )

    imputed = result.imputed
    checked = set()
    for row in ice.iter_rows(named=True):
        subj = imputed.filter(pl.col("subject") == row["subject"])
        y = subj.get_column("y").to_numpy()
        miss = subj.get_column("imputed").to_numpy()
        if not miss.any():
            continue
        base = data.filter(pl.col("subject") == row["subject"]).get_column("base")[0]
        arm = subj.get_column("arm")[0]
        own, ref = mean(arm, base), mean("PBO", base)
        k = visits.index(row["visit"])
        mu = {
            "MAR": own,
            "JR": np.r_[own[:k], ref[k:]],
            "CR": ref,
            "CIR": np.r_[own[:k], own[k - 1] + ref[k:] - ref[k - 1]] if k else ref,
        }[row["strategy"]]
        o, m = ~miss, miss
        expected = mu[m] + sigma[np.ix_(m, o)] @ np.linalg.solve(sigma[np.ix_(o, o)], y[o] - mu[o])
        np.testing.assert_allclose(y[m], expected, atol=1e-10)
        checked.add((row["strategy"], arm))
    assert {("JR", "DRUG"), ("CR", "DRUG"), ("CIR", "DRUG"), ("MAR", "DRUG")} <= checked


def test_fit_post_ice_fits_the_model_on_every_observed_value(
    trial: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """With post-ICE observed values in the data, ``fit_post_ice`` fits the imputation model on
    the rows MAR would use; by default those rows are left out of the fit."""
    data, _ = trial
    # ICEs at W2 for subjects observed at W2 and W3: their post-ICE values are observed
    seen = data.filter(pl.col("visit") == "W3").get_column("subject").head(8)
    ice = pl.DataFrame({"subject": seen, "visit": "W2", "strategy": "JR"})
    default = run_rbi(data, ice, SPEC)
    included = run_rbi(data, ice, simulated_trial_spec(fit_post_ice=True))
    mar = run_rbi(data, ice, simulated_trial_spec(strategy="MAR"))
    assert included.fit["n_fit_observations"] == mar.fit["n_fit_observations"]
    assert default.fit["n_fit_observations"] == mar.fit["n_fit_observations"] - 16
    np.testing.assert_allclose(
        included.coefficients["estimate"], mar.coefficients["estimate"], atol=1e-10
    )
    assert not np.allclose(default.coefficients["estimate"], mar.coefficients["estimate"])


def _with_centre(data: pl.DataFrame, rare: int) -> pl.DataFrame:
    """A centre covariate whose level C9 holds the first ``rare`` subjects."""
    subjects = data.get_column("subject").unique(maintain_order=True).to_list()
    centre = {
        s: "C9" if k < rare else ("C1" if k % 4 < 2 else "C2") for k, s in enumerate(subjects)
    }
    return data.with_columns(pl.col("subject").replace_strict(centre).alias("centre"))


def test_bootstrap_redraws_a_sample_without_a_rare_level() -> None:
    """rbmi's behaviour: a resample on which the model is not estimable is drawn again."""
    data, ice = simulate_trial(TrialDesign(n_subjects=60, n_visits=3), seed=8)
    spec = simulated_trial_spec(
        covariates=["base*visit", "centre"],
        analysis_covariates=["base", "centre"],
        method="condmean-bootstrap",
        n_samples=30,
        seed=1,
    )
    result = run_rbi(_with_centre(data, 4), ice, spec)
    assert result.fit["redrawn_samples"] == 1
    assert result.fit["n_samples"] == 30
    assert result.pooled.get_column("se").is_finite().all()


def test_jackknife_refuses_a_level_of_one_subject() -> None:
    data, ice = simulate_trial(TrialDesign(n_subjects=30, n_visits=3), seed=8)
    spec = simulated_trial_spec(covariates=["base*visit", "centre"])
    with pytest.raises(RbiInputError, match="'centreC9' is informed by one subject only"):
        run_rbi(_with_centre(data, 1), ice, spec)
