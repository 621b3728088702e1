"""Within-subject covariance structures of the MMRM, as maps from free parameters to Sigma.

Every structure maps an unconstrained vector ``theta`` to a positive definite ``(t, t)`` matrix
(``t`` = number of model visits, ordered as the study's model visits), so that the optimiser
never leaves the parameter space:

- ``unstructured``: Sigma = L L' with L lower triangular, ``theta`` = log diag(L), then the
  strictly lower elements row by row; t (t + 1) / 2 parameters.
- ``heterogeneous_toeplitz``: Sigma_jk = s_j s_k rho_|j-k|, ``theta`` = log s, then
  atanh of the partial autocorrelations (Durbin-Levinson gives rho; every Toeplitz correlation
  matrix that is positive definite is reached); 2 t - 1 parameters.
- ``heterogeneous_ar1``: Sigma_jk = s_j s_k rho^|j-k|, rho = tanh(eta); t + 1 parameters.
- ``compound_symmetry``: Sigma_jk = s_j s_k rho (j != k), heterogeneous variances like the other
  fallbacks (nlme ``corCompSymm`` with ``varIdent``), rho in (-1 / (t - 1), 1) through a
  logistic map; t + 1 parameters.

Lags are in visit positions (``visit_index``), not in weeks, as nlme's
``form = ~ visit_index | subject`` uses them. The maps are written with operations that are
analytic in ``theta``, so :func:`jacobian` can use the complex step (exact to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

STRUCTURES = (
    "unstructured",
    "heterogeneous_toeplitz",
    "heterogeneous_ar1",
    "compound_symmetry",
)
"""Names accepted in the study configuration (``models.mmrm.covariance`` and ``fallback``)."""

_COMPLEX_STEP = 1e-30


@dataclass(frozen=True)
class CovarianceStructure:
    """A named covariance structure over ``n_visits`` visits."""

    name: str
    n_visits: int

    def __post_init__(self) -> None:
        if self.name not in STRUCTURES:
            raise ValueError(f"unknown covariance structure {self.name!r}; known: {STRUCTURES}")

    @property
    def n_params(self) -> int:
        t = self.n_visits
        return {
            "unstructured": t * (t + 1) // 2,
            "heterogeneous_toeplitz": 2 * t - 1,
            "heterogeneous_ar1": t + 1,
            "compound_symmetry": t + 1,
        }[self.name]

    def sigma(self, theta: np.ndarray) -> np.ndarray:
        """Sigma for a batch of parameter vectors: ``theta`` (..., q) -> (..., t, t).

        Real or complex input (the complex step in :func:`jacobian`).
        """
        t = self.n_visits
        theta = np.asarray(theta)
        if self.name == "unstructured":
            chol = np.zeros((*theta.shape[:-1], t, t), dtype=theta.dtype)
            diag = np.arange(t)
            chol[..., diag, diag] = np.exp(theta[..., :t])
            rows, cols = _strict_lower(t)
            chol[..., rows, cols] = theta[..., t:]
            return chol @ np.swapaxes(chol, -1, -2)
        sd = np.exp(theta[..., :t])
        eta = theta[..., t:]
        lag = np.abs(np.arange(t)[:, None] - np.arange(t)[None, :])
        if self.name == "heterogeneous_toeplitz":
            rho = _autocorrelations(np.tanh(eta))
            rho0 = np.concatenate([np.ones((*rho.shape[:-1], 1), dtype=rho.dtype), rho], -1)
            corr = rho0[..., lag]
        elif self.name == "heterogeneous_ar1":
            corr = np.tanh(eta[..., 0])[..., None, None] ** lag
        else:
            low = -1.0 / (t - 1)
            rho = low + (1.0 - low) / (1.0 + np.exp(-eta[..., 0]))
            corr = rho[..., None, None] * np.ones((t, t)) + (1.0 - rho[..., None, None]) * np.eye(t)
        return sd[..., :, None] * corr * sd[..., None, :]

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """d Sigma / d theta by the complex step (exact to rounding): (..., q) -> (..., q, t, t)."""
        q = theta.shape[-1]
        probe = theta[..., None, :] + 1j * _COMPLEX_STEP * np.eye(q)
        return np.asarray(self.sigma(probe).imag / _COMPLEX_STEP)

    def chain_gradient(self, theta: np.ndarray, grad_sigma: np.ndarray) -> np.ndarray:
        """d f / d theta from d f / d Sigma_jk (entries counted apart): (B, q), (B, t, t) -> (B, q).

        Unstructured: d f / d L = (G + G') L (lower part), times L_jj on the log diagonal; the
        other structures go through :meth:`jacobian`.
        """
        if self.name != "unstructured":
            return np.einsum("bqjk,bjk->bq", self.jacobian(theta), grad_sigma)
        t = self.n_visits
        chol = np.zeros((len(theta), t, t))
        diag = np.arange(t)
        chol[:, diag, diag] = np.exp(theta[:, :t])
        rows, cols = _strict_lower(t)
        chol[:, rows, cols] = theta[:, t:]
        d_chol = (grad_sigma + np.swapaxes(grad_sigma, -1, -2)) @ chol
        return np.concatenate(
            [d_chol[:, diag, diag] * chol[:, diag, diag], d_chol[:, rows, cols]], axis=1
        )

    def start(self, sigma0: np.ndarray) -> np.ndarray:
        """Parameters of this structure near a positive definite moment estimate ``sigma0``."""
        t = self.n_visits
        if self.name == "unstructured":
            chol = np.linalg.cholesky(sigma0)
            rows, cols = _strict_lower(t)
            return np.concatenate([np.log(np.diag(chol)), chol[rows, cols]])
        sd = np.sqrt(np.diag(sigma0))
        corr = sigma0 / np.outer(sd, sd)
        lag1 = float(np.clip(np.mean(np.diag(corr, 1)), -0.9, 0.9))
        if self.name == "heterogeneous_toeplitz":
            eta = np.zeros(t - 1)
            eta[0] = np.arctanh(lag1)
        elif self.name == "heterogeneous_ar1":
            eta = np.array([np.arctanh(lag1)])
        else:
            low = -1.0 / (t - 1)
            mean_corr = float(np.mean(corr[np.triu_indices(t, 1)]))
            share = float(np.clip((mean_corr - low) / (1.0 - low), 0.05, 0.95))
            eta = np.array([np.log(share / (1.0 - share))])
        return np.concatenate([np.log(sd), eta])


@cache
def _strict_lower(t: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.tril_indices(t, -1)
    return rows, cols


def _autocorrelations(pacf: np.ndarray) -> np.ndarray:
    """Autocorrelations rho_1..rho_k of a stationary AR(k) from its partial autocorrelations.

    Durbin-Levinson: phi_k,k = pacf_k, phi_k,j = phi_k-1,j - pacf_k phi_k-1,k-j, and
    rho_k = sum_j phi_k,j rho_k-j (rho_0 = 1). Batched over leading axes.
    """
    k_max = pacf.shape[-1]
    rho = [np.ones(pacf.shape[:-1], dtype=pacf.dtype)]
    phi: list[np.ndarray] = []
    for k in range(1, k_max + 1):
        pk = pacf[..., k - 1]
        phi = [phi[j] - pk * phi[k - 2 - j] for j in range(k - 1)] + [pk]
        rho.append(np.sum([phi[j] * rho[k - 1 - j] for j in range(k)], axis=0))
    return np.stack(rho[1:], axis=-1)
