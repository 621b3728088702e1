"""Sweat rates per paper, region values and baselines against hand-computed values, for each
example study (visits, sides and the primary region from the study)."""

from __future__ import annotations

import math

import polars as pl
import pytest
from derive_fixture import Design, gravimetry
from materialise import Tables

from trial.derive import latest_papers, paper_rates


def _rate(papers: pl.DataFrame, subject: str, visit: str, side: str) -> pl.DataFrame:
    return papers.filter(
        (pl.col("subject_id") == subject) & (pl.col("visit") == visit) & (pl.col("side") == side)
    )


def test_rate_in_mg_and_in_grams_over_non_60_s(design: Design) -> None:
    papers = paper_rates(gravimetry(design), design.study)
    # 460.0 - 400.0 mg over 60 s
    assert _rate(papers, design.subject(1), design.bl, "L")[
        "sweat_rate_mg_min"
    ].item() == pytest.approx(60.0)
    # (0.4300 - 0.4000) g = 30 mg over 45 s = 40 mg/min
    assert _rate(papers, design.subject(1), design.bl, "R")[
        "sweat_rate_mg_min"
    ].item() == pytest.approx(40.0)
    # 30 mg over 90 s = 20 mg/min
    assert _rate(papers, design.subject(1), design.v2, "R")[
        "sweat_rate_mg_min"
    ].item() == pytest.approx(20.0)


def test_non_positive_gain_is_invalid_not_clipped(design: Design) -> None:
    papers = paper_rates(gravimetry(design), design.study)
    lost_weight = _rate(papers, design.subject(1), design.v1, "R")
    assert lost_weight["invalid_rate"].item() is True
    assert lost_weight["invalid_reason"].item() == "NON_POSITIVE_WEIGHT_GAIN"
    assert lost_weight["sweat_rate_mg_min"].item() is None
    assert lost_weight["weight_gain_mg"].item() == pytest.approx(-10.0)
    equal = _rate(papers, design.subject(3), design.bl, "R")
    assert equal["rate_status"].item() == "INVALID"


def test_empty_weight_is_missing_not_invalid(design: Design) -> None:
    papers = paper_rates(gravimetry(design), design.study)
    empty = _rate(papers, design.subject(3), design.bl, "L")
    assert empty["rate_status"].item() == "MISSING"
    assert empty["invalid_rate"].item() is False
    assert empty["sweat_rate_mg_min"].item() is None
    assert papers.filter(pl.col("rate_status") == "MISSING").height == 1
    assert papers.filter(pl.col("invalid_rate")).height == 2


def test_empty_collection_time_uses_the_configured_default(design: Design) -> None:
    frame = gravimetry(design).with_columns(
        collection_s=pl.when(pl.col("paper_id") == "P3").then(None).otherwise("collection_s")
    )
    papers = paper_rates(frame, design.study)
    row = papers.filter(pl.col("paper_id") == "P3")
    assert row["collection_s_defaulted"].item() is True
    assert row["sweat_rate_mg_min"].item() == pytest.approx(60.0)


def test_later_worksheet_wins_for_the_same_paper(design: Design) -> None:
    first = gravimetry(design).filter(pl.col("paper_id") == "P3")
    later = first.with_columns(
        wet_weight=pl.lit(470.0),
        source_file=pl.lit(f"{design.centre}/2026-03-09/gravimetry_{design.centre}_b.csv"),
    )
    kept, lost = latest_papers(pl.concat([later, first]))
    assert kept["wet_weight"].to_list() == [470.0]
    assert lost["source_file"].to_list() == [first["source_file"].item()]


