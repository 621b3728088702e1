"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def find_shared_dir() -> Path | None:
    """The team's shared folder: ``$IONTO_SHARED`` or ``../shared`` beside the checkout."""
    env = os.environ.get("IONTO_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared")
    for path in candidates:
        if (path / "reference").is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = find_shared_dir()
    if path is None:
        pytest.fail("the shared folder (../shared or $IONTO_SHARED) with reference/ is missing")
    return path


@pytest.fixture(scope="session")
def ref1_dir(shared_dir: Path) -> Path:
    return shared_dir / "reference" / "ref1"
