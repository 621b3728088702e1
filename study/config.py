"""The typed study model: one validated object per study configuration file.

A study file (``study/studies/ion301.yaml`` and ``study/studies/ion302.yaml`` ship with the
package) holds every fact of one trial: arms, visits and windows, regions, strata, thresholds,
alpha, codelists and the simulator's assumptions. :func:`load_study` reads it once into a
frozen :class:`Study` whose sections are typed models with visit-neutral names
(``study.endpoints.primary_visit``, ``study.endpoints.responder.hdss_improvement``,
``study.models.mmrm.covariance``, ``study.simulation.primary_mean_change``, ...).

A mistake in the file raises :class:`StudyError` whose message is one line naming the file,
the key path and what is wrong (``models.mmrm.covariance: 'unstructred' is not one of
'unstructured', ...``); the CLI and the Dagster definitions load the study before any raw file
is read, so a broken study stops a run at once.

This package imports nothing else of the project; every other package may import it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError

from study.estimands import (
    ICE_KINDS,
    DiscontinuationIce,
    Estimands,
    IceRule,
    RescueIce,
    cross_problems,
)
from study.section import Code, Section

DEFAULT_STUDY = "ion301"
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (about 10x faster), else PyYAML's."""
EXAMPLE_STUDIES = ("ion301", "ion302")
"""The example studies shipped in ``study/studies/`` (file stems)."""

COVARIANCE_STRUCTURES = (
    "unstructured",
    "heterogeneous_toeplitz",
    "heterogeneous_ar1",
    "compound_symmetry",
)
DDF_METHODS = ("satterthwaite", "kenward_roger")
HYPOTHESIS_ENDPOINTS = ("primary", "hdss_responder", "sweat_responder")

Share = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Covariance = Literal[
    "unstructured", "heterogeneous_toeplitz", "heterogeneous_ar1", "compound_symmetry"
]


