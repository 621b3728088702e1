"""The pipeline's telemetry path (each delivery parsed alone, then resolved across deliveries
one range of devices at a time: ``ingest.telemetry``) gives the reader's results on
hand-written deliveries.

The delivery has every case a rule looks at: broken JSON mid-file, a half-written last line
re-sent whole in the next file, exact duplicate lines (in one file and across files), a
session spanning two files, CRLF line ends with a byte-order mark and a blank line, lines
that are valid JSON but not in the devices' canonical shape (the fast path hands them to the
reader), values outside the contract, a file that is not UTF-8, and a file named for one
device holding a line of another. A second delivery has the edges of the line scan (blank
and empty files, trailing blank lines, a byte-order mark past line 1, a file listed twice)
and of the fast path's numbers (forms JSON or the reader's decoder reads differently).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.contracts import cast_frame, load_contract
from ingest.device_sessions import summarise_sessions
from ingest.readers import vendor_b_stream
from ingest.readers.vendor_b import read_vendor_b_files, vendor_b_lines
from ingest.readers.vendor_b_stream import (
    batch_lines,
    canonical_pattern,
    device_batches,
    parse_lines,
)
from ingest.telemetry import NO_DEVICE, RANGES, pack_ranges, range_of, read_telemetry

TOLERANCE_PCT = 10.0


def _ev(ts: str, dev: str, ev: str, sid: str, tail: str = "") -> str:
    return f'{{"ts":"2026-03-14T{ts}Z","dev":"{dev}","ev":"{ev}","sid":"{sid}"{tail}}}'


def _sample(ts: str, dev: str, sid: str, ma: float, v: float = 20.0) -> str:
    return _ev(ts, dev, "sample", sid, f',"ma":{ma},"v":{v}')


DUP = _sample("18:00:01.000", "B-00042", "7f3c", 10.0)
RESENT = _sample("18:00:02.000", "B-00042", "7f3c", 9.0)

FILES: dict[str, bytes] = {
    # Session 7f3c: start, samples 10, 10 (twice: an exact duplicate), a broken line, 12, 9
    # (cut off at the end of the file, re-sent whole as line 1 of the next file), polarity,
    # 11, end. Samples every 0.5 s: 10, 10, 12, 9, 11.
    "C01/2026-03-14/ionto-b_B-00042_20260314180000.jsonl": "\n".join(
        [
            _ev("18:00:00.000", "B-00042", "start", "7f3c", ',"ma_set":10.0'),
            _sample("18:00:00.500", "B-00042", "7f3c", 10.0),
            DUP,
            DUP,
            '{"ts":"2026-03-14T18:00:01.250Z","dev":"B-00042","ev":"sample","sid":"7f3c","ma":1',
            _sample("18:00:01.500", "B-00042", "7f3c", 12.0),
            RESENT[: len(RESENT) // 2],
        ]
    ).encode(),
    "C01/2026-03-15/ionto-b_B-00042_20260314180002.jsonl": (
        "\n".join(
            [
                RESENT,
                _ev("18:00:02.250", "B-00042", "polarity", "7f3c"),
                _sample("18:00:02.500", "B-00042", "7f3c", 11.0),
                _ev("18:00:02.500", "B-00042", "end", "7f3c", ',"reason":"COMPLETED"'),
            ]
        )
        + "\n"
    ).encode(),
    # Device B-00043, CRLF with a byte-order mark and a blank line. Session 0a01 has a
    # non-canonical line (spaces, keys reordered: valid JSON the reader reads), a fault, and
    # bad lines: unknown event type, a sample without "ma", an impossible date, a negative
    # current. Then a B-00042 line that duplicates one of C01 (a file holding another
    # device's event).
    "C02/2026-03-14/ionto-b_B-00043_20260314190000.jsonl": (
        "\ufeff"
        + "\r\n".join(
            [
                _ev("19:00:00.000", "B-00043", "start", "0a01", ',"ma_set":15.0'),
                _sample("19:00:00.500", "B-00043", "0a01", 15.0),
                "",
                '{"sid": "0a01", "ev": "sample", "dev": "B-00043", "ma": 16.5, "v": 30, '
                '"ts": "2026-03-14T19:00:01.000Z"}',
                _ev("19:00:01.100", "B-00043", "pause", "0a01"),
                _ev("19:00:01.200", "B-00043", "sample", "0a01", ',"v":20.0'),
                _sample("19:00:01.300", "B-00043", "0a01", 13.0).replace("03-14", "02-30"),
                _sample("19:00:01.400", "B-00043", "0a01", -1.0),
                _sample("19:00:01.500", "B-00043", "0a01", 18.0),
                _ev("19:00:01.500", "B-00043", "fault", "0a01", ',"code":"E03"'),
                _ev("19:00:01.500", "B-00043", "end", "0a01", ',"reason":"FAULT"'),
                DUP,
            ]
        )
        + "\r\n"
    ).encode(),
    "C02/2026-03-15/ionto-b_B-00043_20260315190000.jsonl": b'{"ts":"\xff"}\n',
}


def _sample_v(ts: str, ma: str, v: str) -> str:
    return _ev(ts, "B-00044", "sample", "0b01", f',"ma":{ma},"v":{v}')


# Device B-00044: the edges of the line scan and of the fast path's numbers.
EDGES: dict[str, bytes] = {
    "C03/2026-03-14/ionto-b_B-00044_20260314200000.jsonl": (
        "\n".join(
            [
                _ev("20:00:00.000", "B-00044", "start", "0b01", ',"ma_set":12.0'),
                _sample_v("20:00:00.500", "12.25", "-0"),  # the decoder reads -0 as 0
                _sample_v("20:00:01.000", "12.5", "-0.0"),
                _sample_v("20:00:01.500", "012.5", "20"),  # leading zero: not JSON
                _sample_v("20:00:02.000", "12.0", "-1234567890123456"),  # 16 digits
                _sample_v("20:00:02.500", "0.12345678901234567890", "7"),  # 20 decimals
                _sample_v("20:00:03.000", "1" + "0" * 30, "7"),  # past 15 integer digits
                _sample_v("20:00:03.250", "1" * 40, "7"),  # too long for Polars' decoder
                _sample_v("20:00:03.500", "\u0661\u0662", "7"),  # Arabic-Indic digits
                "\ufeff" + _sample_v("20:00:04.000", "12.0", "7"),  # a mark past line 1
                " \t\u00a0\u3000",  # Unicode whitespace: a blank line
                _ev("20:00:04.500", "B-00044", "end", "0b01", ',"reason":"COMPLETED"'),
                "",
                "   ",
            ]
        )
        + "\r\n"
    ).encode(),
    "C03/2026-03-14/ionto-b_B-00044_20260314200001.jsonl": b"",
    "C03/2026-03-14/ionto-b_B-00044_20260314200002.jsonl": b"\xef\xbb\xbf\r\n\n  \n",
    "C03/2026-03-14/ionto-b_B-00044_20260314200003.jsonl": (
        "\ufeff" + _sample_v("20:00:05.000", "12.0", "7") + "\r"
    ).encode(),
}


def _write(raw: Path, files: dict[str, bytes]) -> list[Path]:
    for name, data in files.items():
        path = raw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sorted(raw.rglob("*.jsonl"))


@pytest.fixture
def delivery(tmp_path: Path) -> tuple[Path, list[Path]]:
    raw = tmp_path / "raw"
    return raw, _write(raw, FILES)


@pytest.fixture
def edges(tmp_path: Path) -> tuple[Path, list[Path]]:
    raw = tmp_path / "raw"
    return raw, _write(raw, {**FILES, **EDGES})


def _by_folder(paths: list[Path]) -> list[list[Path]]:
    """The files as deliveries: one list per folder."""
    folders: dict[Path, list[Path]] = {}
    for path in paths:
        folders.setdefault(path.parent, []).append(path)
    return list(folders.values())


def _eager(
    raw: Path, paths: list[Path], rejected: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The plain reader's events (less the ``rejected`` lines), sessions and quarantine."""
    events, quarantine = read_vendor_b_files(paths, raw)
    if rejected is not None:
        events = events.join(rejected, on=["source_file", "source_line"], how="anti")
    sessions = summarise_sessions(events, TOLERANCE_PCT).collect()
    return events, cast_frame(sessions, load_contract("device_sessions")), quarantine


