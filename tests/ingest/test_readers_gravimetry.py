"""Gravimetry worksheets: corrections, repeats, duplicate papers, bad cells."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from data_contracts.contracts import blocking_failures, check_frame, load_contract
from ingest.landing import scan_raw
from ingest.readers.gravimetry import (
    read_gravimetry,
    read_gravimetry_file,
    resolve_duplicate_papers,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
MINI = FIXTURES / "mini"
BAD = FIXTURES / "bad"


def test_current_worksheets_correction_wins_and_duplicate_papers_are_paired() -> None:
    g, q, pairs = read_gravimetry(MINI, scan_raw(MINI))
    assert q.height == 0
    assert blocking_failures(check_frame(g, load_contract("gravimetry"))) == []
    papers = {(r["subject_id"], r["visit"], r["side"]): r for r in g.iter_rows(named=True)}
    assert len(papers) == g.height == 6
    # the corrected worksheet (same name, later delivery) wins: 616.8, not 606.8
    right = papers[("C01-0001", "BL", "R")]
    assert right["wet_weight"] == 616.8
    assert (right["source_file"], right["source_line"]) == (
        "C01/2026-03-09/gravimetry_C01_20260209.csv",
        4,  # line 3 is blank
    )
    # C01-0002 BL PALM L is on line 5 of the corrected 20260209 worksheet and on line 4 of the
    # 20260309 one. Both contents arrived on 2026-03-09 (the 2026-04-06 copy of 20260309 is a
    # byte-identical repeat), so the later line wins: the lost paper (empty wet weight).
    left = papers[("C01-0002", "BL", "L")]
    assert left["wet_weight"] is None
    assert pairs.rows() == [
        (
            "C01-0002", "BL", "PALM", "L",
            "C01/2026-03-09/gravimetry_C01_20260209.csv", 5,
            "C01/2026-04-06/gravimetry_C01_20260309.csv", 4,
        )
    ]  # fmt: skip
    grams = papers[("C01-0001", "W1", "L")]
    assert (grams["unit"], grams["dry_weight"], grams["wet_weight"]) == ("g", 0.5301, 0.5812)
    assert grams["collected_at"] == "2026-01-26T10:00:00+01:00"
    assert grams["collected_at_utc"] == dt.datetime(2026, 1, 26, 9, 0, tzinfo=dt.UTC)
    assert papers[("C01-0001", "BL", "L")]["operator"] == "L. Bauer"


def test_empty_wet_weight_is_missing_not_an_error() -> None:
    g, q = read_gravimetry_file(MINI / "C01/2026-02-09/gravimetry_C01_20260209.csv", MINI)
    assert q.height == 0
    lost = g.filter(subject_id="C01-0002", side="L").row(0, named=True)
    assert lost["wet_weight"] is None
    assert lost["collection_s"] == 45
    assert lost["operator"] == "Zoë Müller"


def test_bad_cells_are_quarantined_at_their_lines() -> None:
    g, q = read_gravimetry_file(BAD / "C02/2026-03-09/gravimetry_C02_20260309.csv", BAD)
    assert g["source_line"].to_list() == [6]
    assert q.select("source_line", "field", "reason_code").rows() == [
        (2, "wet_weight", "BAD_NUMBER"),
        (3, "side", "NOT_IN_CODELIST"),
        (4, "collected_at", "BAD_DATE"),
        (5, "dry_weight", "OUT_OF_RANGE"),
    ]
    assert "wet_weight='5O4.2'" in q["message"][0]


def test_duplicate_papers_later_delivery_then_later_line() -> None:
    def paper(src: str, line: int, wet: float) -> dict[str, object]:
        return {
            "subject_id": "C01-0001", "visit": "W1", "region": "PALM", "side": "L",
            "wet_weight": wet, "source_file": src, "source_line": line,
        }  # fmt: skip

    rows = pl.DataFrame(
        [
            paper("C01/2026-03-09/gravimetry_a.csv", 9, 1.0),
            paper("C01/2026-04-06/gravimetry_b.csv", 2, 2.0),  # later delivery, earlier line
            paper("C01/2026-04-06/gravimetry_c.csv", 3, 3.0),  # same delivery, later line
        ]
    )
    kept, pairs = resolve_duplicate_papers(rows)
    assert kept["wet_weight"].to_list() == [3.0]
    assert pairs.select("superseded_file", "superseded_line").sort("superseded_line").rows() == [
        ("C01/2026-04-06/gravimetry_b.csv", 2),
        ("C01/2026-03-09/gravimetry_a.csv", 9),
    ]
    # with the manifest's content dates: c's bytes first arrived before a's delivery
    delivered = pl.DataFrame(
        {
            "source_file": [
                "C01/2026-03-09/gravimetry_a.csv",
                "C01/2026-04-06/gravimetry_b.csv",
                "C01/2026-04-06/gravimetry_c.csv",
            ],
            "content_delivered": [
                dt.date(2026, 3, 9),
                dt.date(2026, 4, 6),
                dt.date(2026, 2, 9),
            ],
        }
    )
    kept, _ = resolve_duplicate_papers(rows, delivered)
    assert kept["wet_weight"].to_list() == [2.0]
