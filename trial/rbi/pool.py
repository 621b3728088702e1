"""Pooling of sample estimates into one inference per visit and parameter (like rbmi::pool).

- Jackknife (conditional mean imputation, Wolbers et al. 2022): point estimate from the full
  data; se^2 = (n - 1) / n * sum_i (theta_(i) - theta_(.))^2 over the n leave-one-subject-out
  estimates; normal CI and two-sided p-value (no df).
- Bootstrap (conditional mean imputation): point estimate from the full data; se = standard
  deviation of the bootstrap estimates; normal CI and p-value (rbmi's ``type = "normal"``).
- Rubin's rules (approximate Bayesian MI): Q = mean estimate, U = mean within variance,
  B = between variance, T = U + (1 + 1/M) B; t reference with Barnard and Rubin's (1999)
  small-sample df from the complete-data df (rbmi's default).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _normal(estimate: np.ndarray, se: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    z = stats.norm.ppf(1.0 - alpha / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pvalue = 2.0 * stats.norm.sf(np.abs(estimate / se))
    return {
        "estimate": estimate,
        "se": se,
        "lci": estimate - z * se,
        "uci": estimate + z * se,
        "pvalue": pvalue,
        "df": np.full(estimate.shape, np.nan),
    }


def pool_jackknife(full: np.ndarray, samples: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """``full`` (t, P) estimates on all subjects; ``samples`` (n, t, P) leave-one-out ones."""
    n = samples.shape[0]
    centred = samples - samples.mean(0)
    se = np.sqrt((n - 1) / n * (centred**2).sum(0))
    return _normal(full, se, alpha)


def pool_bootstrap(full: np.ndarray, samples: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """``full`` (t, P); ``samples`` (B, t, P) bootstrap estimates."""
    return _normal(full, samples.std(0, ddof=1), alpha)


def barnard_rubin_df(v_com: float, between: np.ndarray, total: np.ndarray, m: int) -> np.ndarray:
    """Barnard and Rubin (1999) df; ``v_com`` where there is no between-imputation variance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (1.0 + 1.0 / m) * between / total
        v_old = (m - 1) / lam**2
        v_obs = (v_com + 1.0) / (v_com + 3.0) * v_com * (1.0 - lam)
        df = v_old * v_obs / (v_old + v_obs)
    return np.where(between > 1e-10 * total, df, v_com)


def pool_rubin(
    estimates: np.ndarray, variances: np.ndarray, v_com: float, alpha: float
) -> dict[str, np.ndarray]:
    """``estimates``, ``variances`` (M, t, P) of M imputations; ``v_com`` complete-data df."""
    m = estimates.shape[0]
    qbar = estimates.mean(0)
    within = variances.mean(0)
    between = estimates.var(0, ddof=1)
    total = within + (1.0 + 1.0 / m) * between
    df = barnard_rubin_df(v_com, between, total, m)
    se = np.sqrt(total)
    crit = stats.t.ppf(1.0 - alpha / 2.0, df)
    return {
        "estimate": qbar,
        "se": se,
        "lci": qbar - crit * se,
        "uci": qbar + crit * se,
        "pvalue": 2.0 * stats.t.sf(np.abs(qbar / se), df),
        "df": df,
    }
