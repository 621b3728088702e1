"""Simulated trees shared by the simulator tests (built once per session, small sizes)."""

from __future__ import annotations

import pytest

from data_contracts.contracts import use_study
from study import EXAMPLE_STUDIES, Study, load_study
from trial.simulate import SimulationSummary, simulate_trial


@pytest.fixture(scope="session", params=EXAMPLE_STUDIES)
def study(request: pytest.FixtureRequest) -> Study:
    """Each example study in turn: every simulator test runs for both designs."""
    return load_study(request.param)


@pytest.fixture(autouse=True)
def _contracts_for_the_simulated_study(study: Study) -> None:
    use_study(study)


@pytest.fixture(scope="session")
def faulty_run(tmp_path_factory: pytest.TempPathFactory, study: Study) -> SimulationSummary:
    """40 randomised subjects, faults injected, seed 7."""
    return simulate_trial(study, 40, 7, tmp_path_factory.mktemp("faulty") / "raw", faults=True)


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory, study: Study) -> SimulationSummary:
    """120 randomised subjects (ref1 size), no faults, seed 11 (statistics and cleanliness)."""
    return simulate_trial(study, 120, 11, tmp_path_factory.mktemp("clean") / "raw")
