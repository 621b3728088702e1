"""Vendor-B lines stored as a 64-bit hash of their text (issue 15): each delivery's parsed
events keep the text only where the resolution reads it, exact duplicates are found by the
hash and decided on the text, and a text the resolution needs beyond that (a hash repeated
across deliveries, an event a trial-level rule quarantines) is read back from the raw file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.contracts import cast_frame, load_contract
from ingest.device_sessions import summarise_sessions
from ingest.readers import vendor_b_stream
from ingest.readers.vendor_b import read_vendor_b_files
from ingest.telemetry import parse_delivery_telemetry, read_telemetry, resolve_telemetry

TOLERANCE_PCT = 10.0
BY_LINE = ["source_file", "source_line"]


def _ev(ts: str, ev: str, tail: str = "") -> str:
    return f'{{"ts":"2026-03-14T18:00:{ts}Z","dev":"B-00042","ev":"{ev}","sid":"7f3c"{tail}}}'


def _sample(ts: str, ma: float) -> str:
    return _ev(ts, "sample", f',"ma":{ma},"v":20.0')


def _write(raw: Path, files: dict[str, list[str]]) -> list[list[Path]]:
    """The files, one delivery per folder, in folder order."""
    folders: dict[Path, list[Path]] = {}
    for name, lines in files.items():
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines), "utf-8")
        folders.setdefault(path.parent, []).append(path)
    return [sorted(folders[f]) for f in sorted(folders)]


def _collide_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line's hash is 0: every pair of lines collides."""
    monkeypatch.setattr(
        vendor_b_stream, "line_hash", lambda text: text.str.len_bytes().cast(pl.UInt64) * 0
    )


