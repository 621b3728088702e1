"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def ref1_dir() -> Path:
    """The reference trial ``ref1`` and its R results, kept in the project
    (``tests/fixtures/ref1/README.md`` says where they come from)."""
    return FIXTURES / "ref1"
