"""Typed view of a study's ``simulation:`` section plus the study facts the simulator needs.

Every number the simulator uses comes from here; the values are those of the SAP's
section 9 (natural-log scale for sweat rates, mg/min before the log).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from study import Study


def _float_map(raw: dict[Any, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in raw.items()}


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
    sole_log_offset: float
    sd_sole_extra: float
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
    bl_palm_lost_share: float
    device_swap_share: float

    @property
    def sd_persistent(self) -> float:
        """Between-subject SD of the persistent log level: screening SD minus the visit residual."""
        return float(max(self.sd_log_screening**2 - self.sd_residual**2, 0.0) ** 0.5)

    @classmethod
    def from_study(cls, study: Study) -> SimulationParams:
        s = study.simulation
        arms = study.arm_codes
        by_arm: dict[str, dict[str, float]] = {
            str(term): _float_map(v) for term, v in s.get("ae_risk_by_arm", {}).items()
        }
        by_arm["DRY_MOUTH"] = _float_map(s["dry_mouth_risk"])
        for term, risks in by_arm.items():
            missing = set(arms) - set(risks)
            if missing:
                raise ValueError(f"{study.source}: simulation risk of {term} lacks arms {missing}")
        low = s.get("anticholinergic_low_current", {})
        unknown = set(s.get("edc_crlf_centres", [])) | set(s.get("balance_in_grams_centres", []))
        unknown -= set(study.centres)
        if unknown:
            raise ValueError(f"{study.source}: simulation names unknown centres {sorted(unknown)}")
        low_hdss, high_hdss = s["hdss_scale"]
        return cls(
            start_date=dt.date.fromisoformat(str(s["start_date"])),
            delivery_every_days=int(s["delivery_every_days"]),
            first_delivery_after_days=int(s.get("first_delivery_after_days", 28)),
            centre_stagger_days=int(s.get("centre_stagger_days", 7)),
            snapshot_lag_days=int(s.get("snapshot_lag_days", 3)),
            recruitment_days=int(s.get("recruitment_days", 170)),
            timezone=ZoneInfo(str(s.get("timezone", "UTC"))),
            edc_crlf_centres=frozenset(str(c) for c in s.get("edc_crlf_centres", [])),
            gram_centres=frozenset(str(c) for c in s.get("balance_in_grams_centres", [])),
            screen_failure_share=float(s["screen_failure_share"]),
            screening_hdss_probs={int(k): float(v) for k, v in s["screening_hdss_probs"].items()},
            failing_hdss_values=[int(v) for v in s["failing_hdss_values"]],
            hdss_scale=(int(low_hdss), int(high_hdss)),
            log_median_screening=float(s["log_median_screening"]),
            sd_log_screening=float(s["sd_log_screening"]),
            sd_residual=float(s["sd_residual"]),
            sd_left_right=float(s["sd_left_right"]),
            sd_random_intercept=float(s["sd_random_intercept"]),
            sd_random_slope_week=float(s["sd_random_slope_week"]),
            sole_log_offset=float(s.get("sole_log_offset", 0.0)),
            sd_sole_extra=float(s.get("sd_sole_extra", 0.0)),
            mean_change_primary=_float_map(s["mean_change_w4"]),
            effect_fraction=_float_map(s["effect_fraction_by_visit"]),
            dropout_share=float(s["dropout_by_w12"]),
            dropout_slope=float(s.get("dropout_logit_slope_per_log_change", 0.0)),
            dropout_visit=str(s.get("dropout_visit", study.visit_codes[-2])),
            late_withdrawal_share=float(s.get("withdrawal_after_dropout_visit_share", 0.0)),
            withdrawal_reasons=_float_map(s["withdrawal_reasons"]),
            never_treated_reason=str(s["never_treated_reason"]),
            plantar_share=float(s["plantar_share"]),
            female_share=float(s.get("female_share", 0.5)),
            age_mean=float(s.get("age_mean", 30.0)),
            age_sd=float(s.get("age_sd", 12.0)),
            vendor_b_share=float(s["vendor_b_share"]),
            vendor_a_memory=int(s.get("vendor_a_memory_sessions", 200)),
            vendor_b_hz=int(s.get("vendor_b_hz", 2)),
            vendor_b_rotate_lines=int(s.get("vendor_b_rotate_lines", 5000)),
            hdss_responder=_float_map(s["hdss_responder_w4"]),
            hdss_coupling=float(s.get("hdss_gravimetric_coupling", 0.0)),
            titration_ma_probs={float(k): float(v) for k, v in s["titration_ma_probs"].items()},
            ae_risk=_float_map(s["ae_risk"]),
            ae_risk_by_arm=by_arm,
            anticholinergic_low_ma=float(low.get("max_ma", 0.0)),
            anticholinergic_low_factor=float(low.get("risk_factor", 1.0)),
            visit_missed_share=float(s["visit_missed_share"]),
            visit_out_of_window_share=float(s["visit_out_of_window_share"]),
            session_skip_share=float(s["session_skip_share"]),
            session_stopped_share=float(s["session_stopped_share"]),
            session_fault_share=float(s["session_fault_share"]),
            fault_code_weights=_float_map(s["fault_code_weights"]),
            collection_s_other_share=float(s["collection_s_other_share"]),
            collection_s_other=[int(v) for v in s["collection_s_other"]],
            paper_never_weighed_share=float(s["paper_never_weighed_share"]),
            paper_wet_missing_share=float(s["paper_wet_missing_share"]),
            bl_palm_lost_share=float(s["bl_palm_lost_share"]),
            device_swap_share=float(s["device_swap_share"]),
        )
