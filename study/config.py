"""Study configuration: the one place where a trial's facts live.

The configuration is a YAML file (``study/studies/ion301.yaml`` for the reference
trial). Every module reads study facts from a :class:`Study`; nothing about a
particular trial is hard-coded elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

DEFAULT_STUDY = "ion301"


@dataclass(frozen=True)
class Arm:
    code: str
    name: str
    solution: str


@dataclass(frozen=True)
class Visit:
    """A scheduled visit. ``target_day`` is the study day (day 1 = baseline date);
    ``window_days`` the +/- tolerance in days (None: no window judged); ``week`` the
    nominal week (None for screening)."""

    code: str
    target_day: int
    window_days: int | None
    week: int | None
    gravimetry: bool
    hdss: bool


@dataclass(frozen=True)
class Region:
    code: str
    paramcd: str
    param: str
    primary: bool
    requires_involvement: bool


@dataclass(frozen=True)
class Study:
    """Typed view of a study configuration file. ``raw`` keeps the whole mapping."""

    raw: dict[str, Any]
    source: str

    @property
    def study_id(self) -> str:
        return str(self.raw["study_id"])

    @property
    def title(self) -> str:
        return str(self.raw.get("title", self.study_id))

    @property
    def centres(self) -> list[str]:
        return [str(c) for c in self.raw["centres"]]

    @cached_property
    def arms(self) -> list[Arm]:
        return [Arm(**a) for a in self.raw["arms"]]

    @property
    def arm_codes(self) -> list[str]:
        return [a.code for a in self.arms]

    @property
    def reference_arm(self) -> str:
        return self.arms[0].code

    @property
    def stratum_levels(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.raw["strata"]["levels"].items()}

    @cached_property
    def visits(self) -> list[Visit]:
        return [Visit(**v) for v in self.raw["visits"]]

    @property
    def visit_codes(self) -> list[str]:
        return [v.code for v in self.visits]

    def visit(self, code: str) -> Visit:
        for v in self.visits:
            if v.code == code:
                return v
        raise KeyError(f"visit {code!r} is not in the study configuration {self.source}")

    @property
    def baseline_visit(self) -> str:
        return str(self.raw["baseline_visit"])

    @property
    def baseline_fallback_visit(self) -> str | None:
        value = self.raw.get("baseline_fallback_visit")
        return None if value is None else str(value)

    @property
    def screening_days(self) -> tuple[int, int]:
        low, high = self.raw["screening_days"]
        return int(low), int(high)

    @cached_property
    def regions(self) -> list[Region]:
        return [Region(**r) for r in self.raw["regions"]]

    @property
    def primary_region(self) -> Region:
        return next(r for r in self.regions if r.primary)

    @property
    def sides(self) -> list[str]:
        return [str(s) for s in self.raw["sides"]]

    @property
    def unit_to_mg(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in self.raw["gravimetry"]["unit_to_mg"].items()}

    @property
    def model_visits(self) -> list[str]:
        return [str(v) for v in self.raw["endpoints"]["model_visits"]]

    @property
    def primary_visit(self) -> str:
        return str(self.raw["endpoints"]["primary_visit"])

    @property
    def prescribed_ma(self) -> float:
        return float(self.raw["treatment"]["prescribed_ma"])

    @property
    def current_tolerance_pct(self) -> float:
        return float(self.raw["treatment"]["current_tolerance_pct"])

    def planned_sessions(self, phase: str) -> int:
        """Number of planned sessions in a treatment phase (weeks x sessions per week)."""
        for p in self.raw["treatment"]["phases"]:
            if p["name"] == phase:
                first, last = p["weeks"]
                return int((last - first + 1) * p["sessions_per_week"])
        raise KeyError(f"treatment phase {phase!r} is not in {self.source}")

    @property
    def planned_sessions_total(self) -> int:
        return sum(self.planned_sessions(p["name"]) for p in self.raw["treatment"]["phases"])

    @property
    def codelists(self) -> dict[str, Any]:
        return dict(self.raw["codelists"])

    @property
    def simulation(self) -> dict[str, Any]:
        return dict(self.raw["simulation"])

    def section(self, name: str) -> dict[str, Any]:
        """Any top-level mapping of the configuration, e.g. ``analysis_sets`` or ``models``."""
        return dict(self.raw[name])


def load_study(path: str | Path | None = None) -> Study:
    """Load a study configuration. ``None`` loads the bundled reference study (ION-301)."""
    if path is None:
        text = (
            resources.files("study").joinpath("studies", f"{DEFAULT_STUDY}.yaml").read_text("utf-8")
        )
        source = f"study/studies/{DEFAULT_STUDY}.yaml"
    else:
        text = Path(path).read_text("utf-8")
        source = str(path)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a study configuration must be a YAML mapping")
    return Study(raw=data, source=source)