def _reader(raw: Path, deliveries: list[list[Path]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The plain reader's distinct events and sessions over every file."""
    events, _ = read_vendor_b_files([p for d in deliveries for p in d], raw)
    sessions = summarise_sessions(events, TOLERANCE_PCT).collect()
    return events, cast_frame(sessions, load_contract("device_sessions"))


def test_stored_events_keep_the_text_only_where_the_resolution_reads_it(tmp_path: Path) -> None:
    """Text kept on a line whose hash repeats in the delivery and on a line whose key count is
    odd (the key findings read it); every other line is its hash alone."""
    raw = tmp_path / "raw"
    lines = [
        _ev("00.000", "start", ',"ma_set":10.0'),
        _sample("00.500", 10.0),
        _sample("00.500", 10.0),  # an exact copy
        _sample("01.000", 11.0),
        _ev("01.200", "polarity", ',"volt":3'),  # a key the spec does not name
        _ev("01.500", "end", ',"reason":"COMPLETED"'),
    ]
    (paths,) = _write(raw, {"C01/2026-03-16/ionto-b_B-00042_20260314180000.jsonl": lines})
    events, _ = parse_delivery_telemetry(paths, raw)
    events = events.sort(BY_LINE)
    kept = events.filter(pl.col("raw_text").is_not_null())
    assert kept["source_line"].to_list() == [2, 3, 5]
    assert kept["raw_text"].to_list() == [lines[1], lines[2], lines[4]]
    expected = pl.Series(lines).hash()
    assert events["line_hash"].to_list() == expected.to_list()


def test_the_line_hash_does_not_change_between_runs() -> None:
    """The hash is stored with each delivery's events and compared with hashes made in later
    runs: a Polars whose hash differs must fail here (and the stored deliveries be read
    again), not leave duplicates across deliveries undetected."""
    line = _sample("00.500", 10.0)
    hashed = pl.select(vendor_b_stream.line_hash(pl.lit(line))).item()
    assert hashed == 15316009885470010110


def test_a_collision_across_deliveries_is_decided_on_the_text_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three deliveries of one line each (so no delivery keeps a text): two different lines
    and a copy of the first. Under a hash where all three collide, the texts are read back
    from the raw files: the two different lines are both kept and only the copy is counted."""
    raw = tmp_path / "raw"
    first, other = _sample("00.500", 10.0), _sample("01.000", 12.0)
    deliveries = _write(
        raw,
        {
            "C01/2026-03-16/ionto-b_B-00042_20260314180000.jsonl": [first],
            "C01/2026-03-23/ionto-b_B-00042_20260314180001.jsonl": [other],
            "C01/2026-03-30/ionto-b_B-00042_20260314180002.jsonl": [first],
        },
    )
    _collide_all(monkeypatch)
    telemetry, _ = read_telemetry(deliveries, raw, TOLERANCE_PCT, tmp_path / "work")
    stored = pl.read_parquet(tmp_path / "work" / "parsed" / "*.parquet")
    assert stored["line_hash"].n_unique() == 1
    assert stored["raw_text"].null_count() == 3
    events, sessions = _reader(raw, deliveries)
    assert_frame_equal(telemetry.events.collect().sort(BY_LINE), events.sort(BY_LINE))
    assert telemetry.events.collect().height == 2
    assert_frame_equal(telemetry.sessions, sessions)
    assert telemetry.sessions["n_duplicate_events"].to_list() == [1]


def test_events_quarantined_by_the_resolution_keep_their_line(tmp_path: Path) -> None:
    """An implausible current and a time stamp out of order are judged across the delivery's
    lines, after the text was left out of the stored events: their quarantine rows still
    hold the line as delivered, read back from the raw file."""
    raw = tmp_path / "raw"
    lines = [
        _ev("00.000", "start", ',"ma_set":10.0'),
        _sample("00.500", 10.0),
        _sample("01.000", 40.0),  # above the plausible 30 mA
        _sample("01.500", 10.0),
        _sample("01.750", 10.0).replace("03-14", "03-13"),  # a day back
        _sample("02.000", 10.0),
        _ev("02.500", "end", ',"reason":"COMPLETED"'),
    ]
    deliveries = _write(raw, {"C01/2026-03-16/ionto-b_B-00042_20260314180000.jsonl": lines})
    telemetry, quarantine = read_telemetry(deliveries, raw, TOLERANCE_PCT, tmp_path / "work")
    stored = pl.read_parquet(tmp_path / "work" / "parsed" / "*.parquet")
    assert stored["raw_text"].null_count() == len(lines)
    rows = quarantine.sort(BY_LINE).select("source_line", "reason_code", "raw_text").rows()
    assert rows == [
        (3, "IMPLAUSIBLE_VALUE", lines[2]),
        (5, "TIMESTAMP_BACKWARDS", lines[4]),
    ]
    assert telemetry.events.collect().height == len(lines) - 2


def test_a_raw_file_that_no_longer_holds_its_line_is_named(tmp_path: Path) -> None:
    """A text read back must have the stored hash: a raw file changed after its delivery was
    parsed is named with its line, never compared or quarantined under the wrong text."""
    raw = tmp_path / "raw"
    first = _sample("00.500", 10.0)
    deliveries = _write(
        raw,
        {
            "C01/2026-03-16/ionto-b_B-00042_20260314180000.jsonl": [first],
            "C01/2026-03-23/ionto-b_B-00042_20260314180001.jsonl": [first],
        },
    )
    events = [parse_delivery_telemetry(d, raw)[0] for d in deliveries]
    deliveries[1][0].write_text(_sample("00.500", 11.0) + "\n", "utf-8")
    parsed = tmp_path / "parsed"
    parsed.mkdir()
    for number, frame in enumerate(events):
        frame.write_parquet(parsed / f"{number}.parquet")
    current = pl.DataFrame({"source_file": [d[0].relative_to(raw).as_posix() for d in deliveries]})
    scans = [pl.scan_parquet(parsed / f"{n}.parquet") for n in range(2)]
    with pytest.raises(ValueError, match=r"2026-03-23/ionto-b_B-00042_20260314180001.jsonl line 1"):
        resolve_telemetry(scans, current, raw, TOLERANCE_PCT, tmp_path / "events")
