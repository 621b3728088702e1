"""The example study an estimand test runs for: every test that reads the study's estimands,
ICEs, arms or visits runs once per example study (ids ``ion301``, ``ion302``)."""

from __future__ import annotations

from design_data import design_long, study

__all__ = ["design_long", "study"]
