"""Bootstrap refits of the imputation model, many resamples at once.

A bootstrap sample is the data with subject i counted w_i times (w_i its multiplicity in the
resample). The REML criterion sees the data only through the pattern sums, which are linear in
those weights: with the full data's patterns,

    S_P,ac = sum over subjects i in P of w_i z_ia z_ic',   n_P = sum_i in P w_i,

and a pattern that no resampled subject has contributes nothing (n_P = 0, S_P = 0). So the sums
of every sample are one matrix product of the weights with per-subject terms, and the refits of
a chunk of samples evaluate the criterion in one batch, as :meth:`LeaveOneOut.refit_all` does
for the jackknife (:mod:`trial.rbi.jackknife`).

The sums are stored by symmetry: for visits a <= c of a pattern, T_P,ac = S_P,ac + S_P,ac'
(a < c) or S_P,aa, which are symmetric, so only their upper triangles k <= l are kept (about a
third of the entries of all S_P,ac). Then, exactly as from the S_P,ac,

    X'WX, X'Wy (upper triangle)  =  sum over P, a <= c of W_P,ac T_P,ac,
    G_P,ac = <S_P,ac, M> = <T_P,ac, M> / 2 (a < c), <T_P,aa, M> (a = c),

(:mod:`trial.models.reml` for G and M). Each sample iterates as
:meth:`trial.rbi.reml_fit.UnstructuredReml.refit` from the full fit: theta <- theta - H0^-1 g
with the full fit's Hessian H0, stopping at the first theta whose decrement g' H0^-1 g is below
:data:`trial.rbi.reml_fit.REFIT_TOL`, with beta and Sigma evaluated there. A sample whose
criterion cannot be evaluated (Sigma_P or X'WX not positive definite) or that does not converge
in :data:`trial.rbi.reml_fit.REFIT_MAX_ITER` steps is reported as not done: the caller takes
it to the fallback of ``refit`` alone. The estimates are those of refitting each sample's own
pattern sums up to rounding (the sums are added in another order). The steps need the
gradient, beta and Sigma only, not the criterion's value.
"""

from __future__ import annotations

import numpy as np

from trial.models.reml import PatternData
from trial.rbi.prepare import Prepared
from trial.rbi.reml_fit import REFIT_MAX_ITER, REFIT_TOL, RemlOptimum, UnstructuredReml


