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

:meth:`LeaveOneOut.refit_all` takes the same steps for every subject at once: each iteration
evaluates the criterion of all subjects still iterating in one batch (their own theta; the
full-data sums with the subject's z_i' W_P z_i and z_i M z_i' taken out of X'WX and of the
gradient, n_P - 1 in the log-determinant and count terms), so the subjects share a few large
matrix products instead of a few small ones each. A subject stops at the same rule
(:data:`trial.rbi.reml_fit.REFIT_TOL`); one whose criterion cannot be evaluated (Sigma_P or X'WX
not positive definite) or that does not converge in
:data:`trial.rbi.reml_fit.REFIT_MAX_ITER` steps is refitted alone by :meth:`LeaveOneOut.refit`
(with its fallbacks). The estimates are those of one subject at a time up to rounding.
"""

from __future__ import annotations

import numpy as np

from trial.models.reml import LOG_2PI, PatternData
from trial.rbi.prepare import Prepared
from trial.rbi.reml_fit import REFIT_MAX_ITER, REFIT_TOL, RemlOptimum, UnstructuredReml


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
        self.t_map = (self.w @ s_pad @ self.w).sum(1).reshape(q * q, t * t)
        self.z_pad = np.where(
            prep.fit_mask[:, :, None], np.concatenate([prep.x_own, prep.y[:, :, None]], 2), 0.0
        )  # (n, t, q): each subject's fit rows z = (x, y), zero at visits not fitted
        self.pattern = np.array([self.pattern_of_code.get(int(c), -1) for c in self.codes])
        self.n_fit = prep.fit_mask.sum(1)

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

    def first_steps(self, subjects: np.ndarray) -> np.ndarray:
        """:meth:`first_step` of each of ``subjects`` (B,) at once: (B, q_theta)."""
        p = self.model.data.n_fixed
        k, z = self.pattern[subjects], self.z_pad[subjects]
        z_t = np.swapaxes(z, 1, 2)
        w_k = self.w[k]
        zwz = self.zwz[None] - z_t @ w_k @ z
        a_inv = np.linalg.inv(zwz[:, :p, :p])
        m_mat = _m_matrix(a_inv, np.einsum("bij,bj->bi", a_inv, zwz[:, :p, p]))
        g_sigma = (
            self.count_term[None]
            - self.w_masked[k]
            - (m_mat.reshape(len(k), -1) @ self.t_map).reshape(w_k.shape)
            + w_k @ (z @ m_mat @ z_t) @ w_k
        )
        theta0 = np.broadcast_to(self.full.theta, (len(k), len(self.full.theta)))
        grad = self.model.structure.chain_gradient(theta0, g_sigma)
        return np.asarray(theta0 - grad @ self.h_inv.T)

    def evaluate_without(
        self, theta: np.ndarray, subjects: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """-2 l_R, its gradient, beta and Sigma of the data without each of ``subjects`` (B,)
        at its own ``theta`` (B, q_theta), and whether that criterion could be evaluated (every
        Sigma_P and X'WX positive definite): :meth:`UnstructuredReml.evaluate` of each subject's
        leave-one-out sums, batched. Raises ``numpy.linalg.LinAlgError`` on an exactly
        singular matrix."""
        data, structure = self.model.data, self.model.structure
        p, b = data.n_fixed, len(subjects)
        rows = np.arange(b)
        k, z = self.pattern[subjects], self.z_pad[subjects]
        z_t = np.swapaxes(z, 1, 2)
        counts = np.broadcast_to(data.counts, (b, data.n_patterns)).copy()
        counts[rows, k] -= 1.0
        sigma = structure.sigma(theta)
        sub = data.padded(sigma)
        sign, logdets = np.linalg.slogdet(sub)
        w = np.linalg.inv(sub)
        zwz = (data.gather(w) @ data.s_all).reshape(b, p + 1, p + 1) - z_t @ w[rows, k] @ z
        sign_a, logdet_a = np.linalg.slogdet(zwz[:, :p, :p])
        a_inv = np.linalg.inv(zwz[:, :p, :p])
        beta = np.einsum("bij,bj->bi", a_inv, zwz[:, :p, p])
        rss = zwz[:, p, p] - np.einsum("bj,bj->b", zwz[:, :p, p], beta)
        n_obs = data.n_obs - self.n_fit[subjects]
        value = (n_obs - p) * LOG_2PI + (logdets * counts).sum(1) + logdet_a + rss
        m_mat = _m_matrix(a_inv, beta)
        g = data.scatter(m_mat.reshape(b, -1) @ data.s_all.T)
        g[rows, k] -= z @ m_mat @ z_t
        counts_w = np.einsum("bk,bkxy->bxy", counts, np.where(data.pair_mask, w, 0.0))
        g_sigma = counts_w - (w @ g @ w).sum(1)
        grad = structure.chain_gradient(theta, g_sigma)
        ok = np.all(sign > 0, axis=1) & (sign_a > 0)
        return value, grad, beta, sigma, ok

    def refit_all(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Every subject's leave-one-out refit (module doc): betas (n, p), Sigmas (n, t, t) and
        the number of refits that needed the fallback."""
        n, t, p = self.prep.n_subjects, self.prep.n_visits, self.model.data.n_fixed
        betas = np.broadcast_to(self.full.beta, (n, p)).copy()
        sigmas = np.broadcast_to(self.full.sigma, (n, t, t)).copy()
        active = np.flatnonzero(self.codes != 0)  # a subject with no fit rows changes nothing
        alone: list[np.ndarray] = []
        theta = self.first_steps(active) if active.size else np.empty((0, 0))
        for _ in range(REFIT_MAX_ITER):
            if not active.size:
                break
            try:
                _, grad, beta, sigma, ok = self.evaluate_without(theta, active)
            except np.linalg.LinAlgError:
                break
            step = grad @ self.h_inv.T
            done = ok & (np.einsum("bi,bi->b", grad, step) < REFIT_TOL)
            betas[active[done]], sigmas[active[done]] = beta[done], sigma[done]
            alone.append(active[~ok])
            going = ok & ~done
            theta, active = (theta - step)[going], active[going]
        fallbacks = 0
        for i in np.concatenate([*alone, active]).astype(int):
            opt, fell_back = self.refit(int(i))
            betas[i], sigmas[i] = opt.beta, opt.sigma
            fallbacks += int(fell_back)
        return betas, sigmas, fallbacks


def _m_matrix(a_inv: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """M = [[(X'WX)^-1, 0], [0, 0]] + u u', u = (-beta, 1), for a batch: (B, p + 1, p + 1)."""
    u = np.concatenate([-beta, np.ones((len(beta), 1))], axis=1)
    m_mat = u[:, :, None] * u[:, None, :]
    m_mat[:, : beta.shape[1], : beta.shape[1]] += a_inv
    return m_mat
