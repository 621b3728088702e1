"""Against the trial simulator with injected faults (``trial.simulate``): every fault listed in
its ``faults.json`` is in the quarantine at its file and line, nothing else is, and the legal
delivery events (duplicates, factory and clock resets) are handled; for each example study."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from materialise import Tables, materialise_tree

from data_contracts.contracts import use_study
from study import EXAMPLE_STUDIES, Study, example_study_path, load_study
from trial.simulate.simulator import SimulationSummary, simulate_trial


@pytest.fixture(scope="module", params=EXAMPLE_STUDIES, ids=list(EXAMPLE_STUDIES))
def study_file(request: pytest.FixtureRequest) -> Path:
    return example_study_path(request.param)


@pytest.fixture(scope="module")
def study(study_file: Path) -> Study:
    return load_study(study_file)


@pytest.fixture(autouse=True)
def _contracts_for_the_simulated_study(study: Study) -> None:
    use_study(study)


@pytest.fixture(scope="module")
def simulated(study: Study, tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate_trial(study, 40, 7, tmp_path_factory.mktemp("faulty") / "raw", faults=True)


@pytest.fixture(scope="module")
def raw(
    simulated: SimulationSummary, study_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Tables:
    """The simulated tree through the asset graph's raw group, unblinded."""
    return materialise_tree(
        simulated.raw_dir,
        tmp_path_factory.mktemp("faulty_out"),
        study_file,
        unblind_path=simulated.sealed_dir / "randomisation.csv",
    )


def _vendor_b(study: Study) -> bool:
    """Whether the study's simulated trial has vendor-B units (ION-302: vendor A only)."""
    return study.simulation.vendor_b_share > 0


def _sealed(simulated: SimulationSummary, name: str) -> Any:
    return json.loads((simulated.sealed_dir / name).read_text("utf-8"))


def _rule_faults(simulated: SimulationSummary) -> list[dict[str, Any]]:
    """The injected faults of the trial-level rules (``faults.json``'s ``trial_faults``)."""
    return list(_sealed(simulated, "faults.json")["trial_faults"])


