"""The study's ICE rules and estimands (SAP section 11) as the estimands code uses them.

The study file's ``intercurrent_events`` and ``estimands`` sections are typed and validated by
the study model (:mod:`study.estimands`) when the study is loaded; this module only gathers the
typed attributes into the two views the derivation of ``adice`` and the estimand analyses take.
"""

from __future__ import annotations

from dataclasses import dataclass

from study import Estimand, Study, TippingPoint


@dataclass(frozen=True)
class IceRules:
    """How the ICEs are derived (``intercurrent_events:``).

    Discontinuation: disposition ``withdrawal_status`` other than the study's screen failure
    reason, or no session started for more than ``max_session_gap_days`` days before the
    ``gap_until_visit`` visit. Rescue: the first ``cm`` row with ``cm_indication`` and
    ``cm_rescue``."""

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
class EstimandsConfig:
    rules: IceRules
    imputation_covariates: list[str]
    analysis_covariates: list[str]
    estimands: list[Estimand]
    tipping_point: TippingPoint


def ice_rules(study: Study) -> IceRules:
    """The ICE derivation rules of ``study`` (its discontinuation and its rescue ICE)."""
    disc, d = study.discontinuation_ice
    resc, r = study.rescue_ice
    return IceRules(
        discontinuation=disc,
        discontinuation_name=d.name,
        withdrawal_status=d.withdrawal_status,
        max_session_gap_days=d.max_session_gap_days,
        gap_until_visit=d.gap_until_visit,
        rescue=resc,
        rescue_name=r.name,
        cm_indication=r.cm_indication,
        cm_rescue=r.cm_rescue,
    )


def estimands_config(study: Study) -> EstimandsConfig:
    """The estimands of ``study`` (``estimands:``, checked against its visits and ICEs when the
    study was loaded)."""
    section = study.estimands
    return EstimandsConfig(
        rules=ice_rules(study),
        imputation_covariates=list(section.imputation_model.covariates),
        analysis_covariates=list(section.analysis_model.covariates),
        estimands=list(section.definitions),
        tipping_point=section.tipping_point,
    )
