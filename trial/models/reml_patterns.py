"""A fast REML engine for linear mixed models whose subjects share a few covariance patterns.

Model: ``y_i = X_i b + Z_i u_i + e_i`` with ``u_i ~ N(0, s2 * Lam Lam')`` and
``e_i ~ N(0, s2 I)``. Every observation of a subject sits in one *slot* of a fixed list
(a visit, or a visit x side), and ``Z_i`` is the rows of a fixed ``z_full`` matrix for the
slots the subject has. So a subject's relative marginal covariance
``W_i = I + Z_i Lam Lam' Z_i'`` depends only on its pattern of observed slots.

The engine pads every subject to all slots (zero rows of ``X`` and ``y`` in missing slots,
identity in ``W``: the padded inverse is block-diagonal, so padding changes nothing) and
collects per-pattern sufficient statistics once: ``sum_i X_i (x) X_i``, ``sum_i X_i (x) y_i``,
``sum_i y_i y_i'``, kept as one sparse matrix without their zero entries. Each evaluation of
the profiled REML criterion then costs one batched inverse of (patterns x slots x slots) and one
product of that sparse matrix with the flattened inverses (and, for the gradient, with their
derivatives in the same product), independent of the number of subjects.

Profiled REML criterion (lme4's ``REMLcrit``, nlme's convention, no ``log|X'X|`` term):

    -2 l_R = sum_k n_k log|W_k| + log|X'W^-1X| + (N - p) (1 + log(2 pi rss / (N - p)))

with ``rss = y'W^-1y - c'A^-1c``, ``A = X'W^-1X``, ``c = X'W^-1y``; ``s2 = rss / (N - p)``,
``b = A^-1 c`` and the conditional covariance of ``b`` is ``s2 A^-1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

LambdaFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RemlFit:
    """The optimum: ``theta`` (relative Cholesky parameters), fixed effects, conditional
    covariance ``cov_beta = s2 (X'W^-1X)^-1``, residual variance ``sigma2``, the random-effects
    covariance ``g = s2 Lam Lam'``, ``reml_loglik`` (= -REMLcrit / 2)."""

    theta: np.ndarray
    beta: np.ndarray
    cov_beta: np.ndarray
    sigma2: float
    g: np.ndarray
    reml_loglik: float
    converged: bool
    message: str
    n_evaluations: int


class PatternReml:
    """Sufficient statistics of one data set, and the profiled REML criterion over ``theta``.

    ``slot``: 0-based slot of each observation; ``subject``: integer subject code of each
    observation; ``z_full``: slots x q random-effects design; ``lam``: theta -> q x q factor.
    """

    def __init__(
        self,
        y: np.ndarray,
        x: np.ndarray,
        subject: np.ndarray,
        slot: np.ndarray,
        z_full: np.ndarray,
        lam: LambdaFn,
    ) -> None:
        n_obs, p = x.shape
        m = z_full.shape[0]
        _, subj = np.unique(subject, return_inverse=True)
        n_subj = int(subj.max()) + 1
        flat = subj * m + slot
        if np.unique(flat).size != n_obs:
            raise ValueError("a subject has two observations in the same slot")
        x_pad = np.zeros((n_subj * m, p))
        y_pad = np.zeros(n_subj * m)
        mask = np.zeros(n_subj * m, dtype=bool)
        x_pad[flat] = x
        y_pad[flat] = y
        mask[flat] = True
        x_pad = x_pad.reshape(n_subj, m * p)
        y_pad = y_pad.reshape(n_subj, m)
        masks = mask.reshape(n_subj, m)
        codes = masks.astype(np.int64) @ (1 << np.arange(m, dtype=np.int64))
        order = np.argsort(codes, kind="stable")
        uniq, starts, counts = np.unique(codes[order], return_index=True, return_counts=True)
        patterns = masks[order[starts]]
        k = uniq.size
        sxx = np.empty((k, m, m, p, p))
        sxy = np.empty((k, m, m, p))
        syy = np.empty((k, m, m))
        for j in range(k):
            rows = order[starts[j] : starts[j] + counts[j]]
            xs = x_pad[rows]
            ys = y_pad[rows]
            sxx[j] = (xs.T @ xs).reshape(m, p, m, p).transpose(0, 2, 1, 3)
            sxy[j] = (xs.T @ ys).reshape(m, p, m).transpose(0, 2, 1)
            syy[j] = ys.T @ ys
        self.n_obs = n_obs
        self.n_subjects = n_subj
        self.p = p
        self.m = m
        self.patterns = patterns
        self.counts = counts.astype(float)
        # The sums as one sparse matrix, transposed, (p p + p + 1, k m m): the rows of slots a
        # pattern lacks are zero, and so are most products of two model columns (indicators),
        # so a product with it costs a small part of the dense one (5 % of the entries on the
        # demo's sides model).
        entry_rows: list[np.ndarray] = []
        entry_cols: list[np.ndarray] = []
        values: list[np.ndarray] = []
        n_cols = 0
        for part in (sxx.reshape(k * m * m, p * p), sxy.reshape(k * m * m, p), syy.reshape(-1, 1)):
            r, c = np.nonzero(part)
            entry_rows.append(r)
            entry_cols.append(c + n_cols)
            values.append(part[r, c])
            n_cols += part.shape[1]
        self._stats_t = sparse.csr_array(
            (np.concatenate(values), (np.concatenate(entry_cols), np.concatenate(entry_rows))),
            shape=(n_cols, k * m * m),
        )
        self._z = z_full
        self._lam = lam
        self._off = ~(patterns[:, :, None] & patterns[:, None, :])
        self._eye = np.eye(m)

    def _w_inverse(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """Padded inverses of W per pattern and sum_k n_k log|W_k|."""
        lz = self._z @ self._lam(theta)
        w_full = self._eye + lz @ lz.T
        w = np.where(self._off, self._eye, w_full[None, :, :])
        sign, logdet = np.linalg.slogdet(w)
        if np.any(sign <= 0):
            raise np.linalg.LinAlgError("marginal covariance not positive definite")
        return np.linalg.inv(w), float(self.counts @ logdet)

    def _contract(self, flats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each column f of ``flats`` (k m m, J), padded (patterns, slots, slots) matrices
        flattened: sum f (x) Sxx (J, p, p), sum f (x) Sxy (J, p) and sum f Syy (J,)."""
        out = self._stats_t @ flats
        pp = self.p * self.p
        return out[:pp].T.reshape(-1, self.p, self.p), out[pp:-1].T, out[-1]

    def profile(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        """-2 REML loglik, b, A = X'W^-1X and rss at ``theta``."""
        winv, logdet_w = self._w_inverse(theta)
        a_all, c_all, yy_all = self._contract(winv.reshape(-1, 1))
        a, c, yy = a_all[0], c_all[0], float(yy_all[0])
        chol = np.linalg.cholesky(a)
        beta = np.linalg.solve(a, c)
        rss = yy - float(c @ beta)
        dof = self.n_obs - self.p
        crit = (
            logdet_w
            + 2.0 * float(np.log(np.diag(chol)).sum())
            + dof * (1.0 + np.log(2.0 * np.pi * rss / dof))
        )
        return crit, beta, a, rss

    def criterion(self, theta: np.ndarray) -> float:
        try:
            return self.profile(theta)[0]
        except np.linalg.LinAlgError:
            return float("inf")

    def criterion_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """-2 REML loglik and its exact gradient in ``theta`` (``lam`` must be linear).

        With ``dW_k`` the derivative of ``W_k`` and ``D_k = -W_k^-1 dW_k W_k^-1``:
        ``d sum n_k log|W_k| = sum n_k tr(W_k^-1 dW_k)``, ``dA = sum D_k (x) Sxx``,
        ``d log|A| = tr(A^-1 dA)``, ``d rss = d(y'W^-1y) - 2 b'dc + b'dA b``.
        """
        theta = np.asarray(theta, dtype=float)
        try:
            winv, logdet_w = self._w_inverse(theta)
        except np.linalg.LinAlgError:
            return float("inf"), np.zeros_like(theta)
        zl = self._z @ self._lam(theta)
        zero = self._lam(np.zeros_like(theta))
        dws = []
        for j in range(theta.size):
            zd = self._z @ (self._lam(np.eye(theta.size)[j]) - zero)
            dw_full = zd @ zl.T + zl @ zd.T
            dws.append(np.where(self._off, 0.0, dw_full[None, :, :]))
        flats = [winv.reshape(-1)] + [-(winv @ dw @ winv).reshape(-1) for dw in dws]
        a_all, c_all, yy_all = self._contract(np.stack(flats, axis=1))
        a, c, yy = a_all[0], c_all[0], float(yy_all[0])
        a_inv = np.linalg.inv(a)
        beta = a_inv @ c
        rss = yy - float(c @ beta)
        dof = self.n_obs - self.p
        crit = (
            logdet_w
            + float(np.linalg.slogdet(a)[1])
            + dof * (1.0 + np.log(2.0 * np.pi * rss / dof))
        )
        grad = np.empty(theta.size)
        for j, dw in enumerate(dws):
            d_logdet_w = float(self.counts @ np.einsum("kab,kab->k", winv, dw))
            da = a_all[j + 1]
            drss = float(yy_all[j + 1]) - 2.0 * float(beta @ c_all[j + 1])
            drss += float(beta @ da @ beta)
            grad[j] = d_logdet_w + float(np.sum(a_inv * da)) + dof * drss / rss
        return float(crit), grad

    def conditional(self, theta: np.ndarray, sigma2: float | None = None) -> RemlFit:
        """Everything at a given ``theta`` (``sigma2``: given, or profiled as rss / (N - p))."""
        crit, beta, a, rss = self.profile(theta)
        s2 = rss / (self.n_obs - self.p) if sigma2 is None else sigma2
        lam = self._lam(theta)
        return RemlFit(
            theta=np.asarray(theta, dtype=float),
            beta=beta,
            cov_beta=s2 * np.linalg.inv(a),
            sigma2=s2,
            g=s2 * lam @ lam.T,
            reml_loglik=float(-crit / 2.0),
            converged=True,
            message="evaluated at given theta",
            n_evaluations=1,
        )

    def fit(
        self,
        theta0: np.ndarray,
        bounds: list[tuple[float | None, float | None]],
        probe: float = 1e-2,
        max_restarts: int = 3,
    ) -> RemlFit:
        """Minimise the profiled criterion with L-BFGS-B (exact gradient) from ``theta0``.

        A diagonal element of ``Lam`` that ends on its bound 0 may be a false stop: the
        criterion is even in it, so its derivative is 0 there whether or not 0 is a minimum.
        Such an end is probed at ``probe``; if the criterion is lower there, the fit restarts
        from that point (at most ``max_restarts`` times).
        """
        x = np.asarray(theta0, dtype=float)
        n_evaluations = 0
        for _ in range(max_restarts + 1):
            res = optimize.minimize(
                self.criterion_and_gradient,
                x,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"ftol": 1e-12, "gtol": 1e-7, "maxiter": 500},
            )
            n_evaluations += int(res.nfev)
            x = np.asarray(res.x, dtype=float)
            at_bound = [
                j for j, (low, _) in enumerate(bounds) if low is not None and x[j] <= low + 1e-10
            ]
            better = None
            for j in at_bound:
                trial = x.copy()
                trial[j] = bounds[j][0] + probe  # type: ignore[operator]
                if self.criterion(trial) < float(res.fun) - 1e-10:
                    better = trial if better is None else better
                    better[j] = trial[j]
            if better is None:
                break
            x = better
        out = self.conditional(x)
        return RemlFit(
            theta=out.theta,
            beta=out.beta,
            cov_beta=out.cov_beta,
            sigma2=out.sigma2,
            g=out.g,
            reml_loglik=out.reml_loglik,
            converged=bool(res.success and np.isfinite(res.fun)),
            message=str(res.message),
            n_evaluations=n_evaluations,
        )
