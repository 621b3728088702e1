"""Leave-one-subject-out refits of the imputation model from the full fit's pattern sums.

Removing subject i (missingness pattern P, observations z_i = (x_i, y_i) at its visits)
changes the REML criterion only through S_P,ab -= z_ia z_ib' and n_P -= 1. The refit starts at
the full-data optimum theta_0 with one fixed-Hessian Newton step whose gradient is computed
without any factorisation: at theta_0 every W_P = Sigma_P^-1 is the full fit's, so

    X'WX, X'Wy  =  full-data values - z_i' W_P z_i,
    d(-2 l_R)/d Sigma = sum_P n_P W_P - T(M) - W_P + W_P[:, i] (z_i M z_i') W_P[i, :]

with M = [[(X'WX)^-1, 0], [0, 0]] + u u', u = (-beta, 1), and T the linear map
M -> sum_P W_P G_P(M) W_P, G_P,ab(M) = <S_P,ab, M>, tabulated once at theta_0
(:mod:`trial.models.reml` has the derivation). Later steps evaluate the criterion on the
modified sums (:meth:`trial.rbi.reml_fit.UnstructuredReml.refit`); the sums are restored after
each subject.
"""

from __future__ import annotations

import numpy as np

from trial.models.reml import PatternData
from trial.rbi.prepare import Prepared
from trial.rbi.reml_fit import RemlOptimum, UnstructuredReml


class LeaveOneOut:
    """Refits of ``model`` (fitted on ``prep``'s fit rows) without one subject at a time."""

    def __init__(
        self, prep: Prepared, model: UnstructuredReml, full: RemlOptimum, h_inv: np.ndarray
    ) -> None:
        data: PatternData = model.data
        t = prep.n_visits
        bits = 1 << np.arange(t, dtype=np.int64)
        self.prep, self.model, self.full, self.h_inv = prep, model, full, h_inv
        self.offsets = np.concatenate([[0], np.cumsum(data.masks.sum(1) ** 2)])
        self.pattern_of_code = {int(c): k for k, c in enumerate(data.masks.astype(np.int64) @ bits)}
        self.codes = prep.fit_mask.astype(np.int64) @ bits
        state = data.evaluate(full.sigma[None])
        self.w = state.w_padded[0]
        q = data.n_fixed + 1
        self.zwz = (data.gather(state.w_padded) @ data.s_all).reshape(q, q)
        self.w_masked = np.where(data.pair_mask, self.w, 0.0)
        self.count_term = (self.w_masked * data.counts[:, None, None]).sum(0)
        s_pad = data.scatter(data.s_all.T)  # (q*q, patterns, t, t)
        self.t_map = np.einsum("pja,xpab,pbl->xjl", self.w, s_pad, self.w).reshape(q * q, t * t)

    def _subject(self, i: int) -> tuple[int, np.ndarray, np.ndarray]:
        obs = np.flatnonzero(self.prep.fit_mask[i])
        z = np.hstack([self.prep.x_own[i, obs], self.prep.y[i, obs][:, None]])
        return self.pattern_of_code[int(self.codes[i])], obs, z

    def first_step(self, i: int) -> np.ndarray:
        """theta_0 - H0^-1 g_i(theta_0): the first Newton step without subject ``i``."""
        k, obs, z = self._subject(i)
        p = self.model.data.n_fixed
        w_k = self.w[k]
        zwz = self.zwz - z.T @ w_k[np.ix_(obs, obs)] @ z
        a_inv = np.linalg.inv(zwz[:p, :p])
        beta = a_inv @ zwz[:p, p]
        u = np.append(-beta, 1.0)
        m_mat = np.outer(u, u)
        m_mat[:p, :p] += a_inv
        g_sigma = (
            self.count_term
            - self.w_masked[k]
            - (m_mat.ravel() @ self.t_map).reshape(w_k.shape)
            + w_k[:, obs] @ (z @ m_mat @ z.T) @ w_k[obs, :]
        )
        theta0 = self.full.theta
        grad = self.model.structure.chain_gradient(theta0[None], g_sigma[None])[0]
        return np.asarray(theta0 - self.h_inv @ grad)

    def refit(self, i: int) -> tuple[RemlOptimum, bool]:
        """The imputation model without subject ``i``; whether the refit needed the fallback."""
        if self.codes[i] == 0:
            return self.full, False
        k, _, z = self._subject(i)
        m, q = z.shape
        block = np.einsum("aq,br->abqr", z, z).reshape(m * m, q * q)
        data = self.model.data
        rows = slice(int(self.offsets[k]), int(self.offsets[k + 1]))
        saved = data.s_all[rows].copy()
        start = self.first_step(i)
        data.s_all[rows] -= block
        data.counts[k] -= 1.0
        data.n_obs -= m
        try:
            return self.model.refit(start, self.h_inv, fallback=self.full.theta)
        finally:
            data.s_all[rows] = saved
            data.counts[k] += 1.0
            data.n_obs += m
