"""The raw group of the asset graph on whole raw trees (materialised on a temporary folder):
every dataset, the full quarantine, idempotence, and device sessions from every registered
format."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from materialise import materialise_tree
from polars.testing import assert_frame_equal

from data_contracts.contracts import blocking_failures, check_frame, list_contracts, load_contract
from ingest.device_sessions import build_device_sessions, registry_device_sessions
from ingest.registry import SOURCES
from ingest.source_format import Resolved, SourceFormat
from study import Study, load_study

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
MINI = FIXTURES / "mini"
BAD = FIXTURES / "bad"
STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"
LINEAGE = {"source_file", "source_line", "source_files", "kept_file", "superseded_file"}
RAW = [
    "dm",
    "eligibility",
    "visits",
    "hdss",
    "ae",
    "cm",
    "disposition",
    "devices",
    "gravimetry",
    "vendor_a_sessions",
]
"""Raw datasets compared between runs (with the sessions, papers and quarantine)."""


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    return materialise_tree(MINI, tmp_path_factory.mktemp("mini"), STUDY_FILE)


VISITS = (
    "subject_id,visit,visit_date,status\n"
    "C01-0001,BL,2026-01-19,DONE\nC01-0001,W1,2026-01-26,DONE\nC01-0002,BL,2026-01-20,DONE\n"
)
"""The visits of the mini tree's papers (the tree itself has no visits.csv: every paper is then
at a visit not done, a trial-level rule)."""


@pytest.fixture(scope="module")
def mini_visited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    base = tmp_path_factory.mktemp("mini_visited")
    shutil.copytree(MINI, base / "raw")
    (base / "raw" / "C01" / "2026-03-09" / "visits.csv").write_text(VISITS)
    return materialise_tree(base / "raw", base / "out", STUDY_FILE)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    return materialise_tree(BAD, tmp_path_factory.mktemp("bad"), STUDY_FILE)


def test_every_frame_of_a_legal_tree_satisfies_its_contract(
    mini: dict[str, pl.DataFrame], mini_visited: dict[str, pl.DataFrame]
) -> None:
    assert mini["randomisation"].height == 0  # blinded
    checked = [name for name in mini if name in list_contracts()]
    assert {*RAW, "landing_manifest", "device_sessions", "quarantine"} <= set(checked)
    for name in checked:
        assert blocking_failures(check_frame(mini[name], load_contract(name))) == [], name
    assert mini_visited["quarantine"].select(
        "source_file", "source_line", "reason_code"
    ).rows() == [
        ("C01/2026-02-09/ionto-b_B-00002_20260125180000.jsonl", 10, "TRUNCATED_LINE"),
        ("C01/2026-04-06/README.txt", None, "UNKNOWN_FILE"),
    ]
    sessions = mini["device_sessions"]
    assert sessions.group_by("vendor").len().sort("vendor").rows() == [("A", 12), ("B", 2)]
    assert sessions["session_key"].is_unique().all()
    assert mini_visited["gravimetry_duplicates"].height == 1
    assert mini_visited["gravimetry"].height == 6  # 4 + 3 papers, one a later copy
    # Without visits.csv every paper is at a visit not done: quarantined, none analysed.
    not_done = mini["quarantine"].filter(pl.col("reason_code") == "VISIT_NOT_DONE")
    assert not_done.height == 7 and mini["gravimetry"].height == 0
    assert mini["dm"].height == 3 and mini["devices"].height == 3 and mini["ae"].height == 1
    assert mini["visits"].height == 0 and mini["visits"].schema == load_contract("visits").schema


def test_the_whole_quarantine_of_the_bad_tree(bad: dict[str, pl.DataFrame]) -> None:
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
        # the trial-level rule after the readers: visits.csv is unreadable, so no visit is done
        (grav, 6, "gravimetry", "visit", "VISIT_NOT_DONE"),
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
    quarantine = bad["quarantine"]
    got = quarantine.select("source_file", "source_line", "dataset", "field", "reason_code")
    assert sorted(got.rows(), key=str) == sorted(
        [(d + f, line, ds, fld, code) for f, line, ds, fld, code in expected], key=str
    )
    assert blocking_failures(check_frame(quarantine, load_contract("quarantine"))) == []
    assert quarantine.select(pl.col("message").str.starts_with(pl.col("source_file")).all()).item()
    # the good rows of the damaged files are still read
    assert bad["dm"]["subject_id"].to_list() == ["C02-0001"]
    assert bad["vendor_b_events"].height == 3


def _without_lineage(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    names = [*RAW, "gravimetry_duplicates", "vendor_b_events", "device_sessions", "quarantine"]
    return {k: tables[k].drop([c for c in tables[k].columns if c in LINEAGE]) for k in names}


def test_rereading_and_redelivering_the_same_files_change_nothing(
    mini_visited: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(MINI, raw)
    (raw / "C01" / "2026-03-09" / "visits.csv").write_text(VISITS)
    again = materialise_tree(raw, tmp_path / "again", STUDY_FILE)
    for name in [*RAW, "landing_manifest", "device_sessions", "quarantine", "vendor_b_events"]:
        assert_frame_equal(again[name], mini_visited[name])
    # a whole delivery arrives again, byte for byte, under a new date
    shutil.copytree(raw / "C01" / "2026-03-09", raw / "C01" / "2026-05-04")
    repeated = materialise_tree(raw, tmp_path / "repeated", STUDY_FILE)
    assert repeated["landing_manifest"].height == mini_visited["landing_manifest"].height + 9
    before, after = _without_lineage(mini_visited), _without_lineage(repeated)
    assert before.keys() == after.keys()
    for name in before:
        assert_frame_equal(after[name], before[name], check_row_order=False)


def test_sessions_of_every_registered_format_join_device_sessions(
    mini: dict[str, pl.DataFrame],
) -> None:
    """A further session-making format (here: bench sessions handed over whole) adds its rows
    to ``device_sessions``; a frame that lacks a contract column is refused, not coerced."""
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
    extra = SourceFormat(
        kind="extra",
        pattern=r"^extra_.*\.parquet$",
        datasets=("extra_sessions",),
        resolve=lambda _resolution: Resolved({"extra_sessions": ibu}),
        sessions=lambda datasets, _tolerance: datasets["extra_sessions"],
        session_inputs=("extra_sessions",),
    )
    sessions = registry_device_sessions(
        [*SOURCES, extra], {**mini, "extra_sessions": ibu}, tolerance_pct=10.0
    )
    assert sessions.filter(vendor="IBU")["session_key"].to_list() == ["IBU:IBU-7:1"]
    assert sessions.height == mini["device_sessions"].height + 1
    with pytest.raises(ValueError, match="lacks columns"):
        build_device_sessions([mini["device_sessions"], ibu.drop("vendor")])
