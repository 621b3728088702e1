"""Reference-based means and the imputation of missing outcomes (Carpenter, Roger, Kenward 2013).

For subject i with ICE at visit index k (the first visit it affects) the imputation model's
mean is built from mu_own = X_i(own group) beta and mu_ref = X_i(reference group) beta, the
subject's own covariates in both:

- MAR: mu_own at every visit;
- JR (jump to reference): mu_own before k, mu_ref from k on;
- CR (copy reference): mu_ref at every visit;
- CIR (copy increments in reference): mu_own before k; from k on
  mu_own[k-1] + (mu_ref[j] - mu_ref[k-1]) (mu_ref at every visit when k = 0).

Sigma is the one unstructured covariance of the imputation model (shared by the groups, so the
strategies need no mixing of group covariances). Each of these means is linear in beta, so a
subject's mean is D_i beta with a (t, p) matrix D_i fixed before any fit. Missing values are
imputed from the normal distribution of the missing given all observed values of the subject
(post-ICE observed values included; they are kept in the analysis, not imputed): the
conditional mean mu_M + Sigma_MO Sigma_OO^-1 (y_O - mu_O), or a draw around it with covariance
Sigma_MM - Sigma_MO Sigma_OO^-1 Sigma_OM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trial.rbi.prepare import Prepared


def mean_design(prep: Prepared) -> np.ndarray:
    """D (n, t, p): each subject's mean rows under its strategy (module doc)."""
    n, t = prep.n_subjects, prep.n_visits
    own, ref = prep.x_own, prep.x_ref
    k = prep.ice_visit
    post = (np.arange(t)[None, :] >= k[:, None])[:, :, None]
    last = np.maximum(k - 1, 0)
    base = own[np.arange(n), last] - ref[np.arange(n), last]
    base[k == 0] = 0.0
    strategy = prep.strategy[:, None, None]
    return np.where(
        strategy == "JR",
        np.where(post, ref, own),
        np.where(
            strategy == "CR",
            ref,
            np.where(strategy == "CIR", np.where(post, ref + base[:, None, :], own), own),
        ),
    )


@dataclass(frozen=True)
class _Pattern:
    subjects: np.ndarray
    observed: np.ndarray
    missing: np.ndarray


class Imputer:
    """Completes the outcome matrix for a batch of imputation-model parameters."""

    def __init__(self, prep: Prepared) -> None:
        self.y = prep.y
        self.design = mean_design(prep)
        missing = prep.missing
        codes = missing.astype(np.int64) @ (1 << np.arange(prep.n_visits, dtype=np.int64))
        self.patterns = []
        for code in np.unique(codes[codes > 0]):
            mask = missing[np.flatnonzero(codes == code)[0]]
            self.patterns.append(
                _Pattern(np.flatnonzero(codes == code), np.flatnonzero(~mask), np.flatnonzero(mask))
            )

    def complete(
        self,
        betas: np.ndarray,
        sigmas: np.ndarray,
        rng: np.random.Generator | None = None,
        delta: np.ndarray | None = None,
    ) -> np.ndarray:
        """Completed outcomes (S, n, t) for parameters ``betas`` (S, p), ``sigmas`` (S, t, t).

        Conditional means, or with ``rng`` one random draw per parameter set. ``delta``
        (n, t) is added to the imputed values only.
        """
        n_sets = len(betas)
        out = np.broadcast_to(self.y, (n_sets, *self.y.shape)).copy()
        for pat in self.patterns:
            idx, obs, mis = pat.subjects, pat.observed, pat.missing
            d = self.design[idx]
            mu = (d.reshape(-1, d.shape[2]) @ betas.T).T.reshape(n_sets, *d.shape[:2])
            imputed = mu[:, :, mis]
            s_mo = sigmas[:, mis][:, :, obs]
            cond_cov = sigmas[:, mis][:, :, mis]
            if len(obs):
                s_oo = sigmas[:, obs][:, :, obs]
                gain = np.linalg.solve(s_oo, np.swapaxes(s_mo, 1, 2))  # (S, o, m)
                resid = self.y[idx][:, obs][None] - mu[:, :, obs]
                imputed = imputed + np.einsum("sio,som->sim", resid, gain)
                cond_cov = cond_cov - s_mo @ gain
            if rng is not None:
                chol = np.linalg.cholesky(cond_cov)
                z = rng.standard_normal((n_sets, len(idx), len(mis)))
                imputed = imputed + np.einsum("sab,sib->sia", chol, z)
            if delta is not None:
                imputed = imputed + delta[idx][:, mis][None]
            out[:, idx[:, None], mis[None, :]] = imputed
        return out
