"""The example study a design-dependent model test runs for: every such test runs once per
example study (ids ``ion301``, ``ion302``). Tests of the MMRM engine's algebra and the R
reference checks on ref1 keep their own ION-301 ``study`` fixture."""

from __future__ import annotations

from pathlib import Path

import design_data
import polars as pl
import pytest

from study import EXAMPLE_STUDIES, Study, load_study


@pytest.fixture(scope="session", params=EXAMPLE_STUDIES)
def study(request: pytest.FixtureRequest) -> Study:
    """Each example study in turn."""
    return load_study(request.param)


@pytest.fixture(scope="session")
def design_long(study: Study, ref1_dir: Path) -> pl.DataFrame:
    """The study's ``analysis_long``: ref1's for ION-301, simulated for ION-302
    (:mod:`design_data`)."""
    return design_data.analysis_long(study, ref1_dir)