class StudyError(ValueError):
    """A study file that cannot be used: ``str(error)`` is one line, ``<file>: <key path>:
    <what is wrong>``."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}")


class Arm(Section):
    code: Code
    name: str
    solution: str


class Allocation(Section):
    """Randomisation: ``ratio`` per arm in file order, permuted blocks of ``block_size`` within
    each combination of the ``strata`` factors."""

    ratio: tuple[PositiveInt, ...]
    block_size: PositiveInt
    strata: tuple[Literal["centre", "stratum"], ...]


class Strata(Section):
    """Screening HDSS -> stratum code; several scores may share a stratum (a cut-off)."""

    source_column: Literal["hdss_screening"]
    levels: dict[int, Code]


class Visit(Section):
    """A scheduled visit. ``target_day`` is the study day (day 1 = baseline date);
    ``window_days`` the +/- tolerance in days (None: no window judged); ``week`` the
    nominal week (None for screening)."""

    code: Code
    target_day: int
    window_days: NonNegativeInt | None
    week: NonNegativeInt | None
    gravimetry: bool
    hdss: bool


class Region(Section):
    """A body region measured by gravimetry. ``requires_involvement``: measured only in
    subjects with ``dm.plantar_involved == "Y"``."""

    code: Code
    paramcd: Code
    param: str
    primary: bool
    requires_involvement: bool


class Gravimetry(Section):
    """``collection_s_default`` (s) when a worksheet leaves it empty; ``entry_min_rate_mg_min``
    the screening rate each side of the primary region must reach; ``unit_to_mg`` the factor
    from each weight unit a balance may report to mg."""

    collection_s_default: PositiveInt
    balance_readability_mg: PositiveFloat
    entry_min_rate_mg_min: PositiveFloat
    unit_to_mg: dict[Code, PositiveFloat]


class Phase(Section):
    """A treatment phase: study weeks ``weeks`` (first, last, inclusive) with
    ``sessions_per_week`` planned sessions per treated region."""

    name: Code
    weeks: tuple[NonNegativeInt, NonNegativeInt]
    sessions_per_week: NonNegativeInt

    @property
    def planned_sessions(self) -> int:
        first, last = self.weeks
        return (last - first + 1) * self.sessions_per_week


class Treatment(Section):
    """Currents in mA, session length in minutes; ``induction_phase`` names the phase whose
    adherence defines the per-protocol set."""

    prescribed_ma: PositiveFloat
    titration_ma: tuple[PositiveFloat, PositiveFloat]
    session_minutes: PositiveInt
    phases: tuple[Phase, ...] = Field(min_length=1)
    induction_phase: Code
    current_tolerance_pct: PositiveFloat

    @property
    def session_s(self) -> float:
        return float(self.session_minutes) * 60.0

    def phase(self, name: str) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(f"treatment phase {name!r} is not configured")


class PerProtocol(Section):
    """Per-protocol rules: a session is adequate when it delivered >= ``min_current_share`` of
    the prescribed current for >= ``min_duration_share`` of the session; a subject needs
    adequate sessions >= ``min_induction_sessions_share`` of the planned induction sessions."""

    min_induction_sessions_share: Share
    min_current_share: Share
    min_duration_share: Share


class AnalysisSets(Section):
    pp: PerProtocol
    fas_post_baseline_visits: tuple[Code, ...] = Field(min_length=1)


class Eligibility(Section):
    criteria: tuple[Code, ...] = Field(min_length=1)
    age_range: tuple[NonNegativeInt, NonNegativeInt]
    hdss_screening_allowed: tuple[Annotated[int, Field(ge=1, le=4)], ...] = Field(min_length=1)


class Responder(Section):
    """Responder thresholds at the primary visit: HDSS improved by >= ``hdss_improvement``
    points; primary-region sweat rate reduced by >= ``sweat_reduction_pct`` percent."""

    hdss_improvement: Annotated[int, Field(ge=1, le=3)]
    sweat_reduction_pct: Annotated[float, Field(gt=0.0, lt=100.0)]


class Hypothesis(Section):
    """One step of the fixed sequence: ``contrast`` is ``<arm>-<reference arm>``."""

    id: Code
    endpoint: Literal["primary", "hdss_responder", "sweat_responder"]
    contrast: str


class Endpoints(Section):
    """``primary_visit`` of the primary contrast; ``model_visits`` of the repeated-measures
    models; ``durability_visits`` the (earlier, later) pair of the durability ratio; ``alpha``
    two-sided, for every test and confidence interval."""

    primary_visit: Code
    model_visits: tuple[Code, ...] = Field(min_length=1)
    durability_visits: tuple[Code, Code]
    responder: Responder
    key_secondary_sequence: tuple[Hypothesis, ...]
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)]

    @property
    def confidence_pct(self) -> float:
        """Confidence level of intervals in percent, e.g. 95 for alpha 0.05."""
        return round(100.0 * (1.0 - self.alpha), 6)


class Mmrm(Section):
    covariance: Covariance
    fallback: tuple[Covariance, ...] = ()
    ddf: Literal["satterthwaite", "kenward_roger"] = "satterthwaite"

    @property
    def structures(self) -> list[str]:
        """The covariance structures to try, in order."""
        return [self.covariance, *self.fallback]


class Subgroup(Section):
    name: Code
    column: Literal["sex", "age_group", "stratum", "plantar_involved", "centre_id"]


class AgeGroup(Section):
    label: str
    min: NonNegativeInt
    max: NonNegativeInt


class Models(Section):
    mmrm: Mmrm
    subgroups: tuple[Subgroup, ...] = ()
    age_groups: tuple[AgeGroup, ...] = Field(min_length=1)


class Codelists(Section):
    """Codelists of the EDC and device exports (``specs/site-exports.md``)."""

    sex: tuple[Code, ...]
    yes_no: tuple[Code, Code]
    visit_status: tuple[Code, ...]
    disposition_status: tuple[Code, ...]
    ae_term: tuple[Code, ...]
    ae_severity: tuple[Code, ...]
    ae_related: tuple[Code, ...]
    end_reason: tuple[Code, ...]
    fault_code: dict[Code, str]
    cm_drug: tuple[Code, ...] = ()
    cm_indication: tuple[Code, ...] = ()


class AeCode(Section):
    """A dictionary entry: preferred term and system organ class."""

    pt: str
    soc: str


class AeCoding(Section):
    """The study's AE dictionary (``dictionary`` names it and its version): each term of the AE
    form -> its code; the ``other_term`` is coded by its verbatim (``verbatims``, compared in
    lower case); ``discontinuation_reason`` is the disposition reason of a withdrawal because
    of an AE."""

    dictionary: str
    discontinuation_reason: Code
    terms: dict[Code, AeCode]
    other_term: Code
    verbatims: dict[str, AeCode] = Field(default_factory=dict)


class LowCurrentRisk(Section):
    """The arm-dependent (anticholinergic) AEs of ``ae_risk_by_arm`` are rarer at low currents:
    risk x ``risk_factor`` at <= ``max_ma``."""

    max_ma: float = 0.0
    risk_factor: float = 1.0


class Simulation(Section):
    """Assumptions of ``ionto simulate`` and ``ionto power`` (natural-log scale for sweat
    rates, mg/min before the log; shares are probabilities)."""

    subjects: PositiveInt
    start_date: dt.date
    delivery_every_days: PositiveInt
    first_delivery_after_days: PositiveInt = 28
    centre_stagger_days: NonNegativeInt = 7
    snapshot_lag_days: NonNegativeInt = 3
    recruitment_days: PositiveInt = 170
    timezone: str = "UTC"
    edc_crlf_centres: tuple[Code, ...] = ()
    balance_in_grams_centres: tuple[Code, ...] = ()
    screen_failure_share: Share
    screening_hdss_probs: dict[int, Share]
    failing_hdss_values: tuple[int, ...]
    hdss_scale: tuple[int, int]
    log_median_screening: float
    sd_log_screening: PositiveFloat
    sd_residual: PositiveFloat
    sd_left_right: Annotated[float, Field(ge=0.0)]
    sd_random_intercept: Annotated[float, Field(ge=0.0)]
    sd_random_slope_week: Annotated[float, Field(ge=0.0)]
    other_region_log_offset: float = 0.0
    """Log-rate offset of a non-primary region against the primary one."""
    sd_other_region_extra: Annotated[float, Field(ge=0.0)] = 0.0
    primary_mean_change: dict[Code, float]
    """True mean change in the log rate from baseline at the primary visit, per arm."""
    effect_fraction_by_visit: dict[Code, float]
    dropout_share: Share
    """Share of randomised subjects who drop out by ``dropout_visit``."""
    dropout_visit: Code
    dropout_logit_slope_per_log_change: float = 0.0
    withdrawal_after_dropout_visit_share: Share = 0.0
    withdrawal_reasons: dict[Code, Share]
    never_treated_reason: Code
    plantar_share: Share
    """Share of subjects with plantar involvement (1.0: every subject)."""
    female_share: Share = 0.5
    age_mean: float = 30.0
    age_sd: PositiveFloat = 12.0
    vendor_b_share: Share
    """Share of subjects whose primary-region unit is vendor B (0: vendor A only)."""
    vendor_a_memory_sessions: PositiveInt = 200
    vendor_b_hz: PositiveInt = 2
    vendor_b_rotate_lines: PositiveInt = 5000
    primary_hdss_responder_share: dict[Code, Share]
    """Share of HDSS responders at the primary visit, per arm."""
    hdss_gravimetric_coupling: float = 0.0
    titration_ma_probs: dict[float, Share]
    ae_risk: dict[Code, Share]
    ae_risk_by_arm: dict[Code, dict[Code, Share]] = Field(default_factory=dict)
    anticholinergic_low_current: LowCurrentRisk = LowCurrentRisk()
    visit_missed_share: Share
    visit_out_of_window_share: Share
    session_skip_share: Share
    session_stopped_share: Share
    session_fault_share: Share
    fault_code_weights: dict[Code, Share]
    collection_s_other_share: Share
    collection_s_other: tuple[PositiveInt, ...]
    paper_never_weighed_share: Share
    paper_wet_missing_share: Share
    baseline_primary_papers_lost_share: Share
    """Share of randomised subjects whose baseline papers of the primary region are lost."""
    device_swap_share: Share
    cm_first_delivery: dt.date | None = None
    """Deliveries before this date have no cm.csv (None: no delivery has one)."""
    rescue_share: dict[Code, Share] = Field(default_factory=dict)
    """Per arm, share of treated subjects taking rescue by the discontinuation ICE's
    ``gap_until_visit``."""
    rescue_after_primary_share: Share = 0.0
    rescue_logit_slope_per_log_change: float = 0.0
    rescue_log_effect: float = 0.0
    rescue_drugs: dict[Code, Share] = Field(default_factory=lambda: {"OTHER": 1.0})
    session_gap_share: Share = 0.0
    session_gap_days: tuple[PositiveInt, PositiveInt] = (35, 56)
    session_gap_fade_days: PositiveInt = 28
    other_cm_share: Share = 0.0
    topical_cm_share: Share = 0.0


CODELIST_NAMES = (
    "study_id",
    "centres",
    "arms",
    "strata",
    "visits",
    "model_visits",
    "regions",
    "paramcds",
    "sides",
    "age_groups",
    "treatment_phases",
    "eligibility_criteria",
    "weight_units",
    "sex",
    "yes_no",
    "visit_status",
    "disposition_status",
    "ae_term",
    "ae_severity",
    "ae_related",
    "end_reason",
    "fault_code",
    "cm_drug",
    "cm_indication",
    "intercurrent_events",
)
"""Names of the study's value lists a data contract may refer to (:meth:`Study.codelist`)."""