class BootstrapRefits:
    """Refits of ``model`` (fitted on ``prep``'s fit rows, optimum ``full``, inverse Hessian
    ``h_inv`` there) on weighted resamples of the subjects.

    Layout of a sample's sums (module doc): one row per pattern P and visit pair a <= c, in
    pattern order (:attr:`flat`: where W_P,ac is in a flattened (patterns, t, t) array); the
    rows of one visit pair form a block that keeps only the columns k <= l some subject makes
    nonzero at that pair (a column that every subject leaves at zero adds exactly nothing), so
    a sample's sums are one flat vector of those blocks one after the other.
    """

    def __init__(
        self, prep: Prepared, model: UnstructuredReml, full: RemlOptimum, h_inv: np.ndarray
    ) -> None:
        data: PatternData = model.data
        t, q = prep.n_visits, data.n_fixed + 1
        self.model, self.full, self.h_inv = model, full, h_inv
        bits = 1 << np.arange(t, dtype=np.int64)
        code_pattern = {int(c): k for k, c in enumerate(data.masks.astype(np.int64) @ bits)}
        codes = prep.fit_mask.astype(np.int64) @ bits
        pattern = np.array([code_pattern.get(int(c), -1) for c in codes])
        # subjects with no fit rows (pattern -1) add nothing to any sum
        self.pattern_counts = (pattern[:, None] == np.arange(data.n_patterns)).astype(float)
        z = np.where(
            prep.fit_mask[:, :, None], np.concatenate([prep.x_own, prep.y[:, :, None]], 2), 0.0
        )  # (n, t, q): each subject's fit rows z = (x, y), zero at visits not fitted
        col_k, col_l = np.triu_indices(q)
        self.m_scale = np.where(col_k < col_l, 2.0, 1.0)  # <T, M> over k <= l
        self.upper_of = np.zeros((q, q), dtype=np.int64)  # (k, l) -> its upper-triangle column
        self.upper_of[col_k, col_l] = np.arange(len(col_k))
        self.upper_of[col_l, col_k] = np.arange(len(col_k))
        rows = [  # (pattern, a, c) of every row, pattern-major
            (k, a, c)
            for k, mask in enumerate(data.masks)
            for a, c in zip(*np.triu_indices(t), strict=True)
            if mask[a] and mask[c]
        ]
        pattern_of_row, a_of_row, c_of_row = (np.array(v) for v in zip(*rows, strict=True))
        self.flat = pattern_of_row * t * t + a_of_row * t + c_of_row
        self.mirror = pattern_of_row * t * t + c_of_row * t + a_of_row
        self.g_scale = np.where(a_of_row < c_of_row, 0.5, 1.0)
        active = (z != 0).astype(float)
        # per visit pair: its rows, its nonzero columns, where its block starts
        self.blocks: list[tuple[np.ndarray, np.ndarray, int]] = []
        position = np.zeros(len(rows), dtype=np.int64)  # where each row's block row starts
        start = 0
        for a, c in zip(*np.triu_indices(t), strict=True):
            pair_rows = np.flatnonzero((a_of_row == a) & (c_of_row == c))
            if not pair_rows.size:
                continue
            both = active[:, a].T @ active[:, c]
            cols = np.flatnonzero((both + both.T)[col_k, col_l] > 0)
            self.blocks.append((pair_rows, cols, start))
            position[pair_rows] = start + np.arange(len(pair_rows)) * len(cols)
            start += len(pair_rows) * len(cols)
        self.size = start
        cols_of_row = {int(r): cols for rows_, cols, _ in self.blocks for r in rows_}
        # per pattern: its subjects, each subject's terms at the pattern's block entries, and
        # where those entries are in a sample's flat sums
        self.terms: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for k in range(data.n_patterns):
            members = np.flatnonzero(pattern == k)
            parts, where = [], []
            for r in np.flatnonzero(pattern_of_row == k):
                a, c, cols = a_of_row[r], c_of_row[r], cols_of_row[int(r)]
                kk, ll = col_k[cols], col_l[cols]
                za, zc = z[members, a], z[members, c]
                term = za[:, kk] * zc[:, ll]
                if a < c:
                    term += zc[:, kk] * za[:, ll]
                parts.append(term)
                where.append(position[r] + np.arange(len(cols)))
            self.terms.append((members, np.hstack(parts), np.concatenate(where)))

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """The flat sums (B, :attr:`size`) of the samples with subject ``weights`` (B, n)."""
        out = np.empty((len(weights), self.size))
        for members, term, where in self.terms:
            out[:, where] = weights[:, members] @ term
        return out

    def evaluate(
        self, theta: np.ndarray, sums: np.ndarray, counts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Gradient of -2 l_R in theta, beta and Sigma of each sample at its own ``theta``
        (B, q_theta), given its flat sums (B, :attr:`size`) and pattern counts
        (B, n_patterns); and whether its criterion could be evaluated (every Sigma_P and X'WX
        positive definite). Raises ``numpy.linalg.LinAlgError`` on an exactly singular
        matrix."""
        data, structure = self.model.data, self.model.structure
        p, b = data.n_fixed, len(theta)
        sigma = structure.sigma(theta)
        sub = data.padded(sigma)
        sign, _ = np.linalg.slogdet(sub)
        w = np.linalg.inv(sub)
        w_rows = w.reshape(b, -1)[:, self.flat]
        zwz_upper = np.zeros((b, len(self.m_scale)))
        blocks = []
        for pair_rows, cols, start in self.blocks:
            block = sums[:, start : start + len(pair_rows) * len(cols)].reshape(b, -1, len(cols))
            zwz_upper[:, cols] += (w_rows[:, None, pair_rows] @ block)[:, 0]
            blocks.append(block)
        zwz = zwz_upper[:, self.upper_of]  # (B, q, q)
        sign_a, _ = np.linalg.slogdet(zwz[:, :p, :p])
        a_inv = np.linalg.inv(zwz[:, :p, :p])
        beta = np.einsum("bij,bj->bi", a_inv, zwz[:, :p, p])
        u = np.concatenate([-beta, np.ones((b, 1))], axis=1)
        m_mat = u[:, :, None] * u[:, None, :]
        m_mat[:, :p, :p] += a_inv
        m_upper = m_mat.reshape(b, -1)[:, np.flatnonzero(np.triu(np.ones((p + 1, p + 1))))]
        m_upper *= self.m_scale
        g_rows = np.empty((b, len(self.flat)))
        for (pair_rows, cols, _), block in zip(self.blocks, blocks, strict=True):
            g_rows[:, pair_rows] = (block @ m_upper[:, cols, None])[:, :, 0]
        g_rows *= self.g_scale
        g = np.zeros((b, w[0].size))
        g[:, self.flat] = g_rows
        g[:, self.mirror] = g_rows
        g = g.reshape(w.shape)
        counts_w = np.einsum("bk,bkxy->bxy", counts, np.where(data.pair_mask, w, 0.0))
        g_sigma = counts_w - (w @ g @ w).sum(1)
        grad = structure.chain_gradient(theta, g_sigma)
        ok = np.all(sign > 0, axis=1) & (sign_a > 0)
        return grad, beta, sigma, ok

    def refit_all(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The refit of every sample with subject ``weights`` (B, n) (module doc): betas
        (B, p), Sigmas (B, t, t), and whether each was done (False: refit it alone)."""
        n_samples = len(weights)
        p, t = self.model.data.n_fixed, self.model.data.n_visits
        betas, sigmas = np.zeros((n_samples, p)), np.zeros((n_samples, t, t))
        done_all = np.zeros(n_samples, dtype=bool)
        sums = self.sums(weights)
        counts = weights @ self.pattern_counts
        active = np.arange(n_samples)
        theta = np.broadcast_to(self.full.theta, (n_samples, len(self.full.theta))).copy()
        for _ in range(REFIT_MAX_ITER):
            if not active.size:
                break
            try:
                grad, beta, sigma, ok = self.evaluate(theta, sums, counts)
            except np.linalg.LinAlgError:
                break
            step = grad @ self.h_inv.T
            done = ok & (np.einsum("bi,bi->b", grad, step) < REFIT_TOL)
            betas[active[done]], sigmas[active[done]] = beta[done], sigma[done]
            done_all[active[done]] = True
            going = ok & ~done
            theta, active = (theta - step)[going], active[going]
            if not going.all():
                sums, counts = sums[going], counts[going]
        return betas, sigmas, done_all
