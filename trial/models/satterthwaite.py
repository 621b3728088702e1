"""Denominator degrees of freedom for linear combinations of MMRM fixed effects.

Notation: C(theta) = (X' W X)^-1 the model-based covariance of beta_hat, l a contrast row,
H the Hessian of -2 l_R with respect to the covariance parameters theta at the optimum, so
that A = 2 H^-1 estimates the covariance of theta_hat (observed REML information).

- Satterthwaite: df = 2 (l'Cl)^2 / (g' A g), g = d(l'Cl)/d theta.
- Kenward-Roger (1997), for a single contrast: the adjusted covariance
  C_A = C + 2 C (sum_ij A_ij (Q_ij - P_i C P_j - R_ij / 4)) C and the df of its F
  approximation with q = 1, where P_i = dX'WX/d theta_i = -X' W Sigma_i W X and
  Q_ij = X' W Sigma_i W Sigma_j W X (Sigma_i = d Sigma / d theta_i). R_ij (second derivatives
  of Sigma) is taken as 0, as pbkrtest and SAS do by default; it is exact for the unstructured
  covariance written in its own elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def satterthwaite_df(
    variance: np.ndarray, gradient: np.ndarray, cov_theta: np.ndarray
) -> np.ndarray:
    """df per contrast: ``variance`` (n,) = l'Cl, ``gradient`` (n, q), ``cov_theta`` (q, q)."""
    spread = np.einsum("nq,qr,nr->n", gradient, cov_theta, gradient)
    return np.asarray(2.0 * variance**2 / spread)


@dataclass(frozen=True)
class KenwardRoger:
    """Adjusted covariance of beta_hat and the per-contrast df of the KR method."""

    vcov_adjusted: np.ndarray
    p_mats: np.ndarray
    q_mats: np.ndarray
    cov_theta: np.ndarray
    vcov: np.ndarray

    def contrast(self, row: np.ndarray) -> tuple[float, float]:
        """(adjusted variance, df) of l'beta for one contrast row l (KR with q = 1)."""
        c, a = self.vcov, self.cov_theta
        big_theta = np.outer(row, row) / float(row @ c @ row)
        terms = (big_theta @ c) @ self.p_mats @ c  # Theta C P_i C, (q, p, p)
        traces = np.einsum("iaa->i", terms)
        a1 = float(traces @ a @ traces)
        a2 = float(np.einsum("ij,iab,jba->", a, terms, terms, optimize=True))
        q = 1.0
        b = (a1 + 6.0 * a2) / (2.0 * q)
        g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2)
        denom = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2.0 - g) / denom
        e_star = 1.0 / (1.0 - a2 / q)
        v_star = (2.0 / q) * (1.0 + c1 * b) / ((1.0 - c2 * b) ** 2 * (1.0 - c3 * b))
        rho = v_star / (2.0 * e_star**2)
        df = 4.0 + (q + 2.0) / (q * rho - 1.0)
        return float(row @ self.vcov_adjusted @ row), float(df)


def kenward_roger(
    vcov: np.ndarray, p_mats: np.ndarray, q_mats: np.ndarray, cov_theta: np.ndarray
) -> KenwardRoger:
    """Adjusted covariance C_A from C = ``vcov``, P_i = ``p_mats`` (q, p, p),
    Q_ij = ``q_mats`` (q, q, p, p) and A = ``cov_theta`` (q, q)."""
    n_par = cov_theta.shape[0]
    inner = np.zeros_like(vcov)
    for i in range(n_par):
        for j in range(n_par):
            inner += cov_theta[i, j] * (q_mats[i, j] - p_mats[i] @ vcov @ p_mats[j])
    adjusted = vcov + 2.0 * vcov @ inner @ vcov
    return KenwardRoger(
        vcov_adjusted=adjusted, p_mats=p_mats, q_mats=q_mats, cov_theta=cov_theta, vcov=vcov
    )
