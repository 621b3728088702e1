"""REML for a linear model with one unstructured-by-visit covariance block per subject.

Subjects observed at the same set of visits (a missingness *pattern*) share Sigma_i, the
submatrix of Sigma at those visits. The REML criterion and its derivatives depend on the data
only through, per pattern P and pair of visits (a, b) of P, the cross-product sums

    S_P,ab = sum over subjects i in P of z_ia z_ib',   z = (x, y) of one observation,

which :class:`PatternData` computes once. With W_P = Sigma_P^-1, every evaluation then costs a few
small batched inverses plus one matrix-vector product over the stacked S (a few thousand rows
at six visits), independent of the number of subjects.

Criterion (Harville; nlme's REML log-likelihood is minus one half of it):

    -2 l_R = (N - p) log 2 pi + sum_i log|Sigma_i| + log|X' W X| + r' W r,

with r = y - X beta_hat. Its gradient with respect to W_P is the matrix
G_P,ab = <S_P,ab, M>, M = [[ (X'WX)^-1, 0 ], [0, 0]] + u u', u = (-beta_hat, 1) (envelope
theorem for beta_hat), and with respect to Sigma_P it is n_P W_P - W_P G_P W_P.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class RemlState:
    """What one batched evaluation at B covariance matrices produced (leading axis B).

    ``w_padded`` (B, n_patterns, t, t): per pattern, W_P on the observed visits and the
    identity elsewhere (the inverse of Sigma_P padded the same way), so that all patterns go
    through one batched factorisation.
    """

    sigma: np.ndarray
    m2loglik: np.ndarray
    beta: np.ndarray
    xtwx_inv: np.ndarray
    w_padded: np.ndarray


class PatternData:
    """Cross-product sums per missingness pattern of a (x, y, subject, visit) data set.

    ``masks`` (n_patterns, t) boolean observed visits, ``counts`` subjects per pattern;
    ``s_all`` stacks, for each pattern and each observed pair (a, b) in row-major order, the
    flattened (p + 1) x (p + 1) sum S_P,ab; ``flat_index`` locates each of those rows in a
    flattened (n_patterns, t, t) array.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        subject: np.ndarray,
        visit: np.ndarray,
        n_visits: int,
    ) -> None:
        self.n_obs, self.n_fixed = x.shape
        self.n_visits = t = n_visits
        order = np.lexsort((visit, subject))
        subject, visit = subject[order], visit[order]
        z = np.hstack([x, y[:, None]])[order]
        first = np.flatnonzero(np.r_[True, subject[1:] != subject[:-1]])
        mask = np.add.reduceat(np.left_shift(1, visit), first)
        mask_of_row = np.repeat(mask, np.diff(np.r_[first, len(subject)]))
        order2 = np.lexsort((visit, subject, mask_of_row))
        z, mask_of_row = z[order2], mask_of_row[order2]

        q = self.n_fixed + 1
        patterns, counts = np.unique(mask, return_counts=True)
        bits = np.arange(t)
        self.masks = (patterns[:, None] >> bits[None, :]) & 1 == 1
        self.counts = counts.astype(float)
        blocks, flat = [], []
        for k, pattern in enumerate(patterns):
            obs = bits[self.masks[k]]
            m = len(obs)
            rows = z[mask_of_row == pattern].reshape(-1, m * q)
            s = (rows.T @ rows).reshape(m, q, m, q).transpose(0, 2, 1, 3)
            blocks.append(s.reshape(m * m, q * q))
            flat.append((k * t * t + obs[:, None] * t + obs[None, :]).ravel())
        self.s_all = np.vstack(blocks)
        self.flat_index = np.concatenate(flat)
        self.pair_mask = self.masks[:, :, None] & self.masks[:, None, :]
        self._pad = np.where(self.pair_mask, 0.0, np.eye(t)[None])
        self.n_patterns = len(patterns)
        self.n_subjects = len(first)

    def padded(self, sigma: np.ndarray) -> np.ndarray:
        """Sigma_P per pattern, identity on unobserved visits: (B, t, t) -> (B, n_pat, t, t)."""
        return np.where(self.pair_mask, sigma[:, None], self._pad)

    def gather(self, padded: np.ndarray) -> np.ndarray:
        """The observed (a, b) entries of (n, n_patterns, t, t) arrays, in s_all row order."""
        return padded.reshape(padded.shape[0], -1)[:, self.flat_index]

    def scatter(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`gather` for (n, rows) values; zero elsewhere."""
        out = np.zeros((values.shape[0], self.n_patterns * self.n_visits**2))
        out[:, self.flat_index] = values
        return out.reshape(values.shape[0], self.n_patterns, self.n_visits, self.n_visits)

    def evaluate(self, sigma: np.ndarray) -> RemlState:
        """-2 REML log-likelihood and GLS estimates at a batch of Sigma (B, t, t).

        Raises ``numpy.linalg.LinAlgError`` if any Sigma_P of an observed pattern or X' W X is
        not positive definite.
        """
        p = self.n_fixed
        sub = self.padded(sigma)
        chol = np.linalg.cholesky(sub)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1) @ self.counts
        w = np.linalg.inv(sub)
        zwz = (self.gather(w) @ self.s_all).reshape(-1, p + 1, p + 1)
        xtwx, xtwy, ytwy = zwz[:, :p, :p], zwz[:, :p, p], zwz[:, p, p]
        chol_a = np.linalg.cholesky(xtwx)
        xtwx_inv = np.linalg.inv(xtwx)
        beta = np.einsum("bjk,bk->bj", xtwx_inv, xtwy)
        rss = ytwy - np.einsum("bj,bj->b", xtwy, beta)
        logdet_a = 2.0 * np.log(np.diagonal(chol_a, axis1=-2, axis2=-1)).sum(-1)
        m2 = (self.n_obs - p) * LOG_2PI + logdet + logdet_a + rss
        return RemlState(sigma=sigma, m2loglik=m2, beta=beta, xtwx_inv=xtwx_inv, w_padded=w)

    def gradient_sigma(self, state: RemlState) -> np.ndarray:
        """d(-2 l_R) / d Sigma_jk, shape (B, t, t), Sigma_jk and Sigma_kj counted apart."""
        p = self.n_fixed
        u = np.concatenate([-state.beta, np.ones((len(state.beta), 1))], axis=1)
        m_mat = u[:, :, None] * u[:, None, :]
        m_mat[:, :p, :p] += state.xtwx_inv
        g = self.scatter(m_mat.reshape(len(u), -1) @ self.s_all.T)
        w = state.w_padded
        weighted = np.where(self.pair_mask, w, 0.0) * self.counts[:, None, None]
        return np.asarray((weighted - w @ g @ w).sum(1))

    def quadratic_form_gradient(self, state: RemlState, contrasts: np.ndarray) -> np.ndarray:
        """d(l' (X'WX)^-1 l) / d Sigma_jk at the first Sigma of ``state``, for each row l of
        ``contrasts`` (n_l, p) -> (n_l, t, t).

        d/dW_P,ab = -<S_P,ab, v v'> with v = (X'WX)^-1 l, so d/dSigma_P = W_P F_P W_P.
        """
        p = self.n_fixed
        v = contrasts @ state.xtwx_inv[0]
        m_mat = np.zeros((len(v), p + 1, p + 1))
        m_mat[:, :p, :p] = v[:, :, None] * v[:, None, :]
        f = self.scatter(m_mat.reshape(len(v), -1) @ self.s_all.T)
        w = state.w_padded[:1]
        return np.asarray((w @ f @ w).sum(1))

    def contract_xx(self, padded: np.ndarray) -> np.ndarray:
        """sum over patterns and observed visit pairs of B_P,ab S^XX_P,ab.

        ``padded``: (n, n_patterns, t, t) matrices (only observed entries are read) -> (n, p, p).
        E.g. B_P = W_P gives X' W X.
        """
        p = self.n_fixed
        n = padded.shape[0]
        return (self.gather(padded) @ self.s_all).reshape(n, p + 1, p + 1)[:, :p, :p]

    def xtx(self) -> np.ndarray:
        """X'X (p, p), the W = I contraction (for a rank check before any fit)."""
        return self.contract_xx(np.broadcast_to(np.eye(self.n_visits), (1, *self._pad.shape)))[0]
