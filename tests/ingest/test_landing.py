"""Landing area: manifest, kinds, supersession, repeats, idempotence (site-exports.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from data_contracts.contracts import blocking_failures, check_frame, load_contract
from ingest.deliveries import deliveries_from_hashes, scan_deliveries
from ingest.landing import classify, file_hashes, landing_quarantine, scan_raw, sha256_of
from ingest.manifest import current_by_kind, current_files, n_superseded

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
MINI = FIXTURES / "mini"


def test_classify_file_names() -> None:
    assert classify("dm.csv") == "dm"
    assert classify("devices.csv") == "devices"
    assert classify("randomisation.csv") == "randomisation"
    assert classify("gravimetry_C01_20260209.csv") == "gravimetry"
    assert classify("ionto-a_A-00317_20260314.csv") == "vendor_a"
    assert classify("ionto-b_B-00042_20260314180211.jsonl") == "vendor_b"
    assert classify("ionto-b_B-00042_20260314.jsonl") == "unknown"
    assert classify("dm.CSV") == "unknown"
    assert classify("notes.txt") == "unknown"


def test_manifest_records_versions_supersession_and_repeats() -> None:
    m = scan_raw(MINI)
    assert m.height == 16
    assert blocking_failures(check_frame(m, load_contract("landing_manifest"))) == []
    row = {r["source_file"]: r for r in m.iter_rows(named=True)}
    dm1 = row["C01/2026-02-09/dm.csv"]
    assert (dm1["kind"], dm1["version"], dm1["is_current"]) == ("dm", 1, False)
    assert dm1["superseded_by"] == "C01/2026-03-09/dm.csv"
    assert dm1["centre_id"] == "C01"
    assert str(dm1["delivery_date"]) == "2026-02-09"
    data = (MINI / "C01/2026-02-09/dm.csv").read_bytes()
    assert dm1["size_bytes"] == len(data)
    g_first = row["C01/2026-02-09/gravimetry_C01_20260209.csv"]
    assert g_first["superseded_by"] == "C01/2026-03-09/gravimetry_C01_20260209.csv"
    assert g_first["repeat_of"] is None
    corrected = row["C01/2026-03-09/gravimetry_C01_20260209.csv"]
    assert corrected["is_current"] and corrected["repeat_of"] is None  # bytes differ
    again = row["C01/2026-04-06/gravimetry_C01_20260309.csv"]
    assert again["repeat_of"] == "C01/2026-03-09/gravimetry_C01_20260309.csv"
    assert again["version"] == 2 and again["is_current"]
    assert row["C01/2026-04-06/README.txt"]["kind"] == "unknown"
    assert n_superseded(m) == 4  # dm, devices, two worksheets


def test_current_files_per_kind() -> None:
    by_kind = current_by_kind(scan_raw(MINI))
    assert by_kind["gravimetry"] == [
        "C01/2026-03-09/gravimetry_C01_20260209.csv",
        "C01/2026-04-06/gravimetry_C01_20260309.csv",
    ]
    assert by_kind["dm"] == ["C01/2026-03-09/dm.csv"]
    assert by_kind["ae"] == ["C01/2026-02-09/ae.csv"]
    assert len(by_kind["vendor_a"]) == 4
    assert len(by_kind["vendor_b"]) == 2


def test_unknown_files_and_a_sealed_list_in_a_centre_folder_are_quarantined(
    tmp_path: Path,
) -> None:
    (tmp_path / "C01" / "2026-02-09").mkdir(parents=True)
    (tmp_path / "C01" / "2026-02-09" / "randomisation.csv").write_text("subject_id\n")
    (tmp_path / "C01" / "notes.csv").write_text("x\n")  # not inside a delivery folder
    (tmp_path / "C01" / "latest").mkdir()
    (tmp_path / "C01" / "latest" / "dm.csv").write_text("x\n")  # folder is not a date
    q = landing_quarantine(scan_raw(tmp_path))
    got = sorted(q.select("source_file", "source_line", "reason_code").rows())
    assert got == [
        ("C01/2026-02-09/randomisation.csv", None, "SEALED_LIST_IN_RAW"),
        ("C01/latest/dm.csv", None, "UNKNOWN_FILE"),
        ("C01/notes.csv", None, "UNKNOWN_FILE"),
    ]


def test_scanning_twice_and_redelivering_identical_bytes_change_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(MINI, raw)
    first = scan_raw(raw)
    assert_frame_equal(scan_raw(raw), first)
    # the 2026-03-09 delivery arrives again, byte for byte, as a new delivery
    shutil.copytree(raw / "C01" / "2026-03-09", raw / "C01" / "2026-05-04")
    again = scan_raw(raw)
    new = again.filter(pl.col("delivery_date") == pl.date(2026, 5, 4))
    assert new.height == 8
    assert new["repeat_of"].null_count() == 0  # each is recorded as a repeat of its predecessor
    assert again.filter(pl.col("source_file") == "C01/2026-05-04/gravimetry_C01_20260309.csv")[
        "repeat_of"
    ].to_list() == ["C01/2026-04-06/gravimetry_C01_20260309.csv"]
    assert again.height == first.height + 8
    # every current file has the same bytes as before the repeat
    before = current_files(first).select("centre_id", "file_name", "sha256").sort("file_name")
    after = current_files(again).select("centre_id", "file_name", "sha256").sort("file_name")
    assert_frame_equal(before, after)


def test_file_hashes_are_reused_only_for_files_unchanged_since(tmp_path: Path) -> None:
    """A file with the same path, size and modification time keeps the stored hash (a fake
    one here, to prove it is not read again); a rewritten file is hashed again; the manifest
    and the delivery keys made from stored hashes equal those made from the files."""
    raw = tmp_path / "raw"
    shutil.copytree(MINI, raw)
    first = file_hashes(raw)
    assert_frame_equal(scan_raw(raw, first), scan_raw(raw))
    assert deliveries_from_hashes(first) == {d.folder: d for d in scan_deliveries(raw)}
    dm = "C01/2026-03-09/dm.csv"
    faked = first.with_columns(
        sha256=pl.when(pl.col("source_file") == dm).then(pl.lit("f" * 64)).otherwise("sha256")
    )
    reused = file_hashes(raw, faked)
    assert reused.filter(pl.col("source_file") == dm)["sha256"].item() == "f" * 64
    path = raw / dm
    path.write_bytes(path.read_bytes() + b"\n")
    again = file_hashes(raw, faked).filter(pl.col("source_file") == dm)
    assert again["sha256"].item() == sha256_of(path)


def test_ref1_file_counts_and_hashes(ref1_dir: Path) -> None:
    m = scan_raw(ref1_dir / "raw")
    results = json.loads((ref1_dir / "expected" / "results.json").read_text("utf-8"))
    assert m.height == results["derivation"]["n_files"] == 1495
    assert n_superseded(m) == results["derivation"]["n_file_versions_superseded"] == 261
    listed = json.loads((ref1_dir / "manifest.json").read_text("utf-8"))["files"]
    expected = pl.DataFrame(
        {
            "source_file": [f["file"].removeprefix("raw/") for f in listed],
            "size_bytes": [f["bytes"] for f in listed],
            "sha256": [f["sha256"] for f in listed],
        }
    ).sort("source_file")
    assert_frame_equal(m.select(expected.columns).sort("source_file"), expected)
    assert m.filter(pl.col("kind") == "unknown").height == 0
    events = json.loads((ref1_dir / "expected" / "delivery_events.json").read_text("utf-8"))
    row = {r["source_file"]: r for r in m.iter_rows(named=True)}
    for event in events["events"]:
        if event["kind"] == "repeat":
            again = event["repeated_as"].removeprefix("raw/")
            assert row[again]["repeat_of"] == event["file"].removeprefix("raw/")
        if event["kind"] == "correction":
            old = event["file"].removeprefix("raw/")
            assert row[old]["superseded_by"] == event["corrected_by"].removeprefix("raw/")
            assert row[event["corrected_by"].removeprefix("raw/")]["repeat_of"] is None
