"""Subgroup effects: split counts, per-level effects, interaction F against statsmodels, for
each example study (its subgroups, age groups, strata, centres, arms and primary visit)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from study import Study
from trial.models.ancova import fit_ancova
from trial.models.subgroups import subgroup_effects
from trial.models.tidy import BLINDED_NOTE


@pytest.fixture(scope="module")
def long(design_long: pl.DataFrame) -> pl.DataFrame:
    return design_long


@pytest.fixture(scope="module")
def adsl(long: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Deterministic subgroup columns: sex by subject number parity, age cycling through the
    study's age range (``eligibility.age_range``), plantar involvement every third subject."""
    low, high = study.eligibility.age_range
    subjects = long.select("subject", "centre", "stratum").unique().sort("subject")
    number = subjects.get_column("subject").str.slice(-4).cast(pl.Int64)
    return subjects.select(
        pl.col("subject").alias("subject_id"),
        pl.col("centre").alias("centre_id"),
        "stratum",
        pl.when(number % 2 == 0).then(pl.lit("F")).otherwise(pl.lit("M")).alias("sex"),
        (low + (number * 7) % (high - low + 1)).alias("age"),
        pl.when(number % 3 == 0).then(pl.lit("Y")).otherwise(pl.lit("N")).alias("plantar_involved"),
    )


def primary(long: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Rows of the primary visit with a value (the subgroup analysis's subjects)."""
    return long.filter((pl.col("visit") == study.primary_visit) & pl.col("chg").is_not_null())


def test_split_counts(study: Study, long: pl.DataFrame, adsl: pl.DataFrame) -> None:
    result = subgroup_effects(long, adsl, study)
    at_visit = primary(long, study).join(adsl, left_on="subject", right_on="subject_id")
    ref, arm = study.reference_arm, study.treated_arms[0]
    forest = result.tables["forest"]
    females = forest.filter((pl.col("subgroup") == "sex") & (pl.col("level") == "F"))
    n_f = at_visit.filter(pl.col("sex") == "F").height
    assert females.get_column("n").unique().to_list() == [n_f]
    first = females.filter(pl.col("contrast") == f"{arm}-{ref}").row(0, named=True)
    assert first["n_arm"] == at_visit.filter((pl.col("sex") == "F") & (pl.col("arm") == arm)).height
    assert (
        first["n_reference"]
        == at_visit.filter((pl.col("sex") == "F") & (pl.col("arm") == ref)).height
    )
    # age groups of the study derived from age; levels add up to all subjects
    ages = forest.filter(
        (pl.col("subgroup") == "age_group") & (pl.col("contrast") == f"{arm}-{ref}")
    )
    groups = study.models.age_groups
    assert ages.get_column("level").to_list() == [g.label for g in groups]
    assert ages.get_column("n").sum() == at_visit.height
    youngest = groups[0]
    n_young = at_visit.filter(pl.col("age").is_between(youngest.min, youngest.max)).height
    assert ages.filter(pl.col("level") == youngest.label).get_column("n").item() == n_young
    # the screening-HDSS subgroup has the study's strata, in its order
    strata = forest.filter(
        (pl.col("subgroup") == "screening_hdss") & (pl.col("contrast") == f"{arm}-{ref}")
    )
    assert strata.get_column("level").to_list() == study.stratum_codes
    for stratum, n in strata.select("level", "n").rows():
        assert n == at_visit.filter(pl.col("stratum") == stratum).height
    counts = result.tables["counts"]
    assert counts["subgroup"].unique().sort().to_list() == sorted(
        s.name for s in study.models.subgroups
    )
    centre = counts.filter(pl.col("subgroup") == "centre")
    assert set(centre["level"]) == set(study.centres)
    assert centre.get_column("n").sum() == at_visit.height
    # the overall row heads the table: one row per treated arm
    assert forest.filter(pl.col("subgroup") == "overall")["contrast"].to_list() == [
        f"{a}-{ref}" for a in study.treated_arms
    ]


def test_level_effect_is_the_ancova_within_the_level(
    study: Study, long: pl.DataFrame, adsl: pl.DataFrame
) -> None:
    result = subgroup_effects(long, adsl, study)
    contrast = f"{study.treated_arms[-1]}-{study.reference_arm}"
    m_subjects = adsl.filter(pl.col("sex") == "M").get_column("subject_id")
    within = fit_ancova(long.filter(pl.col("subject").is_in(m_subjects.implode())), study)
    expected = within.tables["contrasts"].filter(pl.col("contrast") == contrast).row(0, named=True)
    row = (
        result.tables["forest"]
        .filter((pl.col("level") == "M") & (pl.col("contrast") == contrast))
        .row(0, named=True)
    )
    assert row["estimate"] == pytest.approx(expected["estimate"], abs=1e-12)
    assert row["ci_high"] == pytest.approx(expected["ci_high"], abs=1e-12)
    # the centre subgroup drops the (constant) centre factor inside each centre
    first_centre = result.tables["forest"].filter(pl.col("level") == study.centres[0])
    assert first_centre.height == len(study.treated_arms)
    assert first_centre.get_column("estimate").is_finite().all()


def test_interaction_f_matches_statsmodels(
    study: Study, long: pl.DataFrame, adsl: pl.DataFrame
) -> None:
    from statsmodels.regression.linear_model import OLS

    result = subgroup_effects(long, adsl, study)
    at_visit = primary(long, study).join(
        adsl.select("subject_id", "sex"), left_on="subject", right_on="subject_id"
    )
    treated = study.treated_arms
    base = [
        np.ones(at_visit.height),
        *[(at_visit["arm"] == a).to_numpy() for a in treated],
        at_visit["logbase"].to_numpy(),
        *[(at_visit["centre"] == c).to_numpy() for c in study.centres[1:]],
        *[(at_visit["stratum"] == s).to_numpy() for s in study.stratum_codes[1:]],
        (at_visit["sex"] == "M").to_numpy(),
    ]
    inter = [((at_visit["arm"] == a) & (at_visit["sex"] == "M")).to_numpy() for a in treated]
    y = at_visit["chg"].to_numpy()
    full = OLS(y, np.column_stack(base + inter).astype(float)).fit()
    reduced = OLS(y, np.column_stack(base).astype(float)).fit()
    f, p, df1 = full.compare_f_test(reduced)
    row = result.tables["interactions"].filter(pl.col("subgroup") == "sex").row(0, named=True)
    assert row["F"] == pytest.approx(f, rel=1e-9)
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["df1"] == df1 == len(treated)


def test_blinded_gives_pooled_counts(study: Study, long: pl.DataFrame, adsl: pl.DataFrame) -> None:
    result = subgroup_effects(long.drop("arm"), adsl, study)
    assert result.notes[0] == BLINDED_NOTE
    counts = result.tables["counts"]
    assert "arm" not in counts.columns
    assert (
        counts.filter(pl.col("subgroup") == "sex").get_column("n").sum()
        == primary(long, study).height
    )
