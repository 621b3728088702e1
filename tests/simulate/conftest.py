"""Simulated trees shared by the simulator tests (built once per session, small sizes)."""

from __future__ import annotations

import pytest

from study import Study, load_study
from trial.simulate import SimulationSummary, simulate_trial


@pytest.fixture(scope="session")
def study() -> Study:
    return load_study()


@pytest.fixture(scope="session")
def faulty_run(tmp_path_factory: pytest.TempPathFactory, study: Study) -> SimulationSummary:
    """40 randomised subjects, faults injected, seed 7."""
    return simulate_trial(study, 40, 7, tmp_path_factory.mktemp("faulty") / "raw", faults=True)


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory, study: Study) -> SimulationSummary:
    """120 randomised subjects (ref1 size), no faults, seed 11 (statistics and cleanliness)."""
    return simulate_trial(study, 120, 11, tmp_path_factory.mktemp("clean") / "raw")
