"""Intercurrent events of amendment 1 (SAP section 11) in the simulated trial.

- Rescue treatment for hyperhidrosis: per arm, about ``rescue_share`` of the treated
  subjects take it by the treatment-end visit, mostly after the primary visit
  (``rescue_after_primary_share``), more often the poorer responders (logit slope
  ``rescue_logit_slope_per_log_change`` on the subject's deviation from the arm's expected
  change, intercept per arm by bisection, as for dropout). A rescued subject keeps attending
  visits; values on or after the rescue date drop by ``rescue_log_effect`` (log scale).
- Session gaps: ``session_gap_share`` of the treated subjects start no session for
  ``session_gap_days`` (uniform) but keep attending visits; from the gap's start their change
  moves back linearly to the reference arm's over ``session_gap_fade_days`` and stays there.
- Concomitant medication rows for ``cm.csv``: the rescue, medication for other indications
  (``other_cm_share``) and topical aluminium chloride for hyperhidrosis before consent, not a
  rescue (``topical_cm_share``).

:func:`ice_truth_rows` applies the protocol's ICE rules to the simulated sessions, visits and
withdrawals: the truth that ``adice`` must reproduce from the raw files.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np

from study import Study
from trial.estimands.config import ice_rules
from trial.simulate.cohort import (
    Medication,
    Subject,
    VisitRecord,
    expected_change,
    study_day_date,
)
from trial.simulate.devices import Device
from trial.simulate.params import SimulationParams
from trial.simulate.render import csv_lines

RESCUE_VERBATIMS = {
    "ORAL_GLYCOPYRRONIUM": ["glycopyrronium 1 mg tablets bid", "Robinul 1 mg, twice daily"],
    "ORAL_OXYBUTYNIN": ["oxybutynin 2.5 mg bid"],
    "BOTULINUM_TOXIN": ["botulinum toxin A, both palms", "Botox 100 U palmar injections"],
}
OTHER_VERBATIMS = ["ibuprofen 400 mg", "cetirizine 10 mg", "oral contraceptive", "paracetamol"]
TOPICAL_VERBATIM = "aluminium chloride 20 % solution, hands at night"


def _logistic(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=float)


def _intercept(dev: np.ndarray, slope: float, target: float) -> float:
    """Intercept a with mean(logistic(a + slope * dev)) = target (bisection)."""
    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if float(np.mean(_logistic(mid + slope * dev))) > target:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def _in_study(s: Subject, day: dt.date) -> bool:
    return s.withdrawn is None or day < s.withdrawn[0]


def assign_intercurrent_events(
    study: Study, p: SimulationParams, rand: list[Subject], rng: np.random.Generator
) -> None:
    """Set ``rescue``, ``session_gap`` and ``medications`` of the randomised subjects (after
    withdrawals are known, before outcomes are drawn)."""
    primary = study.visit(study.primary_visit)
    end_visit = study.visit(ice_rules(study).gap_until_visit)
    treated = [s for s in rand if not s.never_treated]
    for arm, target in p.rescue_share.items():
        pool = [s for s in treated if s.arm == arm]
        if not pool:
            continue
        dev = np.array([expected_change(p, s, primary) - p.mean_change_primary[arm] for s in pool])
        a = _intercept(dev, p.rescue_slope, target)
        for s, pr in zip(pool, _logistic(a + p.rescue_slope * dev), strict=True):
            assert s.bl_date is not None
            if rng.random() >= pr:
                continue
            if rng.random() < p.rescue_after_primary_share:
                day = int(rng.integers(primary.target_day + 1, end_visit.target_day))
            else:
                day = int(rng.integers(2, primary.target_day + 1))
            start = study_day_date(s.bl_date, day)
            if _in_study(s, start):
                s.rescue = start
                drugs = list(p.rescue_drugs)
                weights = np.array([p.rescue_drugs[d] for d in drugs])
                s.rescue_drug = drugs[int(rng.choice(len(drugs), p=weights / weights.sum()))]
    low, high = p.session_gap_days
    for s in treated:
        assert s.bl_date is not None
        if rng.random() >= p.session_gap_share:
            continue
        length = int(rng.integers(low, high + 1))
        first = int(rng.integers(10, max(11, end_visit.target_day - 30)))
        start = study_day_date(s.bl_date, first)
        if _in_study(s, start):
            s.session_gap = (start, start + dt.timedelta(days=length))
    for s in rand:
        _medications(s, p, rng)


def _medications(s: Subject, p: SimulationParams, rng: np.random.Generator) -> None:
    rows: list[tuple[str, str, dt.date, dt.date | None, str, str]] = []
    if s.rescue is not None:
        texts = RESCUE_VERBATIMS.get(s.rescue_drug, [s.rescue_drug.lower()])
        text = texts[int(rng.integers(0, len(texts)))]
        one_off = s.rescue_drug == "BOTULINUM_TOXIN"
        end = s.rescue if one_off else None
        rows.append((s.rescue_drug, text, s.rescue, end, "HYPERHIDROSIS", "Y"))
    if rng.random() < p.topical_cm_share:
        start = s.consent - dt.timedelta(days=int(rng.integers(60, 365)))
        end = s.consent - dt.timedelta(days=int(rng.integers(7, 50)))
        rows.append(("ALUMINIUM_CHLORIDE", TOPICAL_VERBATIM, start, end, "HYPERHIDROSIS", "N"))
    if rng.random() < p.other_cm_share:
        for _ in range(int(rng.integers(1, 3))):
            start = min(s.consent + dt.timedelta(days=int(rng.integers(-200, 100))), s.end_date)
            ongoing = rng.random() < 0.3
            end = None if ongoing else start + dt.timedelta(days=int(rng.integers(1, 30)))
            text = OTHER_VERBATIMS[int(rng.integers(0, len(OTHER_VERBATIMS)))]
            rows.append(("OTHER", text, start, end, "OTHER", "N"))
    rows.sort(key=lambda r: r[2])
    s.medications = [
        Medication(f"{s.subject_id}-CM{k:02d}", *row) for k, row in enumerate(rows, start=1)
    ]


def ice_shift(study: Study, p: SimulationParams, s: Subject, record: VisitRecord) -> float:
    """Log-scale shift of a subject's expected change at a done visit from its ICEs."""
    if record.date is None or s.arm is None or s.never_treated:
        return 0.0
    shift = 0.0
    if s.rescue is not None and record.date >= s.rescue:
        shift += p.rescue_log_effect
    if s.session_gap is not None and record.date > s.session_gap[0]:
        reference = study.reference_arm
        fraction = p.effect_fraction.get(record.code, 0.0)
        fade = min(1.0, (record.date - s.session_gap[0]).days / p.session_gap_fade_days)
        lost = p.mean_change_primary[reference] - p.mean_change_primary[s.arm]
        shift += lost * fraction * fade
    return shift


