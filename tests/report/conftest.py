"""Fixtures of the report tests: a small synthetic trial, blinded and unblinded, and its
rendered outputs (built once per session and example study).

Every test that uses the ``study`` fixture, directly or through the synthetic trial, runs once
per example study (``ion301``, ``ion302``); the design-independent tests run once."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import synthetic_trial

from data_contracts.contracts import use_study
from study import EXAMPLE_STUDIES, Study, load_study
from trial.models.result import ModelResult
from trial.report.data import ReportData, build_report_data
from trial.report.run_info import RunInfo


@pytest.fixture(scope="session", params=EXAMPLE_STUDIES)
def study(request: pytest.FixtureRequest) -> Study:
    """Each example study in turn, bound for the contracts too: the session-scoped report
    fixtures are set up before the autouse fixtures that bind a study for each test, so each
    of them that builds something binds its study again (the previous test may have bound
    the default one)."""
    loaded = load_study(request.param)
    use_study(loaded)
    return loaded


@pytest.fixture(autouse=True)
def _contracts_resolve_for_the_parametrised_study(
    request: pytest.FixtureRequest, _contracts_resolve_for_the_default_study: None
) -> None:
    """A test run for an example study sees that study's contracts bound: this runs after the
    root autouse fixture that binds ION-301 for each test (which it requests), and rebinds
    the test's own study. Tests that take no ``study`` keep the default binding."""
    if "study" in request.fixturenames:
        use_study(request.getfixturevalue("study"))


@pytest.fixture(scope="session")
def unblinded_tables(study: Study) -> dict[str, pl.DataFrame]:
    use_study(study)
    return synthetic_trial.make_tables(study, blinded=False)


@pytest.fixture(scope="session")
def blinded_tables(study: Study) -> dict[str, pl.DataFrame]:
    use_study(study)
    return synthetic_trial.make_tables(study, blinded=True)


@pytest.fixture(scope="session")
def models(study: Study) -> dict[str, ModelResult]:
    use_study(study)
    return synthetic_trial.make_models(study)


@pytest.fixture(scope="session")
def unblinded_results(study, unblinded_tables, models) -> dict[str, ModelResult]:
    """What an unblinded run's models group hands the report: the model results above plus
    the safety and device summaries by arm."""
    use_study(study)
    return (
        models
        | synthetic_trial.safety_and_device(study, unblinded_tables)
        | synthetic_trial.estimand_models(study, unblinded_tables["adsl"], blinded=False)
    )


@pytest.fixture(scope="session")
def blinded_results(study, blinded_tables, models) -> dict[str, ModelResult]:
    """What a blinded run hands the report: arm-level results (the report must ignore them)
    and the pooled safety and device summaries."""
    use_study(study)
    return (
        models
        | synthetic_trial.safety_and_device(study, blinded_tables)
        | synthetic_trial.estimand_models(study, blinded_tables["adsl"], blinded=True)
    )


@pytest.fixture(scope="session")
def randomisation(study: Study) -> pl.DataFrame:
    use_study(study)
    return synthetic_trial.randomisation(study)


def run_info(blinded: bool) -> RunInfo:
    return RunInfo(
        data_cut="2026-11-16",
        blinded=blinded,
        data_version="sha256:0123456789abcdef",
        code_version="git test",
    )


@pytest.fixture(scope="session")
def unblinded_data(unblinded_tables, unblinded_results, study) -> ReportData:
    use_study(study)
    return build_report_data(unblinded_tables, unblinded_results, study, run_info(False))


@pytest.fixture(scope="session")
def blinded_data(blinded_tables, blinded_results, study) -> ReportData:
    use_study(study)
    return build_report_data(blinded_tables, blinded_results, study, run_info(True))


@pytest.fixture(scope="session")
def blinded_out(tmp_path_factory, blinded_tables, blinded_results, blinded_data, study) -> Path:
    """Everything a blinded run writes from the report package, under one OUT folder."""
    from trial.report.outputs import write_report_outputs

    use_study(study)
    out = tmp_path_factory.mktemp("blinded_out")
    write_report_outputs(blinded_tables, blinded_results, study, blinded_data.run, out)
    return out


@pytest.fixture(scope="session")
def unblinded_html(unblinded_data) -> str:
    from trial.report.investigator import investigator_html

    return investigator_html(unblinded_data)


@pytest.fixture(scope="session")
def blinded_html(blinded_data) -> str:
    from trial.report.investigator import investigator_html

    return investigator_html(blinded_data)