def test_region_value_geometric_mean_and_one_side(unblinded: Tables, design: Design) -> None:
    adsweat = unblinded.adsweat
    row = adsweat.filter(
        (pl.col("subject_id") == design.subject(1)) & (pl.col("AVISIT") == design.bl)
    )
    # every paper is of the study's primary region (ION-301 palms, ION-302 soles)
    assert set(adsweat["PARAMCD"]) == {design.study.primary_region.paramcd}
    assert row["AVAL"].item() == pytest.approx((math.log(60) + math.log(40)) / 2, abs=1e-12)
    assert row["rate_mg_min"].item() == pytest.approx(math.sqrt(60 * 40))
    assert row["n_sides"].item() == 2
    one = adsweat.filter(
        (pl.col("subject_id") == design.subject(1)) & (pl.col("AVISIT") == design.v1)
    )
    assert one["AVAL"].item() == pytest.approx(math.log(30), abs=1e-12)
    assert one["n_sides"].item() == 1


def test_baseline_bl_and_change(unblinded: Tables, design: Design) -> None:
    adsweat = unblinded.adsweat
    w1 = adsweat.filter(
        (pl.col("subject_id") == design.subject(1)) & (pl.col("AVISIT") == design.v1)
    ).row(0, named=True)
    base = (math.log(60) + math.log(40)) / 2
    assert w1["BASE_VISIT"] == design.bl
    assert w1["BASE"] == pytest.approx(base, abs=1e-12)
    assert w1["CHG"] == pytest.approx(math.log(30) - base, abs=1e-12)
    assert w1["PCHG"] == pytest.approx(100 * (30 / math.sqrt(2400) - 1), abs=1e-9)
    flags = adsweat.filter(pl.col("subject_id") == design.subject(1)).select(
        "AVISIT", "ABLFL", "CHG"
    )
    assert flags.filter(pl.col("ABLFL") == "Y")["AVISIT"].to_list() == [design.bl]
    # no change at or before the baseline visit
    assert flags.filter(pl.col("AVISIT").is_in([design.scr, design.bl]))["CHG"].null_count() == 2


def test_baseline_falls_back_to_scr_when_bl_has_no_valid_side(
    unblinded: Tables, design: Design
) -> None:
    adsweat = unblinded.adsweat
    s3 = adsweat.filter(pl.col("subject_id") == design.subject(3))
    bl = s3.filter(pl.col("AVISIT") == design.bl).row(0, named=True)
    assert bl["AVAL"] is None and bl["n_sides"] == 0 and bl["ANL01FL"] == "N"
    w1 = s3.filter(pl.col("AVISIT") == design.v1).row(0, named=True)
    scr = (math.log(50) + math.log(80)) / 2
    assert w1["BASE_VISIT"] == design.scr
    assert w1["BASE"] == pytest.approx(scr, abs=1e-12)
    assert w1["CHG"] == pytest.approx(math.log(20) - scr, abs=1e-12)
    assert s3.filter(pl.col("ABLFL") == "Y")["AVISIT"].to_list() == [design.scr]


def test_side_table_uses_region_baseline(unblinded: Tables, design: Design) -> None:
    side = unblinded.adsweat_side
    w2 = side.filter(
        (pl.col("subject_id") == design.subject(1)) & (pl.col("AVISIT") == design.v2)
    ).sort("side")
    assert w2["side"].to_list() == list(design.study.sides)
    base = (math.log(60) + math.log(40)) / 2
    assert w2["CHG"].to_list() == pytest.approx([math.log(20) - base] * 2, abs=1e-12)
    # the invalid W1 right paper has no side record
    assert (
        side.filter(
            (pl.col("subject_id") == design.subject(1)) & (pl.col("AVISIT") == design.v1)
        ).height
        == 1
    )


def test_findings_list_every_paper_without_a_rate(unblinded: Tables, design: Design) -> None:
    findings = unblinded.derivation_findings
    grav = findings.filter(pl.col("dataset") == "gravimetry")
    assert sorted(grav["finding"].to_list()) == ["INVALID_RATE", "INVALID_RATE", "MISSING_WEIGHT"]
    assert grav["source_line"].null_count() == 0