class Study(Section):
    """A whole study configuration, validated. Build it with :func:`load_study`."""

    study_id: str = Field(min_length=1)
    title: str
    centres: list[Code] = Field(min_length=1)
    arms: tuple[Arm, ...] = Field(min_length=2)
    reference_arm: Code
    allocation: Allocation
    strata: Strata
    visits: tuple[Visit, ...] = Field(min_length=2)
    screening_days: tuple[int, int]
    baseline_visit: Code
    baseline_fallback_visit: Code | None = None
    regions: tuple[Region, ...] = Field(min_length=1)
    sides: list[Code] = Field(min_length=1)
    gravimetry: Gravimetry
    treatment: Treatment
    analysis_sets: AnalysisSets
    eligibility: Eligibility
    screen_failure_reason: Code
    endpoints: Endpoints
    models: Models
    codelists: Codelists
    ae_coding: AeCoding | None = None
    intercurrent_events: dict[Code, IceRule]
    """Amendment 1: ICE id -> its derivation rule (one discontinuation, one rescue)."""
    estimands: Estimands
    """Amendment 1: estimands and the tipping point (SAP section 11)."""
    labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Printed labels of coded values: codelist (``sex``, ``stratum``, ``region``, ...) ->
    code -> label. Reports print these; an unlabelled code prints as itself."""
    simulation: Simulation
    _source: str = PrivateAttr(default="<mapping>")

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    @property
    def source(self) -> str:
        """Where the configuration was read from (for messages)."""
        return self._source

    # -- arms ------------------------------------------------------------------------------
    @property
    def arm_codes(self) -> list[str]:
        """Arm codes, the reference arm first (the base level of the treatment coding), then
        the others in file order."""
        return [self.reference_arm, *(a.code for a in self.arms if a.code != self.reference_arm)]

    @property
    def treated_arms(self) -> list[str]:
        """Arm codes other than the reference, in file order."""
        return self.arm_codes[1:]

    def arm(self, code: str) -> Arm:
        for a in self.arms:
            if a.code == code:
                return a
        raise KeyError(f"arm {code!r} is not in the study configuration {self.source}")

    # -- strata ----------------------------------------------------------------------------
    @property
    def stratum_levels(self) -> dict[int, str]:
        """Screening HDSS -> stratum code."""
        return dict(self.strata.levels)

    @property
    def stratum_codes(self) -> list[str]:
        """Distinct stratum codes in the order of their lowest screening HDSS."""
        return list(dict.fromkeys(self.strata.levels[k] for k in sorted(self.strata.levels)))

    # -- visits ----------------------------------------------------------------------------
    @property
    def visit_codes(self) -> list[str]:
        return [v.code for v in self.visits]

    def visit(self, code: str) -> Visit:
        for v in self.visits:
            if v.code == code:
                return v
        raise KeyError(f"visit {code!r} is not in the study configuration {self.source}")

    @property
    def screening_visit(self) -> Visit:
        """The first visit of the schedule (before baseline)."""
        return self.visits[0]

    @property
    def primary_visit(self) -> str:
        return self.endpoints.primary_visit

    @property
    def model_visits(self) -> list[str]:
        return list(self.endpoints.model_visits)

    @property
    def durability_visits(self) -> tuple[str, str]:
        return self.endpoints.durability_visits

    # -- regions ---------------------------------------------------------------------------
    @property
    def primary_region(self) -> Region:
        return next(r for r in self.regions if r.primary)

    @property
    def involvement_region(self) -> Region | None:
        """The region measured only in subjects with plantar involvement, if any."""
        return next((r for r in self.regions if r.requires_involvement), None)

    def region(self, code: str) -> Region:
        for r in self.regions:
            if r.code == code:
                return r
        raise KeyError(f"region {code!r} is not in the study configuration {self.source}")

    @property
    def unit_to_mg(self) -> dict[str, float]:
        return dict(self.gravimetry.unit_to_mg)

    # -- treatment -------------------------------------------------------------------------
    @property
    def prescribed_ma(self) -> float:
        return self.treatment.prescribed_ma

    @property
    def current_tolerance_pct(self) -> float:
        return self.treatment.current_tolerance_pct

    @property
    def induction_phase(self) -> Phase:
        return self.treatment.phase(self.treatment.induction_phase)

    def planned_sessions(self, phase: str) -> int:
        """Number of planned sessions in a treatment phase (weeks x sessions per week)."""
        return self.treatment.phase(phase).planned_sessions

    @property
    def planned_sessions_total(self) -> int:
        return sum(p.planned_sessions for p in self.treatment.phases)

    @property
    def alpha(self) -> float:
        """Two-sided significance level of every test (``endpoints.alpha``)."""
        return self.endpoints.alpha

    @property
    def ci_label(self) -> str:
        """How reports name an interval: ``95 % CI`` for alpha 0.05, ``90 % CI`` for 0.10."""
        return f"{self.endpoints.confidence_pct:g} % CI"

    def region_label(self, code: str) -> str:
        """Printed name of a region (``labels.region``, e.g. ``Palmar``), else its code."""
        return self.labels.get("region", {}).get(code, code)

    @property
    def confidence_level(self) -> float:
        """Coverage of every confidence interval: 1 - alpha (0.95 for alpha 0.05)."""
        return 1.0 - self.endpoints.alpha

    # -- intercurrent events --------------------------------------------------------------
    @property
    def discontinuation_ice(self) -> tuple[str, DiscontinuationIce]:
        """(ICE id, rule) of the treatment discontinuation ICE."""
        return next(
            (ice, rule)
            for ice, rule in self.intercurrent_events.items()
            if isinstance(rule, DiscontinuationIce)
        )

    @property
    def rescue_ice(self) -> tuple[str, RescueIce]:
        """(ICE id, rule) of the rescue treatment ICE."""
        return next(
            (ice, rule)
            for ice, rule in self.intercurrent_events.items()
            if isinstance(rule, RescueIce)
        )

    # -- value lists for data contracts ----------------------------------------------------
    def codelist(self, name: str) -> tuple[str, ...]:
        """The study's values of one of :data:`CODELIST_NAMES` (a data contract names them in
        ``customProperties`` ``studyCodelist``; they are resolved at run time)."""
        lists = self._codelists
        if name not in lists:
            raise KeyError(f"{name!r} is not a study codelist; known: {', '.join(lists)}")
        return lists[name]

    @cached_property
    def _codelists(self) -> dict[str, tuple[str, ...]]:
        cl = self.codelists
        return {
            "study_id": (self.study_id,),
            "centres": tuple(self.centres),
            "arms": tuple(self.arm_codes),
            "strata": tuple(self.stratum_codes),
            "visits": tuple(self.visit_codes),
            "model_visits": tuple(self.model_visits),
            "regions": tuple(r.code for r in self.regions),
            "paramcds": tuple(r.paramcd for r in self.regions),
            "sides": tuple(self.sides),
            "age_groups": tuple(g.label for g in self.models.age_groups),
            "treatment_phases": tuple(p.name for p in self.treatment.phases),
            "eligibility_criteria": self.eligibility.criteria,
            "weight_units": tuple(self.gravimetry.unit_to_mg),
            "sex": cl.sex,
            "yes_no": cl.yes_no,
            "visit_status": cl.visit_status,
            "disposition_status": cl.disposition_status,
            "ae_term": cl.ae_term,
            "ae_severity": cl.ae_severity,
            "ae_related": cl.ae_related,
            "end_reason": cl.end_reason,
            "fault_code": tuple(cl.fault_code),
            "cm_drug": cl.cm_drug,
            "cm_indication": cl.cm_indication,
            "intercurrent_events": tuple(self.intercurrent_events),
        }

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the configuration's content (identifies the study a result came from)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------
# Loading and validation


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _first_problem(error: ValidationError) -> tuple[str, str]:
    """(key path, what is wrong) of the first error pydantic found, in the study's words."""
    errors = error.errors(include_url=False)
    # a misspelt key shows as an unknown key and a missing one: name the misspelling
    e = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    kind, value, ctx = e["type"], e.get("input"), e.get("ctx") or {}
    loc = tuple(p for p in e["loc"] if not str(p).startswith("function-"))
    if loc[:1] == ("intercurrent_events",) and len(loc) > 2 and loc[2] in ICE_KINDS:
        loc = loc[:2] + loc[3:]  # the kind of ICE pydantic chose, not a key of the file
    path = _path(loc)
    if kind == "missing":
        problem = "a required key is missing"
    elif kind == "extra_forbidden":
        problem = "is not a key of this section (misspelt, or a key renamed?)"
    elif kind == "ice_kind":
        problem = e["msg"]
    elif kind == "literal_error":
        problem = f"{value!r} is not one of {ctx.get('expected', '')}"
    else:
        problem = f"{value!r}: {e['msg'][0].lower()}{e['msg'][1:]}"
    extra = len(errors) - 1
    if extra:
        problem += f" (and {extra} more problem{'s' if extra > 1 else ''})"
    return path, problem


