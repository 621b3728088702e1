"""Vendor-B telemetry resolved in a stable range layout: an output folder's refresh recomputes
only the ranges whose files changed, and gives what a fresh resolution gives (issue 15)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from ingest.telemetry import (
    RANGES,
    ROW_GROUP_ROWS,
    Telemetry,
    parse_delivery_telemetry,
    range_of,
    resolve_telemetry,
)

TOLERANCE_PCT = 10.0
DEVICES = ["B-00001", "B-00002", "B-00003", "B-00004", "B-00005", "B-00006"]


def _session(dev: str, day: int, ma: float) -> str:
    """One complete session of ``dev`` on March ``day``: start, three samples, end."""
    ts = f"2026-03-{day:02d}T18:00:0"
    sid = f"s{day:02d}"
    head = f'{{"ts":"{ts}'
    lines = [f'{head}0.000Z","dev":"{dev}","ev":"start","sid":"{sid}","ma_set":{ma}}}']
    lines += [
        f'{head}{k}.000Z","dev":"{dev}","ev":"sample","sid":"{sid}","ma":{ma},"v":20.0}}'
        for k in (1, 2, 3)
    ]
    lines.append(f'{head}4.000Z","dev":"{dev}","ev":"end","sid":"{sid}","reason":"COMPLETED"}}')
    return "\n".join(lines) + "\n"


def _delivery(raw: Path, day: int, devices: list[str], ma: float = 10.0) -> list[Path]:
    """A delivery folder of March ``day`` with one file per device."""
    paths = []
    for dev in devices:
        path = raw / "C01" / f"2026-03-{day:02d}" / f"ionto-b_{dev}_202603{day:02d}180000.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_session(dev, day, ma), "utf-8")
        paths.append(path)
    return paths


def _parsed(raw: Path, deliveries: list[list[Path]], work: Path) -> list[pl.LazyFrame]:
    work.mkdir(parents=True, exist_ok=True)
    scans = []
    for number, paths in enumerate(deliveries):
        events, _ = parse_delivery_telemetry(paths, raw)
        target = work / f"delivery-{number}.parquet"
        events.write_parquet(target, row_group_size=ROW_GROUP_ROWS)
        scans.append(pl.scan_parquet(target))
    return scans


def _current(raw: Path, deliveries: list[list[Path]]) -> pl.DataFrame:
    files = [p for paths in deliveries for p in paths]
    return pl.DataFrame(
        {
            "source_file": [p.relative_to(raw).as_posix() for p in files],
            "sha256": [hashlib.sha256(p.read_bytes()).hexdigest() for p in files],
        }
    )


def _resolve(
    raw: Path, deliveries: list[list[Path]], store: Path, salt: str | None = "code-1"
) -> Telemetry:
    parsed = _parsed(raw, deliveries, store.parent / f"parsed-{store.name}-{len(deliveries)}")
    return resolve_telemetry(
        parsed, _current(raw, deliveries), raw, TOLERANCE_PCT, store, salt=salt
    )


def _ranges(devices: list[str]) -> set[int]:
    return set(range_of(pl.Series(devices))["range"].to_list())


def _assert_same(refreshed: Telemetry, fresh: Telemetry) -> None:
    assert_frame_equal(refreshed.events.collect(), fresh.events.collect())
    assert_frame_equal(refreshed.sessions, fresh.sessions)
    assert_frame_equal(refreshed.quarantine, fresh.quarantine)
    assert_frame_equal(refreshed.findings, fresh.findings)


def test_a_new_delivery_recomputes_only_the_ranges_of_its_devices(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    first = [_delivery(raw, 9, DEVICES), _delivery(raw, 10, DEVICES[:3])]
    store = tmp_path / "store"
    initial = _resolve(raw, first, store)
    assert set(initial.resolved) == _ranges(DEVICES)
    assert initial.sessions.height == len(DEVICES) + 3

    later = [*first, _delivery(raw, 11, ["B-00005"])]
    refreshed = _resolve(raw, later, store)
    assert set(refreshed.resolved) == _ranges(["B-00005"])
    assert refreshed.sessions.height == len(DEVICES) + 4
    _assert_same(refreshed, _resolve(raw, later, tmp_path / "fresh", salt=None))

    unchanged = _resolve(raw, later, store)
    assert unchanged.resolved == ()
    _assert_same(unchanged, refreshed)


def test_a_corrected_file_recomputes_its_range_and_a_new_code_everything(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    deliveries = [_delivery(raw, 9, DEVICES)]
    store = tmp_path / "store"
    _resolve(raw, deliveries, store)

    # The same name with new bytes (a correction in place): only that device's range.
    _delivery(raw, 9, ["B-00002"], ma=12.0)
    corrected = _resolve(raw, deliveries, store)
    assert set(corrected.resolved) == _ranges(["B-00002"])
    charge = corrected.sessions.filter(pl.col("device_serial") == "B-00002")["charge_mc"]
    assert charge.to_list() == [12.0 * 2.0]  # 12 mA between the samples at 1 s and 3 s
    _assert_same(corrected, _resolve(raw, deliveries, tmp_path / "fresh", salt=None))

    recoded = _resolve(raw, deliveries, store, salt="code-2")
    assert set(recoded.resolved) == _ranges(DEVICES)


def test_a_device_whose_files_are_no_longer_current_leaves_no_part(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    store = tmp_path / "store"
    _resolve(raw, [_delivery(raw, 9, DEVICES)], store)
    remaining = [p for p in (raw / "C01" / "2026-03-09").iterdir() if "B-00006" not in p.name]
    shrunk = _resolve(raw, [sorted(remaining)], store)
    assert "B-00006" not in shrunk.events.collect()["dev"].to_list()
    assert "B-00006" not in shrunk.sessions["device_serial"].to_list()
    gone = _ranges(["B-00006"]) - _ranges(DEVICES[:5])
    parts = {int(p.stem.split("-")[1]) for p in store.glob("part-*.parquet")}
    assert parts == _ranges(DEVICES[:5]) and not gone & parts
    assert all(0 <= r < RANGES for r in parts)
