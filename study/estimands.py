"""Typed sections of amendment 1 (SAP section 11): ``intercurrent_events`` and ``estimands``.

Everything an estimand is (population, variable, visit, per-ICE strategy, method, the check of
the primary inference, the tipping-point grid) is declared in the study file and validated here
with the rest of the study; code reads these models and never names an estimand, an ICE or a
strategy of its own. The rules between keys (every ICE an estimand names exists, visits are
model visits, ...) are checked by :func:`cross_problems`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from study.section import Code, Section

Strategy = Literal["MAR", "JR", "CR", "CIR"]
"""Imputation of missing post-ICE values: missing at random, jump to reference, copy
reference, copy increments in reference (Carpenter, Roger and Kenward 2013)."""
Observed = Literal["use", "set_missing"]
"""What happens to an observed post-ICE value: used (treatment policy) or set missing
(hypothetical)."""
Method = Literal["mmrm", "condmean-jackknife", "condmean-bootstrap", "bayes-approx"]
"""``mmrm``: section 7's primary MMRM on the data left after ``set_missing`` (MAR only); the
others: reference-based imputation (``trial.rbi``) with an ANCOVA per visit."""
ImputationMethod = Literal["condmean-jackknife", "condmean-bootstrap", "bayes-approx"]
"""The reference-based imputation methods (a check's, the tipping point's)."""


class DiscontinuationIce(Section):
    """Treatment discontinuation: disposition ``withdrawal_status`` (screen failures excluded),
    or no session started for more than ``max_session_gap_days`` days before the
    ``gap_until_visit`` visit's date (its target date when the visit is missing)."""

    name: str
    withdrawal_status: Code
    max_session_gap_days: Annotated[int, Field(gt=0)]
    gap_until_visit: Code


class RescueIce(Section):
    """Rescue treatment: the first ``cm`` row with ``cm_indication`` and rescue flag
    ``cm_rescue``; the ICE date is its start date."""

    name: str
    cm_indication: Code
    cm_rescue: Code


_DISCONTINUATION_KEYS = frozenset(DiscontinuationIce.model_fields) - {"name"}
_RESCUE_KEYS = frozenset(RescueIce.model_fields) - {"name"}


def _ice_kind(value: Any) -> str | None:
    """``discontinuation`` or ``rescue``, by the keys an ICE rule gives (None: neither)."""
    keys = set(value) if isinstance(value, Mapping) else set(type(value).model_fields)
    if keys & _DISCONTINUATION_KEYS:
        return "discontinuation"
    if keys & _RESCUE_KEYS:
        return "rescue"
    return None


IceRule = Annotated[
    Annotated[DiscontinuationIce, Tag("discontinuation")] | Annotated[RescueIce, Tag("rescue")],
    Discriminator(
        _ice_kind,
        custom_error_type="ice_kind",
        custom_error_message=(
            "an ICE rule is a discontinuation (withdrawal_status, max_session_gap_days, "
            "gap_until_visit) or a rescue (cm_indication, cm_rescue)"
        ),
    ),
]
"""One entry of ``intercurrent_events``: its keys say which kind of ICE it is."""
ICE_KINDS = ("discontinuation", "rescue")
"""Tags of :data:`IceRule` (they appear in pydantic's error locations, not in the file)."""


class IceHandling(Section):
    """One ICE's handling in an estimand: the ICH E9(R1) strategy's name, what happens to
    observed post-ICE values and how missing post-ICE values are imputed."""

    strategy: str
    observed: Observed
    missing: Strategy


class Check(Section):
    """A second inference that must agree with the estimand's primary one."""

    method: ImputationMethod
    n_samples: Annotated[int, Field(gt=0)]
    seed: int


class Estimand(Section):
    """One estimand: ``ices`` gives the handling of every ICE id of ``intercurrent_events``;
    ``visit`` is a model visit."""

    id: Code
    role: str
    population: str
    variable: str
    visit: Code
    ices: dict[Code, IceHandling]
    method: Method
    summary: str = ""
    check: Check | None = None

    @property
    def imputation(self) -> str:
        """The one imputation strategy of missing post-ICE values (MAR when every ICE is MAR;
        the study checks there is at most one other)."""
        strategies = sorted({h.missing for h in self.ices.values()} - {"MAR"})
        return strategies[0] if strategies else "MAR"

    def set_missing(self) -> list[str]:
        """ICEs whose observed post-ICE values are set missing."""
        return [ice for ice, h in self.ices.items() if h.observed == "set_missing"]


