"""An output folder is blinded or unblinded for life (pipelines/blinding_record.py)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from data_contracts.contracts import use_study
from ingest.registry import SOURCES
from pipelines.assets import raw
from pipelines.blinding_record import (
    RECORD_NAME,
    OutputFolderRefused,
    check_instance,
    claim_output_folder,
    folder_mode,
)
from pipelines.io_manager import ParquetIOManager
from pipelines.resources import TrialSettings
from pipelines.run import run_pipeline

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "raw" / "mini"


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_the_first_run_records_its_mode_and_the_same_mode_may_return(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert folder_mode(out) is None
    claim_output_folder(out, blinded=False)
    assert json.loads((out / RECORD_NAME).read_text("utf-8"))["mode"] == "unblinded"
    claim_output_folder(out, blinded=False)
    assert folder_mode(out) == "unblinded"


@pytest.mark.parametrize(("first", "then"), [(False, True), (True, False)])
def test_a_run_of_the_other_mode_is_refused_and_writes_nothing(
    tmp_path: Path, first: bool, then: bool
) -> None:
    out = tmp_path / "out"
    claim_output_folder(out, blinded=first)
    before = _tree(out)
    with pytest.raises(OutputFolderRefused, match="give --out another folder") as refused:
        claim_output_folder(out, blinded=then)
    assert "\n" not in str(refused.value)
    assert ("UNBLINDED" if then else "BLINDED") in str(refused.value)
    assert _tree(out) == before


def test_a_folder_of_an_earlier_version_is_judged_by_its_tables(tmp_path: Path) -> None:
    """No record: a randomisation table with rows, or any table with an ``arm`` column, makes
    the folder unblinded; tables without either, blinded."""
    unblinded = tmp_path / "unblinded" / "tables"
    unblinded.mkdir(parents=True)
    pl.DataFrame({"subject_id": ["C01-0001"], "arm": ["GLY"]}).write_parquet(
        unblinded / "randomisation.parquet"
    )
    with pytest.raises(OutputFolderRefused):
        claim_output_folder(unblinded.parent, blinded=True)
    by_arm = tmp_path / "by_arm" / "tables"
    by_arm.mkdir(parents=True)
    pl.DataFrame({"subject_id": ["C01-0001"], "arm": ["GLY"]}).write_parquet(
        by_arm / "adsl.parquet"
    )
    assert folder_mode(by_arm.parent) == "unblinded"
    blinded = tmp_path / "blinded" / "tables"
    blinded.mkdir(parents=True)
    pl.DataFrame(schema={"subject_id": pl.String, "arm": pl.String}).write_parquet(
        blinded / "randomisation.parquet"
    )
    pl.DataFrame({"subject_id": ["C01-0001"]}).write_parquet(blinded / "adsl.parquet")
    claim_output_folder(blinded.parent, blinded=True)
    assert folder_mode(blinded.parent) == "blinded"


@pytest.mark.parametrize("text", ['{"mode": "maybe"}', "not json", "[]"])
def test_a_record_that_says_neither_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / RECORD_NAME).write_text(text)
    with pytest.raises(OutputFolderRefused, match="another folder"):
        claim_output_folder(tmp_path, blinded=True)


def test_assets_run_outside_ionto_run_refuse_the_folder_too(tmp_path: Path) -> None:
    """``dagster dev`` materialises assets without ``ionto run``'s check: the graph's root
    assets (``landing_manifest`` here; ``delivery_frames`` too) claim the folder themselves, so
    a blinded run from the UI into an unblinded folder fails at its first step and stores no
    table."""
    out = tmp_path / "out"
    claim_output_folder(out, blinded=False)
    settings = TrialSettings(raw_dir=str(MINI), out_dir=str(out))
    use_study(settings.study())
    roots = [
        a
        for a in raw.raw_assets(SOURCES)
        if {k.to_user_string() for k in a.keys} == {"landing_manifest"}
    ]
    assert len(roots) == 1
    result = dg.materialize(
        roots,
        resources={"settings": settings, "io_manager": ParquetIOManager(out_dir=str(out))},
        raise_on_error=False,
    )
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1
    for event in failures:
        assert "holds an UNBLINDED run's outputs" in str(event.event_specific_data)
    assert not (out / "tables").exists()


def test_an_unblinded_run_never_records_into_a_shared_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "shared_home"))
    sealed = tmp_path / "randomisation.csv"
    sealed.write_text("subject_id,rand_date,stratum,arm\n")
    with pytest.raises(OutputFolderRefused, match="unset DAGSTER_HOME"):
        run_pipeline(raw_dir=MINI, out_dir=tmp_path / "out", unblind_path=sealed)
    assert not (tmp_path / "out").exists()
    check_instance(blinded=True)  # a blinded run may share it
