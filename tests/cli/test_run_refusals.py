"""``ionto run`` refuses an output folder of the other blinding mode with one line on stderr,
exit code 2 and no traceback, before writing anything; ``--verify`` reaches the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ionto.cli import main
from pipelines.blinding_record import claim_output_folder
from pipelines.run import RunReport

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "raw" / "mini"


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_blinded_run_into_an_unblinded_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    claim_output_folder(out, blinded=False)
    before = _tree(out)
    done = subprocess.run(
        [sys.executable, "-m", "ionto.cli", "run", "--raw", str(MINI), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"ionto run: {out} holds an UNBLINDED run's outputs")
    assert "give --out another folder" in lines[0]
    assert "Traceback" not in done.stderr
    assert _tree(out) == before


def test_an_unblinded_run_into_a_blinded_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    claim_output_folder(out, blinded=True)
    sealed = tmp_path / "randomisation.csv"
    sealed.write_text("subject_id,rand_date,stratum,arm\n")
    before = _tree(out)
    argv = ["run", "--raw", str(MINI), "--out", str(out), "--unblind", str(sealed)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "is a BLINDED output folder" in err and "give --out another folder" in err
    assert _tree(out) == before


def test_verify_is_passed_to_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipelines.run

    seen: dict[str, object] = {}

    def fake_run(**kwargs: object) -> RunReport:
        seen.update(kwargs)
        return RunReport(success=True, out_dir=tmp_path, blinded=True, seconds=0.0)

    monkeypatch.setattr(pipelines.run, "run_pipeline", fake_run)
    assert main(["run", "--raw", str(MINI), "--out", str(tmp_path), "--verify"]) == 0
    assert seen["verify"] is True
    assert main(["run", "--raw", str(MINI), "--out", str(tmp_path)]) == 0
    assert seen["verify"] is False
    assert "BLINDED run succeeded" in capsys.readouterr().out


def test_an_unblinded_run_with_a_shared_dagster_home_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    sealed = tmp_path / "randomisation.csv"
    sealed.write_text("subject_id,rand_date,stratum,arm\n")
    out = tmp_path / "out"
    assert main(["run", "--raw", str(MINI), "--out", str(out), "--unblind", str(sealed)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unset DAGSTER_HOME" in err
    assert not out.exists()
