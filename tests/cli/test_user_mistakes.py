"""Every expected user mistake ends with one line on stderr that says what to do, a non-zero
exit and no traceback, before anything is written (the ``ionto`` command as a user runs it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.out_lock import LOCK_NAME, out_folder_lock

REPO = Path(__file__).resolve().parents[2]
MINI_RAW = REPO / "tests" / "fixtures" / "raw" / "mini"
SEALED_LIST = REPO / "tests" / "fixtures" / "ref1" / "sealed" / "randomisation.csv"


def ionto(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ionto.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single stderr line of a refused command (asserting exit code and no traceback)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    return lines[0]


def test_missing_raw_folder(tmp_path: Path) -> None:
    line = one_line(ionto("run", "--raw", tmp_path / "nope", "--out", tmp_path / "o", cwd=tmp_path))
    assert line.startswith("ionto run: --raw ") and "does not exist" in line
    assert "delivery root" in line
    assert not (tmp_path / "o").exists()


def test_empty_raw_folder_stops_at_once(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    line = one_line(ionto("run", "--raw", tmp_path / "raw", "--out", tmp_path / "o", cwd=tmp_path))
    assert "holds no delivery folder (<centre>/<YYYY-MM-DD>/)" in line
    assert not (tmp_path / "o").exists()


def test_delivery_folders_without_a_complete_file(tmp_path: Path) -> None:
    day = tmp_path / "raw" / "C01" / "2026-03-09"
    day.mkdir(parents=True)
    (day / "dm.csv.part").write_text("half", "utf-8")
    line = one_line(ionto("run", "--raw", tmp_path / "raw", "--out", tmp_path / "o", cwd=tmp_path))
    assert "every delivery folder is empty or still being written" in line
    assert not (tmp_path / "o").exists()


def test_a_file_given_as_raw(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("a,b\n", "utf-8")
    line = one_line(ionto("run", "--raw", raw, "--out", tmp_path / "o", cwd=tmp_path))
    assert f"--raw {raw} is a file" in line


def test_a_file_given_as_out(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("keep me", "utf-8")
    line = one_line(ionto("run", "--raw", MINI_RAW, "--out", out, cwd=tmp_path))
    assert f"--out {out} is a file" in line
    assert out.read_text("utf-8") == "keep me"


def test_out_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("", "utf-8")
    line = one_line(ionto("run", "--raw", MINI_RAW, "--out", tmp_path / "f" / "o", cwd=tmp_path))
    assert "cannot be created" in line and "give a folder you can write to" in line


def test_read_only_out_folder(tmp_path: Path) -> None:
    """A folder without write permission; root ignores permission bits, so as root the
    read-only folder is ``/sys`` (sysfs creates no file for anyone)."""
    if os.geteuid() == 0:
        out = Path("/sys")
    else:
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o555)
    line = one_line(ionto("run", "--raw", MINI_RAW, "--out", out, cwd=tmp_path))
    assert f"--out {out} is not writable" in line
    assert not (out / LOCK_NAME).exists()


def test_sealed_list_with_the_wrong_header(tmp_path: Path) -> None:
    sealed = tmp_path / "randomisation.csv"
    sealed.write_text("subject,treatment\nS001,TAP\n", "utf-8")
    out = tmp_path / "o"
    line = one_line(
        ionto("run", "--raw", MINI_RAW, "--out", out, "--unblind", sealed, cwd=tmp_path)
    )
    assert "'subject,treatment'" in line and "'subject_id,rand_date,stratum,arm'" in line
    assert not out.exists()


def test_the_sealed_list_header_is_accepted(tmp_path: Path) -> None:
    """The check passes the real list (with or without a byte-order mark)."""
    from pipelines.preflight import check_sealed_list
    from study import load_study

    study = load_study()
    check_sealed_list(SEALED_LIST, study)
    with_bom = tmp_path / "randomisation.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + SEALED_LIST.read_bytes())
    check_sealed_list(with_bom, study)


def test_missing_sealed_list(tmp_path: Path) -> None:
    missing = tmp_path / "sealed.csv"
    line = one_line(
        ionto("run", "--raw", MINI_RAW, "--out", tmp_path / "o", "--unblind", missing, cwd=tmp_path)
    )
    assert f"--unblind {missing} does not exist" in line


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--raw", str(MINI_RAW), "--out", "o"],
        ["simulate", "--subjects", "10", "--seed", "1", "--out", "raw"],
        ["power", "--subjects", "30", "--sims", "2", "--quiet"],
    ],
    ids=["run", "simulate", "power"],
)
def test_missing_study_file(tmp_path: Path, command: list[str]) -> None:
    study = tmp_path / "trial.yaml"
    line = one_line(ionto(*command, "--study", study, cwd=tmp_path))
    assert line == (
        f"ionto {command[0]}: study configuration: {study}: cannot read the study file "
        "(No such file or directory); give a study file's path or the name of a shipped study "
        "(ion301, ion302)"
    )
    assert not (tmp_path / "o").exists() and not (tmp_path / "raw").exists()


def test_an_output_folder_another_run_holds(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    with out_folder_lock(out):
        line = one_line(ionto("run", "--raw", MINI_RAW, "--out", out, cwd=tmp_path))
    assert f"another ionto run (pid {os.getpid()}, since " in line
    assert "wait for it to finish, or give another --out" in line
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def _closed_port() -> int:
    """A TCP port on which nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("device", ["ibu", "balance"])
