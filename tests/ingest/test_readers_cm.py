"""cm.csv (concomitant medication, protocol amendment 1): read, typed, quarantined and made
current like every EDC export; deliveries made before the amendment have no cm.csv, which is
not an error. For each example study (rows of its first centre, its codelists)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from data_contracts.contracts import blocking_failures, check_frame, load_contract, use_study
from ingest.incremental import read_delivery_folder, resolve_raw_datasets
from ingest.landing import scan_raw
from ingest.readers.edc import read_edc_file
from ingest.sealed import sealed_signature
from study import EXAMPLE_STUDIES, Study, load_study

HEADER = "subject_id,cm_id,drug,verbatim,start_date,end_date,indication,rescue"


@pytest.fixture(params=EXAMPLE_STUDIES, ids=list(EXAMPLE_STUDIES))
def study(request: pytest.FixtureRequest) -> Study:
    """Each example study, its contracts bound: the rows are of its first centre."""
    chosen = load_study(request.param)
    use_study(chosen)
    return chosen


def _dm(centre: str) -> str:
    return (
        "subject_id,centre_id,consent_date,sex,birth_year,plantar_involved,hdss_screening\n"
        f"{centre}-0001,{centre},2026-01-10,F,1990,N,3\n"
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_cm_rows_are_typed_and_each_bad_row_is_quarantined_at_its_line(
    study: Study, tmp_path: Path
) -> None:
    c = study.centres[0]
    lines = [
        HEADER,
        f'{c}-0001,{c}-0001-CM01,ORAL_GLYCOPYRRONIUM,"Robinul 1 mg, bid",2026-03-02,,'
        "HYPERHIDROSIS,Y",
        f"{c}-0001,{c}-0001-CM02,ASPIRIN,aspirin,2026-03-03,,OTHER,N",
        f"{c}-0001,{c}-0001-CM03,OTHER,ibuprofen,2026-13-01,,OTHER,N",
        f"{c}-0001,{c}-0001-CM04,OTHER,ibuprofen,,,OTHER,N",
        f"{c}-0001,{c}-0001-CM05,BOTULINUM_TOXIN,botox,2026-03-05,2026-03-05,HYPERHIDROSIS,X",
        f"{c}-0001,{c}-0001-CM01,OTHER,again,2026-03-06,,OTHER,N",
        f"{c}-0001,{c}-0001-CM07,OTHER,short",
        f"{c}-0001,{c}-0001-CM08,ALUMINIUM_CHLORIDE,topical,2025-11-01,2025-12-01,HYPERHIDROSIS,N",
    ]
    path = _write(tmp_path / c / "2026-05-01" / "cm.csv", "\n".join(lines) + "\n")
    cm, q = read_edc_file(path, tmp_path, "cm")
    assert cm.schema == load_contract("cm").schema
    assert cm["cm_id"].to_list() == [f"{c}-0001-CM01", f"{c}-0001-CM08"]
    assert cm["source_line"].to_list() == [2, 9]
    first = cm.row(0, named=True)
    assert first["verbatim"] == "Robinul 1 mg, bid"
    assert first["start_date"] == dt.date(2026, 3, 2)
    assert first["end_date"] is None  # ongoing: missing, not an error
    got = q.select("source_line", "field", "reason_code").rows()
    assert got == [
        (3, "drug", "NOT_IN_CODELIST"),
        (4, "start_date", "BAD_DATE"),
        (5, "start_date", "MISSING_REQUIRED"),
        (6, "rescue", "NOT_IN_CODELIST"),
        (7, "cm_id", "DUPLICATE_KEY"),
        (8, None, "WRONG_FIELD_COUNT"),
    ]
    assert set(q["dataset"]) == {"cm"}
    assert set(q["source_file"]) == {f"{c}/2026-05-01/cm.csv"}
    by_line = {r["source_line"]: r for r in q.iter_rows(named=True)}
    assert "ASPIRIN" in by_line[3]["message"] and by_line[3]["raw_text"] == lines[2]
    assert blocking_failures(check_frame(cm, load_contract("cm"))) == []


def test_no_cm_before_the_amendment_then_the_latest_snapshot_is_current(
    study: Study, tmp_path: Path
) -> None:
    c = study.centres[0]
    dm = _dm(c)
    raw = tmp_path / "raw"
    _write(raw / c / "2026-03-01" / "dm.csv", dm)
    _write(raw / c / "2026-05-01" / "dm.csv", dm)
    _write(
        raw / c / "2026-05-01" / "cm.csv",
        f"{HEADER}\n{c}-0001,{c}-0001-CM01,OTHER,paracetamol,2026-02-01,,OTHER,N\n",
    )
    _write(raw / c / "2026-06-01" / "dm.csv", dm)
    _write(
        raw / c / "2026-06-01" / "cm.csv",
        f"{HEADER}\n{c}-0001,{c}-0001-CM01,OTHER,paracetamol,2026-02-01,2026-02-09,OTHER,N\n"
        f"{c}-0001,{c}-0001-CM02,BOTULINUM_TOXIN,botox palms,2026-05-20,2026-05-20,"
        "HYPERHIDROSIS,Y\n",
    )
    folders = [f"{c}/2026-03-01", f"{c}/2026-05-01", f"{c}/2026-06-01"]
    deliveries = [read_delivery_folder(raw, f, sealed_signature(study)) for f in folders]
    before = deliveries[0]
    assert before["cm"].height == 0
    assert before["cm"].schema == load_contract("cm").schema
    assert before["quarantine"].height == 0
    current = resolve_raw_datasets(
        scan_raw(raw), deliveries, raw, study.current_tolerance_pct, tmp_path / "scratch"
    )
    cm = current["cm"]
    assert isinstance(cm, pl.DataFrame)
    assert cm["source_file"].unique().to_list() == [f"{c}/2026-06-01/cm.csv"]
    assert cm["cm_id"].to_list() == [f"{c}-0001-CM01", f"{c}-0001-CM02"]
    assert cm["end_date"].to_list() == [dt.date(2026, 2, 9), dt.date(2026, 5, 20)]
    quarantine = current["quarantine"]
    assert isinstance(quarantine, pl.DataFrame)
    assert quarantine.filter(pl.col("dataset") == "cm").height == 0
