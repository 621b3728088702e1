"""Pipeline readers of the bench captures, against hand-computed values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from data_contracts.contracts import blocking_failures, check_frame, load_contract
from ingest.bench.ibu_codec import format_frame
from ingest.readers.balance import read_balance_files, weighings_as_gravimetry
from ingest.readers.bench_ibu import ibu_device_sessions, read_bench_ibu_files

BOOT1, BOOT2 = "0000abcd", "0000beef"


def _frame(boot: str, seq: int, ts: str, frame_type: str, *fields: str) -> str:
    raw = format_frame(frame_type, boot, seq, fields)[:-2].decode()
    rec = {
        "host_ts": f"2026-03-14T12:00:{ts}+00:00",
        "unit": "IBU-7",
        "boot": boot,
        "seq": seq,
        "type": frame_type,
        "raw": raw,
    }
    return json.dumps(rec)


@pytest.fixture
def capture_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "C02" / "2026-03-14"
    folder.mkdir(parents=True)
    lines = [
        _frame(BOOT1, 0, "00.000", "HELLO", "IBU-7", "2.4.1", "5"),
        _frame(BOOT1, 1, "00.400", "SES", "S1", "START", "10.00", "1"),
        _frame(BOOT1, 2, "00.500", "SMP", "S1", "0", "10.00", "20.0"),
        _frame(BOOT1, 3, "00.600", "SMP", "S1", "100", "10.00", "20.1"),
        _frame(BOOT1, 4, "00.700", "EVT", "S1", "200", "POLARITY"),
        _frame(BOOT1, 5, "00.700", "SMP", "S1", "200", "-12.00", "-20.2"),
        json.dumps(
            {
                "host_ts": "2026-03-14T12:00:00.750+00:00",
                "unit": "IBU-7",
                "type": "BAD",
                "raw": "$SMP,0000abcd,6,S1\\x0d",
                "reason": "NO_CRC",
            }
        ),
        _frame(BOOT1, 6, "00.800", "SMP", "S1", "300", "9.50", "19.0"),
        _frame(BOOT1, 7, "00.800", "SES", "S1", "END", "COMPLETED", "300"),
        "{not json",
        json.dumps(
            {
                "host_ts": "2026-03-14T12:00:09.000+00:00",
                "unit": "IBU-7",
                "type": "GAP",
                "boot": BOOT1,
                "from_seq": 8,
                "to_seq": None,
            }
        ),
        _frame(BOOT2, 0, "10.000", "HELLO", "IBU-7", "2.4.1", "3"),
        _frame(BOOT2, 1, "10.100", "SES", "S2", "START", "15.00", "600"),
        _frame(BOOT2, 2, "10.200", "SMP", "S2", "0", "15.00", "22.0"),
        _frame(BOOT2, 3, "10.300", "SMP", "S2", "100", "16.00", "22.0"),
    ]
    (folder / "ibu_000001_IBU-7_20260314T120000Z.jsonl").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    again = [_frame(BOOT2, 3, "10.300", "SMP", "S2", "100", "16.00", "22.0"), '{"host_ts": "20']
    (folder / "ibu_000002_IBU-7_20260314T120011Z.jsonl").write_text(
        "\n".join(again), encoding="utf-8"
    )
    return tmp_path


def test_frames_with_lineage_and_findings(capture_dir: Path) -> None:
    paths = sorted(capture_dir.rglob("ibu_*.jsonl"))
    frames, quarantine = read_bench_ibu_files(paths, capture_dir)
    assert frames.height == 12
    assert frames["source_file"][0] == "C02/2026-03-14/ibu_000001_IBU-7_20260314T120000Z.jsonl"
    assert frames.filter(pl.col("seq") == 5, pl.col("boot") == BOOT1)["source_line"].item() == 6
    smp = frames.filter(pl.col("type") == "SMP", pl.col("boot") == BOOT1)
    assert smp["ma"].to_list() == [10.0, 10.0, -12.0, 9.5]
    assert smp["t_ms"].to_list() == [0, 100, 200, 300]
    start = frames.filter(pl.col("event") == "START", pl.col("boot") == BOOT1)
    assert (start["ma_set"].item(), start["duration_s"].item()) == (10.0, 1)
    assert frames.filter(pl.col("type") == "HELLO")["firmware"].to_list() == ["2.4.1"] * 2
    reasons = quarantine.select("source_line", "reason_code").rows()
    assert sorted(reasons, key=str) == sorted(
        [
            (7, "BAD_FRAME"),
            (10, "BAD_JSON"),
            (11, "FRAME_GAP"),
            (1, "DUPLICATE_KEY"),
            (2, "TRUNCATED_LINE"),
        ],
        key=str,
    )
    gap = quarantine.filter(pl.col("reason_code") == "FRAME_GAP")["message"].item()
    assert "frames 8 to an unknown last seq were lost" in gap
    assert not blocking_failures(check_frame(frames, load_contract("bench_ibu_frames")))
    assert not blocking_failures(check_frame(quarantine, load_contract("quarantine")))


def test_sessions_from_samples(capture_dir: Path) -> None:
    frames, _ = read_bench_ibu_files(sorted(capture_dir.rglob("ibu_*.jsonl")), capture_dir)
    sessions = ibu_device_sessions(frames, tolerance_pct=10.0)
    assert sessions["session_key"].to_list() == [
        f"IBU:IBU-7:{BOOT1}:S1",
        f"IBU:IBU-7:{BOOT2}:S2",
    ]
    s1, s2 = sessions.rows(named=True)
    # |ma| 10, 10, 12, 9.5 at 0, 0.1, 0.2, 0.3 s: trapezoids 1.0 + 1.1 + 1.075 mC
    assert s1["charge_mc"] == pytest.approx(3.175)
    assert s1["mean_ma"] == pytest.approx(10.375)
    assert s1["within_tolerance_share"] == pytest.approx(0.75)  # 12 mA is 20 % off
    assert (s1["duration_s"], s1["polarity_switches"], s1["end_reason"]) == (0.3, 1, "COMPLETED")
    assert s1["start_utc"] == datetime(2026, 3, 14, 12, 0, 0, 400000, tzinfo=UTC)
    assert s1["end_utc"] == datetime(2026, 3, 14, 12, 0, 0, 700000, tzinfo=UTC)
    assert (s1["vendor"], s1["device_serial"], s1["programmed_ma"]) == ("IBU", "IBU-7", 10.0)
    assert s2["end_reason"] == "INTERRUPTED" and s2["duration_s"] == 0.1
    assert s2["charge_mc"] == pytest.approx(1.55)
    assert s2["source_files"] == ["C02/2026-03-14/ibu_000001_IBU-7_20260314T120000Z.jsonl"]


def _weighing(paper: str, dry: tuple[str, str], wet: tuple[str, str]) -> str:
    def phase(value: str, unit: str, at: str) -> dict[str, str]:
        return {"value": value, "unit": unit, "raw": f"S S {value:>10} {unit}", "at": at}

    return json.dumps(
        {
            "paper_id": paper,
            "subject_id": "C02-0001",
            "visit": "BL",
            "region": "PALM",
            "side": "L",
            "balance_serial": "B123456789",
            "operator": "anna",
            "dry": phase(*dry, "2026-03-14T09:00:00.000+00:00"),
            "wet": phase(*wet, "2026-03-14T09:20:00.500+00:00"),
        }
    )


def test_balance_weighings_as_gravimetry(tmp_path: Path) -> None:
    folder = tmp_path / "C02" / "2026-03-14"
    folder.mkdir(parents=True)
    lines = [
        _weighing("P1", ("0.1234", "g"), ("0.1534", "g")),
        _weighing("P2", ("123.4", "mg"), ("0.1600", "g")),
        json.dumps({"paper_id": "P3", "dry": {}}),
    ]
    (folder / "balance_000001_B123456789_20260314T090000Z.jsonl").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    weighings, quarantine = read_balance_files(list(folder.glob("*.jsonl")), tmp_path)
    assert weighings.height == 2
    assert weighings["dry_raw"][0] == "S S     0.1234 g"
    assert quarantine.select("source_line", "reason_code", "field").rows() == [
        (3, "MISSING_REQUIRED", "subject_id")
    ]
    grav = weighings_as_gravimetry(weighings)
    assert grav.columns == load_contract("gravimetry").columns
    p1, p2 = grav.rows(named=True)
    assert (p1["dry_weight"], p1["wet_weight"], p1["unit"]) == (0.1234, 0.1534, "g")
    assert (p2["dry_weight"], p2["wet_weight"], p2["unit"]) == (123.4, 160.0, "mg")
    assert p1["collected_at"] == "2026-03-14T09:20:00.500+00:00"
    assert p1["collected_at_utc"] == datetime(2026, 3, 14, 9, 20, 0, 500000, tzinfo=UTC)
    assert (p1["operator"], p1["balance_serial"], p1["source_line"]) == ("anna", "B123456789", 1)
    assert not blocking_failures(check_frame(weighings, load_contract("balance_weighings")))
