"""Incremental deliveries: the landing-area sensor, and incremental runs giving the tables of a
full rebuild (docs/incremental.md)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_contracts.contracts import cast_frame, load_contract
from ingest.deliveries import delivery_key, scan_deliveries
from ingest.device_sessions import summarise_sessions
from ingest.incremental import (
    FINDINGS,
    QUARANTINE,
    read_delivery_folder,
    resolve_raw_datasets,
    stale_deliveries,
)
from ingest.landing import landing_quarantine, scan_raw
from ingest.quarantine import combine
from ingest.readers.edc import read_edc_file, read_edc_table
from ingest.readers.gravimetry import read_gravimetry
from ingest.readers.vendor_a import earliest_consent, read_vendor_a
from ingest.readers.vendor_b import read_vendor_b
from ingest.registry import delivery_kinds, edc_tables, raw_dataset_names
from ingest.sealed import sealed_signature
from ingest.source_format import TableParts
from ingest.telemetry import parsed_schema
from pipelines.definitions import build_definitions
from pipelines.resources import TrialSettings
from pipelines.run import run_pipeline
from pipelines.sensors import delivery_sensor, refresh_after_delivery
from pipelines.stored_parts import parts_folder, scan_stored
from study import load_study

DM_HEADER = "subject_id,centre_id,consent_date,sex,birth_year,plantar_involved,hdss_screening\n"
DM_ROW = "C01-0001,C01,2026-02-02,F,1990,Y,3\n"


def _evaluate(raw: Path, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    settings = TrialSettings(raw_dir=str(raw), out_dir=str(raw.parent / "out"))
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"settings": settings}
    )
    result = delivery_sensor(context)
    assert isinstance(result, dg.SensorResult)
    # What the daemon does with the result: register the keys, keep the cursor.
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def _requested(result: dg.SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests or [] if r.partition_key]


def test_sensor_new_unchanged_half_written_and_corrected_files(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    first = raw / "C01" / "2026-03-09"
    first.mkdir(parents=True)
    (first / "dm.csv").write_text(DM_HEADER + DM_ROW)
    instance = dg.DagsterInstance.ephemeral()

    # A new folder: one key registered, one run requested, keyed by content.
    result = _evaluate(raw, instance, None)
    key = delivery_key("C01", "2026-03-09", [("dm.csv", _sha(first / "dm.csv"))])
    assert key.startswith("C01_2026-03-09_") and len(key) == len("C01_2026-03-09_") + 8
    assert _requested(result) == [key]
    assert [r.run_key for r in result.run_requests or []] == [key]
    assert instance.get_dynamic_partitions("deliveries") == [key]
    cursor = result.cursor

    # Unchanged tree: nothing requested, nothing registered.
    result = _evaluate(raw, instance, cursor)
    assert _requested(result) == [] and not result.dynamic_partitions_requests
    cursor = result.cursor

    # Half-written files (temporary names) in a new folder and in the known one: ignored.
    second = raw / "C01" / "2026-04-06"
    second.mkdir()
    (second / "dm.csv.part").write_text(DM_HEADER)
    (first / ".gravimetry_w1.csv").write_text("subject_id")
    (first / "ae.csv.tmp").write_text("subject_id")
    result = _evaluate(raw, instance, cursor)
    assert _requested(result) == []
    cursor = result.cursor

    # Renamed when complete: the new folder becomes a delivery.
    (second / "dm.csv.part").rename(second / "dm.csv")
    result = _evaluate(raw, instance, cursor)
    (new_key,) = _requested(result)
    assert new_key.startswith("C01_2026-04-06_")
    cursor = result.cursor

    # A corrected file in the same folder (same name, new bytes): a new key for that folder;
    # the old key stays on record.
    (first / "dm.csv").write_text(DM_HEADER + DM_ROW.replace(",F,", ",M,"))
    result = _evaluate(raw, instance, cursor)
    (corrected,) = _requested(result)
    assert corrected.startswith("C01_2026-03-09_") and corrected != key
    assert set(instance.get_dynamic_partitions("deliveries")) == {key, new_key, corrected}
    cursor = result.cursor

    # A correction delivered in the next delivery (same file name, later folder): only that
    # folder is new.
    third = raw / "C01" / "2026-05-04"
    third.mkdir()
    (third / "dm.csv").write_text(DM_HEADER + DM_ROW.replace("1990", "1991"))
    result = _evaluate(raw, instance, cursor)
    (later,) = _requested(result)
    assert later.startswith("C01_2026-05-04_")
    assert _requested(_evaluate(raw, instance, result.cursor)) == []


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _whole_tree(raw: Path, manifest: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Each format's own whole-tree reader on the current files (the independent reference):
    every EDC table, the worksheets, the vendor-A and vendor-B exports, and their quarantine
    with the landing area's."""
    out: dict[str, pl.DataFrame] = {}
    quarantines = [landing_quarantine(manifest)]
    for table in edc_tables():
        out[table], q = read_edc_table(raw, manifest, table)
        quarantines.append(q)
    out["gravimetry"], q, out["gravimetry_duplicates"] = read_gravimetry(raw, manifest)
    quarantines.append(q)
    consent = earliest_consent(out["dm"], out["devices"])
    out["vendor_a_sessions"], q = read_vendor_a(raw, manifest, consent)
    quarantines.append(q)
    out["vendor_b_events"], q = read_vendor_b(raw, manifest)
    quarantines.append(q)
    out["quarantine"] = combine(quarantines)
    return out


