"""Vendor-B streams: sessions across files, duplicates, truncated lines, hand-computed summaries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from data_contracts.contracts import blocking_failures, check_frame, load_contract
from ingest.device_sessions import summarise_sessions
from ingest.landing import scan_raw
from ingest.readers.vendor_b import read_vendor_b, read_vendor_b_files

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
MINI = FIXTURES / "mini"
BAD = FIXTURES / "bad"
UTC = dt.UTC


def test_truncated_last_line_duplicates_and_crlf() -> None:
    events, q = read_vendor_b(MINI, scan_raw(MINI))
    assert blocking_failures(check_frame(events, load_contract("vendor_b_events"))) == []
    assert q.select("source_file", "source_line", "reason_code").rows() == [
        ("C01/2026-02-09/ionto-b_B-00002_20260125180000.jsonl", 10, "TRUNCATED_LINE")
    ]
    assert q["raw_text"][0].endswith('"ev":"samp')
    # 9 good lines in file 1; file 2 (CRLF, a blank line 5): 5 events, one exact duplicate
    assert events.height == 13
    dup = events.filter(pl.col("n_duplicates") > 0)
    assert dup.select("source_file", "source_line", "n_duplicates").rows() == [
        ("C01/2026-03-09/ionto-b_B-00002_20260126180001.jsonl", 2, 1)
    ]
    resent = events.filter(source_line=1, sid="bb02").row(0, named=True)
    assert resent["ts"] == dt.datetime(2026, 1, 26, 18, 0, 1, 500000, tzinfo=UTC)
    assert events.filter(ev="end")["source_line"].to_list() == [6, 6]


def test_session_summaries_by_hand() -> None:
    events, _ = read_vendor_b(MINI, scan_raw(MINI))
    s = {
        r["session_key"]: r
        for r in summarise_sessions(events, 10.0).collect().iter_rows(named=True)
    }
    a = s["B:B-00002:aa01"]
    # samples 10, 12, 8 mA at 0.5 s steps: trapezoid (10+12)/2*0.5 + (12+8)/2*0.5 = 10.5 mC
    assert a["charge_mc"] == pytest.approx(10.5)
    assert a["mean_ma"] == pytest.approx(10.0)
    assert a["within_tolerance_share"] == pytest.approx(1 / 3)  # only 10 is within 10 +/- 1
    assert (a["polarity_switches"], a["end_reason"], a["fault_code"]) == (1, "COMPLETED", None)
    assert a["duration_s"] == pytest.approx(2.0)
    assert a["programmed_ma"] == 10.0
    assert a["start_utc"] == dt.datetime(2026, 1, 25, 18, 0, tzinfo=UTC)
    b = s["B:B-00002:bb02"]
    # spans two files; the duplicate 17 mA sample counts once: 15, 15, 14, 17
    assert b["source_files"] == [
        "C01/2026-02-09/ionto-b_B-00002_20260125180000.jsonl",
        "C01/2026-03-09/ionto-b_B-00002_20260126180001.jsonl",
    ]
    assert b["n_duplicate_events"] == 1
    assert b["mean_ma"] == pytest.approx(15.25)
    assert b["charge_mc"] == pytest.approx((15 + 15) / 4 + (15 + 14) / 4 + (14 + 17) / 4)
    assert b["within_tolerance_share"] == pytest.approx(0.75)
    assert (b["fault_code"], b["end_reason"], b["polarity_switches"]) == ("E03", "FAULT", 0)
    assert b["duration_s"] == pytest.approx(2.5)
    assert b["end_utc"] == dt.datetime(2026, 1, 26, 18, 0, 2, 500000, tzinfo=UTC)


def test_bad_lines_are_quarantined_and_the_rest_is_read() -> None:
    path = BAD / "C02/2026-03-09/ionto-b_B-00011_20260301100000.jsonl"
    events, q = read_vendor_b_files([path], BAD)
    assert events["source_line"].to_list() == [1, 2, 7]
    assert q.select("source_line", "field", "reason_code").rows() == [
        (3, None, "BAD_JSON"),
        (4, "ev", "NOT_IN_CODELIST"),
        (5, "ma", "MISSING_REQUIRED"),
        (6, "ts", "BAD_DATE"),
        (8, None, "TRUNCATED_LINE"),
    ]


def test_json_that_polars_cannot_decode_is_found_line_by_line(tmp_path: Path) -> None:
    folder = tmp_path / "C01" / "2026-03-09"
    folder.mkdir(parents=True)
    ok = '{"ts":"2026-03-01T10:00:00.000Z","dev":"B-1","ev":"start","sid":"x","ma_set":15.0}'
    lines = [ok, '{"ts":["2026"],"dev":"B-1","ev":"end","sid":"x","reason":"FAULT"}', "[1]", ok]
    (folder / "ionto-b_B-1_20260301100000.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "ionto-b_B-2_20260301100000.jsonl").write_text(ok.replace("B-1", "B-2") + "\n")
    events, q = read_vendor_b(tmp_path, scan_raw(tmp_path))
    assert q.select("source_line", "reason_code").rows() == [(2, "BAD_JSON"), (3, "BAD_JSON")]
    # the exact repeat of line 1 on line 4 is a duplicate, not an error
    assert events.select("dev", "source_line", "n_duplicates").sort("dev").rows() == [
        ("B-1", 1, 1),
        ("B-2", 1, 0),
    ]


def test_a_number_too_long_to_read_is_quarantined_not_fatal(tmp_path: Path) -> None:
    """Python's JSON decoder reads a 40-digit integer, Polars' does not: the line is
    quarantined and the rest of the file read."""
    folder = tmp_path / "C01" / "2026-03-09"
    folder.mkdir(parents=True)
    ok = '{"ts":"2026-03-01T10:00:00.000Z","dev":"B-1","ev":"start","sid":"x","ma_set":15.0}'
    long = ok.replace("15.0", "1" * 40).replace("10:00:00", "10:00:01")
    lines = [ok, long, "{broken", ok.replace("start", "polarity").replace("10:00:00", "10:00:02")]
    (folder / "ionto-b_B-1_20260301100000.jsonl").write_text("\n".join(lines) + "\n")
    events, q = read_vendor_b(tmp_path, scan_raw(tmp_path))
    assert q.select("source_line", "reason_code").rows() == [(2, "BAD_JSON"), (3, "BAD_JSON")]
    assert events["source_line"].to_list() == [1, 4]


def test_not_utf8_file(tmp_path: Path) -> None:
    folder = tmp_path / "C01" / "2026-03-09"
    folder.mkdir(parents=True)
    (folder / "ionto-b_B-1_20260301100000.jsonl").write_bytes(b'{"ts":"\xff"}\n')
    events, q = read_vendor_b(tmp_path, scan_raw(tmp_path))
    assert events.height == 0
    assert q.select("source_line", "reason_code").rows() == [(None, "NOT_UTF8")]
