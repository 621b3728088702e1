"""Model input for each example study, for the design-parametrised tests of ``tests/models``
and ``tests/estimands``.

ION-301 keeps the reference trial ref1's ``analysis_long`` (120 subjects, the R-validated MMRM
input). Any other study gets an ``analysis_long`` of the same shape drawn by the analysis-level
simulator (:func:`trial.models.power.simulate_trial`: the study's arms, centres, strata, model
visits and simulation parameters, seeded), with the columns ref1's table has beside the model's
(``week`` from the study's visits, ``aval_log = logbase + chg``, two valid sides).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from data_contracts.contracts import load_contract
from study import EXAMPLE_STUDIES, Study, load_study
from trial.models.power import simulate_trial

REF1_STUDY_ID = "ION-301"
"""The study whose design ref1 was generated from."""
SIMULATED_SUBJECTS = 120
"""ref1's size."""
SEED = 302


def ref1_long(ref1_dir: Path) -> pl.DataFrame:
    """ref1's ``expected/analysis_long.csv`` with integer visit columns."""
    return pl.read_csv(
        ref1_dir / "expected" / "analysis_long.csv",
        schema_overrides={"week": pl.Int64, "visit_index": pl.Int64, "n_sides": pl.Int64},
    )


def simulated_long(
    study: Study, n_subjects: int = SIMULATED_SUBJECTS, seed: int = SEED
) -> pl.DataFrame:
    """An ``analysis_long`` of ``study`` drawn by the analysis-level simulator."""
    frame = simulate_trial(study, n_subjects, np.random.default_rng(seed)).frame()
    weeks = pl.DataFrame(
        {"visit": study.model_visits, "week": [study.visit(v).week for v in study.model_visits]},
        schema={"visit": pl.String, "week": pl.Int64},
    )
    return (
        frame.with_columns(pl.col("visit_index").cast(pl.Int64))
        .join(weeks, on="visit", how="left")
        .with_columns(
            aval_log=pl.col("logbase") + pl.col("chg"),
            n_sides=pl.lit(2, dtype=pl.Int64),
            base_visit=pl.lit(study.baseline_visit),
        )
        .select(load_contract("analysis_long", study).columns)
        .sort("subject", "visit_index")
    )


def analysis_long(study: Study, ref1_dir: Path) -> pl.DataFrame:
    """ref1's table for ION-301, a simulated one of the same size for any other study."""
    if study.study_id == REF1_STUDY_ID:
        return ref1_long(ref1_dir)
    return simulated_long(study)


@pytest.fixture(scope="session", params=EXAMPLE_STUDIES)
def study(request: pytest.FixtureRequest) -> Study:
    """Each example study in turn (a ``conftest.py`` imports this fixture)."""
    return load_study(request.param)


@pytest.fixture(scope="session")
def design_long(study: Study, ref1_dir: Path) -> pl.DataFrame:
    """The study's ``analysis_long``: ref1's for ION-301, simulated for any other study."""
    return analysis_long(study, ref1_dir)
