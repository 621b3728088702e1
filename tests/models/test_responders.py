"""Responder endpoints: hand-computed 2x2 odds ratios, CMH, Firth fallback, blinding - for
each example study (its arms, centres, primary visit and region, responder thresholds and
alpha)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from study import Study
from trial.models.responders import derive_responders, firth_logit, fit_responders
from trial.models.tidy import BLINDED_NOTE


def hdss_chg(study: Study, responder: bool) -> float:
    """HDSS change exactly at the study's threshold (responder) or one point short of it."""
    points = study.endpoints.responder.hdss_improvement
    return -float(points) if responder else -float(points - 1)


def sweat_pchg(study: Study, responder: bool) -> float:
    """Percent change of the rate exactly at the study's threshold (responder) or one percent
    point short of it."""
    pct = study.endpoints.responder.sweat_reduction_pct
    return -pct if responder else -(pct - 1.0)


def make_tables(
    study: Study, cells: list[tuple[str, str, int, int]]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """ADSL/ADHDSS/ADSWEAT from (arm, centre, n_responders, n_non_responders) cells.

    Responders improve HDSS by exactly the study's points and reduce the primary region's rate
    by exactly its percent at the primary visit; non-responders miss each threshold by one
    (point or percent point). Every subject is in the first stratum and in the FAS.
    """
    adsl, hdss, sweat = [], [], []
    visit, paramcd, stratum = (
        study.primary_visit,
        study.primary_region.paramcd,
        study.stratum_codes[0],
    )
    i = 0
    for arm, centre, n_yes, n_no in cells:
        for responder in [True] * n_yes + [False] * n_no:
            i += 1
            sid = f"{centre}-{i:04d}"
            adsl.append((sid, centre, stratum, "Y", arm))
            hdss.append((sid, visit, hdss_chg(study, responder)))
            pchg = sweat_pchg(study, responder)
            sweat.append((sid, paramcd, visit, float(np.log1p(pchg / 100)), pchg, "Y"))
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


def z_crit(study: Study) -> float:
    """Normal quantile of the study's two-sided alpha (1.959964 at 0.05, 1.644854 at 0.10)."""
    return float(stats.norm.ppf(1.0 - study.alpha / 2.0))


def arms(study: Study) -> tuple[str, str]:
    """(reference arm, first treated arm)."""
    return study.reference_arm, study.treated_arms[0]


def test_thresholds_are_the_studys_and_inclusive(study: Study) -> None:
    ref, arm = arms(study)
    adsl, hdss, sweat = make_tables(
        study, [(ref, study.centres[0], 2, 3), (arm, study.centres[0], 4, 1)]
    )
    resp = derive_responders(adsl, hdss, sweat, study)
    assert resp["hdss_responder"].sum() == resp["sweat_responder"].sum() == 6
    # a value exactly at the threshold is a response, one short of it is not
    assert set(resp.filter(pl.col("hdss_responder"))["hdss_chg"]) == {hdss_chg(study, True)}
    assert set(resp.filter(~pl.col("hdss_responder"))["hdss_chg"]) == {hdss_chg(study, False)}
    # rows at another visit or of another region do not count
    other_visit = next(v for v in study.model_visits if v != study.primary_visit)
    moved = derive_responders(
        adsl,
        hdss.with_columns(AVISIT=pl.lit(other_visit)),
        sweat.with_columns(PARAMCD=pl.lit("X")),
        study,
    )
    assert not moved["hdss_responder"].any() and not moved["sweat_responder"].any()


def test_single_stratum_logistic_is_the_2x2_odds_ratio(study: Study) -> None:
    ref, arm = arms(study)
    centre = study.centres[0]
    adsl, hdss, sweat = make_tables(study, [(ref, centre, 6, 14), (arm, centre, 15, 5)])
    result = fit_responders(adsl, hdss, sweat, study)
    row = (
        result.tables["odds_ratios"]
        .filter((pl.col("endpoint") == "hdss_responder") & (pl.col("contrast") == f"{arm}-{ref}"))
        .row(0, named=True)
    )
    a, b, c, d = 15, 5, 6, 14
    log_or = np.log(a * d / (b * c))
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert row["odds_ratio"] == pytest.approx(a * d / (b * c), rel=1e-8)
    # Wald interval of coverage 1 - alpha of the study
    assert row["ci_low"] == pytest.approx(np.exp(log_or - z_crit(study) * se), rel=1e-6)
    assert row["ci_high"] == pytest.approx(np.exp(log_or + z_crit(study) * se), rel=1e-6)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(log_or / se), rel=1e-6)
    assert row["method"] == "logistic (ML)"
    # one centre: MH odds ratio is the crude odds ratio
    cmh = result.tables["cmh"].filter(pl.col("endpoint") == "hdss_responder").row(0, named=True)
    assert cmh["mh_odds_ratio"] == pytest.approx(a * d / (b * c), rel=1e-12)


