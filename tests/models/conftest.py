"""The example study a design-dependent model test runs for: every such test runs once per
example study (ids ``ion301``, ``ion302``). Tests of the MMRM engine's algebra and the R
reference checks on ref1 keep their own ION-301 ``study`` fixture."""

from __future__ import annotations

from design_data import design_long, study

__all__ = ["design_long", "study"]
