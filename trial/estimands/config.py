"""Typed view of a study's ``intercurrent_events:`` and ``estimands:`` sections (SAP section 11).

Everything an estimand is (population, variable, visit, per-ICE strategy, method, the check of
the primary inference, the tipping-point grid) is declared in the study configuration; code
reads it from here and never names an estimand, an ICE or a strategy of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from study import Study

STRATEGIES = ("MAR", "JR", "CR", "CIR")
"""Imputation of missing post-ICE values: missing at random, jump to reference, copy
reference, copy increments in reference (Carpenter, Roger and Kenward 2013)."""
OBSERVED = ("use", "set_missing")
"""What happens to an observed post-ICE value: used (treatment policy) or set missing
(hypothetical)."""
METHODS = ("mmrm", "condmean-jackknife", "condmean-bootstrap", "bayes-approx")
"""``mmrm``: section 7's primary MMRM on the data left after ``set_missing`` (MAR only); the
others: reference-based imputation (``trial.rbi``) with an ANCOVA per visit."""


@dataclass(frozen=True)
class IceRules:
    """How the ICEs are derived (``intercurrent_events:``).

    ICE1 (discontinuation): disposition ``withdrawal_status`` other than the study's screen
    failure reason, or no session started for more than ``max_session_gap_days`` days before
    the ``gap_until_visit`` visit. ICE2 (rescue): the first ``cm`` row with ``cm_indication``
    and ``cm_rescue``."""

    discontinuation: str
    discontinuation_name: str
    withdrawal_status: str
    max_session_gap_days: int
    gap_until_visit: str
    rescue: str
    rescue_name: str
    cm_indication: str
    cm_rescue: str

    @property
    def names(self) -> dict[str, str]:
        return {self.discontinuation: self.discontinuation_name, self.rescue: self.rescue_name}


@dataclass(frozen=True)
class IceHandling:
    """One ICE's handling in an estimand: the ICH E9(R1) strategy's name, what happens to
    observed post-ICE values and how missing post-ICE values are imputed."""

    strategy: str
    observed: str
    missing: str


@dataclass(frozen=True)
class Check:
    """A second inference that must agree with the estimand's primary one."""

    method: str
    n_samples: int
    seed: int


@dataclass(frozen=True)
class Estimand:
    id: str
    role: str
    population: str
    variable: str
    visit: str
    ices: dict[str, IceHandling]
    method: str
    summary: str
    check: Check | None

    @property
    def imputation(self) -> str:
        """The one imputation strategy of missing post-ICE values (MAR when every ICE is MAR)."""
        strategies = {h.missing for h in self.ices.values()} - {"MAR"}
        if len(strategies) > 1:
            raise ValueError(
                f"estimand {self.id}: one reference-based strategy per estimand, not "
                f"{sorted(strategies)}"
            )
        return strategies.pop() if strategies else "MAR"

    def set_missing(self) -> list[str]:
        """ICEs whose observed post-ICE values are set missing."""
        return [ice for ice, h in self.ices.items() if h.observed == "set_missing"]


@dataclass(frozen=True)
class TippingPoint:
    """Delta adjustment of the non-reference arms' imputed values, one arm at a time, on the
    data of ``estimand`` with every missing value imputed under ``missing``: delta from
    ``delta_start`` in steps of ``delta_step`` (log scale) until the CI of the arm's contrast at
    ``visit`` first includes 0, at most ``delta_max``."""

    @property
    def grid(self) -> list[float]:
        """``delta_start, delta_start + delta_step, ...`` up to ``delta_max`` (rounded to 10
        decimals so that 0.15 prints as 0.15)."""
        n = int((self.delta_max - self.delta_start) / self.delta_step + 1e-9)
        return [round(self.delta_start + k * self.delta_step, 10) for k in range(n + 1)]

    estimand: str
    visit: str
    missing: str
    method: str
    delta_start: float
    delta_step: float
    delta_max: float


@dataclass(frozen=True)
class EstimandsConfig:
    rules: IceRules
    imputation_covariates: list[str]
    analysis_covariates: list[str]
    estimands: list[Estimand]
    tipping_point: TippingPoint


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    text = str(value)
    if text not in allowed:
        raise ValueError(f"{where}: {text!r} is not one of {', '.join(allowed)}")
    return text


