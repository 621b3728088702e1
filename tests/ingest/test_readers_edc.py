"""EDC readers: typing by contract, lineage, and each quarantine reason at its file and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from data_contracts.contracts import blocking_failures, check_frame, load_contract
from ingest.landing import scan_raw
from ingest.readers.edc import read_edc_file, read_edc_table, read_randomisation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
MINI = FIXTURES / "mini"
BAD = FIXTURES / "bad"


def test_current_snapshot_with_bom_and_crlf_is_typed_with_lineage() -> None:
    dm, q = read_edc_table(MINI, scan_raw(MINI), "dm")
    assert q.height == 0
    assert dm.schema == load_contract("dm").schema
    assert dm["subject_id"].to_list() == ["C01-0001", "C01-0002", "C01-0003"]
    assert dm["source_file"].unique().to_list() == ["C01/2026-03-09/dm.csv"]  # CRLF file
    assert dm["source_line"].to_list() == [2, 3, 4]
    assert dm.row(2, named=True)["consent_date"] == dt.date(2026, 2, 20)
    # the superseded snapshot starts with a byte-order mark: its header still reads
    first, q1 = read_edc_file(MINI / "C01/2026-02-09/dm.csv", MINI, "dm")
    assert q1.height == 0 and first.height == 2
    assert blocking_failures(check_frame(dm, load_contract("dm"))) == []


def test_quoted_commas_and_empty_cells() -> None:
    ae, q = read_edc_table(MINI, scan_raw(MINI), "ae")
    assert q.height == 0
    row = ae.row(0, named=True)
    assert row["verbatim"] == "pruritus, hands"
    assert row["end_date"] is None  # empty cell: missing, not an error
    assert row["onset_date"] == dt.date(2026, 2, 1)


def test_bad_dm_rows_are_quarantined_at_their_lines_and_the_rest_is_read() -> None:
    dm, q = read_edc_file(BAD / "C02/2026-03-09/dm.csv", BAD, "dm")
    assert dm["subject_id"].to_list() == ["C02-0001"]
    assert dm["source_line"].to_list() == [2]
    got = q.select("source_line", "field", "reason_code").rows()
    assert got == [
        (3, "sex", "NOT_IN_CODELIST"),
        (4, "subject_id", "MISSING_REQUIRED"),
        (6, "consent_date", "BAD_DATE"),  # line 5 is blank: tolerated, still counted
        (7, None, "WRONG_FIELD_COUNT"),
        (8, "subject_id", "DUPLICATE_KEY"),
        (9, "hdss_screening", "OUT_OF_RANGE"),
        (10, "birth_year", "BAD_NUMBER"),
        (11, None, "BAD_CSV"),
    ]
    assert set(q["source_file"]) == {"C02/2026-03-09/dm.csv"}
    assert set(q["dataset"]) == {"dm"}
    by_line = {r["source_line"]: r for r in q.iter_rows(named=True)}
    assert by_line[3]["raw_text"] == "C02-0002,C02,2026-01-18,X,1990,Y,4"
    assert by_line[3]["message"] == (
        "C02/2026-03-09/dm.csv line 3: sex='X' (NOT_IN_CODELIST: must be one of F, M)"
    )
    assert "already on line 2" in by_line[8]["message"]
    assert "6 fields where the header has 7" in by_line[7]["message"]


def test_bad_header_and_not_utf8_quarantine_the_whole_file() -> None:
    hdss, q = read_edc_file(BAD / "C02/2026-03-09/hdss.csv", BAD, "hdss")
    assert hdss.height == 0 and hdss.schema == load_contract("hdss").schema
    assert q.select("source_line", "reason_code").rows() == [(1, "BAD_HEADER")]
    assert "missing hdss; unexpected score" in q["message"][0]
    visits, q = read_edc_file(BAD / "C02/2026-03-09/visits.csv", BAD, "visits")
    assert visits.height == 0
    row = q.row(0, named=True)
    assert (row["source_line"], row["reason_code"]) == (None, "NOT_UTF8")
    assert "line 3" in row["message"]
    assert row["raw_text"] == "C02-0001,BL,2026-01-19,DONE   Zo\\xeb"


def test_sealed_randomisation_list(tmp_path: Path) -> None:
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    (sealed / "randomisation.csv").write_text(
        "subject_id,rand_date,stratum,arm\nC01-0001,2026-01-19,HDSS3,TAP\n"
        "C01-0002,2026-01-20,HDSS5,GLY\n"
    )
    rand, q = read_randomisation(sealed / "randomisation.csv")
    assert rand.select("subject_id", "arm", "source_file", "source_line").rows() == [
        ("C01-0001", "TAP", "sealed/randomisation.csv", 2)
    ]
    assert q.select("source_line", "field", "reason_code").rows() == [
        (3, "stratum", "NOT_IN_CODELIST")
    ]
    assert rand.schema["rand_date"] == pl.Date


def test_the_registry_reads_the_edc_tables_of_data_contracts() -> None:
    """One list of EDC exports (``data_contracts.contracts.EDC_TABLES``): the registry has an
    entry for each, in that order, and no other EDC entry."""
    from data_contracts.contracts import EDC_TABLES
    from ingest.registry import edc_tables

    assert edc_tables() == EDC_TABLES
