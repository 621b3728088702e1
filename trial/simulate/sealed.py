"""Sealed outputs beside the raw tree: randomisation list and simulation truth.

Shapes follow ``reference/ref1/sealed`` and ``reference/ref1/expected`` (``truth.json``,
``subjects_truth.csv``, ``sessions_truth.csv``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from study import Study
from trial.simulate.cohort import Subject, expected_change, study_day
from trial.simulate.devices import Device
from trial.simulate.params import SimulationParams
from trial.simulate.render import csv_lines

SUBJECTS_TRUTH_HEADER = [
    "subject_id",
    "centre_id",
    "eligible",
    "screen_fail_reason",
    "arm",
    "never_treated",
    "withdrawn_date",
    "withdrawn_reason",
    "completed_date",
    "bl_palm_missing",
    "u_intercept",
    "v_slope",
    "true_mean_chg_W4",
    "n_sessions",
    "n_sessions_completed",
]
SESSIONS_TRUTH_HEADER = [
    "subject_id",
    "device_serial",
    "vendor",
    "region",
    "session_no",
    "sid",
    "start_utc",
    "duration_s",
    "programmed_ma",
    "end_reason",
    "fault_code",
    "vendor_a_charge_mc",
    "vendor_b_charge_mc_rect",
]


def _csv(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(csv_lines(header, rows)) + "\n"


def randomisation_csv(subjects: list[Subject]) -> str:
    rows = [
        [s.subject_id, s.bl_date.isoformat(), s.stratum or "", s.arm or ""]
        for s in subjects
        if s.randomised and s.bl_date is not None
    ]
    return _csv(["subject_id", "rand_date", "stratum", "arm"], rows)


def _primary_sessions(s: Subject, devices: list[Device], primary: str) -> tuple[int, int]:
    sessions = [
        x
        for d in devices
        if d.subject_id == s.subject_id and d.region == primary
        for x in d.sessions
    ]
    return len(sessions), sum(x.end_reason == "COMPLETED" for x in sessions)


def subjects_truth_csv(
    study: Study, p: SimulationParams, subjects: list[Subject], devices: list[Device]
) -> str:
    primary = study.visit(study.primary_visit)
    region = study.primary_region.code
    rows: list[list[str]] = []
    for s in subjects:
        if not s.randomised:
            rows.append([s.subject_id, s.centre, "N", s.fail_reason or ""] + [""] * 11)
            continue
        n, n_done = _primary_sessions(s, devices, region)
        rows.append(
            [
                s.subject_id,
                s.centre,
                "Y",
                "",
                s.arm or "",
                "Y" if s.never_treated else "N",
                s.withdrawn[0].isoformat() if s.withdrawn else "",
                s.withdrawn[1] if s.withdrawn else "",
                s.completed.isoformat() if s.completed else "",
                "Y" if s.bl_palm_lost else "N",
                f"{s.u:.6f}",
                f"{s.v:.6f}",
                f"{expected_change(p, s, primary):.6f}",
                str(n),
                str(n_done),
            ]
        )
    header = [
        f"true_mean_chg_{primary.code}" if h == "true_mean_chg_W4" else h
        for h in SUBJECTS_TRUTH_HEADER
    ]
    return _csv(header, rows)


def sessions_truth_csv(devices: list[Device]) -> str:
    rows: list[list[str]] = []
    for d in sorted(devices, key=lambda d: (d.subject_id, d.region, d.from_date)):
        for x in d.sessions:
            rows.append(
                [
                    x.subject_id,
                    x.serial,
                    x.vendor,
                    x.region,
                    str(x.session_no),
                    x.sid,
                    x.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    str(x.duration_s),
                    f"{x.programmed_ma:.1f}",
                    x.end_reason,
                    x.fault_code,
                    f"{x.charge_mc:.1f}" if x.vendor == "A" else "",
                    f"{x.charge_mc:.3f}" if x.vendor == "B" else "",
                ]
            )
    return _csv(SESSIONS_TRUTH_HEADER, rows)


def truth_json(
    study: Study,
    p: SimulationParams,
    subjects: list[Subject],
    extras: dict[str, Any],
) -> dict[str, Any]:
    """Parameters, population and realised contrasts, counts and delivery dates."""
    ref = study.reference_arm
    post = [v for v in study.visits if v.week]
    fractions = {v.code: p.effect_fraction.get(v.code, 0.0) for v in post}
    mean_change = {
        v: {a: p.mean_change_primary[a] * f for a in study.arm_codes} for v, f in fractions.items()
    }
    contrasts = {
        v: {f"{a}-{ref}": m[a] - m[ref] for a in study.arm_codes if a != ref}
        for v, m in mean_change.items()
    }
    primary = study.visit(study.primary_visit)
    rand = [s for s in subjects if s.randomised]
    treated = [
        s
        for s in rand
        if not s.never_treated and any(r.done for r in s.visits if r.code in study.model_visits)
    ]
    realised: dict[str, Any] = {}
    for code in study.model_visits:
        v = study.visit(code)
        means = {}
        for a in study.arm_codes:
            vals = [expected_change(p, s, v) for s in treated if s.arm == a]
            means[a] = sum(vals) / len(vals) if vals else float("nan")
        realised[code] = {f"{a}-{ref}": means[a] - means[ref] for a in study.arm_codes if a != ref}
        realised[code]["mean_chg"] = means
    by_arm = {a: sum(s.arm == a for s in rand) for a in study.arm_codes}
    withdrawn = [s for s in rand if s.withdrawn is not None]
    drop_visit = study.visit(p.dropout_visit)
    first_post = study.visits[2] if len(study.visits) > 2 else primary

    def _before(s: Subject, code: str) -> bool:
        return not any(r.code == code for r in s.visits)

    counts = {
        "screened": len(subjects),
        "screen_failures": len(subjects) - len(rand),
        "screen_failures_by_reason": _count(s.fail_reason for s in subjects if s.fail_reason),
        "randomised": len(rand),
        "randomised_by_arm": by_arm,
        "never_treated": sorted(s.subject_id for s in rand if s.never_treated),
        "withdrawn": len(withdrawn),
        f"withdrawn_before_{drop_visit.code.lower()}_visit": sum(
            _before(s, drop_visit.code) for s in withdrawn
        ),
        f"withdrawn_before_{first_post.code.lower()}": sorted(
            s.subject_id for s in withdrawn if _before(s, first_post.code)
        ),
        "bl_palm_missing": sorted(s.subject_id for s in rand if s.bl_palm_lost),
        "eligibility_deviations": [],
        **extras.pop("counts", {}),
        "out_of_window_visits": _out_of_window(study, rand),
        "hdss_responders_" + primary.code.lower(): sorted(
            s.subject_id for s in rand if s.hdss_responder
        ),
    }
    return {
        "description": "Simulation truth of trial.simulate (not derived from the raw files).",
        "parameters": {
            "log_median_screening": p.log_median_screening,
            "sd_screening_total": p.sd_log_screening,
            "sd_persistent_level": p.sd_persistent,
            "sd_residual": p.sd_residual,
            "sd_left_right_difference": p.sd_left_right,
            "sd_random_intercept_change": p.sd_random_intercept,
            "sd_random_slope_week": p.sd_random_slope_week,
            f"arm_effect_{primary.code.lower()}": p.mean_change_primary,
            "effect_fraction_by_visit": fractions,
            f"dropout_target_by_{drop_visit.code.lower()}": p.dropout_share,
            "dropout_logit_intercept": extras.pop("dropout_logit_intercept"),
            "dropout_logit_slope_per_log_change": p.dropout_slope,
            "min_rate_entry_mg_min": study.gravimetry.entry_min_rate_mg_min,
        },
        "population_contrasts": contrasts,
        "population_mean_change": mean_change,
        f"population_percent_reduction_{primary.code.lower()}": {
            a: 100 * (1 - math.exp(p.mean_change_primary[a])) for a in study.arm_codes
        },
        "realised_subject_mean_contrasts": realised,
        "realised_note": "mean over treated subjects with >=1 model visit done of each subject's "
        "expected log change (arm effect x fraction + random intercept + slope x week), "
        "no residual noise",
        "counts": counts,
        **extras,
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _out_of_window(study: Study, subjects: list[Subject]) -> int:
    n = 0
    for s in subjects:
        assert s.bl_date is not None
        for r in s.visits:
            v = study.visit(r.code)
            if r.date is None or v.window_days is None or v.code == study.visits[0].code:
                continue
            n += abs(study_day(s.bl_date, r.date) - v.target_day) > v.window_days
    return n


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"
