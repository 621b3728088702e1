"""Derivations of the hand-built delivery (``derive_fixture``) through the real asset graph."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from derive_fixture import Raw, derived_tables, raw
from materialise import Tables


@pytest.fixture(scope="session")
def derive(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Raw], Tables]:
    """Derive a (possibly altered) hand-built delivery: the ``clean`` and ``analysis_ready``
    assets materialised on a fresh temporary folder."""

    def run(frames: Raw) -> Tables:
        return derived_tables(frames, tmp_path_factory.mktemp("derived"))

    return run


@pytest.fixture(scope="session")
def unblinded(derive: Callable[[Raw], Tables]) -> Tables:
    return derive(raw())


@pytest.fixture(scope="session")
def blinded(derive: Callable[[Raw], Tables]) -> Tables:
    return derive(raw(blinded=True))