def _unique(items: list[str], path: str, what: str) -> str | None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            return f"{path}[{i}]: {what} {item!r} is listed twice"
        seen.add(item)
    return None


def _cross_problems(s: Study) -> list[tuple[str, str]]:
    """Rules between keys: every name one key uses is defined by another."""
    out: list[tuple[str, str]] = []

    def need(value: object, known: list[str], path: str, what: str) -> None:
        if value not in known:
            out.append((path, f"{value!r} is not one of the {what} ({', '.join(known)})"))

    for items, path, what in (
        (list(s.centres), "centres", "centre"),
        ([a.code for a in s.arms], "arms", "arm"),
        (s.visit_codes, "visits", "visit"),
        ([r.code for r in s.regions], "regions", "region"),
        (list(s.sides), "sides", "side"),
        ([p.name for p in s.treatment.phases], "treatment.phases", "phase"),
    ):
        if (problem := _unique(items, path, what)) is not None:
            where, _, text = problem.partition(": ")
            out.append((where, text))
    arms = [a.code for a in s.arms]
    visits = s.visit_codes
    need(s.reference_arm, arms, "reference_arm", "arms")
    if len(s.allocation.ratio) != len(s.arms):
        out.append(
            ("allocation.ratio", f"has {len(s.allocation.ratio)} entries for {len(arms)} arms")
        )
    elif s.allocation.block_size % sum(s.allocation.ratio):
        out.append(
            (
                "allocation.block_size",
                f"{s.allocation.block_size} is not a multiple of the sum of allocation.ratio",
            )
        )
    for i, hdss in enumerate(s.eligibility.hdss_screening_allowed):
        if hdss not in s.strata.levels:
            out.append(
                (
                    f"eligibility.hdss_screening_allowed[{i}]",
                    f"{hdss} has no stratum in strata.levels",
                )
            )
    need(s.baseline_visit, visits, "baseline_visit", "visits")
    if s.baseline_fallback_visit is not None:
        need(s.baseline_fallback_visit, visits, "baseline_fallback_visit", "visits")
    primaries = [r.code for r in s.regions if r.primary]
    if len(primaries) != 1:
        out.append(("regions", f"exactly one region must be primary, not {len(primaries)}"))
    if "mg" not in s.gravimetry.unit_to_mg:
        out.append(("gravimetry.unit_to_mg", "must give mg (factor 1)"))
    need(
        s.treatment.induction_phase,
        [p.name for p in s.treatment.phases],
        "treatment.induction_phase",
        "treatment phases",
    )
    for i, v in enumerate(s.analysis_sets.fas_post_baseline_visits):
        need(v, visits, f"analysis_sets.fas_post_baseline_visits[{i}]", "visits")
    ep = s.endpoints
    for i, v in enumerate(ep.model_visits):
        need(v, visits, f"endpoints.model_visits[{i}]", "visits")
    need(ep.primary_visit, list(ep.model_visits), "endpoints.primary_visit", "model visits")
    for i, v in enumerate(ep.durability_visits):
        need(v, visits, f"endpoints.durability_visits[{i}]", "visits")
    contrasts = [f"{a}-{s.reference_arm}" for a in arms if a != s.reference_arm]
    for i, h in enumerate(ep.key_secondary_sequence):
        need(h.contrast, contrasts, f"endpoints.key_secondary_sequence[{i}].contrast", "contrasts")
    labels = [g.label for g in s.models.age_groups]
    if (problem := _unique(labels, "models.age_groups", "label")) is not None:
        where, _, text = problem.partition(": ")
        out.append((where, text))
    if s.ae_coding is not None:
        terms = list(s.codelists.ae_term)
        for term in s.ae_coding.terms:
            need(term, terms, f"ae_coding.terms.{term}", "AE terms (codelists.ae_term)")
        need(s.ae_coding.other_term, terms, "ae_coding.other_term", "AE terms (codelists.ae_term)")
    out.extend(cross_problems(s.intercurrent_events, s.estimands, visits, s.model_visits))
    sim = s.simulation
    for key in ("primary_mean_change", "primary_hdss_responder_share"):
        keys = sorted(getattr(sim, key))
        if keys != sorted(arms):
            out.append((f"simulation.{key}", f"needs exactly the arms {arms}, has {keys}"))
    if sim.rescue_share and sorted(sim.rescue_share) != sorted(arms):
        out.append(("simulation.rescue_share", f"needs exactly the arms {arms}"))
    for term, risks in sim.ae_risk_by_arm.items():
        if sorted(risks) != sorted(arms):
            out.append((f"simulation.ae_risk_by_arm.{term}", f"needs exactly the arms {arms}"))
    for key, known, what in (
        ("effect_fraction_by_visit", visits, "visits"),
        ("ae_risk", list(s.codelists.ae_term), "AE terms"),
        ("ae_risk_by_arm", list(s.codelists.ae_term), "AE terms"),
        ("fault_code_weights", list(s.codelists.fault_code), "fault codes"),
    ):
        for k in getattr(sim, key):
            need(k, known, f"simulation.{key}.{k}", what)
    for v in ep.model_visits:
        if v not in sim.effect_fraction_by_visit:
            out.append(("simulation.effect_fraction_by_visit", f"lacks the model visit {v!r}"))
    need(sim.dropout_visit, visits, "simulation.dropout_visit", "visits")
    for key in ("edc_crlf_centres", "balance_in_grams_centres"):
        for i, c in enumerate(getattr(sim, key)):
            need(c, list(s.centres), f"simulation.{key}[{i}]", "centres")
    for k in sim.screening_hdss_probs:
        if k not in s.eligibility.hdss_screening_allowed:
            out.append(
                (
                    f"simulation.screening_hdss_probs.{k}",
                    "is not in eligibility.hdss_screening_allowed",
                )
            )
    if sim.balance_in_grams_centres and "g" not in s.gravimetry.unit_to_mg:
        out.append(("gravimetry.unit_to_mg", "must give g when a centre weighs in grams"))
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(sim.timezone)
    except (KeyError, ValueError):
        out.append(("simulation.timezone", f"{sim.timezone!r} is not an IANA time zone"))
    return out


