"""Derivations of the hand-built delivery (``derive_fixture``) through the real asset graph,
for each example study: a test that asks for ``design`` (or a table derived from it) runs once
per study (ids ``ion301``, ``ion302``) with expectations computed from that study."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from derive_fixture import Design, Raw, derived_tables, raw
from materialise import Tables

from data_contracts.contracts import use_study
from study import EXAMPLE_STUDIES, Study


@pytest.fixture(scope="session", params=EXAMPLE_STUDIES, ids=list(EXAMPLE_STUDIES))
def design(request: pytest.FixtureRequest) -> Design:
    """Each example study in turn: the hand-built delivery is made of its design."""
    return Design(request.param)


@pytest.fixture(scope="session")
def study(design: Design) -> Study:
    return design.study


@pytest.fixture(autouse=True)
def _contracts_resolve_for_the_default_study(
    request: pytest.FixtureRequest, default_study: Study
) -> None:
    """Contracts resolve their study codelists from the design a test runs for, else from
    ION-301 (overrides the suite's binding of the default study)."""
    if "design" in request.fixturenames:
        use_study(request.getfixturevalue("design").study)
    else:
        use_study(default_study)


@pytest.fixture(scope="session")
def derive(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Raw], Tables]:
    """Derive a (possibly altered) hand-built delivery: the ``clean`` and ``analysis_ready``
    assets materialised on a fresh temporary folder."""

    def run(frames: Raw) -> Tables:
        return derived_tables(frames, tmp_path_factory.mktemp("derived"))

    return run


@pytest.fixture(scope="session")
def unblinded(derive: Callable[[Raw], Tables], design: Design) -> Tables:
    return derive(raw(design))


@pytest.fixture(scope="session")
def blinded(derive: Callable[[Raw], Tables], design: Design) -> Tables:
    return derive(raw(design, blinded=True))
