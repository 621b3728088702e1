"""A small simulated trial shared by the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from study import load_study
from trial.simulate import simulate_trial

SMALL_TRIAL_SUBJECTS = 36
SMALL_TRIAL_SEED = 11


@pytest.fixture(scope="session")
def small_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw tree of a small simulated trial; its sealed list is at ``<raw>_sealed/``."""
    raw = tmp_path_factory.mktemp("small") / "raw"
    simulate_trial(
        load_study(), n_subjects=SMALL_TRIAL_SUBJECTS, seed=SMALL_TRIAL_SEED, raw_dir=raw
    )
    return raw