@pytest.mark.parametrize(
    ("max_batch_bytes", "max_batch_events"),
    [(1, 1), (2**20, 10**6)],
    ids=["device_per_batch_and_range", "one_batch_and_range"],
)
@pytest.mark.parametrize("files", ["delivery", "edges"])
def test_streaming_equals_the_reader(
    files: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    max_batch_bytes: int,
    max_batch_events: int,
) -> None:
    raw, paths = request.getfixturevalue(files)
    telemetry, stream_quarantine = read_telemetry(
        _by_folder(paths), raw, TOLERANCE_PCT, tmp_path / "work", max_batch_bytes, max_batch_events
    )
    by_line = ["source_file", "source_line"]
    # The trial-level rules (implausible numbers) reject events the reader alone accepts: the
    # 16-digit voltage (line 5) and the 1e30 current (line 7) of the edges, nothing in the
    # plain delivery.
    rules = stream_quarantine.filter(pl.col("reason_code") == "IMPLAUSIBLE_VALUE")
    expected_rules = [] if files == "delivery" else [5, 7]
    assert rules["source_line"].sort().to_list() == expected_rules
    events, sessions, quarantine = _eager(raw, paths, rules.select(by_line))
    assert_frame_equal(telemetry.events.collect().sort(by_line), events.sort(by_line))
    assert_frame_equal(telemetry.sessions, sessions)
    q_order = [*by_line, "reason_code"]
    assert_frame_equal(
        stream_quarantine.join(rules, on=by_line, how="anti").sort(q_order),
        quarantine.sort(q_order),
    )


