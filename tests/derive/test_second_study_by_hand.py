"""The second example study (ION-302) through the real derivation and model functions, on
frames small enough to check by hand: where its design differs from ION-301 (reference arm
SHAM, primary visit WK6, primary region SOLE, induction phase ``loading``, responder
thresholds 1 HDSS point and 40 %, alpha 0.10), the results follow the study file."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from study import Study, load_study
from trial.derive.analysis_long import build_analysis_long
from trial.derive.hdss import derive_adhdss
from trial.derive.subjects import min_adequate_induction_sessions
from trial.models.ancova import ancova_result
from trial.models.multiplicity import fixed_sequence
from trial.models.responders import derive_responders


@pytest.fixture(scope="module")
def ion302() -> Study:
    return load_study("ion302")


@pytest.fixture(scope="module")
def ion301() -> Study:
    return load_study("ion301")


def _visits(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "subject_id": [r[0] for r in rows],
            "visit": [r[1] for r in rows],
            "visit_date": [dt.date.fromisoformat(r[2]) for r in rows],
            "status": ["DONE"] * len(rows),
        }
    )


def test_adhdss_baseline_primary_visit_and_responder_threshold(ion302: Study) -> None:
    """S1: DAY1 3 -> WK6 2, CHG -1: a responder at 1 point (ION-302), day 43 in WK6's
    +/-5 window. S2: no DAY1 value, so the fallback SCREEN (4) is the baseline; WK6 4: CHG 0."""
    hdss = pl.DataFrame(
        {
            "subject_id": ["S1", "S1", "S1", "S2", "S2"],
            "visit": ["SCREEN", "DAY1", "WK6", "SCREEN", "WK6"],
            "hdss": [3, 3, 2, 4, 4],
            "source_file": ["P01/2026-05-01/hdss.csv"] * 5,
            "source_line": [2, 3, 4, 5, 6],
        }
    )
    visits = _visits(
        [("S1", "DAY1", "2026-03-10"), ("S1", "WK6", "2026-04-21"), ("S2", "WK6", "2026-04-30")]
    )
    ad = derive_adhdss(hdss, visits, ion302).sort("subject_id", "AVISITN")
    s1 = ad.filter(pl.col("subject_id") == "S1")
    assert s1["AVISIT"].to_list() == ["SCREEN", "DAY1", "WK6"]
    assert s1["AVISITN"].to_list() == [1, 2, 5]
    assert s1["ABLFL"].to_list() == ["N", "Y", "N"]
    wk6 = s1.row(2, named=True)
    assert (wk6["BASE"], wk6["BASE_VISIT"], wk6["CHG"], wk6["RESPFL"]) == (3, "DAY1", -1, "Y")
    assert (wk6["ADY"], wk6["out_of_window"], wk6["week"]) == (43, False, 6)
    assert set(ad["STUDYID"]) == {"ION-302"}
    s2 = ad.filter((pl.col("subject_id") == "S2") & (pl.col("AVISIT") == "WK6")).row(0, named=True)
    assert (s2["BASE"], s2["BASE_VISIT"], s2["CHG"], s2["RESPFL"]) == (4, "SCREEN", 0, "N")


def _adsl(arms: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "subject_id": list(arms),
            "centre_id": ["P01"] * len(arms),
            "stratum": ["HDSS34"] * len(arms),
            "FASFL": ["Y"] * len(arms),
            "PPFL": ["Y"] * len(arms),
            "arm": list(arms.values()),
        }
    )


def _adsweat(rows: list[tuple[str, str, str, float | None, float | None]]) -> pl.DataFrame:
    """(subject, PARAMCD, AVISIT, AVAL, CHG); BASE = AVAL - CHG, PCHG from CHG."""
    return pl.DataFrame(
        {
            "subject_id": [r[0] for r in rows],
            "PARAMCD": [r[1] for r in rows],
            "AVISIT": [r[2] for r in rows],
            "AVAL": [r[3] for r in rows],
            "CHG": [r[4] for r in rows],
        },
        schema_overrides={"AVAL": pl.Float64, "CHG": pl.Float64},
    ).with_columns(
        BASE=pl.lit(4.0),
        BASE_VISIT=pl.lit("DAY1"),
        PCHG=100.0 * (pl.col("CHG").exp() - 1.0),
        week=pl.col("AVISIT").replace_strict(
            {"DAY1": 0, "WK2": 2, "WK4": 4, "WK6": 6, "WK10": 10, "WK14": 14}, default=None
        ),
        n_sides=pl.lit(2),
        ANL01FL=pl.lit("Y"),
        out_of_window=pl.lit(False),
    )


def test_responders_at_wk6_in_the_sole_with_the_studys_thresholds(
    ion302: Study, ion301: Study
) -> None:
    """S1: sole rate -45 % at WK6 (ln 0.55), HDSS -1: both responders at 40 % / 1 point, neither
    at ION-301's 50 % / 2 points. S2: -39 % at WK6 (-90 % at WK4 does not count). S3: only a
    palmar value at WK6, which is not the primary region: no sweat responder."""
    adsl = _adsl({"S1": "GLY", "S2": "SHAM", "S3": "GLY"})
    adsweat = _adsweat(
        [
            ("S1", "LSOLESR", "WK6", 4.0 + math.log(0.55), math.log(0.55)),
            ("S2", "LSOLESR", "WK6", 4.0 + math.log(0.61), math.log(0.61)),
            ("S2", "LSOLESR", "WK4", 4.0 + math.log(0.10), math.log(0.10)),
            ("S3", "LPALMSR", "WK6", 4.0 + math.log(0.20), math.log(0.20)),
        ]
    )
    adhdss = pl.DataFrame(
        {"subject_id": ["S1", "S2", "S3"], "AVISIT": ["WK6", "WK6", "WK4"], "CHG": [-1, 0, -3]}
    )
    got = derive_responders(adsl, adhdss, adsweat, ion302)
    assert got["subject"].to_list() == ["S1", "S2", "S3"]
    assert got["sweat_responder"].to_list() == [True, False, False]
    assert got["hdss_responder"].to_list() == [True, False, False]
    stricter = ion302.model_copy(
        update={
            "endpoints": ion302.endpoints.model_copy(
                update={"responder": ion301.endpoints.responder}
            )
        }
    )
    strict = derive_responders(adsl, adhdss, adsweat, stricter)
    assert strict["sweat_responder"].to_list() == [False, False, False]
    assert strict["hdss_responder"].to_list() == [False, False, False]


def test_analysis_long_takes_the_sole_at_the_model_visits(ion302: Study) -> None:
    """Model visits WK2, WK4, WK6, WK10 (indices 1-4): the baseline row (no CHG), WK14 (not a
    model visit) and palmar rows stay out."""
    adsl = _adsl({"S1": "GLY"})
    adsweat = _adsweat(
        [
            ("S1", "LSOLESR", "DAY1", 4.0, None),
            ("S1", "LSOLESR", "WK2", 3.8, -0.2),
            ("S1", "LSOLESR", "WK6", 3.5, -0.5),
            ("S1", "LSOLESR", "WK14", 3.9, -0.1),
            ("S1", "LPALMSR", "WK4", 3.0, -1.0),
        ]
    )
    long = build_analysis_long(adsl, adsweat, ion302)
    assert long["visit"].to_list() == ["WK2", "WK6"]
    assert long["visit_index"].to_list() == [1, 3]
    assert long["week"].to_list() == [2, 6]
    assert long["chg"].to_list() == [-0.2, -0.5]
    assert long["arm"].to_list() == ["GLY", "GLY"]


def test_ancova_contrast_against_sham_with_a_90_percent_ci(ion302: Study) -> None:
    """chg ~ arm + logbase on four subjects, logbase balanced across arms: the GLY-SHAM
    estimate is the difference of the arm means, -1.2 - (-0.4) = -0.8; the pooled within-arm
    slope -0.75 leaves residuals +/-0.05, RSS 0.01 on 1 df, SE sqrt(0.01 (1/2 + 1/2)) = 0.1.
    90 % CI (alpha 0.10): -0.8 +/- t(0.95, 1) 0.1 = -0.8 +/- 0.63138; at alpha 0.05 the
    half-width is t(0.975, 1) 0.1 = 1.27062."""
    frame = pl.DataFrame(
        {
            "subject": ["A", "B", "C", "D"],
            "arm": ["SHAM", "SHAM", "GLY", "GLY"],
            "centre": ["P01"] * 4,
            "stratum": ["HDSS34"] * 4,
            "logbase": [4.0, 4.4, 4.0, 4.4],
            "chg": [-0.3, -0.5, -1.0, -1.4],
        }
    )
    result = ancova_result(frame, ion302, "hand", visit="WK6")
    contrast = result.tables["contrasts"].row(0, named=True)
    assert contrast["contrast"] == "GLY-SHAM"
    assert contrast["estimate"] == pytest.approx(-0.8, abs=1e-12)
    assert contrast["std_error"] == pytest.approx(0.1, abs=1e-12)
    assert contrast["ci_low"] == pytest.approx(-0.8 - 0.6313751514675, abs=1e-9)
    assert contrast["ci_high"] == pytest.approx(-0.8 + 0.6313751514675, abs=1e-9)
    at_05 = ion302.model_copy(
        update={"endpoints": ion302.endpoints.model_copy(update={"alpha": 0.05})}
    )
    wide = ancova_result(frame, at_05, "hand", visit="WK6").tables["contrasts"].row(0, named=True)
    assert wide["ci_high"] - wide["ci_low"] == pytest.approx(2 * 1.2706204736, abs=1e-8)


def test_the_induction_phase_is_named_not_the_first(ion302: Study, ion301: Study) -> None:
    """ION-302's PP induction phase is ``loading`` (weeks 1-2, 4 per week: 8 sessions); 75 %
    of 8 is 6 adequate sessions. ION-301: induction 4 weeks x 3 = 12, 80 % -> 10 (9.6 up)."""
    assert ion302.induction_phase.name == "loading"
    assert ion302.induction_phase.planned_sessions == 8
    assert min_adequate_induction_sessions(ion302) == 6
    assert min_adequate_induction_sessions(ion301) == 10
    assert ion302.planned_sessions_total == 8 + 8 * 2


def test_fixed_sequence_at_the_studys_alpha(ion302: Study) -> None:
    """p = 0.01, 0.08, 0.2: at alpha 0.10 H1 and H2 are rejected (H2 would not be at 0.05),
    then H3 is not and the sequence stops."""
    table = fixed_sequence(ion302, {"H1": 0.01, "H2": 0.08, "H3": 0.2}).tables["fixed_sequence"]
    assert table["id"].to_list() == ["H1", "H2", "H3"]
    assert table["contrast"].to_list() == ["GLY-SHAM"] * 3
    assert table["decision"].to_list() == ["reject", "reject", "not rejected"]
    assert set(table["alpha"]) == {0.10}
