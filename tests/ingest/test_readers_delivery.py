"""read_delivery on whole raw trees: every dataset, the full quarantine, idempotence, hooks."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.contracts import blocking_failures, check_frame, load_contract
from ingest.delivery import RawTables, read_delivery
from ingest.device_sessions import build_device_sessions
from study import Study, load_study

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
MINI = FIXTURES / "mini"
BAD = FIXTURES / "bad"
STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"
LINEAGE = {"source_file", "source_line", "source_files", "kept_file", "superseded_file"}


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


def test_every_frame_of_a_legal_tree_satisfies_its_contract(study: Study) -> None:
    raw = read_delivery(MINI, study)
    assert raw.randomisation is None  # blinded
    for name, frame in raw.datasets().items():
        assert blocking_failures(check_frame(frame, load_contract(name))) == [], name
    assert raw.quarantine.select("source_file", "source_line", "reason_code").rows() == [
        ("C01/2026-02-09/ionto-b_B-00002_20260125180000.jsonl", 10, "TRUNCATED_LINE"),
        ("C01/2026-04-06/README.txt", None, "UNKNOWN_FILE"),
    ]
    assert raw.device_sessions.group_by("vendor").len().sort("vendor").rows() == [
        ("A", 12),
        ("B", 2),
    ]
    assert raw.device_sessions["session_key"].is_unique().all()
    assert raw.gravimetry_duplicates.height == 1
    assert raw.dm.height == 3 and raw.devices.height == 3 and raw.ae.height == 1
    assert raw.visits.height == 0 and raw.visits.schema == load_contract("visits").schema


def test_the_whole_quarantine_of_the_bad_tree(study: Study) -> None:
    raw = read_delivery(BAD, study)
    d = "C02/2026-03-09/"
    grav, va9, va10 = (
        "gravimetry_C02_20260309.csv",
        "ionto-a_A-00009_20260301.csv",
        ("ionto-a_A-00010_20260301.csv"),
    )
    vb = "ionto-b_B-00011_20260301100000.jsonl"
    expected = [
        ("dm.csv", 3, "dm", "sex", "NOT_IN_CODELIST"),
        ("dm.csv", 4, "dm", "subject_id", "MISSING_REQUIRED"),
        ("dm.csv", 6, "dm", "consent_date", "BAD_DATE"),
        ("dm.csv", 7, "dm", None, "WRONG_FIELD_COUNT"),
        ("dm.csv", 8, "dm", "subject_id", "DUPLICATE_KEY"),
        ("dm.csv", 9, "dm", "hdss_screening", "OUT_OF_RANGE"),
        ("dm.csv", 10, "dm", "birth_year", "BAD_NUMBER"),
        ("dm.csv", 11, "dm", None, "BAD_CSV"),
        (grav, 2, "gravimetry", "wet_weight", "BAD_NUMBER"),
        (grav, 3, "gravimetry", "side", "NOT_IN_CODELIST"),
        (grav, 4, "gravimetry", "collected_at", "BAD_DATE"),
        (grav, 5, "gravimetry", "dry_weight", "OUT_OF_RANGE"),
        ("hdss.csv", 1, "hdss", None, "BAD_HEADER"),
        (va9, 1, "vendor_a_sessions", "utc_offset", "BAD_HEADER"),
        (va10, 7, "vendor_a_sessions", None, "WRONG_FIELD_COUNT"),
        (va10, 8, "vendor_a_sessions", "end_reason", "NOT_IN_CODELIST"),
        (va10, 9, "vendor_a_sessions", "start", "BAD_DATE"),
        (vb, 3, "vendor_b_events", None, "BAD_JSON"),
        (vb, 4, "vendor_b_events", "ev", "NOT_IN_CODELIST"),
        (vb, 5, "vendor_b_events", "ma", "MISSING_REQUIRED"),
        (vb, 6, "vendor_b_events", "ts", "BAD_DATE"),
        (vb, 8, "vendor_b_events", None, "TRUNCATED_LINE"),
        ("notes.txt", None, "landing", None, "UNKNOWN_FILE"),
        ("visits.csv", None, "visits", None, "NOT_UTF8"),
    ]
    got = raw.quarantine.select("source_file", "source_line", "dataset", "field", "reason_code")
    assert sorted(got.rows(), key=str) == sorted(
        [(d + f, line, ds, fld, code) for f, line, ds, fld, code in expected], key=str
    )
    assert blocking_failures(check_frame(raw.quarantine, load_contract("quarantine"))) == []
    assert raw.quarantine.select(
        pl.col("message").str.starts_with(pl.col("source_file")).all()
    ).item()
    # the good rows of the damaged files are still read
    assert raw.dm["subject_id"].to_list() == ["C02-0001"]
    assert raw.vendor_b_events.height == 3


def _without_lineage(raw: RawTables) -> dict[str, pl.DataFrame]:
    frames = {**raw.datasets(), "gravimetry_duplicates": raw.gravimetry_duplicates}
    frames.pop("landing_manifest")
    return {k: f.drop([c for c in f.columns if c in LINEAGE]) for k, f in frames.items()}


def test_rereading_and_redelivering_the_same_files_change_nothing(
    study: Study, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(MINI, raw)
    first = read_delivery(raw, study)
    again = read_delivery(raw, study)
    for name, frame in first.datasets().items():
        assert_frame_equal(again.datasets()[name], frame)
    # a whole delivery arrives again, byte for byte, under a new date
    shutil.copytree(raw / "C01" / "2026-03-09", raw / "C01" / "2026-05-04")
    repeated = read_delivery(raw, study)
    assert repeated.manifest.height == first.manifest.height + 8
    before, after = _without_lineage(first), _without_lineage(repeated)
    assert before.keys() == after.keys()
    for name in before:
        assert_frame_equal(after[name], before[name], check_row_order=False)


def test_extra_session_readers_append_bench_sessions(study: Study) -> None:
    contract = load_contract("device_sessions")
    ibu = pl.DataFrame(
        {
            "device_serial": ["IBU-7"],
            "vendor": ["IBU"],
            "session_key": ["IBU:IBU-7:1"],
            "start_utc": [None],
            "end_utc": [None],
            "duration_s": [600.0],
            "programmed_ma": [15.0],
            "mean_ma": [14.9],
            "charge_mc": [8940.0],
            "polarity_switches": [1],
            "end_reason": ["COMPLETED"],
            "fault_code": [None],
            "within_tolerance_share": [0.98],
            "clock_reset": [False],
            "n_duplicate_events": [0],
            "start_utc_placed": [None],
            "source_files": [["C01/2026-03-09/ibu_0001.jsonl"]],
        },
        schema=contract.schema,
    )
    raw = read_delivery(
        MINI, study, extra_session_readers=[lambda root, manifest: (ibu, ibu.clear())]
    )
    assert raw.device_sessions.filter(vendor="IBU")["session_key"].to_list() == ["IBU:IBU-7:1"]
    with pytest.raises(ValueError, match="lacks columns"):
        build_device_sessions([raw.device_sessions, ibu.drop("vendor")])
