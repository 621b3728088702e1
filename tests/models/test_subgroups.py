"""Subgroup effects: split counts, per-level effects, interaction F against statsmodels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from study import Study, load_study
from trial.models.ancova import fit_ancova
from trial.models.subgroups import subgroup_effects
from trial.models.tidy import BLINDED_NOTE

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


@pytest.fixture(scope="module")
def long(ref1_dir: Path) -> pl.DataFrame:
    return pl.read_csv(ref1_dir / "expected" / "analysis_long.csv")


@pytest.fixture(scope="module")
def adsl(long: pl.DataFrame) -> pl.DataFrame:
    """Deterministic subgroup columns: sex by subject number parity, age cycling 12..65."""
    subjects = long.select("subject", "centre", "stratum").unique().sort("subject")
    number = subjects.get_column("subject").str.slice(-4).cast(pl.Int64)
    return subjects.select(
        pl.col("subject").alias("subject_id"),
        pl.col("centre").alias("centre_id"),
        "stratum",
        pl.when(number % 2 == 0).then(pl.lit("F")).otherwise(pl.lit("M")).alias("sex"),
        (12 + (number * 7) % 54).alias("age"),
        pl.when(number % 3 == 0).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("plantar_involved"),
    )


def test_split_counts(study: Study, long: pl.DataFrame, adsl: pl.DataFrame) -> None:
    result = subgroup_effects(long, adsl, study)
    w4 = long.filter(pl.col("visit") == "W4").join(adsl, left_on="subject", right_on="subject_id")
    forest = result.tables["forest"]
    females = forest.filter((pl.col("subgroup") == "sex") & (pl.col("level") == "F"))
    n_f = w4.filter(pl.col("sex") == "F").height
    assert females.get_column("n").unique().to_list() == [n_f]
    gly = females.filter(pl.col("contrast") == "GLY-TAP").row(0, named=True)
    assert gly["n_arm"] == w4.filter((pl.col("sex") == "F") & (pl.col("arm") == "GLY")).height
    assert gly["n_reference"] == w4.filter((pl.col("sex") == "F") & (pl.col("arm") == "TAP")).height
    # age groups 12-17 / 18-40 / 41-65 derived from age; levels add up to all subjects
    ages = forest.filter((pl.col("subgroup") == "age_group") & (pl.col("contrast") == "GLY-TAP"))
    assert ages.get_column("level").to_list() == ["12-17", "18-40", "41-65"]
    assert ages.get_column("n").sum() == w4.height
    n_young = w4.filter(pl.col("age") <= 17).height
    assert ages.filter(pl.col("level") == "12-17").get_column("n").item() == n_young
    counts = result.tables["counts"].filter(pl.col("subgroup") == "centre")
    assert counts.get_column("n").sum() == w4.height


def test_level_effect_is_the_ancova_within_the_level(
    study: Study, long: pl.DataFrame, adsl: pl.DataFrame
) -> None:
    result = subgroup_effects(long, adsl, study)
    m_subjects = adsl.filter(pl.col("sex") == "M").get_column("subject_id")
    within = fit_ancova(long.filter(pl.col("subject").is_in(m_subjects.implode())), study)
    expected = within.tables["contrasts"].filter(pl.col("contrast") == "OXY-TAP").row(0, named=True)
    row = (
        result.tables["forest"]
        .filter((pl.col("level") == "M") & (pl.col("contrast") == "OXY-TAP"))
        .row(0, named=True)
    )
    assert row["estimate"] == pytest.approx(expected["estimate"], abs=1e-12)
    assert row["ci_high"] == pytest.approx(expected["ci_high"], abs=1e-12)
    # the centre subgroup drops the (constant) centre factor inside each centre
    c01 = result.tables["forest"].filter(pl.col("level") == "C01")
    assert c01.height == 2
    assert c01.get_column("estimate").is_finite().all()


def test_interaction_f_matches_statsmodels(
    study: Study, long: pl.DataFrame, adsl: pl.DataFrame
) -> None:
    from statsmodels.regression.linear_model import OLS

    result = subgroup_effects(long, adsl, study)
    w4 = long.filter(pl.col("visit") == "W4").join(
        adsl.select("subject_id", "sex"), left_on="subject", right_on="subject_id"
    )
    base = [
        np.ones(w4.height),
        *[(w4["arm"] == a).to_numpy() for a in ("GLY", "OXY")],
        w4["logbase"].to_numpy(),
        *[(w4["centre"] == c).to_numpy() for c in ("C02", "C03", "C04")],
        (w4["stratum"] == "HDSS4").to_numpy(),
        (w4["sex"] == "M").to_numpy(),
    ]
    inter = [((w4["arm"] == a) & (w4["sex"] == "M")).to_numpy() for a in ("GLY", "OXY")]
    y = w4["chg"].to_numpy()
    full = OLS(y, np.column_stack(base + inter).astype(float)).fit()
    reduced = OLS(y, np.column_stack(base).astype(float)).fit()
    f, p, df1 = full.compare_f_test(reduced)
    row = result.tables["interactions"].filter(pl.col("subgroup") == "sex").row(0, named=True)
    assert row["F"] == pytest.approx(f, rel=1e-9)
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["df1"] == df1 == 2


def test_blinded_gives_pooled_counts(study: Study, long: pl.DataFrame, adsl: pl.DataFrame) -> None:
    result = subgroup_effects(long.drop("arm"), adsl, study)
    assert result.notes[0] == BLINDED_NOTE
    counts = result.tables["counts"]
    assert "arm" not in counts.columns
    assert (
        counts.filter(pl.col("subgroup") == "sex").get_column("n").sum()
        == long.filter(pl.col("visit") == "W4").height
    )