class TippingPoint(Section):
    """Delta adjustment of the non-reference arms' imputed values, one arm at a time, on the
    data of ``estimand`` with every missing value imputed under ``missing``: delta from
    ``delta_start`` in steps of ``delta_step`` (log scale) until the CI of the arm's contrast at
    ``visit`` first includes 0, at most ``delta_max``."""

    estimand: str
    visit: Code
    missing: Strategy
    method: ImputationMethod
    delta_start: float
    delta_step: Annotated[float, Field(gt=0.0)]
    delta_max: float

    @property
    def grid(self) -> list[float]:
        """``delta_start, delta_start + delta_step, ...`` up to ``delta_max`` (rounded to 10
        decimals so that 0.15 prints as 0.15)."""
        n = int((self.delta_max - self.delta_start) / self.delta_step + 1e-9)
        return [round(self.delta_start + k * self.delta_step, 10) for k in range(n + 1)]


class CovariateModel(Section):
    """Covariates of a model: columns of ``analysis_long`` (``a*b`` an interaction)."""

    covariates: tuple[str, ...]


class Estimands(Section):
    """The ``estimands:`` section: the imputation model (the primary MMRM's mean model), the
    ANCOVA per visit on each completed data set, the estimands and the tipping point."""

    imputation_model: CovariateModel
    analysis_model: CovariateModel
    definitions: tuple[Estimand, ...] = Field(min_length=1)
    tipping_point: TippingPoint


def cross_problems(
    ices: Mapping[str, DiscontinuationIce | RescueIce],
    estimands: Estimands,
    visits: Sequence[str],
    model_visits: Sequence[str],
) -> list[tuple[str, str]]:
    """(key path, what is wrong) of every rule between these sections and the schedule."""
    out: list[tuple[str, str]] = []
    kinds = [_ice_kind(rule) for rule in ices.values()]
    if sorted(str(k) for k in kinds) != sorted(ICE_KINDS):
        out.append(
            (
                "intercurrent_events",
                f"needs one discontinuation and one rescue ICE, has {', '.join(map(str, kinds))}",
            )
        )
    for ice, rule in ices.items():
        if isinstance(rule, DiscontinuationIce) and rule.gap_until_visit not in visits:
            out.append(
                (
                    f"intercurrent_events.{ice}.gap_until_visit",
                    f"{rule.gap_until_visit!r} is not one of the visits ({', '.join(visits)})",
                )
            )
    ids = [e.id for e in estimands.definitions]
    for i, e in enumerate(estimands.definitions):
        where = f"estimands.definitions[{i}]"
        if e.id in ids[:i]:
            out.append((f"{where}.id", f"estimand {e.id!r} is listed twice"))
        for ice in e.ices:
            if ice not in ices:
                out.append(
                    (
                        f"{where}.ices.{ice}",
                        f"{ice!r} is not one of the intercurrent events ({', '.join(ices)})",
                    )
                )
        lacking = [ice for ice in ices if ice not in e.ices]
        if lacking:
            out.append((f"{where}.ices", f"gives no handling of {', '.join(lacking)}"))
        if e.visit not in model_visits:
            out.append(
                (
                    f"{where}.visit",
                    f"{e.visit!r} is not one of the model visits ({', '.join(model_visits)})",
                )
            )
        reference_based = sorted({h.missing for h in e.ices.values()} - {"MAR"})
        if len(reference_based) > 1:
            out.append(
                (
                    f"{where}.ices",
                    f"one reference-based strategy per estimand, not {reference_based}",
                )
            )
        if e.method == "mmrm" and reference_based:
            out.append((f"{where}.method", "the MMRM handles missing values under MAR only"))
    tp = estimands.tipping_point
    if tp.estimand not in ids:
        out.append(
            (
                "estimands.tipping_point.estimand",
                f"names unknown estimand {tp.estimand} (known: {', '.join(ids)})",
            )
        )
    if tp.visit not in model_visits:
        out.append(
            (
                "estimands.tipping_point.visit",
                f"{tp.visit!r} is not one of the model visits ({', '.join(model_visits)})",
            )
        )
    if tp.delta_max < tp.delta_start:
        out.append(
            (
                "estimands.tipping_point.delta_max",
                f"{tp.delta_max} is below delta_start {tp.delta_start}: the grid is empty",
            )
        )
    return out
