"""Plantar endpoint and durability on small hand-made ADSL/ADSWEAT frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from study import Study, load_study
from trial.models.ancova import fit_ancova
from trial.models.secondary import durability_frame, fit_durability, fit_plantar, plantar_long
from trial.models.tidy import BLINDED_NOTE

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"
ARM_LOG_RATIO = {"TAP": 0.3, "GLY": 0.6, "OXY": 0.5}


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study(STUDY_FILE)


@pytest.fixture(scope="module")
def tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    """48 subjects: 3 arms x 4 centres x 2 strata x 2 (one plantar-involved, one not).

    Palm: BASE 4 + (-0.25, 0, 0.25 cycling the same way within each arm), W12 = BASE - 1.2
    + noise, W16 = W12 + arm log ratio + noise. Sole: W4 change -1 + noise for involved
    subjects, plus one LSOLESR row of a non-involved subject that must be ignored.
    """
    rng = np.random.default_rng(11)
    adsl, sweat = [], []
    i = 0
    for arm in ("TAP", "GLY", "OXY"):
        for centre in ("C01", "C02", "C03", "C04"):
            for stratum in ("HDSS3", "HDSS4"):
                for involved in ("Y", "N"):
                    i += 1
                    sid = f"S{i:03d}"
                    adsl.append((sid, centre, stratum, involved, "Y", arm))
                    base = 4.0 + 0.25 * ((((i - 1) % 16) // 2) % 3 - 1)
                    w12 = base - 1.2 + rng.normal(0, 0.2)
                    w16 = w12 + ARM_LOG_RATIO[arm] + rng.normal(0, 0.2)
                    for visit, aval in (("W12", w12), ("W16", w16)):
                        sweat.append((sid, "LPALMSR", visit, aval, base, aval - base, "Y"))
                    if involved == "Y" or i == 2:
                        chg = -1.0 + rng.normal(0, 0.3)
                        sweat.append((sid, "LSOLESR", "W4", base + chg, base, chg, "Y"))
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


def test_plantar_uses_involved_subjects_only(
    study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    adsl, adsweat = tables
    long = plantar_long(adsweat, adsl, study)
    assert long.height == 24  # S002 has a sole row but no involvement
    assert "S002" not in long["subject"].to_list()
    result = fit_plantar(adsweat, adsl, study)
    same = fit_ancova(long, study)
    np.testing.assert_allclose(
        result.tables["contrasts"]["estimate"], same.tables["contrasts"]["estimate"], atol=1e-12
    )
    assert result.fit["n_subjects"] == 24


def test_durability_by_arm_and_contrast(
    study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    adsl, adsweat = tables
    frame = durability_frame(adsweat, adsl, study)
    assert frame.height == 48
    result = fit_durability(adsweat, adsl, study)
    by_arm = {r["arm"]: r for r in result.tables["by_arm"].iter_rows(named=True)}
    means = dict(frame.group_by("arm").agg(pl.col("log_ratio").mean()).rows())
    for arm, row in by_arm.items():
        assert row["mean"] == pytest.approx(means[arm], abs=1e-12)
        assert row["ratio"] == pytest.approx(np.exp(means[arm]))
        assert row["n"] == 16
    # balanced design: the ANCOVA contrast is the difference of the raw arm means
    ct = result.tables["contrasts"].filter(pl.col("contrast") == "GLY-TAP").row(0, named=True)
    assert ct["estimate"] == pytest.approx(means["GLY"] - means["TAP"], abs=1e-10)
    assert ct["visit"] == "W16/W12"
    assert "percent_reduction" not in result.tables["lsmeans"].columns
    # simulated log ratios 0.3 / 0.6: the estimate is within 3 SE of the truth
    assert abs(ct["estimate"] - 0.3) < 3 * ct["std_error"]


def test_durability_needs_both_visits(
    study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    adsl, adsweat = tables
    fewer = adsweat.filter(~((pl.col("subject_id") == "S001") & (pl.col("AVISIT") == "W16")))
    assert durability_frame(fewer, adsl, study).height == 47


def test_blinded(study: Study, tables: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    adsl, adsweat = tables
    durability = fit_durability(adsweat, adsl.drop("arm"), study)
    assert durability.notes[0] == BLINDED_NOTE
    assert durability.tables["by_arm"]["n"].to_list() == [48]
    plantar = fit_plantar(adsweat, adsl.drop("arm"), study)
    assert plantar.notes[0] == BLINDED_NOTE
    assert plantar.tables["pooled"]["n"].to_list() == [24]


@pytest.mark.slow
def test_plantar_mmrm_on_ref1_relabelled_reproduces_the_primary(
    study: Study, ref1_dir: Path
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
    result = fit_plantar(adsweat, adsl, study, method="mmrm")
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
    early = adsweat.filter(pl.col("AVISIT") != "W16")
    row = fit_durability(early, adsl.drop("arm"), study).tables["by_arm"].row(0, named=True)
    assert row["n"] == 0
    assert row["mean"] is None and row["ratio"] is None and row["ratio_ci_low"] is None
