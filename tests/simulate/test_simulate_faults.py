"""Every listed fault points at a real line that is faulty; everything else is clean."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from study import Study
from trial.simulate import SimulationSummary, simulate_trial

REQUIRED = {
    "NOT_UTF8",
    "WRONG_FIELD_COUNT",
    "BAD_DATE",
    "BAD_NUMBER",
    "NOT_IN_CODELIST",
    "OUT_OF_RANGE",
    "BAD_JSON",
    "TRUNCATED_LINE",
}


VENDOR_B_CODES = {"BAD_JSON", "TRUNCATED_LINE"}


def required(study: Study) -> set[str]:
    """The fault kinds a study's design allows: no vendor-B fault without vendor-B devices."""
    return REQUIRED if study.simulation.vendor_b_share > 0 else REQUIRED - VENDOR_B_CODES


def load(run: SimulationSummary, name: str) -> Any:
    return json.loads((run.sealed_dir / name).read_text("utf-8"))


def physical_lines(path: Path) -> list[str]:
    """Lines as delivered (CRLF counts as one line end)."""
    return path.read_bytes().decode("utf-8").replace("\r\n", "\n").split("\n")


def fields(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)))


def all_json(lines: list[str]) -> bool:
    """Every line is a JSON object (one parser call for speed)."""
    try:
        events = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        return False
    return len(events) == len(lines) and all(isinstance(e, dict) for e in events)


def is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def test_fault_kinds_are_all_present(faulty_run: SimulationSummary, study: Study) -> None:
    faults = load(faulty_run, "faults.json")["faults"]
    assert {f["reason_code"] for f in faults} >= required(study)
    datasets = {f["dataset"] for f in faults}
    assert {"dm", "hdss", "visits", "ae", "gravimetry", "vendor_a_sessions"} <= datasets
    assert ("vendor_b_events" in datasets) == (study.simulation.vendor_b_share > 0)
    for f in faults:
        assert set(f) == {"file", "line", "dataset", "field", "reason_code", "note"}


def test_each_fault_is_at_its_line(faulty_run: SimulationSummary, study: Study) -> None:
    root = faulty_run.raw_dir
    for f in load(faulty_run, "faults.json")["faults"]:
        path = root / f["file"]
        assert path.is_file(), f
        code = f["reason_code"]
        if f["line"] is None:
            assert code == "NOT_UTF8"
            try:
                path.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                continue
            raise AssertionError(f"{path} decodes as UTF-8")
        lines = physical_lines(path)
        text = lines[f["line"] - 1]
        if path.suffix == ".jsonl":
            assert not is_json(text), f
            others = [x for i, x in enumerate(lines) if i != f["line"] - 1 and x]
            assert all_json(others)  # good lines around it are intact
            if code == "TRUNCATED_LINE":
                assert f["line"] == len(lines) and not path.read_bytes().endswith(b"\n")
                resent = f["note"].rsplit(" ", 1)[1]
                first = physical_lines(root / resent)[0]
                assert is_json(first) and first.startswith(text)
            else:
                assert code == "BAD_JSON" and f["line"] < len(lines) - 1
            continue
        header_at = 0
        while lines[header_at].startswith("#"):
            header_at += 1
        header = fields(lines[header_at])
        row = fields(text)
        good = [i for i in range(header_at + 1, len(lines) - 1) if i != f["line"] - 1]
        assert all(len(fields(lines[i])) == len(header) for i in good)
        if code == "WRONG_FIELD_COUNT":
            assert len(row) != len(header)
            continue
        assert len(row) == len(header)
        value = row[header.index(f["field"])]
        if code == "BAD_DATE":
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                continue
            raise AssertionError(f"{value} is a date")
        if code == "BAD_NUMBER":
            try:
                float(value)
            except ValueError:
                continue
            raise AssertionError(f"{value} is a number")
        if code == "NOT_IN_CODELIST":
            assert value not in study.codelist(f["field"])
        elif code == "OUT_OF_RANGE":
            assert not 1 <= int(value) <= 4


def test_faults_are_in_current_files(faulty_run: SimulationSummary) -> None:
    """A fault's file is the latest delivery of its (centre, name)."""
    root = faulty_run.raw_dir
    for f in load(faulty_run, "faults.json")["faults"]:
        centre, date, name = f["file"].split("/")
        later = [p for p in (root / centre).glob(f"*/{name}") if p.parent.name > date]
        assert not later, f


def test_duplicate_events_listed(faulty_run: SimulationSummary, study: Study) -> None:
    events = load(faulty_run, "delivery_events.json")["events"]
    dups = [e for e in events if e["kind"] == "duplicate_event"]
    assert bool(dups) == (study.simulation.vendor_b_share > 0)
    for e in dups:
        lines = physical_lines(faulty_run.raw_dir / e["file"])
        assert lines[e["line"] - 1] == lines[e["duplicate_of_line"] - 1]
        assert is_json(lines[e["line"] - 1])


def test_redelivered_worksheets(faulty_run: SimulationSummary) -> None:
    root = faulty_run.raw_dir
    events = {e["kind"]: e for e in load(faulty_run, "delivery_events.json")["events"]}
    repeat = events["repeat"]
    assert (root / repeat["file"]).read_bytes() == (root / repeat["repeated_as"]).read_bytes()
    corr = events["correction"]
    old = physical_lines(root / corr["file"])
    new = physical_lines(root / corr["corrected_by"])
    assert corr["file"].rsplit("/", 1)[1] == corr["corrected_by"].rsplit("/", 1)[1]
    differing = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert differing == [corr["line"] - 1]
    header = fields(old[0])
    k = header.index(corr["field"])
    assert fields(old[corr["line"] - 1])[k] == corr["old"]
    assert fields(new[corr["line"] - 1])[k] == corr["new"]
    assert {"factory_reset", "clock_reset"} <= set(events)


def test_clean_run_has_no_faults(clean_run: SimulationSummary) -> None:
    assert load(clean_run, "faults.json")["faults"] == []
    for path in clean_run.raw_dir.rglob("*"):
        if not path.is_file():
            continue
        lines = physical_lines(path)
        assert lines[-1] == ""
        if path.suffix == ".jsonl":
            assert all_json(lines[:-1])
            continue
        rows = list(csv.reader(x for x in lines[:-1] if not x.startswith("#")))
        assert {len(r) for r in rows} == {len(rows[0])}


@pytest.mark.parametrize(("seed", "n"), [(12, 12), (17, 20), (21, 36)])
def test_small_trials_place_every_fault(tmp_path: Path, study: Study, seed: int, n: int) -> None:
    """Seeds that once left a fault without a place (a centre with no candidate row)."""
    run = simulate_trial(study, n, seed, tmp_path / "raw", faults=True)
    assert {f["reason_code"] for f in load(run, "faults.json")["faults"]} >= required(study)
    kinds = {e["kind"] for e in load(run, "delivery_events.json")["events"]}
    assert kinds >= {"repeat", "correction", "factory_reset", "clock_reset"}
    assert ("duplicate_event" in kinds) == (study.simulation.vendor_b_share > 0)
