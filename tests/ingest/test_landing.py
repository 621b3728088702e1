"""Landing area: manifest, kinds, supersession, repeats, idempotence (site-exports.md)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from data_contracts.contracts import blocking_failures, check_frame, load_contract
from ingest.deliveries import deliveries_from_hashes, manifest_delivery_keys, scan_deliveries
from ingest.incremental import read_delivery_folder
from ingest.landing import classify, file_hashes, landing_quarantine, scan_raw, sha256_of
from ingest.manifest import current_by_kind, current_files, n_superseded
from ingest.sealed import sealed_signature
from study import load_study

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
        ("C01/latest/dm.csv", None, "UNKNOWN_FOLDER"),
        ("C01/notes.csv", None, "UNKNOWN_FILE"),
    ]


def _stray_tree(raw: Path) -> dict[str, str]:
    """MINI plus one of every stray kind of issue 12 -> path: the reason expected."""
    shutil.copytree(MINI, raw)
    dm = (MINI / "C01" / "2026-02-09" / "dm.csv").read_bytes()
    strays = {
        "README.md": "UNKNOWN_FILE",  # at the raw root
        "C01/notes.txt": "UNKNOWN_FILE",  # at centre level
        "C01/2026-03-09/sub/dm.csv": "UNKNOWN_FOLDER",  # nested in a delivery folder
        "C01/2026-03-09/sub/deeper/x.csv": "UNKNOWN_FOLDER",
        "C01/latest/dm.csv": "UNKNOWN_FOLDER",  # a folder that is not a date
        "C01/2026-02-30/dm.csv": "UNKNOWN_FOLDER",  # a date that does not exist
        "C01/20260309/dm.csv": "UNKNOWN_FOLDER",
        "randomisation.csv": "SEALED_LIST_IN_RAW",  # the sealed list's name, at the root
    }
    for rel in strays:
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / rel).write_bytes(dm)
    return strays


def test_every_stray_kind_is_one_row_and_the_manifest_passes_its_contract(
    tmp_path: Path,
) -> None:
    """Where a file lies never fails the landing manifest's contract (issue 12): each file
    outside <centre>/<YYYY-MM-DD>/ is a row of its own, and the delivery folders are the
    same as without the strays."""
    raw = tmp_path / "raw"
    strays = _stray_tree(raw)
    m = scan_raw(raw)
    assert blocking_failures(check_frame(m, load_contract("landing_manifest"))) == []
    q = landing_quarantine(m)
    assert blocking_failures(check_frame(q, load_contract("quarantine"))) == []
    expected = {**strays, "C01/2026-04-06/README.txt": "UNKNOWN_FILE"}
    assert dict(q.select("source_file", "reason_code").rows()) == expected
    assert q["raw_text"].null_count() == q.height
    messages = dict(q.select("source_file", "message").rows())
    assert "a file at the raw root" in messages["README.md"]
    assert "centre folder C01, outside any delivery folder" in messages["C01/notes.txt"]
    assert "C01/2026-02-30 is not a delivery folder" in messages["C01/2026-02-30/dm.csv"]
    assert "nested folder C01/2026-03-09/sub" in messages["C01/2026-03-09/sub/dm.csv"]
    placed = {d.folder for d in scan_deliveries(raw)}
    assert placed == {d.folder for d in scan_deliveries(MINI)}
    assert deliveries_from_hashes(file_hashes(raw)) == {d.folder: d for d in scan_deliveries(raw)}
    current = current_by_kind(m)
    assert current["dm"] == ["C01/2026-03-09/dm.csv"]  # no stray became a dm snapshot


def test_symlinks_are_listed_never_followed(tmp_path: Path) -> None:
    """A link to a file outside the root (named like vendor-B telemetry) and a delivery folder
    that is a link are each one SYMLINK row; nothing behind them is read, hashed or shown."""
    raw = tmp_path / "raw"
    shutil.copytree(MINI, raw)
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:SECRET-MARKER:/root:/bin/bash\n")
    link = raw / "C01" / "2026-03-09" / "ionto-b_B-00099_20260314180211.jsonl"
    link.symlink_to(secret)
    elsewhere = tmp_path / "outside" / "2026-05-04"
    shutil.copytree(MINI / "C01" / "2026-03-09", elsewhere)
    (raw / "C01" / "2026-05-04").symlink_to(elsewhere, target_is_directory=True)
    (raw / "C02").symlink_to(tmp_path / "outside", target_is_directory=True)  # a centre
    (raw / "C01" / "2026-04-06" / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    hashes = file_hashes(raw)
    m = scan_raw(raw, hashes)
    assert blocking_failures(check_frame(m, load_contract("landing_manifest"))) == []
    links = m.filter(pl.col("kind") == "symlink")
    assert sorted(links["source_file"]) == [
        "C01/2026-03-09/ionto-b_B-00099_20260314180211.jsonl",
        "C01/2026-04-06/dangling.csv",
        "C01/2026-05-04",
        "C02",
    ]
    assert links["delivery_date"].null_count() == links.height  # in no delivery
    assert secret.read_text() not in str(m.rows())
    assert not m["source_file"].str.starts_with("C01/2026-05-04/").any()  # not walked into
    assert not m["source_file"].str.starts_with("C02/").any()
    q = landing_quarantine(m)
    rows = q.filter(pl.col("reason_code") == "SYMLINK")
    assert sorted(rows["source_file"]) == sorted(links["source_file"])
    assert rows["raw_text"].null_count() == rows.height
    assert "SECRET-MARKER" not in str(q.rows())
    # the linked delivery folder is no delivery: listed (quarantined), never read then dropped
    folders = {d.folder for d in scan_deliveries(raw)}
    assert folders == {"C01/2026-02-09", "C01/2026-03-09", "C01/2026-04-06"}
    assert deliveries_from_hashes(hashes) == {d.folder: d for d in scan_deliveries(raw)}
    assert set(manifest_delivery_keys(m)["folder"]) == folders


def test_a_sealed_list_under_any_name_and_in_any_place_is_never_read(tmp_path: Path) -> None:
    """The sealed list (by header, or by rows without a header) under a vendor-B name, an EDC
    name, at the root, at centre level and nested: SEALED_LIST_IN_RAW, nothing of it in the
    quarantine, and the per-delivery read does not open it."""
    raw = tmp_path / "raw"
    shutil.copytree(MINI, raw)
    # subjects C01-0901/0902 exist nowhere else: finding them anywhere would be a leak
    sealed = "subject_id,rand_date,stratum,arm\nC01-0901,2026-02-16,HDSS3,GLY\n"
    rows_only = "C01-0902,2026-02-17,HDSS4,OXY\n"
    places = {
        "C01/2026-03-09/ionto-b_B-00077_20260314180211.jsonl": sealed,
        "C01/2026-03-09/dm.csv": rows_only,  # replaces the delivery's dm snapshot
        "C01/2026-04-06/gravimetry_C01_20260406.csv": sealed.replace(",", ";"),
        "lists.csv": sealed,
        "C01/arms.txt": rows_only,
        "C01/2026-04-06/x/y.jsonl": sealed,
    }
    for rel, text in places.items():
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / rel).write_text(text)
    signature = sealed_signature(load_study())
    m = scan_raw(raw, file_hashes(raw, sealed=signature))
    assert blocking_failures(check_frame(m, load_contract("landing_manifest"))) == []
    q = landing_quarantine(m)
    found = q.filter(pl.col("reason_code") == "SEALED_LIST_IN_RAW")
    assert sorted(found["source_file"]) == sorted(places)
    assert set(found["dataset"]) == {"randomisation"}
    assert found["raw_text"].null_count() == found.height
    for text in ("GLY", "OXY", "HDSS3", "C01-0901", "C01-0902"):
        assert text not in str(q.rows())
    assert current_by_kind(m)["dm"] == ["C01/2026-02-09/dm.csv"]  # the copy is no snapshot
    for folder in ("C01/2026-03-09", "C01/2026-04-06"):
        frames = read_delivery_folder(raw, folder, signature)
        stored = str([f.rows() for f in frames.values()])
        assert "C01-0901" not in stored and "C01-0902" not in stored
        assert not frames["quarantine"]["source_file"].is_in(list(places)).any()


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


def test_a_correction_keeping_size_and_time_is_seen_only_when_hashing_again(
    tmp_path: Path,
) -> None:
    """What ``ionto run --verify`` changes: with stored hashes, a file rewritten in place with
    the same size and modification time keeps its old hash and its delivery its old key;
    hashed again (no stored hashes), the delivery gets the key of its new content."""
    raw = tmp_path / "raw"
    shutil.copytree(MINI, raw)
    stored = file_hashes(raw)
    path = raw / "C01" / "2026-03-09" / "dm.csv"
    stat = path.stat()
    data = path.read_bytes()
    changed = data.replace(b",F,", b",M,", 1)
    assert changed != data and len(changed) == len(data)
    path.write_bytes(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    trusted = {d.folder: d.key for d in scan_deliveries(raw, deliveries_from_hashes(stored))}
    verified = {d.folder: d.key for d in scan_deliveries(raw)}
    assert trusted == {d.folder: d.key for d in scan_deliveries(MINI)}
    assert {f for f in verified if verified[f] != trusted[f]} == {"C01/2026-03-09"}
    rehashed = file_hashes(raw).filter(pl.col("source_file") == "C01/2026-03-09/dm.csv")
    assert rehashed["sha256"].item() == sha256_of(path) != sha256_of(MINI / "C01/2026-03-09/dm.csv")


def test_file_hashes_list_files_and_links_part_by_part_never_behind_a_link(
    tmp_path: Path,
) -> None:
    """Regular files and links, each link one entry (a linked folder's files are not
    listed, its target is not opened), in ``pathlib``'s order (part by part: ``C01/a.csv``
    before ``C01-notes.txt``, although ``-`` sorts before ``/`` in a string)."""
    raw, outside = tmp_path / "raw", tmp_path / "outside"
    (raw / "C01" / "2026-03-09").mkdir(parents=True)
    outside.mkdir()
    (outside / "dm.csv").write_text("behind a link")
    (raw / "C01" / "a.csv").write_text("a")
    (raw / "C01-notes.txt").write_text("notes")
    (raw / "C01" / "2026-03-09" / "dm.csv").write_text("dm")
    (raw / "C02").symlink_to(outside, target_is_directory=True)
    (raw / "C01" / "2026-03-09" / "ae.csv").symlink_to(outside / "dm.csv")
    os.mkfifo(raw / "C01" / "pipe")
    hashes = file_hashes(raw)
    assert hashes["source_file"].to_list() == [
        "C01/2026-03-09/ae.csv",
        "C01/2026-03-09/dm.csv",
        "C01/a.csv",
        "C01-notes.txt",
        "C02",
    ]
    assert hashes["symlink"].to_list() == [True, False, False, False, True]
    assert (
        hashes.filter(pl.col("source_file") == "C02")["sha256"].item()
        == hashlib.sha256(os.fsencode(str(outside))).hexdigest()
    )