def test_per_delivery_reading_equals_the_whole_tree_readers(
    small_raw: Path, tmp_path: Path
) -> None:
    """Every delivery read alone, then resolved through the registry, gives exactly the
    whole-tree readers' frames; the telemetry resolved by ranges of devices too (events up to
    row order, sessions)."""
    study = load_study()
    sealed = sealed_signature(study)
    manifest = scan_raw(small_raw, sealed=sealed)
    whole = _whole_tree(small_raw, manifest)
    parts = [read_delivery_folder(small_raw, d.folder, sealed) for d in scan_deliveries(small_raw)]
    lazy_parts = [{name: frame.lazy() for name, frame in p.items()} for p in parts]
    for deliveries in (parts, lazy_parts):
        resolved = resolve_raw_datasets(
            manifest, deliveries, small_raw, study.current_tolerance_pct, tmp_path / "scratch"
        )
        assert set(resolved) == {*raw_dataset_names(), QUARANTINE, FINDINGS}
        for name in set(whole) - {"vendor_b_events"}:
            assert_frame_equal(resolved[name], whole[name])
        events = resolved["vendor_b_events"]
        assert isinstance(events, TableParts)
        by_line = ["source_file", "source_line"]
        expected = whole["vendor_b_events"].sort(by_line)
        assert_frame_equal(events.scan().collect().sort(by_line), expected)
        sessions = summarise_sessions(whole["vendor_b_events"], study.current_tolerance_pct)
        expected = cast_frame(sessions.collect(), load_contract("device_sessions"))
        assert_frame_equal(resolved["vendor_b_sessions"], expected)
        assert expected.height > 0
        # No bench captures in the simulated tree (tests/pipelines/test_bench_captures_in_pipeline)
        assert resolved["bench_ibu_frames"].height == resolved["balance_weighings"].height == 0
        assert resolved["vendor_a_sessions"]["n_exports"].max() > 1  # repeats were resolved


def test_deliveries_stored_by_an_earlier_version_are_named(tmp_path: Path) -> None:
    """A partition whose vendor-B frame has no typed telemetry columns (an earlier version
    stored an empty frame without columns), or that lacks the frame of a format registered
    since, must be read again; one with every format's columns is current."""
    current = read_delivery_folder(tmp_path, ".", sealed_signature(load_study()))
    assert set(current) == {*delivery_kinds(), "quarantine"}
    assert current["vendor_b"].schema == parsed_schema()
    older = {**current, "vendor_b": pl.DataFrame()}
    unregistered = {k: v for k, v in current.items() if k != "gravimetry"}
    stored = {"old": older, "new": current, "before_gravimetry": unregistered}
    assert stale_deliveries(stored, tmp_path) == ["old", "before_gravimetry"]