def test_capture_on_a_port_that_is_not_there(tmp_path: Path, device: str) -> None:
    """It says once that it waits (with the port's error), then gives up with one line."""
    port = f"socket://127.0.0.1:{_closed_port()}"
    extra = ["--operator", "anna"] if device == "balance" else []
    result = ionto(
        "capture",
        device,
        "--port",
        port,
        "--out",
        tmp_path / "cap",
        "--wait",
        "1",
        *extra,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    what = "unit" if device == "ibu" else "balance"
    assert result.stderr.strip().splitlines()[-1] == (
        f"ionto capture: no {what} answered on {port} within 1 s; check the cable and --port, "
        "or give a longer --wait"
    )
    said = (result.stdout + result.stderr).splitlines()
    waiting = [line for line in said if "waiting" in line]
    assert len(waiting) == 1 and "Connection refused" in waiting[0]


def test_the_demo_run_again_reuses_its_trial_and_refuses_another_in_its_folder(
    tmp_path: Path,
) -> None:
    """``ionto demo`` twice on one folder: the second run uses the trial the first simulated
    (nothing changed, nothing recomputed); another size, or files the demo did not simulate,
    in that folder end in one line that says what to do."""
    out = tmp_path / "demo"
    first = ionto("demo", "--out", out, "--subjects", "12", "--blinded", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = ionto("demo", "--out", out, "--subjects", "12", "--blinded", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "simulated earlier (12 subjects, seed" in again.stdout
    assert "nothing changed" in again.stdout
    line = one_line(ionto("demo", "--out", out, "--subjects", "13", "--blinded", cwd=tmp_path))
    assert "holds a simulation of 12 subjects" in line and f"remove {out}" in line
    stray = tmp_path / "stray"
    (stray / "raw").mkdir(parents=True)
    (stray / "raw" / "notes.txt").write_text("mine", "utf-8")
    line = one_line(ionto("demo", "--out", stray, "--subjects", "12", cwd=tmp_path))
    assert "files the demo did not simulate" in line and "give another --out" in line
    assert (stray / "raw" / "notes.txt").read_text("utf-8") == "mine"


@pytest.mark.parametrize("where", ["inside", "same", "through a link"])
def test_an_output_folder_inside_the_raw_root(tmp_path: Path, where: str) -> None:
    """The landing scan reads everything under the raw root: outputs written there would be
    quarantined as unknown folders at the next run, and the tree would never be unchanged."""
    raw = tmp_path / "raw"
    shutil.copytree(MINI_RAW, raw)
    out = {"inside": raw / "out", "same": raw, "through a link": tmp_path / "link" / "out"}[where]
    (tmp_path / "link").symlink_to(raw)
    before = sorted(p.relative_to(raw) for p in raw.rglob("*"))
    line = one_line(ionto("run", "--raw", raw, "--out", out, cwd=tmp_path))
    assert line == (
        f"ionto run: --out {out} is inside --raw {raw}: the run's outputs would be read as "
        "deliveries; give an output folder outside the delivery root"
    )
    assert sorted(p.relative_to(raw) for p in raw.rglob("*")) == before  # nothing written


def test_deliveries_of_another_trial_than_the_study(tmp_path: Path) -> None:
    """ION-301's deliveries (centres C01 ...) run with ION-302's study file (centres P01 ...):
    every subject would be quarantined; the run stops before anything is read or written."""
    line = one_line(
        ionto("run", "--raw", MINI_RAW, "--out", tmp_path / "o", "--study", "ion302", cwd=tmp_path)
    )
    centres = ", ".join(sorted(p.name for p in MINI_RAW.iterdir() if p.is_dir()))
    assert line == (
        f"ionto run: --raw {MINI_RAW} holds deliveries of centres {centres}, none of study "
        "ION-302's (P01, P02, P03, P04, P05); give this trial's study file with --study"
    )
    assert not (tmp_path / "o").exists()


def test_a_centre_or_delivery_folder_given_as_raw(tmp_path: Path) -> None:
    """A centre's folder, or one delivery folder, given for the root: the line names the root."""
    centre = next(p for p in sorted(MINI_RAW.iterdir()) if p.is_dir())
    delivery = next(p for p in sorted(centre.iterdir()) if p.is_dir())
    for given, what in [
        (centre, "it is a centre's folder"),
        (delivery, "it is a delivery folder itself"),
    ]:
        line = one_line(ionto("run", "--raw", given, "--out", tmp_path / "o", cwd=tmp_path))
        assert line.endswith(
            f"holds no delivery folder (<centre>/<YYYY-MM-DD>/); {what}: "
            f"give the delivery root, {MINI_RAW}"
        )
    assert not (tmp_path / "o").exists()
