"""Typed view of a study's ``simulation:`` section plus the study facts the simulator needs.

Every number the simulator uses comes from here; the values are those of the SAP's
section 9 (natural-log scale for sweat rates, mg/min before the log).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from study import Study


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of one simulated trial (see ``study/studies/*.yaml`` ``simulation:``)."""

    start_date: dt.date
    delivery_every_days: int
    first_delivery_after_days: int
    centre_stagger_days: int
    snapshot_lag_days: int
    recruitment_days: int
    timezone: ZoneInfo
    edc_crlf_centres: frozenset[str]
    gram_centres: frozenset[str]
    screen_failure_share: float
    screening_hdss_probs: dict[int, float]
    failing_hdss_values: list[int]
    hdss_scale: tuple[int, int]
    log_median_screening: float
    sd_log_screening: float
    sd_residual: float
    sd_left_right: float
    sd_random_intercept: float
    sd_random_slope_week: float
    other_region_log_offset: float
    sd_other_region_extra: float
    mean_change_primary: dict[str, float]
    effect_fraction: dict[str, float]
    dropout_share: float
    dropout_slope: float
    dropout_visit: str
    late_withdrawal_share: float
    withdrawal_reasons: dict[str, float]
    never_treated_reason: str
    plantar_share: float
    female_share: float
    age_mean: float
    age_sd: float
    vendor_b_share: float
    vendor_a_memory: int
    vendor_b_hz: int
    vendor_b_rotate_lines: int
    hdss_responder: dict[str, float]
    hdss_coupling: float
    titration_ma_probs: dict[float, float]
    ae_risk: dict[str, float]
    ae_risk_by_arm: dict[str, dict[str, float]]
    anticholinergic_low_ma: float
    anticholinergic_low_factor: float
    visit_missed_share: float
    visit_out_of_window_share: float
    session_skip_share: float
    session_stopped_share: float
    session_fault_share: float
    fault_code_weights: dict[str, float]
    collection_s_other_share: float
    collection_s_other: list[int]
    paper_never_weighed_share: float
    paper_wet_missing_share: float
    baseline_primary_lost_share: float
    device_swap_share: float
    cm_first_delivery: dt.date | None
    rescue_share: dict[str, float]
    rescue_after_primary_share: float
    rescue_slope: float
    rescue_log_effect: float
    rescue_drugs: dict[str, float]
    session_gap_share: float
    session_gap_days: tuple[int, int]
    session_gap_fade_days: int
    other_cm_share: float
    topical_cm_share: float

    @property
    def sd_persistent(self) -> float:
        """Between-subject SD of the persistent log level: screening SD minus the visit residual."""
        return float(max(self.sd_log_screening**2 - self.sd_residual**2, 0.0) ** 0.5)

    @classmethod
    def from_study(cls, study: Study) -> SimulationParams:
        """The study's ``simulation`` section (validated by :func:`study.load_study`)."""
        s = study.simulation
        low = s.anticholinergic_low_current
        low_hdss, high_hdss = s.hdss_scale
        return cls(
            start_date=s.start_date,
            delivery_every_days=s.delivery_every_days,
            first_delivery_after_days=s.first_delivery_after_days,
            centre_stagger_days=s.centre_stagger_days,
            snapshot_lag_days=s.snapshot_lag_days,
            recruitment_days=s.recruitment_days,
            timezone=ZoneInfo(s.timezone),
            edc_crlf_centres=frozenset(s.edc_crlf_centres),
            gram_centres=frozenset(s.balance_in_grams_centres),
            screen_failure_share=s.screen_failure_share,
            screening_hdss_probs=dict(s.screening_hdss_probs),
            failing_hdss_values=list(s.failing_hdss_values),
            hdss_scale=(low_hdss, high_hdss),
            log_median_screening=s.log_median_screening,
            sd_log_screening=s.sd_log_screening,
            sd_residual=s.sd_residual,
            sd_left_right=s.sd_left_right,
            sd_random_intercept=s.sd_random_intercept,
            sd_random_slope_week=s.sd_random_slope_week,
            other_region_log_offset=s.other_region_log_offset,
            sd_other_region_extra=s.sd_other_region_extra,
            mean_change_primary=dict(s.primary_mean_change),
            effect_fraction=dict(s.effect_fraction_by_visit),
            dropout_share=s.dropout_share,
            dropout_slope=s.dropout_logit_slope_per_log_change,
            dropout_visit=s.dropout_visit,
            late_withdrawal_share=s.withdrawal_after_dropout_visit_share,
            withdrawal_reasons=dict(s.withdrawal_reasons),
            never_treated_reason=s.never_treated_reason,
            plantar_share=s.plantar_share,
            female_share=s.female_share,
            age_mean=s.age_mean,
            age_sd=s.age_sd,
            vendor_b_share=s.vendor_b_share,
            vendor_a_memory=s.vendor_a_memory_sessions,
            vendor_b_hz=s.vendor_b_hz,
            vendor_b_rotate_lines=s.vendor_b_rotate_lines,
            hdss_responder=dict(s.primary_hdss_responder_share),
            hdss_coupling=s.hdss_gravimetric_coupling,
            titration_ma_probs=dict(s.titration_ma_probs),
            ae_risk=dict(s.ae_risk),
            ae_risk_by_arm={term: dict(risks) for term, risks in s.ae_risk_by_arm.items()},
            anticholinergic_low_ma=low.max_ma,
            anticholinergic_low_factor=low.risk_factor,
            visit_missed_share=s.visit_missed_share,
            visit_out_of_window_share=s.visit_out_of_window_share,
            session_skip_share=s.session_skip_share,
            session_stopped_share=s.session_stopped_share,
            session_fault_share=s.session_fault_share,
            fault_code_weights=dict(s.fault_code_weights),
            collection_s_other_share=s.collection_s_other_share,
            collection_s_other=list(s.collection_s_other),
            paper_never_weighed_share=s.paper_never_weighed_share,
            paper_wet_missing_share=s.paper_wet_missing_share,
            baseline_primary_lost_share=s.baseline_primary_papers_lost_share,
            device_swap_share=s.device_swap_share,
            cm_first_delivery=s.cm_first_delivery,
            rescue_share=dict(s.rescue_share),
            rescue_after_primary_share=s.rescue_after_primary_share,
            rescue_slope=s.rescue_logit_slope_per_log_change,
            rescue_log_effect=s.rescue_log_effect,
            rescue_drugs=dict(s.rescue_drugs),
            session_gap_share=s.session_gap_share,
            session_gap_days=s.session_gap_days,
            session_gap_fade_days=s.session_gap_fade_days,
            other_cm_share=s.other_cm_share,
            topical_cm_share=s.topical_cm_share,
        )