def test_resolution_keeps_only_current_versions(tmp_path: Path) -> None:
    """A snapshot corrected in a later delivery: the earlier delivery's frame still holds the
    old rows, the resolved table only the current ones."""
    raw = tmp_path / "raw"
    for day, sex in (("2026-03-09", "F"), ("2026-04-06", "M")):
        folder = raw / "C01" / day
        folder.mkdir(parents=True)
        (folder / "dm.csv").write_text(DM_HEADER + DM_ROW.replace(",F,", f",{sex},"))
    sealed = sealed_signature(load_study())
    parts = [read_delivery_folder(raw, d.folder, sealed) for d in scan_deliveries(raw)]
    assert [p["dm"]["sex"].to_list() for p in parts] == [["F"], ["M"]]
    dm = resolve_raw_datasets(scan_raw(raw), parts, raw, 10.0, tmp_path / "scratch")["dm"]
    expected, _ = read_edc_file(raw / "C01" / "2026-04-06" / "dm.csv", raw, "dm")
    assert_frame_equal(dm, expected)
    assert dm["source_file"].to_list() == ["C01/2026-04-06/dm.csv"]


ANALYSIS_TABLES = [
    "dm",
    "gravimetry",
    "vendor_a_sessions",
    "vendor_b_events",
    "quarantine",
    "device_sessions",
    "adsl",
    "adsweat",
    "adsweat_side",
    "adhdss",
    "adae",
    "addev",
    "analysis_long",
]