def test_one_contrast_per_treated_arm(study: Study) -> None:
    cells = [(a, study.centres[0], 3 + k, 4) for k, a in enumerate(study.arm_codes)]
    result = fit_responders(*make_tables(study, cells), study)
    ref = study.reference_arm
    expected = [f"{a}-{ref}" for a in study.treated_arms]
    for endpoint in ("hdss_responder", "sweat_responder"):
        rows = result.tables["odds_ratios"].filter(pl.col("endpoint") == endpoint)
        assert rows["contrast"].to_list() == expected
    assert result.tables["cmh"].height == 2 * len(expected)
    assert result.estimates["term"].to_list() == [
        f"{e}:{c}" for e in ("hdss_responder", "sweat_responder") for c in expected
    ]


def test_cmh_by_centre_hand_computed(study: Study) -> None:
    ref, arm = arms(study)
    c1, c2 = study.centres[:2]
    cells = [(ref, c1, 4, 6), (arm, c1, 7, 3), (ref, c2, 2, 8), (arm, c2, 5, 5)]
    adsl, hdss, sweat = make_tables(study, cells)
    result = fit_responders(adsl, hdss, sweat, study)
    cmh = (
        result.tables["cmh"]
        .filter((pl.col("endpoint") == "sweat_responder") & (pl.col("contrast") == f"{arm}-{ref}"))
        .row(0, named=True)
    )
    # stratum k: a = arm responders, b = arm non, c = reference responders, d = reference non
    strata = [(7, 3, 4, 6), (5, 5, 2, 8)]
    n = 20
    r = [a * d / n for a, b, c, d in strata]
    s_ = [b * c / n for a, b, c, d in strata]
    p = [(a + d) / n for a, b, c, d in strata]
    q = [(b + c) / n for a, b, c, d in strata]
    mh = sum(r) / sum(s_)
    assert cmh["mh_odds_ratio"] == pytest.approx(mh, rel=1e-12)
    # Robins-Breslow-Greenland variance of log MH OR; interval of coverage 1 - alpha
    var = (
        sum(pk * rk for pk, rk in zip(p, r, strict=True)) / (2 * sum(r) ** 2)
        + sum(pk * sk + qk * rk for pk, qk, rk, sk in zip(p, q, r, s_, strict=True))
        / (2 * sum(r) * sum(s_))
        + sum(qk * sk for qk, sk in zip(q, s_, strict=True)) / (2 * sum(s_) ** 2)
    )
    half = z_crit(study) * np.sqrt(var)
    assert cmh["ci_low"] == pytest.approx(mh * np.exp(-half), rel=1e-10)
    assert cmh["ci_high"] == pytest.approx(mh * np.exp(half), rel=1e-10)
    # CMH chi-square: (sum(a - E a))^2 / sum(Var a), hypergeometric variance
    expect = sum((a + b) * (a + c) / n for a, b, c, d in strata)
    var_a = sum((a + b) * (c + d) * (a + c) * (b + d) / (n**2 * (n - 1)) for a, b, c, d in strata)
    chi2 = (sum(a for a, *_ in strata) - expect) ** 2 / var_a
    assert cmh["cmh_statistic"] == pytest.approx(chi2, rel=1e-10)
    assert cmh["p_value"] == pytest.approx(stats.chi2.sf(chi2, 1), rel=1e-10)
    assert cmh["n_strata"] == 2


