"""The primary MMRM and the sensitivity-1 LMM on each example study's ``analysis_long`` (ref1
for ION-301, simulated for ION-302): their tables follow the study's arms and reference arm,
model visits, covariance structure and df method, and their intervals have the study's
coverage (t or normal quantiles of its alpha, by hand). The engines' numbers themselves are
checked against R on ref1 (``test_mmrm_ref1.py``, ``test_lmm.py``)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy import stats

from study import Study
from trial.models.lmm import fit_lmm
from trial.models.mmrm import fit_mmrm
from trial.models.result import ModelResult


@pytest.fixture(scope="module")
def mmrm(study: Study, design_long: pl.DataFrame) -> ModelResult:
    return fit_mmrm(design_long, study)


@pytest.fixture(scope="module")
def lmm(study: Study, design_long: pl.DataFrame) -> ModelResult:
    return fit_lmm(design_long, study)


def grid(study: Study) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(visit, arm) of every LS mean and (visit, contrast) of every contrast, visit-major."""
    ref, visits = study.reference_arm, study.model_visits
    lsmeans = [(v, a) for v in visits for a in study.arm_codes]
    contrasts = [(v, f"{a}-{ref}") for v in visits for a in study.treated_arms]
    return lsmeans, contrasts


def contrast_is_difference_of_lsmeans(result: ModelResult, study: Study) -> None:
    lsmeans = {
        (v, a): e
        for v, a, e in result.tables["lsmeans"].select("visit", "arm", "estimate").iter_rows()
    }
    for visit, contrast, estimate in (
        result.tables["contrasts"].select("visit", "contrast", "estimate").iter_rows()
    ):
        arm = contrast.removesuffix(f"-{study.reference_arm}")
        expected = lsmeans[(visit, arm)] - lsmeans[(visit, study.reference_arm)]
        assert estimate == pytest.approx(expected, abs=1e-10)


def test_mmrm_grid_structure_and_df_method(study: Study, mmrm: ModelResult) -> None:
    lsmeans, contrasts = grid(study)
    assert mmrm.tables["lsmeans"].select("visit", "arm").rows() == lsmeans
    assert mmrm.tables["contrasts"].select("visit", "contrast").rows() == contrasts
    config = study.models.mmrm
    used = mmrm.fit["covariance_structure"]
    tried = config.structures[: config.structures.index(used) + 1]
    assert mmrm.notes[0] == f"Within-subject covariance: {used.replace('_', ' ')}."
    assert sum(n.startswith("Fallback taken") for n in mmrm.notes) == len(tried) - 1
    assert mmrm.fit["ddf_method"] == config.ddf
    assert json.loads(str(mmrm.fit["matrix_order"])) == list(study.model_visits)
    contrast_is_difference_of_lsmeans(mmrm, study)


def test_mmrm_intervals_have_the_studys_coverage(study: Study, mmrm: ModelResult) -> None:
    for name in ("lsmeans", "contrasts"):
        table = mmrm.tables[name]
        est, se, df = (table[c].to_numpy() for c in ("estimate", "std_error", "df"))
        half = stats.t.ppf(1 - study.alpha / 2, df) * se
        np.testing.assert_allclose(table["ci_high"].to_numpy(), est + half, rtol=1e-10)
        np.testing.assert_allclose(table["ci_low"].to_numpy(), est - half, rtol=1e-10)
        p = 2 * stats.t.sf(np.abs(est / se), df)
        np.testing.assert_allclose(table["p_value"].to_numpy(), p, rtol=1e-8)
    lsm = mmrm.tables["lsmeans"]
    np.testing.assert_allclose(
        lsm["percent_reduction"].to_numpy(), 100 * (1 - np.exp(lsm["estimate"].to_numpy()))
    )


def test_lmm_grid_and_normal_intervals_of_the_studys_coverage(
    study: Study, lmm: ModelResult
) -> None:
    lsmeans, contrasts = grid(study)
    assert lmm.tables["lsmeans"].select("visit", "arm").rows() == lsmeans
    assert lmm.tables["contrasts"].select("visit", "contrast").rows() == contrasts
    assert lmm.fit["converged"] is True
    z = stats.norm.ppf(1 - study.alpha / 2)
    for name in ("lsmeans", "contrasts"):
        table = lmm.tables[name]
        est, se = table["estimate"].to_numpy(), table["std_error"].to_numpy()
        np.testing.assert_allclose(table["ci_high"].to_numpy(), est + z * se, rtol=1e-10)
        np.testing.assert_allclose(table["ci_low"].to_numpy(), est - z * se, rtol=1e-10)
    contrast_is_difference_of_lsmeans(lmm, study)
