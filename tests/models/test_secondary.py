"""Plantar endpoint and durability on small hand-made ADSL/ADSWEAT frames, for each example
study: its arms, centres, strata, primary region, durability visits and involvement region
(ION-301 analyses soles in involved subjects; ION-302 treats soles in every subject and has no
separate plantar endpoint)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from study import Study
from trial.models.ancova import fit_ancova
from trial.models.secondary import (
    NOT_APPLICABLE_NOTE,
    durability_frame,
    fit_durability,
    fit_plantar,
    plantar_long,
)
from trial.models.tidy import BLINDED_NOTE

LOG_RATIOS = (0.3, 0.6, 0.5)
"""True log ratio later / earlier durability visit of the study's arms, in their order."""


def log_ratio(study: Study) -> dict[str, float]:
    return dict(zip(study.arm_codes, LOG_RATIOS, strict=False))


@pytest.fixture(scope="module")
def tables(study: Study) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Arms x centres x 2 strata x 2 (one plantar-involved, one not) subjects.

    Primary region: BASE 4 + (-0.25, 0, 0.25 cycling the same way within each arm, so every
    arm has the same covariate rows), earlier durability visit = BASE - 1.2 + noise, later =
    earlier + arm log ratio + noise. Involvement region (when the study has one): change -1 +
    noise at the primary visit for involved subjects, plus one row of the second subject (not
    involved) that must be ignored.
    """
    rng = np.random.default_rng(11)
    first, last = study.durability_visits
    ratios = log_ratio(study)
    involvement = study.involvement_region
    adsl, sweat = [], []
    i = 0
    for arm in study.arm_codes:
        j = 0
        for centre in study.centres:
            for stratum in study.stratum_codes[:2]:
                for involved in ("Y", "N"):
                    i += 1
                    j += 1
                    sid = f"S{i:03d}"
                    adsl.append((sid, centre, stratum, involved, "Y", arm))
                    base = 4.0 + 0.25 * (((j - 1) // 2) % 3 - 1)
                    early = base - 1.2 + rng.normal(0, 0.2)
                    late = early + ratios[arm] + rng.normal(0, 0.2)
                    for visit, aval in ((first, early), (last, late)):
                        sweat.append(
                            (sid, study.primary_region.paramcd, visit, aval, base, aval - base, "Y")
                        )
                    if involvement is not None and (involved == "Y" or i == 2):
                        chg = -1.0 + rng.normal(0, 0.3)
                        row = (sid, involvement.paramcd, study.primary_visit, base + chg, base, chg)
                        sweat.append((*row, "Y"))
    return (
        pl.DataFrame(
            adsl,
            schema=["subject_id", "centre_id", "stratum", "plantar_involved", "FASFL", "arm"],
            orient="row",
        ),
        pl.DataFrame(
            sweat,
            schema=["subject_id", "PARAMCD", "AVISIT", "AVAL", "BASE", "CHG", "ANL01FL"],
            orient="row",
        ),
    )


def n_subjects(study: Study) -> int:
    return len(study.arm_codes) * len(study.centres) * 2 * 2


def test_plantar_uses_involved_subjects_only(
    study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    adsl, adsweat = tables
    result = fit_plantar(adsweat, adsl, study)
    if study.involvement_region is None:
        # every subject is treated on the primary region: no separate plantar endpoint
        assert result.notes == [NOT_APPLICABLE_NOTE]
        assert result.estimates.height == 0 and result.fit["n_subjects"] == 0
        return
    long = plantar_long(adsweat, adsl, study)
    half = n_subjects(study) // 2
    assert long.height == half  # S002 has a row of the region but no involvement
    assert "S002" not in long["subject"].to_list()
    assert set(long["visit"]) == {study.primary_visit}
    same = fit_ancova(long, study)
    np.testing.assert_allclose(
        result.tables["contrasts"]["estimate"], same.tables["contrasts"]["estimate"], atol=1e-12
    )
    assert result.fit["n_subjects"] == half


def test_durability_by_arm_and_contrast(
    study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    adsl, adsweat = tables
    frame = durability_frame(adsweat, adsl, study)
    n = n_subjects(study)
    assert frame.height == n
    result = fit_durability(adsweat, adsl, study)
    by_arm = {r["arm"]: r for r in result.tables["by_arm"].iter_rows(named=True)}
    assert list(by_arm) == study.arm_codes
    # the log ratio of each subject is AVAL(later) - AVAL(earlier), by hand from ADSWEAT
    first, last = study.durability_visits
    wide = adsweat.pivot(on="AVISIT", index="subject_id", values="AVAL")
    by_hand = wide.join(adsl, on="subject_id").with_columns(d=pl.col(last) - pl.col(first))
    means = dict(by_hand.group_by("arm").agg(pl.col("d").mean()).rows())
    for arm, row in by_arm.items():
        assert row["mean"] == pytest.approx(means[arm], abs=1e-12)
        assert row["ratio"] == pytest.approx(np.exp(means[arm]))
        assert row["n"] == n // len(study.arm_codes)
    # balanced design: the ANCOVA contrast is the difference of the raw arm means
    ref, arm = study.reference_arm, study.treated_arms[0]
    ct = result.tables["contrasts"].filter(pl.col("contrast") == f"{arm}-{ref}").row(0, named=True)
    assert ct["estimate"] == pytest.approx(means[arm] - means[ref], abs=1e-10)
    assert ct["visit"] == f"{last}/{first}"
    assert "percent_reduction" not in result.tables["lsmeans"].columns
    # simulated log ratios: the estimate is within 3 SE of the truth
    truth = log_ratio(study)[arm] - log_ratio(study)[ref]
    assert abs(ct["estimate"] - truth) < 3 * ct["std_error"]
    # the raw mean's t interval has the study's coverage
    row = by_arm[ref]
    d = by_hand.filter(pl.col("arm") == ref)["d"]
    half = stats.t.ppf(1 - study.alpha / 2, d.len() - 1) * d.std() / np.sqrt(d.len())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))


def test_durability_needs_both_visits(
    study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    adsl, adsweat = tables
    _, last = study.durability_visits
    fewer = adsweat.filter(~((pl.col("subject_id") == "S001") & (pl.col("AVISIT") == last)))
    assert durability_frame(fewer, adsl, study).height == n_subjects(study) - 1


def test_blinded(study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    adsl, adsweat = tables
    durability = fit_durability(adsweat, adsl.drop("arm"), study)
    assert durability.notes[0] == BLINDED_NOTE
    assert durability.tables["by_arm"]["n"].to_list() == [n_subjects(study)]
    plantar = fit_plantar(adsweat, adsl.drop("arm"), study)
    if study.involvement_region is None:
        assert plantar.notes == [NOT_APPLICABLE_NOTE]
    else:
        assert plantar.notes[0] == BLINDED_NOTE
        assert plantar.tables["pooled"]["n"].to_list() == [n_subjects(study) // 2]


@pytest.mark.slow
def test_plantar_mmrm_on_ref1_relabelled_reproduces_the_primary(
    default_study: Study, ref1_dir: Path
) -> None:
    """ref1's palm table relabelled as sole, everyone involved: the plantar MMRM route must
    give the primary MMRM's W4 contrasts of results.json."""
    import json

    long = pl.read_csv(ref1_dir / "expected" / "analysis_long.csv")
    adsweat = long.select(
        pl.col("subject").alias("subject_id"),
        pl.lit("LSOLESR").alias("PARAMCD"),
        pl.col("visit").alias("AVISIT"),
        pl.col("aval_log").alias("AVAL"),
        pl.col("logbase").alias("BASE"),
        pl.col("chg").alias("CHG"),
    )
    adsl = (
        long.select(
            pl.col("subject").alias("subject_id"),
            pl.col("centre").alias("centre_id"),
            "stratum",
            "arm",
        )
        .unique()
        .with_columns(plantar_involved=pl.lit("Y"), FASFL=pl.lit("Y"))
    )
    result = fit_plantar(adsweat, adsl, default_study, method="mmrm")
    expected = json.loads((ref1_dir / "expected" / "results.json").read_text())["mmrm"]["w4"]
    w4 = result.tables["contrasts"].filter(pl.col("visit") == "W4")
    for row in w4.iter_rows(named=True):
        assert row["estimate"] == pytest.approx(
            expected["contrasts"][row["contrast"]]["estimate"], abs=1e-4
        )


def test_durability_before_anyone_reaches_the_last_visit(
    study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    """Early in a trial no subject has the last durability visit yet: blinded, the pooled
    summary says n = 0 with missing values instead of failing."""
    adsl, adsweat = tables
    early = adsweat.filter(pl.col("AVISIT") != study.durability_visits[1])
    row = fit_durability(early, adsl.drop("arm"), study).tables["by_arm"].row(0, named=True)
    assert row["n"] == 0
    assert row["mean"] is None and row["ratio"] is None and row["ratio_ci_low"] is None
