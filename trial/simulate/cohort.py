"""Simulated subjects: screening, allocation, visits, sweat papers, HDSS, withdrawals, AEs.

Sweat model (natural-log scale, SAP section 9): a subject's palmar log rate at a visit is
``level + change(visit) + e`` with ``level ~ N(log_median, sd_persistent)`` (persistent
between-subject level; ``sd_persistent**2 + sd_residual**2 = sd_log_screening**2``),
``e ~ N(0, sd_residual)`` per visit and region, and the left/right sides at
``+/- d/2`` with ``d ~ N(0, sd_left_right)``. The expected change of a treated subject at a
post-baseline visit is ``arm_change * fraction(visit) + u + v * week`` (``u`` random
intercept, ``v`` random slope per nominal week). Entry requires the recorded screening
rate of each palm >= the study's ``entry_min_rate_mg_min``, so baseline regresses
towards the mean a little.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from study import Study, Visit
from trial.simulate.params import SimulationParams

OPERATOR_NAMES = [
    "A. Schmidt",
    "L. Bauer",
    "S. Öztürk",
    "T. Lindqvist",
    "J. Dupont",
    "É. Lefèvre",
    "I. Núñez",
    "K. Nowak",
    "M. Ødegård",
    "P. Dvořák",
    "R. Çelik",
    "B. Müller",
]

VERBATIMS: dict[str, list[str]] = {
    "TINGLING": ["tingling, both hands", "tingling in palms", "pins and needles during session"],
    "ITCHING": ["pruritus, hands", "itchy palms after session"],
    "ERYTHEMA": ["erythema, left palm", "redness of palms"],
    "MILD_SHOCK": ["electric jolt when lifting hand", "mild shock, tray contact"],
    "VESICULATION": ["small blisters, fingertips", "vesicles on palm, right"],
    "SKIN_DRYNESS": ["dry skin on hands", "xerosis, palms"],
    "DRY_MOUTH": ["dry mouth", "dry mouth, evening after session"],
    "BLURRED_VISION": ["blurred vision, transient", "blurred vision"],
    "HEADACHE": ["tension headache", "headache, evening"],
    "OTHER": ["common cold", "sprained ankle", "gastroenteritis, mild"],
}
UNRELATED_TERMS = {"HEADACHE", "OTHER"}


@dataclass
class Paper:
    """One filter paper. Weights in mg, rounded to the balance readability."""

    subject_id: str
    visit: str
    region: str
    side: str
    collected_at: dt.datetime  # aware, local time of the centre
    dry_mg: float
    wet_mg: float | None
    collection_s: int
    room_temp_c: float
    humidity_pct: int
    acclimatisation_min: int
    operator: str
    weighed: bool = True


@dataclass
class VisitRecord:
    code: str
    planned: dt.date  # target date (a MISSED visit is recorded once this date has passed)
    date: dt.date | None  # None when MISSED
    start_local: dt.datetime  # aware; meaningful when done

    @property
    def done(self) -> bool:
        return self.date is not None


@dataclass
class AdverseEvent:
    ae_id: str
    term: str
    verbatim: str
    onset: dt.date
    end: dt.date
    severity: str
    serious: str
    related: str


@dataclass(frozen=True)
class Medication:
    """One ``cm.csv`` row. ``end`` None: ongoing."""

    cm_id: str
    drug: str
    verbatim: str
    start: dt.date
    end: dt.date | None
    indication: str
    rescue: str


@dataclass
class Subject:
    subject_id: str
    centre: str
    consent: dt.date
    sex: str
    birth_year: int
    plantar: bool
    hdss_scr: int
    eligibility: dict[str, str]
    fail_reason: str | None
    scr_date: dt.date
    level: dict[str, float]  # persistent log level per region
    visits: list[VisitRecord] = field(default_factory=list)
    hdss: dict[str, int] = field(default_factory=dict)
    papers: list[Paper] = field(default_factory=list)
    bl_date: dt.date | None = None
    arm: str | None = None
    stratum: str | None = None
    u: float = 0.0
    v: float = 0.0
    programmed_ma: float = 0.0
    never_treated: bool = False
    bl_palm_lost: bool = False
    withdrawn: tuple[dt.date, str] | None = None
    completed: dt.date | None = None
    hdss_responder: bool = False
    aes: list[AdverseEvent] = field(default_factory=list)
    rescue: dt.date | None = None  # start of rescue treatment for hyperhidrosis (ICE2)
    rescue_drug: str = ""
    session_gap: tuple[dt.date, dt.date] | None = None  # no session in [start, end) (ICE1)
    medications: list[Medication] = field(default_factory=list)  # cm.csv rows

    @property
    def randomised(self) -> bool:
        return self.fail_reason is None

    @property
    def end_date(self) -> dt.date:
        """Date the subject left the study (screen failure: the SCR date)."""
        if self.fail_reason is not None:
            return self.scr_date
        if self.withdrawn is not None:
            return self.withdrawn[0]
        assert self.completed is not None
        return self.completed


def _rate(paper: Paper) -> float:
    """Sweat rate of a weighed paper, mg/min, as a reader computes it from the worksheet."""
    return ((paper.wet_mg or 0.0) - paper.dry_mg) / (paper.collection_s / 60.0)


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def study_day_date(bl: dt.date, day: int) -> dt.date:
    """Calendar date of a study day (day 1 = BL; no day 0)."""
    return bl + dt.timedelta(days=day - 1 if day >= 1 else day)


def study_day(bl: dt.date, date: dt.date) -> int:
    """Study day of a date (SAP section 10: day 1 = BL date, no day 0)."""
    delta = (date - bl).days
    return delta + 1 if delta >= 0 else delta


def expected_change(p: SimulationParams, subject: Subject, visit: Visit) -> float:
    """Expected log change of a treated subject at a visit (no residual noise)."""
    if subject.arm is None or subject.never_treated or not visit.week:
        return 0.0
    fraction = p.effect_fraction.get(visit.code, 0.0)
    return p.mean_change_primary[subject.arm] * fraction + subject.u + subject.v * visit.week


def gravimetry_entry_failure_probability(p: SimulationParams, entry_min: float) -> float:
    """P(a palm side below the entry rate at screening), by quadrature on the common level."""
    t = math.log(entry_min)
    grid = np.linspace(p.log_median_screening - 8 * p.sd_log_screening, t + 12, 20001)
    dens = np.exp(-0.5 * ((grid - p.log_median_screening) / p.sd_log_screening) ** 2)
    dens /= dens.sum()
    half = np.clip(grid - t, 0, None) * 2 / max(p.sd_left_right, 1e-9)
    both_ok = np.array([math.erf(h / math.sqrt(2)) for h in half])
    return float(1.0 - (dens * both_ok).sum())


class CohortBuilder:
    """Builds the subjects of one trial from a study and its simulation parameters."""

    def __init__(self, study: Study, params: SimulationParams, rng: np.random.Generator):
        self.study = study
        self.p = params
        self.rng = rng
        self.entry_min = study.gravimetry.entry_min_rate_mg_min
        self.operators: dict[str, list[str]] = {}
        names = list(OPERATOR_NAMES)
        order = rng.permutation(len(names))
        for i, c in enumerate(study.centres):
            picks = [names[int(order[(2 * i + k) % len(names)])] for k in range(2)]
            if all(n.isascii() for n in picks):  # keep non-ASCII names in every centre
                picks[1] = next(n for n in names if not n.isascii() and n not in picks)
            self.operators[c] = picks
        self.regions = study.regions
        self.visits = study.visits
        self.post_bl = [v for v in self.visits if v.target_day > 1]

    # -- screening -------------------------------------------------------------------------
    def _local(self, day: dt.date, minutes: float) -> dt.datetime:
        base = dt.datetime.combine(day, dt.time(0, 0), tzinfo=self.p.timezone)
        return base + dt.timedelta(seconds=round(minutes * 60))

    def _papers(
        self, s: Subject, visit: str, when: dt.datetime, log_mean: dict[str, float]
    ) -> list[Paper]:
        """Papers of one visit; ``log_mean`` is the expected log rate per region (before noise)."""
        rng, p = self.rng, self.p
        temp = round(float(rng.uniform(20.0, 24.0)), 1)
        humidity = int(rng.integers(35, 61))
        accl = int(rng.choice([15, 15, 15, 15, 15, 15, 20, 25]))
        operator = self.operators[s.centre][int(rng.integers(0, 2))]
        t = when
        out: list[Paper] = []
        for region in self.regions:
            if region.requires_involvement and not s.plantar:
                continue
            e = float(rng.normal(0, p.sd_residual))
            d = float(rng.normal(0, p.sd_left_right))
            for k, side in enumerate(self.study.sides):
                sign = 1.0 if k == 0 else -1.0
                rate = math.exp(log_mean[region.code] + e + sign * d / 2)
                coll = 60
                if rng.random() < p.collection_s_other_share:
                    coll = int(rng.choice(p.collection_s_other))
                dry = round(float(rng.normal(520.0, 35.0)), 1)
                wet = round(dry + rate * coll / 60.0, 1)
                out.append(
                    Paper(
                        s.subject_id,
                        visit,
                        region.code,
                        side,
                        t,
                        dry,
                        wet,
                        coll,
                        temp,
                        humidity,
                        accl,
                        operator,
                    )
                )
                t = t + dt.timedelta(seconds=int(rng.integers(85, 170)))
        return out

    def _candidate(self, centre: str, opens: dt.date, p_hdss_fail: float, p_excl: float) -> Subject:
        rng, p = self.rng, self.p
        consent = opens + dt.timedelta(days=int(rng.integers(0, p.recruitment_days)))
        age_lo, age_hi = self.study.eligibility.age_range
        age = int(np.clip(round(rng.normal(p.age_mean, p.age_sd)), age_lo, age_hi))
        sex_codes = self.study.codelists.sex
        sex = "F" if rng.random() < p.female_share else "M"
        if sex not in sex_codes:
            sex = str(sex_codes[0])
        criteria = list(self.study.eligibility.criteria)
        eligibility = dict.fromkeys(criteria, "N")
        reason: str | None = None
        if rng.random() < p_hdss_fail:
            hdss = int(rng.choice(p.failing_hdss_values))
            reason = "HDSS"
        else:
            hdss = int(_choice(rng, {str(k): v for k, v in p.screening_hdss_probs.items()}))
        if rng.random() < p_excl:
            eligibility[criteria[int(rng.integers(0, len(criteria)))]] = "Y"
            reason = reason or "EXCLUSION"
        level = float(rng.normal(p.log_median_screening, p.sd_persistent))
        levels = {r.code: level for r in self.regions}
        for r in self.regions:
            if not r.primary:
                levels[r.code] = (
                    level
                    + p.other_region_log_offset
                    + float(rng.normal(0, p.sd_other_region_extra))
                )
        s = Subject(
            subject_id="",
            centre=centre,
            consent=consent,
            sex=sex,
            birth_year=consent.year - age,
            plantar=bool(rng.random() < p.plantar_share),
            hdss_scr=hdss,
            eligibility=eligibility,
            fail_reason=reason,
            scr_date=consent + dt.timedelta(days=int(rng.integers(0, 4))),
            level=levels,
        )
        scr = self.visits[0]
        when = self._local(s.scr_date, float(rng.uniform(8.5 * 60, 15 * 60)))
        s.visits.append(VisitRecord(scr.code, s.scr_date, s.scr_date, when))
        s.papers = self._papers(s, scr.code, when, levels)
        s.hdss[scr.code] = hdss
        primary = self.study.primary_region.code
        palm = [pp for pp in s.papers if pp.region == primary]
        for pp in palm:  # no rate within rounding error of the entry bound (g vs mg sums)
            if abs(_rate(pp) - self.entry_min) < 1e-6:
                pp.wet_mg = round((pp.wet_mg or 0.0) + 0.1, 1)
        if s.fail_reason is None and min(_rate(pp) for pp in palm) < self.entry_min:
            s.fail_reason = "GRAVIMETRY"
        return s

    def screen(self, n_randomised: int) -> list[Subject]:
        """Screen candidates until ``n_randomised`` pass; number them per centre."""
        rng, p = self.rng, self.p
        centres = self.study.centres
        weights = rng.dirichlet(np.full(len(centres), 12.0))  # centres of unequal size
        opens = {
            c: p.start_date + dt.timedelta(days=i * p.centre_stagger_days)
            for i, c in enumerate(centres)
        }
        p_grav = gravimetry_entry_failure_probability(p, self.entry_min)
        p_other = max(p.screen_failure_share - p_grav, 0.0) / max(1.0 - p_grav, 1e-9)
        p_each = 1.0 - math.sqrt(max(1.0 - p_other, 0.0))
        subjects: list[Subject] = []
        n_ok = 0
        while n_ok < n_randomised:
            c = centres[int(rng.choice(len(centres), p=weights))]
            s = self._candidate(c, opens[c], p_each, p_each)
            subjects.append(s)
            n_ok += s.fail_reason is None
        subjects.sort(key=lambda s: (s.centre, s.scr_date, s.consent))
        counter: dict[str, int] = {}
        for s in subjects:
            counter[s.centre] = counter.get(s.centre, 0) + 1
            s.subject_id = f"{s.centre}-{counter[s.centre]:04d}"
            for pp in s.papers:
                pp.subject_id = s.subject_id
        return subjects

    # -- randomisation ---------------------------------------------------------------------
    def allocate(self, subjects: list[Subject]) -> None:
        """BL dates and arms: permuted blocks within each allocation stratum."""
        rng, study = self.rng, self.study
        lo, hi = study.screening_days
        levels = study.stratum_levels
        for s in subjects:
            if s.randomised:
                s.bl_date = s.scr_date + dt.timedelta(days=int(rng.integers(-hi, -lo + 1)))
                s.stratum = levels[s.hdss_scr]
        ratio = list(study.allocation.ratio)
        size = study.allocation.block_size
        block = [
            a
            for a, r in zip(study.arm_codes, ratio, strict=True)
            for _ in range(r * size // sum(ratio))
        ]
        strata: dict[tuple[str, str], list[Subject]] = {}
        for s in subjects:
            if s.randomised:
                assert s.stratum is not None
                strata.setdefault((s.centre, s.stratum), []).append(s)
        for key in sorted(strata):
            members = sorted(strata[key], key=lambda s: (s.bl_date, s.subject_id))
            arms: list[str] = []
            while len(arms) < len(members):
                arms.extend(block[int(i)] for i in rng.permutation(len(block)))
            for s, a in zip(members, arms, strict=False):
                s.arm = a

    # -- follow-up -------------------------------------------------------------------------
    def _schedule(self, s: Subject) -> None:
        rng, p = self.rng, self.p
        assert s.bl_date is not None
        bl = self.study.visit(self.study.baseline_visit)
        when = self._local(s.bl_date, float(rng.uniform(8.5 * 60, 12 * 60)))
        s.visits.append(VisitRecord(bl.code, s.bl_date, s.bl_date, when))
        previous = s.bl_date
        for v in self.post_bl:
            planned = study_day_date(s.bl_date, v.target_day)
            window = v.window_days or 0
            if rng.random() < p.visit_out_of_window_share:
                dev = int(rng.choice([-1, 1])) * (window + int(rng.integers(1, 4)))
            else:
                dev = int(
                    np.clip(round(rng.normal(0, window / 2 if window else 0.0)), -window, window)
                )
            date = max(planned + dt.timedelta(days=dev), previous + dt.timedelta(days=1))
            previous = date
            when = self._local(date, float(rng.uniform(8.5 * 60, 15 * 60)))
            missed = rng.random() < p.visit_missed_share
            s.visits.append(VisitRecord(v.code, planned, None if missed else date, when))

    def follow_up(
        self,
        subjects: list[Subject],
        intercurrent: Callable[[list[Subject]], None] | None = None,
        shift: Callable[[Subject, VisitRecord], float] | None = None,
    ) -> None:
        """Visits, withdrawals, sweat papers, HDSS and AEs of the randomised subjects.

        One randomised subject is never treated, one withdraws before the first
        post-baseline visit, and ``baseline_primary_papers_lost_share`` lose both BL palm papers.
        ``intercurrent`` assigns intercurrent events once withdrawals are known (its own random
        stream); ``shift`` is then the log-scale shift of a done visit's expected change.
        """
        rng, p = self.rng, self.p
        rand = [s for s in subjects if s.randomised]
        for s in rand:
            s.u = float(rng.normal(0, p.sd_random_intercept))
            s.v = float(rng.normal(0, p.sd_random_slope_week))
            s.programmed_ma = float(
                _choice(rng, {str(k): v for k, v in p.titration_ma_probs.items()})
            )
            self._schedule(s)
        order = [rand[int(i)] for i in rng.permutation(len(rand))]
        never, early = order[0], order[1 % len(order)]
        never.never_treated = True
        never.u = never.v = 0.0
        n_lost = max(1, round(p.baseline_primary_lost_share * len(rand)))
        lost = order[2 : 2 + n_lost]
        for s in lost:
            s.bl_palm_lost = True
        self._withdrawals(rand, never, early)
        if intercurrent is not None:
            intercurrent(rand)
        for s in rand:
            self._outcomes(s, shift)

    def _withdrawals(self, rand: list[Subject], never: Subject, early: Subject) -> None:
        rng, p, study = self.rng, self.p, self.study
        primary = study.visit(study.primary_visit)
        drop_visit = study.visit(p.dropout_visit)
        pool = [s for s in rand if s is not never and s is not early]
        dev = np.array(
            [expected_change(p, s, primary) - p.mean_change_primary[s.arm or ""] for s in pool]
        )
        lo_a, hi_a = -20.0, 20.0
        for _ in range(100):  # bisection: mean dropout probability = target
            a = (lo_a + hi_a) / 2
            if float(np.mean(1 / (1 + np.exp(-(a + p.dropout_slope * dev))))) > p.dropout_share:
                hi_a = a
            else:
                lo_a = a
        prob = 1 / (1 + np.exp(-(a + p.dropout_slope * dev)))
        self.dropout_intercept = a
        last = study.visits[-1]
        for s, pr in zip(pool, prob, strict=True):
            assert s.bl_date is not None
            if rng.random() < pr:
                day = int(rng.integers(2, drop_visit.target_day + 1))
            elif rng.random() < p.late_withdrawal_share:
                day = int(rng.integers(drop_visit.target_day + 1, last.target_day))
            else:
                continue
            s.withdrawn = (study_day_date(s.bl_date, day), _choice(rng, p.withdrawal_reasons))
        assert early.bl_date is not None and never.bl_date is not None
        first_post = early.visits[2].date or early.visits[2].planned
        gap = (first_post - early.bl_date).days
        early.withdrawn = (
            early.bl_date + dt.timedelta(days=int(rng.integers(1, max(gap, 2)))),
            _choice(rng, p.withdrawal_reasons),
        )
        for rec in never.visits[2:4]:  # the first two post-baseline visits happen
            rec.date = rec.date or rec.planned
        after = never.visits[3].date
        assert after is not None
        never.withdrawn = (
            after + dt.timedelta(days=int(rng.integers(1, 4))),
            p.never_treated_reason,
        )
        for s in rand:
            if s.withdrawn is not None:
                cut = s.withdrawn[0]
                s.visits = [r for r in s.visits if (r.date or r.planned) < cut]
            else:
                final = s.visits[-1]
                s.completed = final.date or final.planned

    def _outcomes(
        self, s: Subject, shift: Callable[[Subject, VisitRecord], float] | None = None
    ) -> None:
        rng, p, study = self.rng, self.p, self.study
        primary = study.visit(study.primary_visit)
        arm = s.arm or ""
        # HDSS responder at the primary visit: arm rate, coupled to the gravimetric response
        z = -(expected_change(p, s, primary) - p.mean_change_primary.get(arm, 0.0))
        z /= max(
            math.hypot(p.sd_random_intercept, p.sd_random_slope_week * (primary.week or 0)), 1e-9
        )
        a = _logit_for_mean(p.hdss_responder.get(arm, 0.0), p.hdss_coupling)
        s.hdss_responder = (not s.never_treated) and bool(
            rng.random() < 1 / (1 + math.exp(-(a + p.hdss_coupling * z)))
        )
        low, high = p.hdss_scale
        bl_score = s.hdss_scr
        room = bl_score - low
        if s.hdss_responder:
            full = min(room, int(rng.choice([2, 2, 3])))
        else:
            full = min(room, int(rng.choice([0, 1])))
        by_code = {v.code: v for v in study.visits}
        for rec in s.visits[1:]:
            v = by_code[rec.code]
            frac = 0.0 if s.never_treated else p.effect_fraction.get(v.code, 0.0)
            imp = round(frac * full)
            if v.code not in (primary.code, study.baseline_visit) and rng.random() < 0.1:
                imp += int(rng.choice([-1, 1]))
            score = int(np.clip(bl_score - imp, low, high))
            if v.code == primary.code:
                score = bl_score - full
            if rec.done and v.hdss:
                s.hdss[v.code] = score
            if not rec.done or not v.gravimetry:
                continue
            change = expected_change(p, s, v) + (0.0 if shift is None else shift(s, rec))
            means = {r: s.level[r] + change for r in s.level}
            papers = self._papers(s, v.code, rec.start_local, means)
            if s.bl_palm_lost and v.code == study.baseline_visit:
                papers = [pp for pp in papers if pp.region != study.primary_region.code]
            for pp in papers:
                if rng.random() < p.paper_never_weighed_share:
                    pp.weighed = False
                elif rng.random() < p.paper_wet_missing_share:
                    pp.wet_mg = None
            s.papers.extend(papers)

    def adverse_events(self, s: Subject, session_days: list[dt.date]) -> None:
        """AEs of a treated subject over its treatment period (risk per subject over the trial)."""
        if not session_days:
            return
        rng, p = self.rng, self.p
        arm = s.arm or ""
        risks = dict(p.ae_risk)
        for term, by_arm in p.ae_risk_by_arm.items():
            r = by_arm.get(arm, 0.0)
            if s.programmed_ma <= p.anticholinergic_low_ma:
                r *= p.anticholinergic_low_factor
            risks[term] = r
        codes = list(self.study.codelists.ae_term)
        first, last = session_days[0], session_days[-1]
        span = max((last - first).days, 0)
        events: list[tuple[str, dt.date]] = []
        for term in codes:
            if term in risks and rng.random() < risks[term]:
                events.append((term, first + dt.timedelta(days=int(rng.integers(0, span + 1)))))
        for k, (term, onset) in enumerate(events, start=1):
            sev = _choice(rng, {"MILD": 0.75, "MODERATE": 0.22, "SEVERE": 0.03})
            related = (
                _choice(rng, {"N": 0.6, "POSSIBLE": 0.4})
                if term in UNRELATED_TERMS
                else _choice(rng, {"Y": 0.8, "POSSIBLE": 0.2})
            )
            texts = VERBATIMS.get(term, [term.lower().replace("_", " ")])
            s.aes.append(
                AdverseEvent(
                    ae_id=f"{s.subject_id}-AE{k:02d}",
                    term=term,
                    verbatim=texts[int(rng.integers(0, len(texts)))],
                    onset=onset,
                    end=onset + dt.timedelta(days=int(rng.integers(0, 11))),
                    severity=sev,
                    serious="Y" if sev == "SEVERE" and rng.random() < 0.3 else "N",
                    related=related,
                )
            )


@functools.cache
def _logit_for_mean(target: float, coupling: float) -> float:
    """Intercept a with E[logistic(a + coupling * Z)] = target, Z ~ N(0, 1) (Gauss-Hermite)."""
    target = min(max(target, 1e-6), 1 - 1e-6)
    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    lo, hi = -30.0, 30.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if float((w / (1 + np.exp(-(mid + coupling * x)))).sum()) > target:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2
