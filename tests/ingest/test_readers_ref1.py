"""The shared reference ref1 read end to end: nothing quarantined, counts and sessions exact.

Vendor-B charge: the reference gives the rectangle rule sum(ma_i * dt)
(``vendor_b_charge_mc_rect``); the reader integrates by the trapezoid rule over the sample
time stamps. With samples every dt the two differ by exactly dt * (first + last sample) / 2,
so the test checks that identity. Its tolerance, 0.5 mC, covers the reference summing
currents before they were printed to 0.01 mA (2,400 samples x +/-0.005 mA x 0.5 s: rounding
noise of SD about 0.07 mC, worst seen 0.2 mC), while one lost or doubled 15 mA sample would
move the charge by 7.5 mC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from materialise import Tables

from data_contracts.contracts import blocking_failures, check_frame, load_contract

CHARGE_TOL_MC = 0.5


@pytest.fixture(scope="session")
def ref1_raw(ref1_run: Tables) -> Tables:
    """ref1 read once by the asset graph, unblinded, for the whole session."""
    return ref1_run


@pytest.fixture(scope="session")
def ref1_derivation(ref1_dir: Path) -> dict[str, Any]:
    results = json.loads((ref1_dir / "expected" / "results.json").read_text("utf-8"))
    return dict(results["derivation"])


@pytest.fixture(scope="session")
def sessions_truth(ref1_dir: Path) -> pl.DataFrame:
    return pl.read_csv(
        ref1_dir / "expected" / "sessions_truth.csv",
        schema_overrides={"fault_code": pl.String, "sid": pl.String},
    ).with_columns(pl.col("start_utc").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"))


def test_nothing_is_quarantined_and_every_contract_holds(
    ref1_raw: Tables, ref1_dir: Path, ref1_derivation: dict[str, Any]
) -> None:
    assert ref1_raw.quarantine.height == 0
    assert ref1_derivation["quarantine_counts"] == {}
    independent = pl.read_csv(ref1_dir / "expected" / "quarantine_r.csv")
    assert independent.height == 0
    for name, frame in ref1_raw.datasets().items():
        assert blocking_failures(check_frame(frame, load_contract(name))) == [], name


def test_counts(ref1_raw: Tables, ref1_derivation: dict[str, Any]) -> None:
    assert ref1_raw.manifest.height == ref1_derivation["n_files"] == 1495
    superseded = ref1_raw.manifest.filter(~pl.col("is_current")).height
    assert superseded == ref1_derivation["n_file_versions_superseded"] == 261
    assert ref1_raw.gravimetry.height == ref1_derivation["gravimetry_rows_in_latest_versions"]
    assert ref1_raw.gravimetry.height == 2996
    assert (
        ref1_raw.gravimetry_duplicates.height
        == ref1_derivation["gravimetry_duplicate_keys_resolved"]
    )
    assert ref1_raw.dm.height == ref1_derivation["n_dm_subjects"] == 141
    assert ref1_raw.randomisation is not None
    assert ref1_raw.randomisation.height == ref1_derivation["n_randomised"] == 120
    by_arm = dict(ref1_raw.randomisation.group_by("arm").len().rows())
    assert by_arm == ref1_derivation["n_randomised_by_arm"]
    # C02's EDC exports have CRLF line ends, and some AE verbatims hold quoted commas
    assert ref1_raw.ae.filter(pl.col("verbatim").str.contains(",")).height > 0
    assert ref1_raw.dm.filter(pl.col("centre_id") == "C02").height > 0
    # C03's balance reports grams
    assert set(
        ref1_raw.gravimetry.filter(pl.col("source_file").str.starts_with("C03/"))["unit"]
    ) == {"g"}


def test_the_corrected_worksheet_wins(ref1_raw: Tables, ref1_dir: Path) -> None:
    events = json.loads((ref1_dir / "expected" / "delivery_events.json").read_text("utf-8"))
    fix = next(e for e in events["events"] if e["kind"] == "correction")
    paper = ref1_raw.gravimetry.filter(
        subject_id=fix["subject_id"], visit=fix["visit"], region=fix["region"], side=fix["side"]
    ).row(0, named=True)
    assert paper["wet_weight"] == float(fix["new"]) != float(fix["old"])
    assert paper["source_file"] == fix["corrected_by"].removeprefix("raw/")
    assert paper["source_line"] == fix["line"]


def test_vendor_a_sessions_equal_the_truth(
    ref1_raw: Tables, sessions_truth: pl.DataFrame, ref1_dir: Path
) -> None:
    truth = sessions_truth.filter(vendor="A")
    ours = ref1_raw.device_sessions.filter(vendor="A")
    assert ours.height == truth.height == 3036
    assert not ours["clock_reset"].any()
    joined = ours.join(truth, on=["device_serial", "start_utc"], how="full", coalesce=True)
    assert (
        joined.filter(pl.col("session_key").is_null() | pl.col("subject_id").is_null()).height == 0
    )
    assert (joined["duration_s"] == joined["duration_s_right"]).all()
    assert (joined["charge_mc"] == joined["vendor_a_charge_mc"]).all()
    assert (joined["programmed_ma"] == joined["programmed_ma_right"]).all()
    assert (joined["end_reason"] == joined["end_reason_right"]).all()
    assert joined["fault_code"].eq_missing(joined["fault_code_right"]).all()
    # the factory-reset unit: counters restart, yet every session is kept once
    events = json.loads((ref1_dir / "expected" / "delivery_events.json").read_text("utf-8"))
    reset_serial = next(e["serial"] for e in events["events"] if e["kind"] == "factory_reset")
    ours_reset = ref1_raw.vendor_a_sessions.filter(serial=reset_serial)
    assert ours_reset.height == truth.filter(device_serial=reset_serial).height
    assert ours_reset["session_no"].is_duplicated().any()  # counter restarted at 1


def test_vendor_b_sessions_equal_the_truth(ref1_raw: Tables, sessions_truth: pl.DataFrame) -> None:
    truth = sessions_truth.filter(vendor="B").with_columns(
        session_key=pl.concat_str(pl.lit("B:"), "device_serial", pl.lit(":"), "sid")
    )
    ours = ref1_raw.device_sessions.filter(vendor="B")
    assert ours.height == truth.height == 59
    joined = ours.join(truth, on="session_key", how="full", coalesce=True)
    assert joined.filter(pl.col("vendor").is_null() | pl.col("subject_id").is_null()).height == 0
    # the truth prints whole seconds; the start event carries milliseconds
    assert (joined["start_utc"].dt.truncate("1s") == joined["start_utc_right"]).all()
    assert (joined["duration_s"] == joined["duration_s_right"].cast(pl.Float64)).all()
    assert (joined["end_reason"] == joined["end_reason_right"]).all()
    assert joined["fault_code"].eq_missing(joined["fault_code_right"]).all()
    assert (joined["programmed_ma"] == joined["programmed_ma_right"]).all()
    assert (joined["n_duplicate_events"] == 0).all()
    samples = (
        ref1_raw.vendor_b_events.filter(ev="sample")
        .sort("ts")
        .group_by("dev", "sid")
        .agg(
            first=pl.col("ma").first(),
            last=pl.col("ma").last(),
            dt_s=pl.col("ts").diff().dt.total_microseconds().unique().drop_nulls() / 1e6,
        )
        .select(
            session_key=pl.concat_str(pl.lit("B:"), "dev", pl.lit(":"), "sid"),
            first="first",
            last="last",
            dt_s=pl.col("dt_s").list.first(),
            n_dt=pl.col("dt_s").list.len(),
        )
    )
    check = joined.join(samples, on="session_key")
    assert (check["n_dt"] == 1).all() and (check["dt_s"] == 0.5).all()  # 2 Hz throughout
    gap = check["vendor_b_charge_mc_rect"] - check["charge_mc"]
    ends = check["dt_s"] * (check["first"] + check["last"]) / 2
    assert ((gap - ends).abs() <= CHARGE_TOL_MC).all()
