"""Responder endpoints: hand-computed 2x2 odds ratios, CMH, Firth fallback, blinding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from study import Study, load_study
from trial.models.responders import derive_responders, firth_logit, fit_responders
from trial.models.tidy import BLINDED_NOTE

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


def make_tables(
    cells: list[tuple[str, str, int, int]], centre_of: str = "C01"
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """ADSL/ADHDSS/ADSWEAT from (arm, centre, n_responders, n_non_responders) cells.

    Responders improve HDSS by 2 and halve-and-more their rate (PCHG -60); non-responders
    improve by 1 and PCHG -20. Every subject is stratum HDSS3 and in the FAS.
    """
    adsl, hdss, sweat = [], [], []
    i = 0
    for arm, centre, n_yes, n_no in cells:
        for responder in [True] * n_yes + [False] * n_no:
            i += 1
            sid = f"{centre}-{i:04d}"
            adsl.append((sid, centre, "HDSS3", "Y", arm))
            hdss.append((sid, "W4", -2.0 if responder else -1.0))
            pchg = -60.0 if responder else -20.0
            sweat.append((sid, "LPALMSR", "W4", float(np.log1p(pchg / 100)), pchg, "Y"))
    return (
        pl.DataFrame(
            adsl, schema=["subject_id", "centre_id", "stratum", "FASFL", "arm"], orient="row"
        ),
        pl.DataFrame(hdss, schema=["subject_id", "AVISIT", "CHG"], orient="row"),
        pl.DataFrame(
            sweat,
            schema=["subject_id", "PARAMCD", "AVISIT", "CHG", "PCHG", "ANL01FL"],
            orient="row",
        ),
    )


def test_single_stratum_logistic_is_the_2x2_odds_ratio(study: Study) -> None:
    adsl, hdss, sweat = make_tables([("TAP", "C01", 6, 14), ("GLY", "C01", 15, 5)])
    result = fit_responders(adsl, hdss, sweat, study)
    row = (
        result.tables["odds_ratios"]
        .filter((pl.col("endpoint") == "hdss_responder") & (pl.col("contrast") == "GLY-TAP"))
        .row(0, named=True)
    )
    a, b, c, d = 15, 5, 6, 14
    log_or = np.log(a * d / (b * c))
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert row["odds_ratio"] == pytest.approx(a * d / (b * c), rel=1e-8)
    assert row["ci_low"] == pytest.approx(np.exp(log_or - 1.959963985 * se), rel=1e-6)
    assert row["method"] == "logistic (ML)"
    # one centre: MH odds ratio is the crude odds ratio
    cmh = result.tables["cmh"].filter(pl.col("endpoint") == "hdss_responder").row(0, named=True)
    assert cmh["mh_odds_ratio"] == pytest.approx(a * d / (b * c), rel=1e-12)


def test_cmh_by_centre_hand_computed(study: Study) -> None:
    cells = [
        ("TAP", "C01", 4, 6),
        ("GLY", "C01", 7, 3),
        ("TAP", "C02", 2, 8),
        ("GLY", "C02", 5, 5),
    ]
    adsl, hdss, sweat = make_tables(cells)
    result = fit_responders(adsl, hdss, sweat, study)
    cmh = result.tables["cmh"].filter(pl.col("endpoint") == "sweat_responder").row(0, named=True)
    # stratum k: a = GLY responders, b = GLY non, c = TAP responders, d = TAP non; n = 20
    strata = [(7, 3, 4, 6), (5, 5, 2, 8)]
    mh = sum(a * d / 20 for a, b, c, d in strata) / sum(b * c / 20 for a, b, c, d in strata)
    assert cmh["mh_odds_ratio"] == pytest.approx(mh, rel=1e-12)
    # CMH chi-square: (sum(a - E a))^2 / sum(Var a), hypergeometric variance
    expect = sum((a + b) * (a + c) / 20 for a, b, c, d in strata)
    var = sum((a + b) * (c + d) * (a + c) * (b + d) / (20**2 * 19) for a, b, c, d in strata)
    chi2 = (sum(a for a, *_ in strata) - expect) ** 2 / var
    assert cmh["cmh_statistic"] == pytest.approx(chi2, rel=1e-10)
    assert cmh["n_strata"] == 2


def test_separation_falls_back_to_firth(study: Study) -> None:
    adsl, hdss, sweat = make_tables([("TAP", "C01", 5, 10), ("GLY", "C01", 15, 0)])
    result = fit_responders(adsl, hdss, sweat, study)
    row = (
        result.tables["odds_ratios"]
        .filter(pl.col("endpoint") == "hdss_responder")
        .row(0, named=True)
    )
    assert row["method"] == "logistic (Firth)"
    assert any("separation" in n and "Firth" in n for n in result.notes)
    # Firth with one binary covariate = odds ratio of the table with 1/2 added to each cell
    assert row["odds_ratio"] == pytest.approx((15.5 * 10.5) / (0.5 * 5.5), rel=1e-6)
    assert np.isfinite(row["ci_high"])


def test_firth_matches_haldane_on_a_regular_table() -> None:
    x = np.column_stack([np.ones(30), np.r_[np.zeros(12), np.ones(18)]])
    y = np.r_[np.ones(4), np.zeros(8), np.ones(11), np.zeros(7)]
    beta, _, ok = firth_logit(x, y)
    assert ok
    assert beta[1] == pytest.approx(np.log((11.5 * 8.5) / (7.5 * 4.5)), abs=1e-8)


def test_missing_value_is_non_responder_and_shares(study: Study) -> None:
    adsl, hdss, sweat = make_tables([("TAP", "C01", 3, 2), ("GLY", "C01", 4, 1)])
    first = adsl.get_column("subject_id")[0]
    hdss = hdss.filter(pl.col("subject_id") != first)
    resp = derive_responders(adsl, hdss, sweat, study)
    assert resp.filter(pl.col("subject") == first).get_column("hdss_responder").item() is False
    result = fit_responders(adsl, hdss, sweat, study)
    shares = result.tables["shares"].filter(
        (pl.col("endpoint") == "hdss_responder") & (pl.col("arm") == "TAP")
    )
    assert shares.get_column("n_responders").item() == 2
    assert shares.get_column("n_missing").item() == 1
    assert shares.get_column("responder_pct").item() == pytest.approx(40.0)
    sweat_tap = result.tables["shares"].filter(
        (pl.col("endpoint") == "sweat_responder") & (pl.col("arm") == "TAP")
    )
    mean_chg = (3 * np.log(0.4) + 2 * np.log(0.8)) / 5
    assert sweat_tap.get_column("mean_percent_reduction").item() == pytest.approx(
        100 * (1 - np.exp(mean_chg))
    )


def test_blinded_run_pools_shares(study: Study) -> None:
    adsl, hdss, sweat = make_tables([("TAP", "C01", 3, 2), ("GLY", "C01", 4, 1)])
    result = fit_responders(adsl.drop("arm"), hdss, sweat, study)
    assert BLINDED_NOTE in result.notes
    shares = result.tables["shares"]
    assert shares.get_column("arm").unique().to_list() == ["pooled"]
    assert shares.filter(pl.col("endpoint") == "hdss_responder")["n_responders"].item() == 7


R_RESPONDERS = """
options(digits = 15)
d <- read.csv(commandArgs(TRUE)[1])
d$arm <- factor(d$arm, c("TAP", "GLY"))
d$centre <- factor(d$centre)
fit <- glm(resp ~ arm + centre, family = binomial, data = d)
s <- summary(fit)$coefficients["armGLY", ]
cat(exp(s[["Estimate"]]), s[["Pr(>|z|)"]], "\\n")
tab <- xtabs(~ factor(arm, c("GLY", "TAP")) + factor(resp, c(1, 0)) + centre, d)
mh <- mantelhaen.test(tab, correct = FALSE)
cat(mh$estimate, mh$conf.int, mh$statistic, mh$p.value, "\\n")
"""


@pytest.mark.r
def test_logistic_and_cmh_match_r(study: Study, tmp_path: Path) -> None:
    import shutil
    import subprocess

    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("Rscript is not on the PATH")
    cells = [
        ("TAP", "C01", 4, 6),
        ("GLY", "C01", 7, 3),
        ("TAP", "C02", 2, 8),
        ("GLY", "C02", 5, 5),
        ("TAP", "C03", 3, 9),
        ("GLY", "C03", 8, 2),
    ]
    adsl, hdss, sweat = make_tables(cells)
    result = fit_responders(adsl, hdss, sweat, study)
    resp = derive_responders(adsl, hdss, sweat, study)
    resp.select("arm", "centre", pl.col("hdss_responder").cast(pl.Int64).alias("resp")).write_csv(
        tmp_path / "d.csv"
    )
    (tmp_path / "fit.R").write_text(R_RESPONDERS)
    out = subprocess.run(
        [rscript, str(tmp_path / "fit.R"), str(tmp_path / "d.csv")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    odds, p = (float(v) for v in out[0].split())
    mh, low, high, chi2, p_mh = (float(v) for v in out[1].split())
    row = (
        result.tables["odds_ratios"]
        .filter(pl.col("endpoint") == "hdss_responder")
        .row(0, named=True)
    )
    assert row["odds_ratio"] == pytest.approx(odds, rel=1e-6)
    assert row["p_value"] == pytest.approx(p, rel=1e-5)
    cmh = result.tables["cmh"].filter(pl.col("endpoint") == "hdss_responder").row(0, named=True)
    assert cmh["mh_odds_ratio"] == pytest.approx(mh, rel=1e-10)
    assert (cmh["ci_low"], cmh["ci_high"]) == pytest.approx((low, high), rel=1e-8)
    assert cmh["cmh_statistic"] == pytest.approx(chi2, rel=1e-10)
    assert cmh["p_value"] == pytest.approx(p_mh, rel=1e-8)