ICE_TRUTH_HEADER = ["subject_id", "arm", "ice", "basis", "date", "simulated_cause"]


def ice_truth_csv(study: Study, subjects: list[Subject], devices: list[Device]) -> str:
    """``ices_truth.csv``: :func:`ice_truth_rows` with every session of every device."""
    dates: dict[str, list[dt.date]] = {}
    for d in devices:
        dates.setdefault(d.subject_id, []).extend(x.start_utc.date() for x in d.sessions)
    lines = csv_lines(ICE_TRUTH_HEADER, ice_truth_rows(study, subjects, dates))
    return "\n".join(lines) + "\n"


def ice_truth_rows(
    study: Study, subjects: list[Subject], session_dates: dict[str, list[dt.date]]
) -> list[list[str]]:
    """The ICEs of section 11 applied to the simulated trial (complete data).

    ``session_dates``: UTC start dates of every session of each subject, any region or device.
    ICE1: the earlier of a withdrawal (other than screen failure) on or before the
    ``gap_until_visit`` visit date (target date when not done) and the first gap of more than
    ``max_session_gap_days`` days without a session start before that visit's date (target when
    not done, capped by the last done visit); date: the day after the last session before it
    (the BL date when there was none). ICE2: the rescue start date. ICEs are named by the
    study's ICE ids (discontinuation first, rescue second)."""
    rules = ice_rules(study)
    max_gap = rules.max_session_gap_days
    end_code = rules.gap_until_visit
    end_visit = study.visit(end_code)
    rows: list[list[str]] = []
    for s in subjects:
        if not s.randomised or s.bl_date is None:
            continue
        target = study_day_date(s.bl_date, end_visit.target_day)
        done = {r.code: r.date for r in s.visits if r.date is not None}
        end_date = done.get(end_code)
        horizon = end_date if end_date is not None else min(target, max(done.values()))
        sessions = sorted(set(session_dates.get(s.subject_id, [])))
        candidates: list[tuple[dt.date, str, str]] = []
        if s.withdrawn is not None and s.withdrawn[0] <= (end_date or target):
            before = [d for d in sessions if d < s.withdrawn[0]]
            date = before[-1] + dt.timedelta(days=1) if before else s.bl_date
            candidates.append((date, "WITHDRAWAL", "withdrawn"))
        stops = [d for d in sessions if d < horizon] + [horizon]
        for a, b in itertools.pairwise(stops):
            if (b - a).days - 1 > max_gap:
                cause = "session_gap" if s.session_gap is not None else "skipped_sessions"
                candidates.append((a + dt.timedelta(days=1), "SESSION_GAP", cause))
                break
        if candidates:
            date, basis, cause = min(candidates)
            row = [s.subject_id, s.arm or "", rules.discontinuation, basis, date.isoformat()]
            rows.append([*row, cause])
        if s.rescue is not None:
            row = [s.subject_id, s.arm or "", rules.rescue, "RESCUE", s.rescue.isoformat()]
            rows.append([*row, "rescue"])
    return rows