def _printed_blinded(s: Study) -> list[tuple[str, str]]:
    """``(key path, text)`` of the free text a blinded report prints word for word: the
    estimands' population, variable, summary and ICE strategies, the ICEs' names, the printed
    labels and the fault codes' descriptions."""
    texts: list[tuple[str, str]] = []
    for i, e in enumerate(s.estimands.definitions):
        where = f"estimands.definitions[{i}]"
        texts += [(f"{where}.{key}", getattr(e, key)) for key in ("population", "variable")]
        texts.append((f"{where}.summary", e.summary))
        texts += [(f"{where}.ices.{ice}.strategy", h.strategy) for ice, h in e.ices.items()]
    texts += [
        (f"intercurrent_events.{ice}.name", rule.name)
        for ice, rule in s.intercurrent_events.items()
    ]
    for codelist, labels in s.labels.items():
        texts += [(f"labels.{codelist}.{code}", label) for code, label in labels.items()]
    texts += [(f"codelists.fault_code.{c}", d) for c, d in s.codelists.fault_code.items()]
    return texts


def _arm_problems(s: Study) -> list[tuple[str, str]]:
    """A blinded report prints some of the study's free text as it is written: an arm code
    (whole word, case-sensitive, as the blinding scan of ``trial.report.blinding`` looks for
    it) or an arm name (any case) there would name an arm in a blinded output."""
    out: list[tuple[str, str]] = []
    for path, text in _printed_blinded(s):
        for arm in s.arms:
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(arm.code)}(?![A-Za-z0-9])", text):
                named = f"the arm code {arm.code!r}"
            elif arm.name.lower() in text.lower():
                named = f"the arm name {arm.name!r}"
            else:
                continue
            out.append(
                (
                    path,
                    f"{text!r} names {named}; a blinded report prints this text, so name no "
                    "arm in it (say 'the reference arm' or 'each treated arm')",
                )
            )
    return out


