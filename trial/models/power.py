"""Simulated trials at the analysis level, and MMRM power by simulation.

:func:`simulate_design` draws an ``analysis_long``-shaped data set directly from the study
configuration's ``simulation`` parameters (SAP section 9, natural-log scale) - no raw files,
no derivation - so that thousands of trials can be fitted in minutes:

- subject level b_i ~ N(log_median_screening, sd_log_screening); entry requires the screening
  value b_i + e_scr to be >= ln(entry_min_rate_mg_min) (regression to the mean follows);
- ln rate at baseline and at each model visit: b_i + e_v, e_v ~ N(0, sd_residual^2 +
  sd_left_right^2 / 2) (mean of two sides);
- post-baseline visits add the treatment response u_i + s_i week_v + mu_arm f_v, with
  u_i ~ N(0, sd_random_intercept), s_i ~ N(0, sd_random_slope_week), mu_arm =
  mean_change_w4[arm] and f_v = effect_fraction_by_visit[v];
- monotone dropout: a share ``dropout_by_w12`` leaves after a uniformly chosen model visit
  (before the last), and every remaining visit is missed with probability
  ``intermittent_missing`` (MCAR);
- arms in the configured allocation ratio, centres and strata uniform.

The true arm - reference contrast at visit v is (mu_arm - mu_ref) f_v.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from study import Study
from trial.models.design import MmrmDesign, design_from_codes
from trial.models.mmrm import CovarianceFitError, fit_design

INTERMITTENT_MISSING = 0.03
"""Probability that a visit before dropout is missed (not in the SAP; small and MCAR)."""


@dataclass(frozen=True)
class SimulatedTrial:
    """One simulated data set: per-row level codes (0 = reference) and values."""

    arm: np.ndarray
    visit: np.ndarray
    centre: np.ndarray
    stratum: np.ndarray
    subject: np.ndarray
    logbase: np.ndarray
    chg: np.ndarray
    levels: dict[str, list[str]]

    def design(self) -> MmrmDesign:
        return design_from_codes(
            arm=self.arm,
            visit=self.visit,
            centre=self.centre,
            stratum=self.stratum,
            subject=self.subject,
            logbase=self.logbase,
            y=self.chg,
            levels=self.levels,
        )

    def frame(self) -> pl.DataFrame:
        """The ``analysis_long`` columns the MMRM reads (subject, arm, centre, ... chg)."""
        lv = self.levels
        return pl.DataFrame(
            {
                "subject": np.array(lv["subject"])[self.subject],
                "arm": np.array(lv["arm"])[self.arm],
                "centre": np.array(lv["centre"])[self.centre],
                "stratum": np.array(lv["stratum"])[self.stratum],
                "visit": np.array(lv["visit"])[self.visit],
                "visit_index": self.visit + 1,
                "logbase": self.logbase,
                "chg": self.chg,
            }
        )


def true_contrasts(study: Study, mean_change: Mapping[str, float] | None = None) -> dict:
    """True (arm - reference) change contrasts per model visit:
    ``{visit: {"<arm>-<reference>": ...}}``."""
    sim = study.simulation
    mu = dict(mean_change or sim.primary_mean_change)
    ref = study.reference_arm
    frac = sim.effect_fraction_by_visit
    return {
        v: {f"{a}-{ref}": (mu[a] - mu[ref]) * float(frac[v]) for a in study.arm_codes[1:]}
        for v in study.model_visits
    }


def allocation(study: Study, n_subjects: int) -> np.ndarray:
    """Arm index (into ``study.arm_codes``) of ``n_subjects`` subjects allocated in blocks of
    the configured ratio, before shuffling (so a size that is not a whole number of blocks
    gives the first arms one subject more)."""
    ratio = np.asarray(study.allocation.ratio, dtype=float).astype(int)
    return np.resize(np.repeat(np.arange(len(study.arm_codes)), ratio), n_subjects)


def subjects_per_arm(study: Study, n_subjects: int) -> dict[str, int]:
    """How many of ``n_subjects`` each arm gets (:func:`allocation`)."""
    counts = np.bincount(allocation(study, n_subjects), minlength=len(study.arm_codes))
    return dict(zip(study.arm_codes, (int(c) for c in counts), strict=True))


def simulate_trial(
    study: Study,
    n_subjects: int,
    rng: np.random.Generator,
    *,
    mean_change: Mapping[str, float] | None = None,
) -> SimulatedTrial:
    """Draw one trial of ``n_subjects`` analysed subjects (see module doc).

    ``mean_change`` overrides ``simulation.mean_change_w4`` (e.g. all equal for a null
    scenario).
    """
    sim = study.simulation
    arms, visits = study.arm_codes, study.model_visits
    mu = np.array([float((mean_change or sim.primary_mean_change)[a]) for a in arms])
    frac = np.array([sim.effect_fraction_by_visit[v] for v in visits])
    weeks = np.array([float(study.visit(v).week or 0) for v in visits])
    sd_e = float(np.hypot(sim.sd_residual, sim.sd_left_right / np.sqrt(2.0)))
    entry = np.log(study.gravimetry.entry_min_rate_mg_min)
    n, t = n_subjects, len(visits)

    level = np.empty(0)
    while level.size < n:  # entry criterion on the screening value
        draw = rng.normal(sim.log_median_screening, sim.sd_log_screening, 2 * n)
        level = np.r_[level, draw[draw + rng.normal(0.0, sd_e, 2 * n) >= entry]]
    level = level[:n]
    arm = rng.permutation(allocation(study, n))
    centre = rng.integers(0, len(study.centres), n)
    stratum = rng.integers(0, len(study.stratum_codes), n)
    logbase = level + rng.normal(0.0, sd_e, n)
    response = (
        rng.normal(0.0, sim.sd_random_intercept, n)[:, None]
        + rng.normal(0.0, sim.sd_random_slope_week, n)[:, None] * weeks[None, :]
        + mu[arm][:, None] * frac[None, :]
    )
    aval = level[:, None] + response + rng.normal(0.0, sd_e, (n, t))
    last = np.full(n, t - 1)
    drop = rng.random(n) < sim.dropout_share
    last[drop] = rng.integers(0, t - 1, int(drop.sum()))
    observed = (np.arange(t)[None, :] <= last[:, None]) & (
        rng.random((n, t)) >= INTERMITTENT_MISSING
    )
    observed[np.arange(n), observed.argmax(1)] |= ~observed.any(1)  # >= 1 post-baseline value
    subj, vis = np.nonzero(observed)
    return SimulatedTrial(
        arm=arm[subj],
        visit=vis,
        centre=centre[subj],
        stratum=stratum[subj],
        subject=subj,
        logbase=logbase[subj],
        chg=(aval - logbase[:, None])[subj, vis],
        levels={
            "arm": arms,
            "visit": visits,
            "centre": study.centres,
            "stratum": study.stratum_codes,
            "subject": [f"S{k:05d}" for k in range(n)],
        },
    )


@dataclass(frozen=True)
class PowerResult:
    """Power table (one row per sample size and hypothesis: ``subjects`` in all,
    ``subjects_per_arm`` as ``n1/n2/...`` in the order of the study's arms, the hypothesis, its
    ``contrast`` and true ``effect`` (difference of mean log change at the primary visit), the
    two-sided ``alpha``, ``power`` and its Monte-Carlo SE, the same in the fixed sequence, the
    replicates and failed fits) and the run's throughput."""

    table: pl.DataFrame
    replicates_per_second: float