def test_ranges_are_packed_whole_into_batches() -> None:
    counts = pl.DataFrame({"range": [3, 1, 2, 4], "len": [5, 4, 7, 1]})
    assert pack_ranges(counts, 10) == [[1], [2], [3, 4]]
    assert pack_ranges(counts, 100) == [[1, 2, 3, 4]]
    assert pack_ranges(counts, 2) == [[1], [2], [3], [4]]
    assert pack_ranges(counts.clear(), 10) == []


def test_a_device_keeps_its_range() -> None:
    """The layout is a hash of the serial (CRC-32, by hand for one serial), not of the
    trial's size or history."""
    ranges = range_of(pl.Series("dev", ["B-00042", None, "B-00042"]))
    assert ranges["range"].to_list() == [
        zlib.crc32(b"B-00042") % RANGES,
        NO_DEVICE,
        zlib.crc32(b"B-00042") % RANGES,
    ]


def test_streaming_values_by_hand(delivery: tuple[Path, list[Path]], tmp_path: Path) -> None:
    raw, paths = delivery
    telemetry, quarantine = read_telemetry(
        _by_folder(paths), raw, TOLERANCE_PCT, tmp_path / "work", 1, 1
    )
    s = {r["session_key"]: r for r in telemetry.sessions.iter_rows(named=True)}
    a = s["B:B-00042:7f3c"]
    assert a["source_files"] == [
        "C01/2026-03-14/ionto-b_B-00042_20260314180000.jsonl",
        "C01/2026-03-15/ionto-b_B-00042_20260314180002.jsonl",
    ]
    # The DUP line: once more in the same file, once in the B-00043 file.
    assert a["n_duplicate_events"] == 2
    assert a["mean_ma"] == pytest.approx((10 + 10 + 12 + 9 + 11) / 5)
    # Trapezoids over 0.5 s steps: (10+10)/2 + (10+12)/2 + (12+9)/2 + (9+11)/2, times 0.5 s.
    assert a["charge_mc"] == pytest.approx(0.5 * (10 + 11 + 10.5 + 10))
    # Within +/- 10 % of 10 mA: 10, 10, 9, 11 (12 is not).
    assert a["within_tolerance_share"] == pytest.approx(4 / 5)
    assert a["duration_s"] == pytest.approx(2.5)
    assert (a["polarity_switches"], a["end_reason"]) == (1, "COMPLETED")
    b = s["B:B-00043:0a01"]
    assert b["mean_ma"] == pytest.approx((15 + 16.5 + 18) / 3)
    assert (b["fault_code"], b["end_reason"], b["n_duplicate_events"]) == ("E03", "FAULT", 0)
    c01 = "C01/2026-03-14/ionto-b_B-00042_20260314180000.jsonl"
    c02 = "C02/2026-03-14/ionto-b_B-00043_20260314190000.jsonl"
    assert quarantine.select("source_file", "source_line", "field", "reason_code").sort(
        "source_file", "source_line", nulls_last=True
    ).rows() == [
        (c01, 5, None, "BAD_JSON"),
        (c01, 7, None, "TRUNCATED_LINE"),
        (c02, 5, "ev", "NOT_IN_CODELIST"),
        (c02, 6, "ma", "MISSING_REQUIRED"),
        (c02, 7, "ts", "BAD_DATE"),
        (c02, 8, "ma", "OUT_OF_RANGE"),
        ("C02/2026-03-15/ionto-b_B-00043_20260315190000.jsonl", None, None, "NOT_UTF8"),
    ]