@pytest.mark.slow
def test_incremental_runs_equal_a_full_rebuild(small_raw: Path, tmp_path: Path) -> None:
    """An OUT built from the earlier deliveries (one of them later corrected in place), then
    run again on the complete tree, reads only the new and corrected deliveries and holds the
    tables of a fresh full run."""
    folders = [d.folder for d in scan_deliveries(small_raw)]
    earlier = sorted(folders, key=lambda f: f.split("/")[1])[: len(folders) // 2]
    raw = tmp_path / "raw"
    for folder in earlier:
        shutil.copytree(small_raw / folder, raw / folder)
    wrong = raw / earlier[-1] / "dm.csv"
    if wrong.exists():  # the version a centre later corrects: its last subject missing
        lines = wrong.read_text("utf-8").splitlines(keepends=True)
        wrong.write_text("".join(lines[:-1]), "utf-8")
    out = tmp_path / "incremental"
    first = run_pipeline(raw_dir=raw, out_dir=out)
    assert first.success, first.describe()
    assert len(first.deliveries_read) == len(earlier)
    kept = {p: p.stat().st_mtime_ns for p in (out / "partitions").rglob("*.parquet")}
    ranges_before = _telemetry_parts(out)

    shutil.copytree(small_raw, raw, dirs_exist_ok=True)  # later deliveries and the correction
    second = run_pipeline(raw_dir=raw, out_dir=out)
    assert second.success, second.describe()
    before = {d.key for d in scan_deliveries(raw)} - set(first.deliveries_read)
    assert set(second.deliveries_read) == before
    assert len(second.deliveries_read) == len(folders) - len(earlier) + 1
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # nothing re-read
    # The telemetry arrives with the later deliveries: stored as links to its range's part.
    assert ranges_before == {} and len(_telemetry_parts(out)) == 1
    # The papers are recomputed for the subjects of the new deliveries' worksheets only
    # (pipelines/subject_store.py); the corrected dm.csv is not a worksheet.
    added = [f for f in folders if f not in earlier]
    worksheets = [p for f in added for p in (small_raw / f).glob("gravimetry_*.csv")]
    touched = pl.concat([pl.read_csv(p, columns=["subject_id"]) for p in worksheets])
    papers = second.metadata["sweat_papers"]
    assert papers["subjects_recomputed"].value == touched["subject_id"].n_unique()
    assert 0 < papers["subjects_recomputed"].value < papers["subjects"].value

    full = tmp_path / "full"
    fresh = run_pipeline(raw_dir=small_raw, out_dir=full)
    assert fresh.success, fresh.describe()
    assert len(fresh.deliveries_read) == len(folders)
    for table in ANALYSIS_TABLES:
        assert_frame_equal(_stored_table(out, table), _stored_table(full, table))


@pytest.mark.slow
def test_a_telemetry_refresh_writes_only_its_ranges_and_killed_leaves_the_table_whole(
    two_device_raw: Path, tmp_path: Path
) -> None:
    """Two vendor-B devices in two ranges; the last delivery with telemetry has the first
    device's only. Its refresh recomputes that range alone: the other range's part keeps its
    file (same inode) in the resolved parts and in the stored table, which links them. The
    same refresh killed while it resolves (another copy of the output folder) leaves the
    stored table whole, the old one or the new one, and the next run ends with the tables
    of the uninterrupted refresh."""
    files = sorted(two_device_raw.glob("*/*/ionto-b_*.jsonl"), key=lambda p: p.parent.name)
    last = files[-1].parent.relative_to(two_device_raw)
    raw = tmp_path / "raw"
    shutil.copytree(two_device_raw, raw)
    shutil.rmtree(raw / last)
    out = tmp_path / "out"
    assert run_pipeline(raw_dir=raw, out_dir=out).success
    before = _telemetry_parts(out)
    old_table = _stored_table(out, "vendor_b_events")
    killed = tmp_path / "killed"
    subprocess.run(["cp", "-a", str(out), str(killed)], check=True)  # keeps the hard links
    shutil.copytree(two_device_raw / last, raw / last)

    refresh = run_pipeline(raw_dir=raw, out_dir=out)
    assert refresh.success, refresh.describe()
    after = _telemetry_parts(out)
    assert len(before) == len(after) == 2
    changed = [r for r in after if after[r][0] != before[r][0]]
    assert len(changed) == 1
    for number, (_, inode) in after.items():
        assert (inode == before[number][1]) == (number not in changed)
    new_table = _stored_table(out, "vendor_b_events")
    assert new_table.height > old_table.height

    index = killed / ".resolved" / "vendor_b" / "ranges.json"
    written = index.stat().st_mtime_ns
    run = subprocess.Popen(
        [sys.executable, "-m", "ionto.cli", "run", "--raw", str(raw), "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while index.stat().st_mtime_ns == written:  # the resolution has forgotten its ranges
        assert run.poll() is None, "the run ended before the moment to kill it"
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    left = _stored_table(killed, "vendor_b_events")
    assert left.equals(old_table) or left.equals(new_table)
    again = run_pipeline(raw_dir=raw, out_dir=killed)
    assert again.success, again.describe()
    for table in ANALYSIS_TABLES:
        assert_frame_equal(_stored_table(killed, table), _stored_table(out, table))


def _stored_table(out: Path, name: str) -> pl.DataFrame:
    """A table as the IO manager stored it: in parts (a folder) or whole."""
    parts = scan_stored(out, name)
    if parts is not None:
        return parts.collect()
    return pl.read_parquet(out / "tables" / f"{name}.parquet")


def _telemetry_parts(out: Path) -> dict[int, tuple[str, int]]:
    """Range -> (its signature, the inode of its resolved part), checking that the stored
    ``vendor_b_events`` folder links exactly these parts, in range order."""
    resolved = out / ".resolved" / "vendor_b"
    signatures = json.loads((resolved / "ranges.json").read_text("utf-8"))
    if not signatures:  # no telemetry: the table is one empty part
        return {}
    inodes = {int(r): (resolved / f"part-{int(r):03d}.parquet").stat().st_ino for r in signatures}
    stored = sorted(parts_folder(out, "vendor_b_events").glob("part-*.parquet"))
    assert [p.stat().st_ino for p in stored] == [inodes[r] for r in sorted(inodes)]
    return {int(r): (sig, inodes[int(r)]) for r, sig in signatures.items()}


def test_refresh_follows_a_delivery_run_unless_another_is_pending(tmp_path: Path) -> None:
    """The delivery run of a one-file delivery succeeds and stores its partition; the refresh
    sensor then requests ``refresh_analysis``, but skips while another delivery run waits."""
    raw = tmp_path / "raw"
    folder = raw / "C01" / "2026-03-09"
    folder.mkdir(parents=True)
    (folder / "dm.csv").write_text(DM_HEADER + DM_ROW)
    (key,) = [d.key for d in scan_deliveries(raw)]
    settings = TrialSettings(raw_dir=str(raw), out_dir=str(tmp_path / "out"))
    defs = build_definitions(settings)
    job = defs.resolve_job_def("process_delivery")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("deliveries", [key])
    result = job.execute_in_process(instance=instance, partition_key=key)
    assert result.success
    stored = pl.read_parquet(
        tmp_path / "out" / "partitions" / "delivery_frames" / key / "dm.parquet"
    )
    assert stored["subject_id"].to_list() == ["C01-0001"]

    def evaluate() -> object:
        context = dg.build_run_status_sensor_context(
            sensor_name="refresh_after_delivery",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_success_event(),
        )
        return refresh_after_delivery(context)

    request = evaluate()
    assert isinstance(request, dg.RunRequest)
    instance.create_run_for_job(job, status=dg.DagsterRunStatus.NOT_STARTED, tags={})
    assert isinstance(evaluate(), dg.SkipReason)
