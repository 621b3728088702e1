"""End to end on the shared reference ``ref1``: read the delivery with the sealed list, derive,
compare with ``expected/analysis_long.csv`` and the ``derivation`` counts of ``results.json``
(README "Derivation"; tolerances from its table: 1e-9 on the long table, counts exact)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from materialise import Tables

from data_contracts.contracts import blocking_failures, check_frame
from study import load_study
from trial.derive import build_analysis_long
from trial.derive.contracts import table_contract

TOL = 1e-9


@pytest.fixture(scope="session")
def ref1_tables(ref1_run: Tables) -> Tables:
    """ref1 read unblinded and derived by the asset graph, once for the whole session."""
    return ref1_run


@pytest.fixture(scope="session")
def ref1_long(ref1_tables: Tables) -> pl.DataFrame:
    long = build_analysis_long(ref1_tables.adsl, ref1_tables.adsweat, load_study("ion301"))
    assert long.equals(ref1_tables.analysis_long)  # the asset is this function's result
    return long


@pytest.fixture(scope="session")
def expected_derivation(ref1_dir: Path) -> dict[str, Any]:
    results = json.loads((ref1_dir / "expected" / "results.json").read_text("utf-8"))
    return dict(results["derivation"])


def test_analysis_long_matches_ref1(ref1_dir: Path, ref1_long: pl.DataFrame) -> None:
    expected = pl.read_csv(ref1_dir / "expected" / "analysis_long.csv")
    assert ref1_long.columns == expected.columns
    key = ["subject", "visit"]
    assert ref1_long.select(key).sort(key).rows() == expected.select(key).sort(key).rows()
    joined = expected.join(ref1_long, on=key, suffix="_ours")
    for col in ("logbase", "chg", "aval_log"):
        worst = joined.select((pl.col(col) - pl.col(f"{col}_ours")).abs().max()).item()
        assert worst < TOL, col
    for col in ("arm", "centre", "stratum", "visit_index", "week", "n_sides", "base_visit"):
        assert joined.filter(pl.col(col) != pl.col(f"{col}_ours")).height == 0, col


def test_counts_match_ref1(
    ref1_tables: Tables, ref1_long: pl.DataFrame, expected_derivation: dict[str, Any]
) -> None:
    adsl = ref1_tables.adsl
    exp = expected_derivation
    assert adsl.height == exp["n_dm_subjects"]
    randomised = adsl.filter(pl.col("RANDFL") == "Y")
    assert randomised.height == exp["n_randomised"]
    assert dict(randomised.group_by("arm").len().rows()) == exp["n_randomised_by_arm"]
    treated = randomised.filter(pl.col("SAFFL") == "Y")
    assert treated.height == exp["n_treated_randomised"]
    fas = adsl.filter(pl.col("FASFL") == "Y")
    assert fas.height == exp["n_fas"]
    assert dict(fas.group_by("arm").len().rows()) == exp["n_fas_by_arm"]
    assert ref1_long.height == exp["n_obs_analysed"]
    assert ref1_long["subject"].n_unique() == exp["n_subjects_in_model"]
    by_arm_visit = {
        arm: dict(g.group_by("visit").len().rows()) for (arm,), g in ref1_long.group_by("arm")
    }
    assert by_arm_visit == exp["n_obs_by_arm_visit"]
    assert ref1_long.filter(pl.col("n_sides") == 1).height == exp["n_region_values_one_side"]


def test_baselines_and_fas_exclusions_match_ref1(
    ref1_tables: Tables, ref1_long: pl.DataFrame, expected_derivation: dict[str, Any]
) -> None:
    exp = expected_derivation
    from_scr = ref1_long.filter(pl.col("base_visit") == "SCR")["subject"].unique().sort()
    assert from_scr.to_list() == exp["baseline_from_scr"]
    assert from_scr.len() == exp["n_baseline_from_scr"]
    excluded = ref1_tables.adsl.filter((pl.col("RANDFL") == "Y") & (pl.col("FASFL") == "N"))
    not_treated = excluded.filter(pl.col("SAFFL") == "N")["subject_id"].to_list()
    assert not_treated == exp["excluded_from_fas"]["not_treated"]
    palm = ref1_tables.adsweat.filter(pl.col("PARAMCD") == "LPALMSR")
    with_base = palm.filter(pl.col("BASE").is_not_null())["subject_id"].unique()
    treated = excluded.filter(pl.col("SAFFL") == "Y")
    no_baseline = treated.filter(~pl.col("subject_id").is_in(with_base.implode()))
    assert no_baseline["subject_id"].to_list() == exp["excluded_from_fas"]["no_baseline"]
    no_post = treated.filter(pl.col("subject_id").is_in(with_base.implode()))
    assert no_post["subject_id"].to_list() == exp["excluded_from_fas"]["no_post_baseline"]


def test_ref1_papers_sessions_and_windows(
    ref1_tables: Tables, expected_derivation: dict[str, Any]
) -> None:
    papers = ref1_tables.sweat_papers
    assert papers.height == expected_derivation["gravimetry_rows_in_latest_versions"]
    palm = papers.filter(pl.col("region") == "PALM")
    assert palm.filter(pl.col("invalid_rate")).height == expected_derivation["n_palm_rates_invalid"]
    # every session of ref1 reaches a subject (README: no unmapped sessions)
    assert ref1_tables.unmapped_sessions.height == 0
    # README: 25 out-of-window visits (visits.csv); the palm records at those visits are flagged
    adsweat = ref1_tables.adsweat.filter(pl.col("PARAMCD") == "LPALMSR")
    assert adsweat.filter(pl.col("out_of_window")).height == 25


def test_ref1_tables_satisfy_their_contracts(ref1_tables: Tables, ref1_long: pl.DataFrame) -> None:
    frames = {
        name: getattr(ref1_tables, name)
        for name in ("adsl", "adsweat", "adsweat_side", "adhdss", "adae", "addev")
    }
    frames["analysis_long"] = ref1_long
    for name, frame in frames.items():
        assert blocking_failures(check_frame(frame, table_contract(name, blinded=False))) == []


def test_ref1_screen_failures_carry_their_reason(ref1_dir: Path, ref1_tables: Tables) -> None:
    """Every screen failure has an eligibility reason. The simulator's GRAVIMETRY failures
    (expected/subjects_truth.csv: a screening palm below the entry minimum) get
    SCR_RATE_BELOW_ENTRY, HDSS failures HDSS_SCREENING. No randomised subject is excluded by
    any reason, so the analysis sets stay as they were."""
    truth = pl.read_csv(ref1_dir / "expected" / "subjects_truth.csv", infer_schema_length=0)
    adsl = ref1_tables.adsl.join(
        truth.select("subject_id", "screen_fail_reason"), on="subject_id", how="left"
    )
    failures = adsl.filter(pl.col("screen_failure"))
    assert failures.height == 21
    assert failures["eligibility_reasons"].null_count() == 0
    expected = {"GRAVIMETRY": "SCR_RATE_BELOW_ENTRY", "HDSS": "HDSS_SCREENING"}
    for reason, code in expected.items():
        of_reason = failures.filter(pl.col("screen_fail_reason") == reason)
        assert of_reason.height == 7
        assert of_reason["eligibility_reasons"].str.contains(code).all(), reason
    flagged = adsl.filter(pl.col("eligibility_reasons").str.contains("SCR_RATE_BELOW_ENTRY"))
    assert sorted(flagged["subject_id"]) == sorted(
        failures.filter(pl.col("screen_fail_reason") == "GRAVIMETRY")["subject_id"]
    )
    randomised = adsl.filter(pl.col("RANDFL") == "Y")
    assert randomised["eligibility_violation"].any() is False


@pytest.mark.slow
def test_ref1_blinded_run_agrees_without_arm(ref1_blinded_run: Tables, ref1_tables: Tables) -> None:
    blinded = ref1_blinded_run
    assert "arm" not in blinded.adsl.columns
    flags = ["subject_id", "RANDFL", "SAFFL", "FASFL", "PPFL"]
    assert blinded.adsl.select(flags).equals(ref1_tables.adsl.select(flags))


def _raw_line(ref1_dir: Path, record: str) -> list[str]:
    """The CSV cells of one ``file:line`` record of the raw tree."""
    file, _, line = record.rpartition(":")
    text = (ref1_dir / "raw" / file).read_text("utf-8").splitlines()
    return text[int(line) - 1].split(",")


def test_every_derived_row_traces_to_its_raw_lines(ref1_dir: Path, ref1_tables: Tables) -> None:
    """ADSWEAT's region values, ADHDSS's scores and ADSL's subjects name the raw file lines
    they came from; following a sample of them back leads to the right subject, visit and
    region. The corrected worksheet (delivery_events.json) is the version cited."""
    adsweat = ref1_tables.adsweat
    assert adsweat["source_records"].null_count() == 0
    for row in adsweat.sample(40, seed=1).iter_rows(named=True):
        for record in row["source_records"].split("; "):
            cells = _raw_line(ref1_dir, record)
            assert cells[:3] == [row["subject_id"], row["AVISIT"], row["region"]]
    corrected = adsweat.filter(
        (pl.col("subject_id") == "C01-0035")
        & (pl.col("AVISIT") == "W4")
        & (pl.col("region") == "PALM")
    )["source_records"][0]
    assert "C01/2026-07-27/gravimetry_C01_20260629.csv:145" in corrected
    for row in ref1_tables.adhdss.sample(40, seed=2).iter_rows(named=True):
        cells = _raw_line(ref1_dir, row["source_records"])
        assert cells[:3] == [row["subject_id"], row["AVISIT"], str(row["AVAL"])]
    for row in ref1_tables.adsl.sample(20, seed=3).iter_rows(named=True):
        assert _raw_line(ref1_dir, row["source_records"])[0] == row["subject_id"]
