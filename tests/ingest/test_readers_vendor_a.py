"""Vendor-A exports: header, UTC conversion, repeats, factory reset, clock reset placement."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from data_contracts.contracts import blocking_failures, check_frame, load_contract
from ingest.landing import scan_raw
from ingest.readers.vendor_a import read_vendor_a, read_vendor_a_file, read_vendor_a_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
MINI = FIXTURES / "mini"
BAD = FIXTURES / "bad"
UTC = dt.UTC
HEADER = (
    "#serial=A-00005\n#firmware=1.0\n#exported_at={exported}\n#utc_offset={offset}\n"
    "session_no,start,duration_s,programmed_ma,mean_ma,max_v,charge_mc,polarity_switches,"
    "end_reason,fault_code\n"
)


def session(no: int, start: str) -> str:
    return f"{no},{start},1200,15.0,14.8,22.0,17760.0,1,COMPLETED,\n"


def write_export(folder: Path, name: str, exported: str, offset: str, rows: list[str]) -> Path:
    path = folder / "C01" / "2026-03-09" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER.format(exported=exported, offset=offset) + "".join(rows))
    return path


def test_repeats_are_deduplicated_and_factory_reset_sessions_kept_apart() -> None:
    a, q = read_vendor_a(MINI, scan_raw(MINI))
    assert q.height == 0
    assert blocking_failures(check_frame(a, load_contract("vendor_a_sessions"))) == []
    one = a.filter(serial="A-00001")
    # 3 sessions in the first export, repeated with 2 more in the next, then a factory reset:
    # counter 1 and 2 again, with other starts
    assert one.height == 7
    assert one.select("session_no", "start").rows() == [
        (1, "2026-01-19T19:00:00"),
        (2, "2026-01-21T19:00:00"),
        (3, "2026-01-24T20:30:00"),
        (4, "2026-02-03T19:00:00"),
        (5, "2026-02-05T19:00:00"),
        (1, "2026-02-20T19:00:00"),
        (2, "2026-02-22T19:00:00"),
    ]
    assert one["n_exports"].to_list() == [2, 2, 2, 1, 1, 1, 1]
    first = one.row(0, named=True)
    assert first["source_files"] == [
        "C01/2026-02-09/ionto-a_A-00001_20260201.csv",
        "C01/2026-03-09/ionto-a_A-00001_20260215.csv",
    ]
    # the latest export's row is kept: its header line is line 5, session 1 on line 6
    assert (first["source_file"], first["source_line"]) == (
        "C01/2026-03-09/ionto-a_A-00001_20260215.csv",
        6,
    )
    assert first["start_utc"] == dt.datetime(2026, 1, 19, 18, 0, tzinfo=UTC)  # +01:00
    assert first["exported_at"] == dt.datetime(2026, 2, 15, 12, 0)
    assert first["firmware"] == "3.2.1" and first["utc_offset"] == "+01:00"
    fault = one.filter(session_no=5).row(0, named=True)
    assert (fault["end_reason"], fault["fault_code"], fault["charge_mc"]) == (
        "FAULT",
        "E03",
        4200.0,
    )
    assert not one["clock_reset"].any()


def test_clock_reset_sessions_are_flagged_and_placed_by_the_counter() -> None:
    a, q = read_vendor_a_file(MINI / "C01/2026-03-09/ionto-a_A-00003_20260307.csv", MINI)
    assert q.height == 0
    rows = {r["session_no"]: r for r in a.iter_rows(named=True)}
    assert [n for n, r in sorted(rows.items()) if r["clock_reset"]] == [3, 4]
    # The clock ran from 2000-01-01 when the battery died. The death came after session 2
    # ended (02-23 18:20 UTC) and early enough for session 4 (2 d 00:10 after the restart,
    # 20 min long) to end before session 5 (03-01 18:00 UTC): death in
    # [02-23 18:20, 02-27 17:30], midpoint 02-25 17:55; each start is death + printed time.
    assert rows[3]["start_utc_placed"] == dt.datetime(2026, 2, 25, 18, 5, tzinfo=UTC)
    assert rows[4]["start_utc_placed"] == dt.datetime(2026, 2, 27, 18, 5, tzinfo=UTC)
    assert rows[3]["start_placement"] == "interpolated"
    # the recorded value is kept as delivered
    assert rows[3]["start"] == "2000-01-01T00:10:00"
    assert rows[3]["start_utc"] == dt.datetime(1999, 12, 31, 23, 10, tzinfo=UTC)
    assert rows[5]["start_placement"] == "recorded"
    assert rows[5]["start_utc_placed"] == rows[5]["start_utc"]


def test_clock_reset_at_the_end_of_an_export_is_extrapolated_or_unplaced(tmp_path: Path) -> None:
    rows = [
        session(1, "2026-02-01T19:00:00"),
        session(2, "2026-02-03T19:00:00"),
        session(3, "2026-02-07T19:00:00"),
        session(4, "2000-01-01T00:05:00"),
    ]
    path = write_export(
        tmp_path, "ionto-a_A-00005_20260209.csv", "2000-01-02T10:00:00", "-03:30", rows
    )
    a, q = read_vendor_a_file(path, tmp_path)
    assert q.height == 0
    last = a.filter(session_no=4).row(0, named=True)
    assert last["clock_reset"] and last["start_placement"] == "extrapolated"
    # no later good session and the export itself is dated from the restart: only the lower
    # bound (session 3 ended 02-07 22:50 UTC) is known; 5 min after the restart
    assert last["start_utc_placed"] == dt.datetime(2026, 2, 7, 22, 55, tzinfo=UTC)
    good = a.filter(session_no=1).row(0, named=True)
    assert good["start_utc"] == dt.datetime(2026, 2, 1, 22, 30, tzinfo=UTC)  # -03:30
    only_reset = write_export(
        tmp_path,
        "ionto-a_A-00005_20260210.csv",
        "2000-01-02T10:00:00",
        "+01:00",
        [session(1, "2000-01-01T00:05:00")],
    )
    b, _ = read_vendor_a_file(only_reset, tmp_path)
    assert b.row(0, named=True)["start_placement"] == "unplaced"
    assert b.row(0, named=True)["start_utc_placed"] is None


def test_sessions_after_the_export_time_or_before_consent_are_clock_resets(
    tmp_path: Path,
) -> None:
    rows = [session(1, "2026-02-01T19:00:00"), session(2, "2026-03-20T19:00:00")]
    path = write_export(
        tmp_path, "ionto-a_A-00005_20260209.csv", "2026-02-09T12:00:00", "+01:00", rows
    )
    a, _ = read_vendor_a_file(path, tmp_path)
    assert a.sort("session_no")["clock_reset"].to_list() == [False, True]
    assert a.sort("session_no")["start_placement"].to_list() == ["recorded", "unplaced"]
    consent = pl.DataFrame({"serial": ["A-00005"], "consent_date": [dt.date(2026, 2, 2)]})
    b, _ = read_vendor_a_files([path], tmp_path, consent)
    assert b.sort("session_no")["clock_reset"].to_list() == [True, True]


def test_bad_exports() -> None:
    a, q = read_vendor_a_file(BAD / "C02/2026-03-09/ionto-a_A-00009_20260301.csv", BAD)
    assert a.height == 0
    assert q.select("source_line", "field", "reason_code").rows() == [
        (1, "utc_offset", "BAD_HEADER")
    ]
    a, q = read_vendor_a_file(BAD / "C02/2026-03-09/ionto-a_A-00010_20260301.csv", BAD)
    assert a["session_no"].to_list() == [1]
    assert q.select("source_line", "field", "reason_code").rows() == [
        (7, None, "WRONG_FIELD_COUNT"),
        (8, "end_reason", "NOT_IN_CODELIST"),
        (9, "start", "BAD_DATE"),
    ]
    assert q["raw_text"][0] == "2;2026-02-22T1#@~%"


def test_serial_differing_from_the_file_name_is_a_bad_header(tmp_path: Path) -> None:
    path = write_export(
        tmp_path,
        "ionto-a_A-00006_20260209.csv",
        "2026-02-09T12:00:00",
        "+01:00",
        [session(1, "2026-02-01T19:00:00")],
    )
    a, q = read_vendor_a_file(path, tmp_path)
    assert a.height == 0
    assert q.select("source_line", "field", "reason_code").rows() == [(1, "serial", "BAD_HEADER")]


def test_other_clock_resets_are_placed_linearly_in_the_counter(tmp_path: Path) -> None:
    rows = [
        session(1, "2026-02-01T19:00:00"),
        session(2, "2026-05-01T19:00:00"),  # after the export: the clock was wrong
        session(3, "2026-02-05T19:00:00"),
    ]
    path = write_export(
        tmp_path, "ionto-a_A-00005_20260209.csv", "2026-02-09T12:00:00", "+01:00", rows
    )
    a, _ = read_vendor_a_file(path, tmp_path)
    wrong = a.filter(session_no=2).row(0, named=True)
    assert wrong["clock_reset"] and wrong["start_placement"] == "interpolated"
    assert wrong["start_utc_placed"] == dt.datetime(2026, 2, 3, 18, 0, tzinfo=UTC)
    assert wrong["start_utc"] == dt.datetime(2026, 5, 1, 18, 0, tzinfo=UTC)


def test_a_repeat_reporting_other_values_is_quarantined_and_the_later_export_wins(
    tmp_path: Path,
) -> None:
    first = write_export(
        tmp_path,
        "ionto-a_A-00005_20260209.csv",
        "2026-02-09T12:00:00",
        "+01:00",
        [session(1, "2026-02-01T19:00:00")],
    )
    changed = session(1, "2026-02-01T19:00:00").replace("17760.0", "17700.0")
    later = write_export(
        tmp_path,
        "ionto-a_A-00005_20260216.csv",
        "2026-02-16T12:00:00",
        "+01:00",
        [changed, session(2, "2026-02-03T19:00:00")],
    )
    a, q = read_vendor_a_files([first, later], tmp_path)
    assert a.select("session_no", "charge_mc", "n_exports").rows() == [
        (1, 17700.0, 2),
        (2, 17760.0, 1),
    ]
    assert q.select("source_file", "source_line", "field", "reason_code").rows() == [
        ("C01/2026-03-09/ionto-a_A-00005_20260209.csv", 6, "charge_mc", "CONFLICTING_REPEAT")
    ]
    assert "ionto-a_A-00005_20260216.csv line 6" in q["message"][0]
    assert q["raw_text"][0] == session(1, "2026-02-01T19:00:00").strip()
