"""ADSL analysis-set flags, ADHDSS, ADAE, blinding and the model input table."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import replace

import polars as pl
import pytest
from derive_fixture import S1, S2, S3, S4, Raw, raw
from derive_fixture import study as ion_study
from materialise import Tables

from trial.derive import build_analysis_long

Derive = Callable[[Raw], Tables]


def _flags(adsl: pl.DataFrame) -> dict[str, tuple[str, str, str, str]]:
    rows = adsl.select("subject_id", "RANDFL", "SAFFL", "FASFL", "PPFL").rows()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def test_analysis_set_flags_unblinded(unblinded: Tables) -> None:
    assert _flags(unblinded.adsl) == {
        # randomised, treated, baseline + post-baseline, 13 adequate induction sessions >= 10
        S1: ("Y", "Y", "Y", "Y"),
        # screen failure: not in the list, never treated
        S2: ("N", "N", "N", "N"),
        # in the FAS (SCR baseline), but 1 adequate session and an eligibility violation
        S3: ("Y", "Y", "Y", "N"),
        # randomised, device assigned, no session: not treated, not in the FAS
        S4: ("Y", "N", "N", "N"),
    }


def test_blinded_randfl_is_not_screen_failure_with_a_bl_visit(
    blinded: Tables, unblinded: Tables, derive: Derive
) -> None:
    assert _flags(blinded.adsl) == _flags(unblinded.adsl)
    # remove S4's BL visit: blinded RANDFL falls to N
    base = raw(blinded=True)
    no_bl = base.visits.filter(~((pl.col("subject_id") == S4) & (pl.col("visit") == "BL")))
    adsl = derive(replace(base, visits=no_bl)).adsl
    assert _flags(adsl)[S4][0] == "N"


def test_screen_failure_and_eligibility(unblinded: Tables) -> None:
    adsl = unblinded.adsl
    row = {r["subject_id"]: r for r in adsl.iter_rows(named=True)}
    assert row[S2]["screen_failure"] is True
    assert row[S1]["screen_failure"] is False
    assert row[S3]["eligibility_reasons"] == "PACEMAKER"
    assert row[S2]["eligibility_reasons"] == "HDSS_SCREENING"  # hdss_screening 2
    assert row[S1]["eligibility_violation"] is False
    assert row[S1]["stratum"] == "HDSS3" and row[S3]["stratum"] == "HDSS4"
    assert row[S3]["age"] == 14 and row[S3]["age_group"] == "12-17"


def test_saffl_counts_sessions_on_any_serial_ever_assigned(derive: Derive) -> None:
    base = raw()
    # only the A-00001 session after its to_date remains: not mapped, but on S1's serial
    only = base.device_sessions.filter(
        (pl.col("device_serial") == "A-00001") & (pl.col("start_utc").dt.day() == 25)
    )
    adsl = derive(replace(base, device_sessions=only)).adsl
    s1 = adsl.filter(pl.col("subject_id") == S1).row(0, named=True)
    assert s1["SAFFL"] == "Y" and s1["n_sessions"] == 1 and s1["n_sessions_mapped"] == 0
    assert s1["PPFL"] == "N"


def test_blinded_tables_carry_no_arm(blinded: Tables, unblinded: Tables) -> None:
    assert "arm" not in blinded.adsl.columns and "arm" in unblinded.adsl.columns
    for name in ("adsl", "adsweat", "adsweat_side", "adhdss", "adae", "addev"):
        frame = getattr(blinded, name)
        assert not {"arm", "rand_date"} & set(frame.columns), name
    assert "STRATUM_MISMATCH" not in blinded.derivation_findings["finding"].to_list()
    assert unblinded.adsl.filter(pl.col("subject_id") == S1)["arm"].item() == "GLY"
    assert "arm" in unblinded.adae.columns


def test_stratum_disagreement_is_a_finding(unblinded: Tables) -> None:
    found = unblinded.derivation_findings.filter(pl.col("finding") == "STRATUM_MISMATCH")
    assert found["subject_id"].to_list() == [S4]


def test_adhdss_baseline_change_and_responder(unblinded: Tables) -> None:
    adhdss = unblinded.adhdss
    s1 = adhdss.filter(pl.col("subject_id") == S1).select("AVISIT", "BASE", "CHG", "RESPFL")
    assert s1.rows() == [
        ("SCR", 4, None, None),
        ("BL", 4, None, None),
        ("W1", 4, -2, "Y"),  # improvement of 2 points = threshold
        ("W2", 4, -1, "N"),
    ]
    s3 = adhdss.filter(pl.col("subject_id") == S3)
    assert s3["BASE_VISIT"].unique().to_list() == ["SCR"]
    assert s3.filter(pl.col("AVISIT") == "W1")["CHG"].item() == -1
    w2 = adhdss.filter((pl.col("subject_id") == S1) & (pl.col("AVISIT") == "W2"))
    assert w2["out_of_window"].item() is True


def test_adae_treatment_emergence_and_study_day(unblinded: Tables) -> None:
    adae = unblinded.adae.select("ae_id", "TRTEMFL", "ASTDY", "AENDY")
    assert adae.rows() == [
        ("C01-0001-AE01", "N", -2, -1),  # before the first session (01-12)
        ("C01-0001-AE02", "Y", 3, None),
        ("C01-0004-AE01", "N", 10, 15),  # never treated
    ]
    assert unblinded.adsl.filter(pl.col("subject_id") == S1)["trt_start_date"].item() == (
        dt.date(2026, 1, 12)
    )


EXPECTED_COLUMNS = [
    "subject",
    "arm",
    "centre",
    "stratum",
    "visit",
    "visit_index",
    "week",
    "logbase",
    "chg",
    "aval_log",
    "n_sides",
    "base_visit",
]


def test_analysis_long_fas(unblinded: Tables) -> None:
    long = build_analysis_long(unblinded.adsl, unblinded.adsweat, ion_study())
    assert long.columns == EXPECTED_COLUMNS
    assert long.select(
        "subject", "visit", "visit_index", "week", "n_sides", "base_visit"
    ).rows() == [
        (S1, "W1", 1, 1, 1, "BL"),
        (S1, "W2", 2, 2, 2, "BL"),
        (S3, "W1", 1, 1, 1, "SCR"),
    ]
    s3 = long.filter(pl.col("subject") == S3).row(0, named=True)
    assert s3["logbase"] == pytest.approx((math.log(50) + math.log(80)) / 2, abs=1e-12)
    assert s3["aval_log"] - s3["logbase"] == pytest.approx(s3["chg"], abs=1e-15)
    assert s3["arm"] == "TAP"


def test_analysis_long_pp_drops_out_of_window_and_non_pp(unblinded: Tables) -> None:
    long = build_analysis_long(unblinded.adsl, unblinded.adsweat, ion_study(), population="PP")
    # S3 is not PP; S1's W2 (day 18) is out of window
    assert long.select("subject", "visit").rows() == [(S1, "W1")]


def test_analysis_long_blinded_has_no_arm(blinded: Tables) -> None:
    long = build_analysis_long(blinded.adsl, blinded.adsweat, ion_study())
    assert long.columns == [c for c in EXPECTED_COLUMNS if c != "arm"]
    assert long.height == 3


def test_analysis_long_rejects_unknown_population(unblinded: Tables) -> None:
    with pytest.raises(ValueError, match="population"):
        build_analysis_long(unblinded.adsl, unblinded.adsweat, ion_study(), population="ITT")  # type: ignore[arg-type]


def test_age_violation_only_when_certain_from_the_birth_year() -> None:
    from trial.derive import eligibility_findings

    dm = pl.DataFrame(
        {
            "subject_id": ["a", "b", "c", "d"],
            "consent_date": [dt.date(2026, 3, 1)] * 4,
            "birth_year": [2014, 2015, 1960, 1959],  # 12 (or 11), 11, 66 (or 65), 67
            "hdss_screening": [3] * 4,
        }
    )
    empty = pl.DataFrame(
        schema={"subject_id": pl.String, "criterion": pl.String, "answer": pl.String}
    )
    no_papers = _screening_papers([])
    found = eligibility_findings(dm, empty, no_papers, ion_study()).sort("subject_id")
    assert found["eligibility_violation"].to_list() == [False, True, False, True]
    assert found["eligibility_reasons"].to_list() == [None, "AGE", None, "AGE"]


def _screening_papers(
    rows: list[tuple[str, str, str, str, float, float | None, str, int]],
) -> pl.DataFrame:
    """Per-paper rates (``paper_rates``) of (subject, visit, region, side, dry, wet, unit,
    collection seconds) rows."""
    from trial.derive.gravimetry import paper_rates

    frame = pl.DataFrame(
        rows,
        schema={
            "subject_id": pl.String,
            "visit": pl.String,
            "region": pl.String,
            "side": pl.String,
            "dry_weight": pl.Float64,
            "wet_weight": pl.Float64,
            "unit": pl.String,
            "collection_s": pl.Int64,
        },
        orient="row",
    )
    return paper_rates(frame, ion_study())


def test_screening_rate_below_the_entry_minimum_is_an_eligibility_reason() -> None:
    """SAP: palmar rate >= 20 mg/min on each hand at screening. Rates by hand below."""
    from trial.derive import eligibility_findings

    papers = _screening_papers(
        [
            ("a", "SCR", "PALM", "L", 400.0, 419.0, "mg", 60),  # 19 mg/min: below
            ("a", "SCR", "PALM", "R", 400.0, 430.0, "mg", 60),  # 30
            ("b", "SCR", "PALM", "L", 400.0, 420.0, "mg", 60),  # 20.0: at the minimum, passes
            ("b", "SCR", "PALM", "R", 400.0, 425.0, "mg", 60),  # 25
            ("c", "SCR", "PALM", "L", 400.0, 409.0, "mg", 30),  # 9 mg in 0.5 min = 18: below
            ("c", "SCR", "PALM", "R", 400.0, None, "mg", 60),  # lost paper: no rate
            ("d", "SCR", "PALM", "L", 400.0, 390.0, "mg", 60),  # wet < dry: invalid, no rate
            ("d", "SCR", "PALM", "R", 400.0, 450.0, "mg", 60),  # 50
            ("e", "SCR", "PALM", "L", 400.0, 440.0, "mg", 60),  # 40
            ("e", "SCR", "PALM", "R", 400.0, 440.0, "mg", 60),  # 40
            ("e", "SCR", "SOLE", "L", 400.0, 410.0, "mg", 60),  # 10, but a sole: no criterion
            ("e", "BL", "PALM", "L", 400.0, 410.0, "mg", 60),  # 10, but not screening
            ("f", "SCR", "PALM", "L", 0.4000, 0.4150, "g", 60),  # 15 mg in 1 min: below
            ("f", "SCR", "PALM", "R", 0.4000, 0.4300, "g", 60),  # 30
        ]
    )
    dm = pl.DataFrame(
        {
            "subject_id": ["a", "b", "c", "d", "e", "f"],
            "consent_date": [dt.date(2026, 3, 1)] * 6,
            "birth_year": [1990] * 6,
            "hdss_screening": [2, 3, 3, 3, 4, 4],  # a: HDSS 2 is outside [3, 4] as well
        }
    )
    empty = pl.DataFrame(
        schema={"subject_id": pl.String, "criterion": pl.String, "answer": pl.String}
    )
    found = eligibility_findings(dm, empty, papers, ion_study()).sort("subject_id")
    assert found["eligibility_reasons"].to_list() == [
        "HDSS_SCREENING,SCR_RATE_BELOW_ENTRY",
        None,
        "SCR_RATE_BELOW_ENTRY",
        None,
        None,
        "SCR_RATE_BELOW_ENTRY",
    ]
    assert found["eligibility_violation"].to_list() == [True, False, True, False, False, True]
