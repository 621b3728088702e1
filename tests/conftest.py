"""Shared test fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from data_contracts.contracts import use_study
from study import Study, load_study

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # shared helpers: ``import materialise``

import materialise  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def ref1_dir() -> Path:
    """The reference trial ``ref1`` and its R results, kept in the project
    (``tests/fixtures/ref1/README.md`` says where they come from)."""
    return FIXTURES / "ref1"


@pytest.fixture(scope="session")
def default_study() -> Study:
    """The bundled study ION-301, loaded once."""
    return load_study()


@pytest.fixture(scope="session", autouse=True)
def _session_fixtures_resolve_for_the_default_study(default_study: Study) -> None:
    """The same binding before any session-scoped fixture reads a delivery (those are set up
    before the per-test binding below, so a file of them run alone found no study bound)."""
    use_study(default_study)


@pytest.fixture(autouse=True)
def _contracts_resolve_for_the_default_study(default_study: Study) -> None:
    """Contracts resolve their study codelists from ION-301 unless a test binds another
    study (``data_contracts.contracts.use_study``), as ``ionto run`` binds the run's study."""
    use_study(default_study)


ION301 = REPO / "study" / "studies" / "ion301.yaml"


@pytest.fixture(scope="session")
def ref1_run(ref1_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> materialise.Tables:
    """ref1 through the asset graph once, unblinded: the raw group, device sessions and every
    derivation (``clean`` and ``analysis_ready``), as stored."""
    return materialise.materialise_tree(
        ref1_dir / "raw",
        tmp_path_factory.mktemp("ref1_unblinded"),
        ION301,
        unblind_path=ref1_dir / "sealed" / "randomisation.csv",
        groups=materialise.CLEAN_AND_READY,
    )


@pytest.fixture(scope="session")
def ref1_blinded_run(
    ref1_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> materialise.Tables:
    """ref1 through the asset graph once, blinded (the sealed list never opened)."""
    return materialise.materialise_tree(
        ref1_dir / "raw",
        tmp_path_factory.mktemp("ref1_blinded"),
        ION301,
        groups=materialise.CLEAN_AND_READY,
    )
