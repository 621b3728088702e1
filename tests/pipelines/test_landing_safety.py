"""The landing area under an adversary's tree (issue 12): stray files and folders, symbolic
links out of the raw root, copies of the sealed list under other names, and an in-place
correction that keeps size and modification time. One blinded run of the whole graph on a
small simulated trial with all of them at once; ``--verify`` on a copy of it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from ingest.deliveries import manifest_delivery_keys, scan_deliveries
from pipelines.run import RunReport, run_pipeline
from study import load_study
from trial.report.blinding import scan_for_arm_leaks, scan_metadata

SECRET = "root:x:0:0:LANDING-SECRET-MARKER:/root:/bin/bash\n"
VENDOR_B_NAME = "ionto-b_B-09999_20260314180211.jsonl"


def _first_delivery(raw: Path, centre: str) -> str:
    return sorted(p.name for p in (raw / centre).iterdir())[0]


def _strays(raw: Path, sealed: bytes, outside: Path) -> dict[str, str]:
    """Every stray kind of issue 12 added to ``raw`` -> path: the reason expected."""
    c01 = _first_delivery(raw, "C01")
    c04 = _first_delivery(raw, "C04")
    dm = (raw / "C01" / c01 / "dm.csv").read_bytes()
    files = {
        "README.md": (b"how we deliver\n", "UNKNOWN_FILE"),
        "C01/notes.txt": (b"call the CRA\n", "UNKNOWN_FILE"),
        f"C01/{c01}/sub/dm.csv": (dm, "UNKNOWN_FOLDER"),
        "C02/latest/dm.csv": (dm, "UNKNOWN_FOLDER"),
        "C03/2026-02-30/dm.csv": (dm, "UNKNOWN_FOLDER"),
        "randomisation.csv": (sealed, "SEALED_LIST_IN_RAW"),
        f"C04/{c04}/{VENDOR_B_NAME}": (sealed, "SEALED_LIST_IN_RAW"),
        "C02/arms.csv": (sealed.split(b"\n", 1)[1], "SEALED_LIST_IN_RAW"),  # rows, no header
    }
    for rel, (data, _) in files.items():
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / rel).write_bytes(data)
    secret = outside / "passwd"
    secret.write_text(SECRET)
    link = f"C01/{c01}/ionto-b_B-08888_20260314180211.jsonl"
    (raw / link).symlink_to(secret)
    linked_delivery = outside / "delivery"
    shutil.copytree(raw / "C02" / _first_delivery(raw, "C02"), linked_delivery)
    (raw / "C02" / "2026-12-01").symlink_to(linked_delivery, target_is_directory=True)
    return {
        **{rel: reason for rel, (_, reason) in files.items()},
        link: "SYMLINK",
        "C02/2026-12-01": "SYMLINK",
    }


@pytest.fixture(scope="module")
def landed(
    small_raw: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, dict[str, str], RunReport]:
    """(raw, out, expected reasons, report) of one blinded run on the adversary's tree."""
    base = tmp_path_factory.mktemp("landing")
    raw = base / "raw"
    shutil.copytree(small_raw, raw)
    outside = base / "outside"
    outside.mkdir()
    sealed = (Path(str(small_raw) + "_sealed") / "randomisation.csv").read_bytes()
    expected = _strays(raw, sealed, outside)
    report = run_pipeline(raw_dir=raw, out_dir=base / "out")
    return raw, base / "out", expected, report


def test_strays_symlinks_and_sealed_copies_do_not_stop_the_run(
    landed: tuple[Path, Path, dict[str, str], RunReport],
) -> None:
    _, out, expected, report = landed
    assert report.success, report.describe()
    assert not report.failed_checks
    q = pl.read_parquet(out / "tables" / "quarantine.parquet")
    landing = q.filter(pl.col("dataset").is_in(["landing", "randomisation"]))
    assert dict(landing.select("source_file", "reason_code").rows()) == expected
    assert landing["raw_text"].null_count() == landing.height
    assert pl.read_parquet(out / "tables" / "adsl.parquet").height > 0
    assert (out / "reports" / "investigator_report.html").is_file()


