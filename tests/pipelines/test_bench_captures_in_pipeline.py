"""Bench captures reach the analysis: an IBU-1 session counts as the subject's device session,
and a paper weighed through the balance driver becomes a gravimetry row that supersedes the
worksheet's copy of the same paper (later delivery wins)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl

from ingest.bench.ibu_codec import format_frame
from pipelines.run import run_pipeline

UNIT = "IBU-00031"
BOOT = "5e21a09c"


def _frame(seq: int, at: dt.datetime, frame_type: str, *fields: str) -> str:
    raw = format_frame(frame_type, BOOT, seq, fields)[:-2].decode()
    host_ts = at.isoformat(timespec="milliseconds")
    return json.dumps(
        {"host_ts": host_ts, "unit": UNIT, "boot": BOOT, "seq": seq, "type": frame_type, "raw": raw}
    )


def _ibu_session(start: dt.datetime) -> list[str]:
    """A 20-sample (2 s) session at 15 mA with a polarity reversal half way."""
    lines = [_frame(0, start, "HELLO", UNIT, "2.4.1", "812")]
    lines.append(_frame(1, start, "SES", "S0001", "START", "15.00", "2"))
    seq = 2
    for k in range(20):
        t_ms = 100 * k
        at = start + dt.timedelta(milliseconds=t_ms)
        if k == 10:
            lines.append(_frame(seq, at, "EVT", "S0001", str(t_ms), "POLARITY"))
            seq += 1
        lines.append(_frame(seq, at, "SMP", "S0001", str(t_ms), "15.00", "22.0"))
        seq += 1
    end = start + dt.timedelta(milliseconds=1900)
    lines.append(_frame(seq, end, "SES", "S0001", "END", "COMPLETED", "1900"))
    return lines


def _latest(raw: Path, centre: str, name: str) -> Path:
    return sorted((raw / centre).glob(f"*/{name}"))[-1]


def test_bench_session_and_weighing_join_the_pipeline(small_raw: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(small_raw, raw)
    centre = "C01"
    sheets = pl.concat(
        [pl.read_csv(p, infer_schema=False) for p in (raw / centre).glob("*/gravimetry_*.csv")]
    )
    paper = sheets.filter((pl.col("visit") == "W1") & (pl.col("region") == "PALM")).row(
        0, named=True
    )
    subject, side = paper["subject_id"], paper["side"]
    visits = pl.read_csv(_latest(raw, centre, "visits.csv"), try_parse_dates=True)
    day = visits.filter((pl.col("subject_id") == subject) & (pl.col("visit") == "W1"))[
        "visit_date"
    ][0]
    clinic = dt.datetime.combine(day, dt.time(10, 0), tzinfo=dt.UTC)

    # The EDC's device form records the clinic unit for that day (the next snapshot).
    devices = _latest(raw, centre, "devices.csv")
    with devices.open("a", encoding="utf-8", newline="") as handle:
        handle.write(f"{subject},{UNIT},PALM,{day},{day}\n")

    # A later delivery folder with the captures of the clinic day.
    later = sorted(p.name for p in (raw / centre).iterdir())[-1]
    folder = raw / centre / (dt.date.fromisoformat(later) + dt.timedelta(days=1)).isoformat()
    folder.mkdir()
    stamp = clinic.strftime("%Y%m%dT%H%M%SZ")
    (folder / f"ibu_000001_{UNIT}_{stamp}.jsonl").write_text(
        "\n".join(_ibu_session(clinic)) + "\n", encoding="utf-8"
    )
    weighing = {
        "paper_id": "BENCH-P1",
        "subject_id": subject,
        "visit": "W1",
        "region": "PALM",
        "side": side,
        "balance_serial": "B123456789",
        "operator": "anna",
        "dry": {"value": "500.0", "unit": "mg", "raw": "S S      500.0 mg", "at": "x"},
        "wet": {"value": "530.0", "unit": "mg", "raw": "S S      530.0 mg", "at": "x"},
    }
    for phase, minute in (("dry", 0), ("wet", 5)):
        at = clinic + dt.timedelta(minutes=minute)
        weighing[phase]["at"] = at.isoformat(timespec="milliseconds")  # type: ignore[index]
    (folder / f"balance_000002_B123456789_{stamp}.jsonl").write_text(
        json.dumps(weighing) + "\n", encoding="utf-8"
    )
    (folder / "capture-ibu.checkpoint.json").write_text("{}", encoding="utf-8")

    out = tmp_path / "out"
    report = run_pipeline(raw_dir=raw, out_dir=out)
    assert report.success, report.describe()
    tables = out / "tables"

    sessions = pl.read_parquet(tables / "device_sessions.parquet").filter(pl.col("vendor") == "IBU")
    assert sessions.height == 1
    session = sessions.row(0, named=True)
    assert (session["device_serial"], session["end_reason"]) == (UNIT, "COMPLETED")
    assert session["polarity_switches"] == 1
    addev = pl.read_parquet(tables / "addev.parquet").filter(pl.col("vendor") == "IBU")
    assert addev.select("subject_id", "session_key").rows() == [(subject, session["session_key"])]

    papers = pl.read_parquet(tables / "gravimetry.parquet").filter(
        (pl.col("subject_id") == subject)
        & (pl.col("visit") == "W1")
        & (pl.col("side") == side)
        & (pl.col("region") == "PALM")
    )
    assert papers["paper_id"].to_list() == ["BENCH-P1"]
    assert papers["source_file"][0].endswith(".jsonl")
    duplicates = pl.read_parquet(tables / "gravimetry_duplicates.parquet")
    pair = duplicates.filter(pl.col("subject_id") == subject).row(0, named=True)
    assert pair["kept_file"].endswith(".jsonl")
    assert pair["superseded_file"].split("/")[-1].startswith("gravimetry_")

    quarantine = pl.read_parquet(tables / "quarantine.parquet")
    assert quarantine.filter(pl.col("source_file").str.contains("checkpoint")).height == 0
