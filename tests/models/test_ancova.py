"""Sensitivity 4 ANCOVA: hand-computed balanced case, statsmodels OLS on ref1, blinding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from study import Study, load_study
from trial.models.ancova import fit_ancova
from trial.models.tidy import BLINDED_NOTE

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


def balanced_frame() -> pl.DataFrame:
    """Every arm has the same (centre, stratum, logbase) cells, so covariates are orthogonal
    to arm and the OLS arm effect is the difference of the arm means."""
    rows = []
    rng = np.random.default_rng(1)
    i = 0
    for arm, shift in (("TAP", 0.0), ("GLY", -0.5), ("OXY", -0.2)):
        for centre in ("C01", "C02", "C03", "C04"):
            for stratum in ("HDSS3", "HDSS4"):
                for logbase in (3.5, 4.5):
                    i += 1
                    chg = -1.0 + shift + 0.1 * (logbase - 4) + rng.normal(0, 0.3)
                    rows.append((f"S{i:03d}", arm, centre, stratum, "W4", logbase, chg))
    return pl.DataFrame(
        rows,
        schema=["subject", "arm", "centre", "stratum", "visit", "logbase", "chg"],
        orient="row",
    )


def test_balanced_contrast_is_difference_of_means(study: Study) -> None:
    frame = balanced_frame()
    result = fit_ancova(frame, study)
    means = dict(frame.group_by("arm").agg(pl.col("chg").mean()).iter_rows())
    ct = {r["contrast"]: r for r in result.tables["contrasts"].iter_rows(named=True)}
    assert ct["GLY-TAP"]["estimate"] == pytest.approx(means["GLY"] - means["TAP"], abs=1e-12)
    assert ct["OXY-TAP"]["estimate"] == pytest.approx(means["OXY"] - means["TAP"], abs=1e-12)
    # residual df = 48 subjects - 8 coefficients
    assert ct["GLY-TAP"]["df"] == 40
    ls = {r["arm"]: r for r in result.tables["lsmeans"].iter_rows(named=True)}
    # balanced grid: LS mean = raw arm mean, percent reduction from it
    assert ls["TAP"]["estimate"] == pytest.approx(means["TAP"], abs=1e-12)
    assert ls["GLY"]["percent_reduction"] == pytest.approx(100 * (1 - np.exp(means["GLY"])))


def test_matches_statsmodels_ols_on_ref1(study: Study, ref1_dir: Path) -> None:
    from statsmodels.regression.linear_model import OLS

    long = pl.read_csv(ref1_dir / "expected" / "analysis_long.csv")
    result = fit_ancova(long, study)
    w4 = long.filter(pl.col("visit") == "W4")
    x = np.column_stack(
        [
            np.ones(w4.height),
            (w4["arm"] == "GLY").to_numpy(),
            (w4["arm"] == "OXY").to_numpy(),
            w4["logbase"].to_numpy(),
            *[(w4["centre"] == c).to_numpy() for c in ("C02", "C03", "C04")],
            (w4["stratum"] == "HDSS4").to_numpy(),
        ]
    ).astype(float)
    ref = OLS(w4["chg"].to_numpy(), x).fit()
    np.testing.assert_allclose(result.estimates["estimate"], ref.params, atol=1e-10)
    np.testing.assert_allclose(result.estimates["std_error"], ref.bse, rtol=1e-10)
    np.testing.assert_allclose(result.estimates["p_value"], ref.pvalues, rtol=1e-8)
    assert result.fit["n_subjects"] == w4.height


def test_subject_without_primary_visit_is_left_out(study: Study) -> None:
    frame = balanced_frame()
    dropped = frame.with_columns(
        pl.when(pl.col("subject") == "S001").then(pl.lit("W2")).otherwise("visit").alias("visit")
    )
    assert fit_ancova(dropped, study).fit["n_subjects"] == frame.height - 1


def test_blinded_run_is_not_fitted(study: Study) -> None:
    result = fit_ancova(balanced_frame().drop("arm"), study)
    assert result.notes[0] == BLINDED_NOTE
    assert result.estimates.height == 0