def test_separation_falls_back_to_firth(study: Study) -> None:
    ref, arm = arms(study)
    centre = study.centres[0]
    adsl, hdss, sweat = make_tables(study, [(ref, centre, 5, 10), (arm, centre, 15, 0)])
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
    ref, arm = arms(study)
    centre = study.centres[0]
    adsl, hdss, sweat = make_tables(study, [(ref, centre, 3, 2), (arm, centre, 4, 1)])
    first = adsl.get_column("subject_id")[0]
    hdss = hdss.filter(pl.col("subject_id") != first)
    resp = derive_responders(adsl, hdss, sweat, study)
    assert resp.filter(pl.col("subject") == first).get_column("hdss_responder").item() is False
    result = fit_responders(adsl, hdss, sweat, study)
    shares = result.tables["shares"].filter(
        (pl.col("endpoint") == "hdss_responder") & (pl.col("arm") == ref)
    )
    assert shares.get_column("n_responders").item() == 2
    assert shares.get_column("n_missing").item() == 1
    assert shares.get_column("responder_pct").item() == pytest.approx(40.0)
    sweat_ref = result.tables["shares"].filter(
        (pl.col("endpoint") == "sweat_responder") & (pl.col("arm") == ref)
    )
    mean_chg = (
        3 * np.log1p(sweat_pchg(study, True) / 100) + 2 * np.log1p(sweat_pchg(study, False) / 100)
    ) / 5
    assert sweat_ref.get_column("mean_percent_reduction").item() == pytest.approx(
        100 * (1 - np.exp(mean_chg))
    )
    assert any(f"missing {study.primary_visit} value = non-responder" in n for n in result.notes)


def test_blinded_run_pools_shares(study: Study) -> None:
    ref, arm = arms(study)
    centre = study.centres[0]
    adsl, hdss, sweat = make_tables(study, [(ref, centre, 3, 2), (arm, centre, 4, 1)])
    result = fit_responders(adsl.drop("arm"), hdss, sweat, study)
    assert BLINDED_NOTE in result.notes
    shares = result.tables["shares"]
    assert shares.get_column("arm").unique().to_list() == ["pooled"]
    assert shares.filter(pl.col("endpoint") == "hdss_responder")["n_responders"].item() == 7


R_RESPONDERS = """
options(digits = 15)
args <- commandArgs(TRUE)
d <- read.csv(args[1])
ref_arm <- args[2]
trt_arm <- args[3]
d$arm <- factor(d$arm, c(ref_arm, trt_arm))
d$centre <- factor(d$centre)
fit <- glm(resp ~ arm + centre, family = binomial, data = d)
s <- summary(fit)$coefficients[paste0("arm", trt_arm), ]
cat(exp(s[["Estimate"]]), s[["Pr(>|z|)"]], "\\n")
tab <- xtabs(~ factor(arm, c(trt_arm, ref_arm)) + factor(resp, c(1, 0)) + centre, d)
mh <- mantelhaen.test(tab, correct = FALSE, conf.level = as.numeric(args[4]))
cat(mh$estimate, mh$conf.int, mh$statistic, mh$p.value, "\\n")
"""


@pytest.mark.r
def test_logistic_and_cmh_match_r(study: Study, tmp_path: Path) -> None:
    import shutil
    import subprocess

    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("Rscript is not on the PATH")
    ref, arm = arms(study)
    c1, c2, c3 = study.centres[:3]
    cells = [
        (ref, c1, 4, 6),
        (arm, c1, 7, 3),
        (ref, c2, 2, 8),
        (arm, c2, 5, 5),
        (ref, c3, 3, 9),
        (arm, c3, 8, 2),
    ]
    adsl, hdss, sweat = make_tables(study, cells)
    result = fit_responders(adsl, hdss, sweat, study)
    resp = derive_responders(adsl, hdss, sweat, study)
    resp.select("arm", "centre", pl.col("hdss_responder").cast(pl.Int64).alias("resp")).write_csv(
        tmp_path / "d.csv"
    )
    (tmp_path / "fit.R").write_text(R_RESPONDERS)
    out = subprocess.run(
        [
            rscript,
            str(tmp_path / "fit.R"),
            str(tmp_path / "d.csv"),
            ref,
            arm,
            str(study.confidence_level),
        ],
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