def test_every_delivery_read_is_used_and_the_linked_one_is_listed_not_read(
    landed: tuple[Path, Path, dict[str, str], RunReport],
) -> None:
    raw, out, _, report = landed
    manifest = pl.read_parquet(out / "tables" / "landing_manifest.parquet")
    used = set(manifest_delivery_keys(manifest)["delivery_key"])
    assert set(report.deliveries_read) == used == {d.key for d in scan_deliveries(raw)}
    assert report.deliveries_total == len(used)
    assert not any(key.startswith("C02_2026-12-01") for key in report.deliveries_read)
    assert manifest.filter(pl.col("source_file") == "C02/2026-12-01")["kind"].item() == "symlink"


def _every_byte_under(out: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(out.rglob("*")) if p.is_file()]


def test_nothing_of_the_sealed_copies_or_the_linked_file_is_anywhere_in_the_output(
    landed: tuple[Path, Path, dict[str, str], RunReport], small_raw: Path
) -> None:
    """Tables, models, reports, exports and Dagster's metadata: no arm (the blinding scan
    against the true list); stored partitions: no row from a sealed copy or a link; every
    file of the output folder: no line of the list, nothing of the file a link pointed to."""
    _, out, expected, report = landed
    sealed_path = Path(str(small_raw) + "_sealed") / "randomisation.csv"
    randomisation = pl.read_csv(sealed_path)
    study = load_study()
    folders = [out / name for name in ("tables", "models", "reports", "exports")]
    assert scan_for_arm_leaks(folders, randomisation, study) == []
    not_read = list(expected)
    for part in sorted((out / "partitions").rglob("*.parquet")):
        frame = pl.read_parquet(part)
        if "source_file" in frame.columns:
            assert not frame["source_file"].is_in(not_read).any(), part
    assert report.metadata
    for asset, metadata in report.metadata.items():
        assert scan_metadata(metadata, asset, randomisation, study) == []
    lines = sealed_path.read_bytes().splitlines()[1:]
    for path, data in _every_byte_under(out):
        assert b"LANDING-SECRET-MARKER" not in data, path
        assert not any(line in data for line in lines), path


@pytest.mark.slow
def test_verify_reads_again_a_correction_that_kept_size_and_time(
    landed: tuple[Path, Path, dict[str, str], RunReport], tmp_path: Path
) -> None:
    """A dm row corrected in place with the same size and modification time: an incremental
    run trusts the stored hash and misses it; ``--verify`` hashes again and reads it."""
    raw_before, out_before, _, _ = landed
    raw, out = tmp_path / "raw", tmp_path / "out"
    shutil.copytree(raw_before, raw, symlinks=True)
    shutil.copytree(out_before, out, symlinks=True)
    latest = sorted(p.name for p in (raw / "C01").iterdir() if p.name[:1].isdigit())
    folder = [d for d in latest if (raw / "C01" / d / "dm.csv").is_file()][-1]
    path = raw / "C01" / folder / "dm.csv"
    text = path.read_text("utf-8")
    header, first, rest = text.split("\n", 2)
    subject, centre, consent, sex, *tail = first.split(",")
    other = "M" if sex == "F" else "F"
    stat = path.stat()
    path.write_text("\n".join([header, ",".join([subject, centre, consent, other, *tail]), rest]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)

    def sex_of_subject() -> str:
        dm = pl.read_parquet(out / "tables" / "dm.parquet")
        return str(dm.filter(pl.col("subject_id") == subject)["sex"].item())

    trusting = run_pipeline(raw_dir=raw, out_dir=out)
    assert trusting.success, trusting.describe()
    assert trusting.deliveries_read == []
    assert sex_of_subject() == sex
    verified = run_pipeline(raw_dir=raw, out_dir=out, verify=True)
    assert verified.success, verified.describe()
    assert [key.rsplit("_", 1)[0] for key in verified.deliveries_read] == [f"C01_{folder}"]
    assert sex_of_subject() == other
