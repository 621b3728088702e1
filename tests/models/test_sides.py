"""Sensitivity 3 (sides as observations): own REML engine against statsmodels MixedLM, for each
example study (its primary region, sides, arms and model visits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from study import Study
from trial.models.sides import fit_sides, side_terms, sides_long
from trial.models.tidy import BLINDED_NOTE, treatment_design


@pytest.fixture(scope="module")
def side_tables(study: Study, design_long: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """ADSWEAT_SIDE (the study's primary region and sides) and ADSL simulated from the side
    model on the study's ``analysis_long`` subjects and visits (ref1 for ION-301): chg = arm x
    visit mean of that table + subject effect (SD 0.4) + subject-side effect (SD 0.25) + noise
    (SD 0.3); rows with one valid side keep the first side only."""
    long = design_long
    first, second = study.sides
    paramcd = study.primary_region.paramcd
    means = {
        (a, v): m for a, v, m in long.group_by("arm", "visit").agg(pl.col("chg").mean()).rows()
    }
    rng = np.random.default_rng(7)
    subjects = long.get_column("subject").unique().sort().to_list()
    subject_effect = {s: rng.normal(0, 0.4) for s in subjects}
    side_effect = {(s, side): rng.normal(0, 0.25) for s in subjects for side in (first, second)}
    rows = []
    for r in long.iter_rows(named=True):
        for side in (first, second) if r["n_sides"] == 2 else (first,):
            chg = (
                means[(r["arm"], r["visit"])]
                + subject_effect[r["subject"]]
                + side_effect[(r["subject"], side)]
                + rng.normal(0, 0.3)
            )
            rows.append(
                (r["subject"], paramcd, r["visit"], side, r["logbase"] + chg, r["logbase"], chg)
            )
    adsweat_side = pl.DataFrame(
        rows,
        schema=["subject_id", "PARAMCD", "AVISIT", "side", "AVAL", "BASE", "CHG"],
        orient="row",
    )
    adsl = (
        long.select(
            pl.col("subject").alias("subject_id"),
            pl.col("centre").alias("centre_id"),
            "stratum",
            "arm",
        )
        .unique()
        .with_columns(FASFL=pl.lit("Y"))
    )
    return adsweat_side, adsl


def test_rows_and_blinding(study: Study, side_tables: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    adsweat_side, adsl = side_tables
    frame = sides_long(adsweat_side, adsl, study)
    assert frame.height == adsweat_side.height
    assert set(frame.columns) >= {"subject", "arm", "visit", "side", "logbase", "chg"}
    blinded = fit_sides(sides_long(adsweat_side, adsl.drop("arm"), study), study)
    assert blinded.notes == [BLINDED_NOTE]


@pytest.mark.slow
def test_matches_statsmodels_vc_formula(
    study: Study, side_tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    import pandas as pd
    from statsmodels.regression.mixed_linear_model import MixedLM

    frame = sides_long(*side_tables, study)
    result = fit_sides(frame, study)
    main, interactions = side_terms(study)
    x = treatment_design(frame, main, interactions).matrix
    data = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    data["chg"] = frame["chg"].to_numpy()
    data["subject"] = frame["subject"].to_numpy()
    data["side"] = frame["side"].to_numpy()
    formula = "chg ~ 0 + " + " + ".join(f"x{i}" for i in range(x.shape[1]))
    model = MixedLM.from_formula(
        formula, data, groups="subject", re_formula="1", vc_formula={"side": "0 + C(side)"}
    )
    # lbfgs alone stops early on this likelihood; Nelder-Mead first, then lbfgs, converges
    ref = model.fit(reml=True, method=["nm", "lbfgs"])
    np.testing.assert_allclose(result.estimates["estimate"], ref.fe_params, atol=1e-4)
    assert result.fit["reml_loglik"] == pytest.approx(ref.llf, abs=1e-3)
    assert result.fit["var_subject"] == pytest.approx(float(ref.cov_re.iloc[0, 0]), rel=1e-2)
    assert result.fit["var_side_within_subject"] == pytest.approx(float(ref.vcomp[0]), rel=1e-2)
    assert result.fit["var_side_within_subject"] > 0.01
    assert result.fit["var_residual"] == pytest.approx(ref.scale, rel=1e-3)
    assert result.fit["converged"] is True
    ct = result.tables["contrasts"].filter(pl.col("visit") == study.primary_visit)
    assert ct.height == len(study.treated_arms)


def test_recovers_the_simulated_side_variance(
    study: Study, side_tables: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    result = fit_sides(sides_long(*side_tables, study), study)
    assert result.fit["converged"] is True
    # simulated side SD 0.25 (variance 0.0625) over about 120 subjects x 2 sides
    assert 0.035 < result.fit["var_side_within_subject"] < 0.1
    assert result.fit["sd_residual"] == pytest.approx(0.3, rel=0.1)
    assert result.tables["lsmeans"].height == len(study.arm_codes) * len(study.model_visits)
    contrasts = result.tables["contrasts"]
    ref = study.reference_arm
    assert contrasts.filter(pl.col("visit") == study.primary_visit)["contrast"].to_list() == [
        f"{a}-{ref}" for a in study.treated_arms
    ]
    # rows of another region or outside the model visits are not the model's
    adsweat_side, adsl = side_tables
    other = adsweat_side.head(3).with_columns(PARAMCD=pl.lit("OTHER"))
    late = adsweat_side.head(3).with_columns(AVISIT=pl.lit(study.screening_visit.code))
    frame = sides_long(pl.concat([adsweat_side, other, late]), adsl, study)
    assert frame.height == adsweat_side.height


R_SIDES = """
options(digits = 15)
d <- read.csv(commandArgs(TRUE)[1])
suppressMessages(library(lme4))
xs <- grep("^x", names(d), value = TRUE)
f <- as.formula(paste("chg ~ 0 +", paste(xs, collapse = " + "),
                      "+ (1 | subject) + (1 | subject:side)"))
fit <- lmer(f, d, REML = TRUE)
vc <- as.data.frame(VarCorr(fit))
cat(fixef(fit), "\\n")
cat(vc$vcov[vc$grp == "subject"], vc$vcov[vc$grp == "subject:side"],
    vc$vcov[vc$grp == "Residual"], "\\n")
cat(as.numeric(logLik(fit)), "\\n")
"""


@pytest.mark.r
def test_matches_lme4(
    study: Study, side_tables: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    import shutil
    import subprocess

    rscript = shutil.which("Rscript")
    if rscript is None:
        pytest.fail("Rscript is not on the PATH")
    frame = sides_long(*side_tables, study)
    result = fit_sides(frame, study)
    main, interactions = side_terms(study)
    x = treatment_design(frame, main, interactions).matrix
    data = pl.DataFrame({f"x{i}": x[:, i] for i in range(x.shape[1])}).with_columns(
        frame.select("chg", "subject", "side")
    )
    data.write_csv(tmp_path / "d.csv")
    (tmp_path / "fit.R").write_text(R_SIDES)
    out = subprocess.run(
        [rscript, str(tmp_path / "fit.R"), str(tmp_path / "d.csv")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    fixef = np.array(out[0].split(), dtype=float)
    var_subject, var_side, var_residual = (float(v) for v in out[1].split())
    np.testing.assert_allclose(result.estimates["estimate"], fixef, atol=5e-4)
    assert result.fit["var_subject"] == pytest.approx(var_subject, rel=2e-2)
    assert result.fit["var_side_within_subject"] == pytest.approx(var_side, rel=2e-2)
    assert result.fit["var_residual"] == pytest.approx(var_residual, rel=1e-3)
    assert result.fit["reml_loglik"] == pytest.approx(float(out[2]), abs=1e-3)
