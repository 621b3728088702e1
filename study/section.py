"""The base of every section model of a study file, and the type of a code."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Code = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
"""A code of the study file (arm, visit, centre, ICE id, ...): letters, digits, ``_``, ``-``."""


class Section(BaseModel):
    """A section of the study file: frozen, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")