def simulate_power(
    study: Study,
    subjects: Sequence[int],
    n_sims: int,
    *,
    seed: int = 20260112,
    mean_change: Mapping[str, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PowerResult:
    """Power of the MMRM's primary contrasts (key hypotheses on the primary endpoint).

    For each sample size: ``n_sims`` trials from :func:`simulate_trial`, the configured MMRM
    (covariance with fallbacks, Satterthwaite or KR df) and the two-sided t-test of each
    arm - reference contrast at the primary visit. ``power`` is the rejection share at the
    configured alpha; in the fixed sequence a hypothesis counts only when all earlier ones in
    ``endpoints.key_secondary_sequence`` on the primary endpoint were rejected too
    (``power_sequential``). Monte-Carlo SE = sqrt(power (1 - power) / n_sims). Replicates
    whose fit fails on every structure count as non-rejections and are reported.

    ``mean_change``: true mean change from baseline at the primary visit per arm (natural-log
    scale), overriding the configuration's ``simulation.mean_change_w4``. ``progress`` is
    called with (replicates done, replicates in all) after every replicate.
    """
    config = study.models.mmrm
    names = config.structures
    ddf = config.ddf
    alpha = study.alpha
    hypotheses = [
        (h.id, h.contrast)
        for h in study.endpoints.key_secondary_sequence
        if h.endpoint == "primary"
    ]
    truth = true_contrasts(study, mean_change)[study.primary_visit]
    rng = np.random.default_rng(seed)
    rows = []
    started = time.perf_counter()
    total = len(subjects) * n_sims
    done = 0
    for n in subjects:
        reject = np.zeros((n_sims, len(hypotheses)), dtype=bool)
        failures = 0
        for r in range(n_sims):
            design = simulate_trial(study, n, rng, mean_change=mean_change).design()
            try:
                fit = fit_design(design, names, ddf=ddf, alpha=alpha)
            except CovarianceFitError:
                failures += 1
            else:
                ref = design.arms[0]
                ls_ref = design.lsmean_vector(ref, study.primary_visit)
                contrast_rows = np.array(
                    [
                        design.lsmean_vector(c.split("-")[0], study.primary_visit) - ls_ref
                        for _, c in hypotheses
                    ]
                )
                inf = fit.inference(contrast_rows)
                p = 2.0 * stats.t.sf(np.abs(inf.estimate / inf.std_error), inf.df)
                reject[r] = p < alpha
            done += 1
            if progress is not None:
                progress(done, total)
        sequential = np.cumprod(reject, axis=1).astype(bool)
        for k, (hid, contrast) in enumerate(hypotheses):
            power = float(reject[:, k].mean())
            power_seq = float(sequential[:, k].mean())
            rows.append(
                {
                    "subjects": n,
                    "subjects_per_arm": "/".join(map(str, subjects_per_arm(study, n).values())),
                    "hypothesis": hid,
                    "contrast": contrast,
                    "effect": truth[contrast],
                    "alpha": alpha,
                    "power": power,
                    "mc_se": float(np.sqrt(power * (1 - power) / n_sims)),
                    "power_sequential": power_seq,
                    "mc_se_sequential": float(np.sqrt(power_seq * (1 - power_seq) / n_sims)),
                    "n_sims": n_sims,
                    "failed_fits": failures,
                }
            )
    elapsed = time.perf_counter() - started
    return PowerResult(pl.DataFrame(rows), len(subjects) * n_sims / elapsed)