def test_batch_lines_are_the_readers_lines(edges: tuple[Path, list[Path]]) -> None:
    """One scan of many files numbers, marks and strips lines as the reader does per file
    (a file listed twice is read twice); a file that is not UTF-8 is quarantined whole."""
    raw, paths = edges
    listed = [*paths, paths[0]]
    lines, quarantine = batch_lines(listed, raw)
    per_file = [vendor_b_lines(p, raw)[0] for p in listed]
    assert_frame_equal(lines, pl.concat([f for f in per_file if f is not None]))
    assert quarantine["reason_code"].to_list() == ["NOT_UTF8"]


def test_fast_path_numbers_are_the_readers(edges: tuple[Path, list[Path]]) -> None:
    """Bit for bit (the sign of zero too), and the numbers the reader's JSON decoder reads
    otherwise or rejects go to the reader."""
    raw, paths = edges
    b44 = [p for p in paths if "B-00044" in p.name]
    fast, slow, quarantine = parse_lines(batch_lines(b44, raw)[0])
    events = pl.concat([fast, slow])
    eager, eager_quarantine = read_vendor_b_files(b44, raw)
    by_line = ["source_file", "source_line"]
    as_text = pl.col("ma_set", "ma", "v").cast(pl.String)
    assert_frame_equal(
        events.select(*by_line, as_text).sort(by_line),
        eager.select(*by_line, as_text).sort(by_line),
    )
    assert events.filter(pl.col("source_line") == 2)["v"].cast(pl.String).item() == "0.0"
    assert quarantine.sort(by_line)["source_line"].to_list() == [4, 8, 9, 10]
    assert_frame_equal(quarantine.sort(by_line), eager_quarantine.sort(by_line))


def test_canonical_pattern_takes_its_codes_from_the_contract() -> None:
    pattern = canonical_pattern(load_contract("vendor_b_events"))
    assert "STOPPED_BY_USER" in pattern and "E07" in pattern and "polarity" in pattern


def test_batches_never_split_a_device(tmp_path: Path) -> None:
    sizes = {"B-1": [300, 300], "B-2": [500], "B-3": [100, 100]}
    paths = []
    for serial, parts in sizes.items():
        for k, size in enumerate(parts):
            path = tmp_path / f"ionto-b_{serial}_2026031418000{k}.jsonl"
            path.write_bytes(b"x" * size)
            paths.append(path)
    odd = tmp_path / "other.jsonl"
    odd.write_bytes(b"x")
    batches = device_batches([*paths, odd], max_batch_bytes=700)
    names = [[p.name.split("_")[1] if "_" in p.name else p.name for p in b] for b in batches]
    assert names == [["other.jsonl", "B-1", "B-1"], ["B-2", "B-3", "B-3"]]


def test_hash_collisions_are_decided_on_the_text(
    delivery: tuple[Path, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicates are found by a 64-bit hash of each line; lines whose hashes collide are
    compared on their text. With a hash under which every line collides, the pipeline still
    keeps every distinct line and counts only the true copies."""
    raw, paths = delivery
    lines = pl.DataFrame({"raw_text": [DUP, RESENT, "x"]})
    monkeypatch.setattr(
        vendor_b_stream, "line_hash", lambda text: text.str.len_bytes().cast(pl.UInt64) * 0
    )
    assert lines.select(vendor_b_stream.line_hash(pl.col("raw_text"))).n_unique() == 1
    telemetry, _ = read_telemetry(_by_folder(paths), raw, TOLERANCE_PCT, tmp_path / "work", 1, 1)
    # The stored events keep the text of every line whose hash repeats in its delivery: here
    # all of them (a delivery of one line keeps none; the resolution reads it back).
    stored = pl.read_parquet(tmp_path / "work" / "parsed" / "*.parquet")
    assert stored["line_hash"].n_unique() == 1
    assert stored["raw_text"].null_count() == 0
    events, sessions, _ = _eager(raw, paths)
    by_line = ["source_file", "source_line"]
    assert_frame_equal(telemetry.events.collect().sort(by_line), events.sort(by_line))
    assert_frame_equal(telemetry.sessions, sessions)
    a = telemetry.sessions.filter(pl.col("session_key") == "B:B-00042:7f3c")
    assert a["n_duplicate_events"].to_list() == [2]