def ice_rules(study: Study) -> IceRules:
    """The ICE derivation rules of ``study`` (``intercurrent_events:``, exactly two ICEs: the
    first is discontinuation, the second rescue)."""
    section = study.intercurrent_events
    if len(section) != 2:
        raise ValueError(f"{study.source}: intercurrent_events names two ICEs, not {len(section)}")
    (disc, d), (resc, r) = section.items()
    study.visit(str(d["gap_until_visit"]))
    return IceRules(
        discontinuation=str(disc),
        discontinuation_name=str(d["name"]),
        withdrawal_status=str(d["withdrawal_status"]),
        max_session_gap_days=int(d["max_session_gap_days"]),
        gap_until_visit=str(d["gap_until_visit"]),
        rescue=str(resc),
        rescue_name=str(r["name"]),
        cm_indication=str(r["cm_indication"]),
        cm_rescue=str(r["cm_rescue"]),
    )


def _estimand(raw: dict[str, Any], rules: IceRules, study: Study) -> Estimand:
    eid = str(raw["id"])
    where = f"{study.source}: estimand {eid}"
    ices = {}
    for ice, h in dict(raw["ices"]).items():
        if ice not in rules.names:
            raise ValueError(f"{where}: unknown intercurrent event {ice!r}")
        ices[str(ice)] = IceHandling(
            strategy=str(h["strategy"]),
            observed=_choice(h["observed"], OBSERVED, where),
            missing=_choice(h["missing"], STRATEGIES, where),
        )
    if set(ices) != set(rules.names):
        raise ValueError(f"{where}: give the handling of every ICE ({', '.join(rules.names)})")
    visit = str(raw["visit"])
    if visit not in study.model_visits:
        raise ValueError(f"{where}: visit {visit} is not a model visit")
    check = raw.get("check")
    estimand = Estimand(
        id=eid,
        role=str(raw["role"]),
        population=str(raw["population"]),
        variable=str(raw["variable"]),
        visit=visit,
        ices=ices,
        method=_choice(raw["method"], METHODS, where),
        summary=str(raw.get("summary", "")),
        check=None
        if check is None
        else Check(
            method=_choice(check["method"], METHODS[1:], where),
            n_samples=int(check["n_samples"]),
            seed=int(check["seed"]),
        ),
    )
    if estimand.method == "mmrm" and estimand.imputation != "MAR":
        raise ValueError(f"{where}: the MMRM handles missing values under MAR only")
    return estimand


def estimands_config(study: Study) -> EstimandsConfig:
    """The estimands of ``study`` (``estimands:``), checked against its visits and ICEs."""
    rules = ice_rules(study)
    section = study.estimands
    tp = dict(section["tipping_point"])
    tipping = TippingPoint(
        estimand=str(tp["estimand"]),
        visit=str(tp["visit"]),
        missing=_choice(tp["missing"], STRATEGIES, f"{study.source}: tipping_point"),
        method=_choice(tp["method"], METHODS[1:], f"{study.source}: tipping_point"),
        delta_start=float(tp["delta_start"]),
        delta_step=float(tp["delta_step"]),
        delta_max=float(tp["delta_max"]),
    )
    if tipping.delta_step <= 0 or tipping.delta_max < tipping.delta_start:
        raise ValueError(f"{study.source}: tipping_point needs delta_step > 0, a non-empty grid")
    estimands = [_estimand(dict(e), rules, study) for e in section["definitions"]]
    if tipping.estimand not in {e.id for e in estimands}:
        raise ValueError(f"{study.source}: tipping_point names unknown estimand {tipping.estimand}")
    if tipping.visit not in study.model_visits:
        raise ValueError(f"{study.source}: tipping_point visit {tipping.visit} is no model visit")
    return EstimandsConfig(
        rules=rules,
        imputation_covariates=[str(c) for c in section["imputation_model"]["covariates"]],
        analysis_covariates=[str(c) for c in section["analysis_model"]["covariates"]],
        estimands=estimands,
        tipping_point=tipping,
    )