@pytest.fixture(scope="module")
def truth(simulated: SimulationSummary) -> pl.DataFrame:
    return pl.read_csv(
        simulated.sealed_dir / "sessions_truth.csv",
        schema_overrides={"fault_code": pl.String, "sid": pl.String},
    ).with_columns(pl.col("start_utc").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"))


def test_every_injected_fault_and_nothing_else_is_quarantined(
    simulated: SimulationSummary, raw: Tables, study: Study
) -> None:
    faults = _sealed(simulated, "faults.json")["faults"]
    # seven kinds of fault in the EDC, worksheets and vendor-A exports, two more in vendor-B
    # streams when the study has them
    assert len(faults) >= (9 if _vendor_b(study) else 7)
    if not _vendor_b(study):
        assert {f["dataset"] for f in faults}.isdisjoint({"vendor_b_events"})
    expected = {(f["file"], f["line"], f["dataset"], f["field"], f["reason_code"]) for f in faults}
    # The real path also applies the trial-level rules: their injected faults are quarantined
    # too (tests/pipelines/test_trial_faults.py checks each), and a visit a rule quarantines
    # takes the measurements of that visit with it (VISIT_NOT_DONE); nothing else.
    rules = [f for f in _rule_faults(simulated) if f["outcome"] == "quarantine"]
    expected |= {(f["file"], f["line"], f["dataset"], f["field"], f["reason_code"]) for f in rules}
    keys = ["source_file", "source_line", "dataset", "field", "reason_code"]
    got = raw.quarantine.select(*keys, "raw_text")
    assert expected <= set(got.select(keys).rows())
    moved_visits = {
        ",".join(text.split(",")[:2])
        for text in got.filter(
            (pl.col("dataset") == "visits")
            & pl.col("reason_code").is_in([f["reason_code"] for f in rules])
        )["raw_text"]
    }
    extra = [r for r in got.iter_rows(named=True) if tuple(r[k] for k in keys) not in expected]
    for row in extra:
        assert row["reason_code"] == "VISIT_NOT_DONE", row
        assert ",".join(row["raw_text"].split(",")[:2]) in moved_visits, row


def test_duplicate_event_lines_are_dropped_once_and_counted(
    simulated: SimulationSummary, raw: Tables, study: Study
) -> None:
    if not _vendor_b(study):
        pytest.skip(f"{study.study_id} has no vendor-B units: no event lines to duplicate")
    events = _sealed(simulated, "delivery_events.json")["events"]
    dups = [e for e in events if e["kind"] == "duplicate_event"]
    assert dups
    assert int(raw.device_sessions["n_duplicate_events"].sum()) == len(dups)
    assert int(raw.vendor_b_events["n_duplicates"].sum()) == len(dups)
    lines = set(raw.vendor_b_events.select("source_file", "source_line").rows())
    for e in dups:
        assert (e["file"], e["duplicate_of_line"]) in lines
        assert (e["file"], e["line"]) not in lines


def test_device_sessions_match_the_truth_despite_the_faults(
    simulated: SimulationSummary, raw: Tables, truth: pl.DataFrame, study: Study
) -> None:
    ds = raw.device_sessions
    # a vendor-A row a trial-level rule quarantines (a non-finite number in the export that
    # alone holds that session) is a session the analysis does not see
    lost = {"A": 0, "B": 0}
    for fault in _rule_faults(simulated):
        if fault["outcome"] == "quarantine" and fault["dataset"] == "vendor_a_sessions":
            lost["A"] += 1
    for vendor in ("A", "B"):
        expected = truth.filter(vendor=vendor).height - lost[vendor]
        assert ds.filter(vendor=vendor).height == expected
    # the truncated vendor-B line was resent whole: its session has all its events
    truncated = [
        f
        for f in _sealed(simulated, "faults.json")["faults"]
        if f["reason_code"] == "TRUNCATED_LINE"
    ]
    assert len(truncated) == (1 if _vendor_b(study) else 0)
    for fault in truncated:
        session_files = ds.filter(pl.col("source_files").list.contains(fault["file"]))
        assert session_files.height >= 1
    good = ds.filter(vendor="A", clock_reset=False).join(
        truth.filter(vendor="A"), on=["device_serial", "start_utc"], how="inner"
    )
    assert good.height == ds.filter(vendor="A", clock_reset=False).height
    assert (good["charge_mc"] == good["vendor_a_charge_mc"]).all()
    events = _sealed(simulated, "delivery_events.json")["events"]
    for reset in (e for e in events if e["kind"] == "factory_reset"):
        serial = reset["serial"]
        assert ds.filter(device_serial=serial).height == truth.filter(device_serial=serial).height


def test_clock_reset_sessions_are_flagged_and_placed_between_their_neighbours(
    simulated: SimulationSummary, raw: Tables, truth: pl.DataFrame
) -> None:
    events = _sealed(simulated, "delivery_events.json")["events"]
    resets = [e for e in events if e["kind"] == "clock_reset"]
    assert resets
    for reset in resets:
        serial = reset["serial"]
        ours = raw.vendor_a_sessions.filter(serial=serial).sort("start_utc_placed")
        flagged = ours.filter("clock_reset")
        assert sorted(flagged["session_no"].to_list()) == sorted(reset["session_nos"])
        assert (flagged["start_local"].dt.year() == 2000).all()  # kept as printed
        # placed in counter order among the correctly dated sessions
        assert ours["session_no"].to_list() == sorted(ours["session_no"].to_list())
        # each lies after the previous good session ended and ends before the next good one
        # starts, in true time (the placement's bounds on the restart moment guarantee it)
        sessions = truth.filter(device_serial=serial).sort("session_no")
        good = sessions.filter(~pl.col("session_no").is_in(reset["session_nos"]))
        for row in flagged.iter_rows(named=True):
            assert row["start_placement"] in ("interpolated", "extrapolated")
            before = good.filter(pl.col("session_no") < row["session_no"]).tail(1)
            after = good.filter(pl.col("session_no") > row["session_no"]).head(1)
            placed = row["start_utc_placed"]
            if before.height:
                end = before["start_utc"][0] + dt.timedelta(seconds=int(before["duration_s"][0]))
                assert placed >= end
            if after.height:
                assert placed + dt.timedelta(seconds=row["duration_s"]) <= after["start_utc"][0]
