"""A two-arm trial with MCAR treatment discontinuation, for tests, benchmarks and simulations.

Outcome of subject i at visit j (1..t): ``y_ij = mu_ref_j + arm_i * effect_j + slope * base_i
+ e_ij`` with ``e_i ~ N(0, Sigma)``, ``Sigma_jk = sd_j sd_k rho^|j-k|``, ``base ~ N(0, 1)``,
arms 1:1. Each subject discontinues with probability ``p_discontinue``; the first visit it
affects is uniform on visits 2..t; every value from it on is missing (no post-ICE data).
Because discontinuation is independent of the outcomes, the jump-to-reference estimand at visit
j is known from the parameters: ``(1 - P(ICE at or before j)) * effect_j`` - a discontinued
drug subject's expected outcome jumps to the reference mean (:func:`true_j2r_effect`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from trial.rbi.spec import RbiSpec


def simulated_trial_spec(**changes: object) -> RbiSpec:
    """The :class:`RbiSpec` for :func:`simulate_trial`'s columns (outcome ``y``, baseline
    ``base`` interacting with visit in the imputation model, reference ``PBO``); ``changes``
    override any field (method, strategy, seed, ...)."""
    fields: dict[str, object] = {
        "subject": "subject",
        "visit": "visit",
        "group": "arm",
        "reference": "PBO",
        "outcome": "y",
        "covariates": ["base*visit"],
        "analysis_covariates": ["base"],
    }
    return RbiSpec(**{**fields, **changes})  # type: ignore[arg-type]


@dataclass(frozen=True)
class TrialDesign:
    """Parameters of :func:`simulate_trial` (outcome units)."""

    n_subjects: int = 300
    n_visits: int = 6
    effect_last: float = -0.5
    ref_last: float = -1.0
    slope: float = 0.5
    sd_first: float = 1.0
    sd_last: float = 1.5
    rho: float = 0.6
    p_discontinue: float = 0.3
    intermittent: float = 0.02
    labels: tuple[str, str] = field(default=("PBO", "DRUG"))

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference mean and drug effect per visit (linear in the visit number)."""
        frac = np.arange(1, self.n_visits + 1) / self.n_visits
        return self.ref_last * frac, self.effect_last * frac

    def sigma(self) -> np.ndarray:
        sd = np.linspace(self.sd_first, self.sd_last, self.n_visits)
        lag = np.abs(np.subtract.outer(np.arange(self.n_visits), np.arange(self.n_visits)))
        return np.asarray(self.rho**lag * np.outer(sd, sd))


def true_j2r_effect(design: TrialDesign) -> np.ndarray:
    """J2R treatment effect per visit: P(no ICE by visit j) x effect_j (module doc)."""
    t = design.n_visits
    _, effect = design.means()
    # first affected visit uniform on indices 1..t-1 (visits 2..t)
    p_by = design.p_discontinue * np.clip(np.arange(t), 0, None) / (t - 1)
    return np.asarray((1.0 - p_by) * effect)


def simulate_trial(design: TrialDesign, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Long data (``subject, visit, arm, base, y``; missed visits have no row) and the ICE table
    (``subject, visit, strategy`` = JR). Intermittent missing values (probability
    ``intermittent`` per visit after the first, before any ICE) are not ICEs (imputed under
    MAR)."""
    rng = np.random.default_rng(seed)
    n, t = design.n_subjects, design.n_visits
    arm = np.arange(n) % 2
    base = rng.standard_normal(n)
    ref, effect = design.means()
    y = (
        ref[None, :]
        + arm[:, None] * effect[None, :]
        + design.slope * base[:, None]
        + rng.multivariate_normal(np.zeros(t), design.sigma(), size=n)
    )
    stops = rng.random(n) < design.p_discontinue
    first = np.where(stops, rng.integers(1, t, size=n), t)
    skipped = rng.random((n, t)) < design.intermittent
    skipped[:, 0] = False  # every subject keeps its first visit (and so a row in the data)
    observed = (np.arange(t)[None, :] < first[:, None]) & ~skipped
    subject = np.repeat([f"S{i:05d}" for i in range(n)], t)
    visits = [f"W{j + 1}" for j in range(t)]
    data = pl.DataFrame(
        {
            "subject": subject,
            "visit": np.tile(visits, n),
            "arm": np.repeat(np.array(design.labels)[arm], t),
            "base": np.repeat(base, t),
            "y": y.ravel(),
        }
    ).filter(pl.Series(observed.ravel()))
    ice = pl.DataFrame(
        {
            "subject": [f"S{i:05d}" for i in np.flatnonzero(stops)],
            "visit": [visits[first[i]] for i in np.flatnonzero(stops)],
            "strategy": "JR",
        }
    )
    return data, ice