def parse_study(data: Any, source: str = "<mapping>") -> Study:
    """Validate a study mapping (as read from YAML); :class:`StudyError` names the first
    problem's key path."""
    if not isinstance(data, Mapping):
        raise StudyError(source, "", "a study configuration must be a YAML mapping of sections")
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        path, problem = _first_problem(exc)
        raise StudyError(source, path, problem) from None
    study._source = source
    problems = _cross_problems(study) + _arm_problems(study)
    if problems:
        path, problem = problems[0]
        if len(problems) > 1:
            problem += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        raise StudyError(source, path, problem)
    return study


def example_study_path(name: str) -> Path:
    """Path of a study shipped in ``study/studies/`` (``ion301``, ``ion302``)."""
    return Path(str(resources.files("study").joinpath("studies", f"{name}.yaml")))


def study_file(name_or_path: str | Path | None) -> Path | None:
    """The file a ``--study`` argument names: a shipped example by name (``ion302``), else the
    path as given; None stays None (the bundled default)."""
    if name_or_path is None:
        return None
    if str(name_or_path) in EXAMPLE_STUDIES:
        return example_study_path(str(name_or_path))
    return Path(name_or_path)


def load_study(path: str | Path | None = None) -> Study:
    """Load and validate a study configuration. ``None`` loads the bundled ION-301 study; a
    bare name of a shipped study (``ion302``) loads that one. Raises :class:`StudyError`
    (one line: file, key path, problem) for any mistake."""
    if path is None or str(path) in EXAMPLE_STUDIES:
        name = DEFAULT_STUDY if path is None else str(path)
        file = example_study_path(name)
        source = f"study/studies/{name}.yaml"
    else:
        file = Path(path)
        source = str(path)
    try:
        text = file.read_text("utf-8")
    except OSError as exc:
        shipped = ", ".join(EXAMPLE_STUDIES)
        raise StudyError(
            source,
            "",
            f"cannot read the study file ({exc.strerror}); give a study file's path or the "
            f"name of a shipped study ({shipped})",
        ) from None
    return _parsed(text, source)


@lru_cache(maxsize=16)
def _parsed(text: str, source: str) -> Study:
    """The study a file's text gives (parsed and validated once per text: a run's assets each
    ask for the study, and parsing it costs about 0.1 s of CPU)."""
    try:
        data = yaml.load(text, Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise StudyError(source, where, f"not valid YAML: {problem}") from None
    return parse_study(data, source)
