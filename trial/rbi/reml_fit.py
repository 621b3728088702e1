"""REML fits of the imputation model: MMRM with unstructured covariance, and fast refits.

The criterion, its analytic gradient and the pattern cross-product sums are the project's MMRM
engine (:mod:`trial.models.reml`, :mod:`trial.models.covariance`): batched for Hessians, and as
a single-Sigma transcription of the same formulas (:meth:`UnstructuredReml.evaluate`, fewer
array operations, tested against the engine) for gradients. A fit runs BFGS from a moment
estimate, then Newton steps with a finite-difference Hessian of the analytic gradient until the
Newton decrement g' H^-1 g of -2 l_R falls below :data:`NEWTON_TOL` (the last step is taken;
steps are damped by a line search only while the decrement exceeds
:data:`FULL_STEP_DECREMENT`).

A *refit* near a known optimum (leave one subject out, a bootstrap sample) iterates
theta <- theta - H0^-1 g(theta) with the Hessian H0 of the full-data fit held fixed: a
contraction with rate of order 1 / n for a leave-one-out change, so a few gradient evaluations
reach the refit's optimum. A refit that does not converge in :data:`REFIT_MAX_ITER` steps falls
back to Newton with a fresh Hessian (then to BFGS and Newton from the moment estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from trial.models.covariance import CovarianceStructure
from trial.models.reml import LOG_2PI, PatternData

NEWTON_TOL = 1e-12
"""Newton decrement (-2 l_R units) below which a fit stops after taking its last step."""
FULL_STEP_DECREMENT = 1e-6
"""Below this decrement Newton takes full steps without a line search (the quadratic region:
there the criterion's rounding, ~1e-12 of its value, could hide a true decrease)."""
REFIT_TOL = 1e-14
"""Decrement g' H0^-1 g below which a refit stops (at that theta: its distance to the optimum
is then of order 1e-7 in the H0 norm; the estimates are within ~1e-9 of the refit's optimum)."""
REFIT_MAX_ITER = 40
MAX_NEWTON_STEPS = 50
HESSIAN_STEP = 1e-5


class ImputationModelError(RuntimeError):
    """The REML fit of the imputation model did not reach a stationary point."""


@dataclass(frozen=True)
class RemlOptimum:
    """theta (unstructured Cholesky parameters), fixed effects, Sigma (t, t), -2 l_R."""

    theta: np.ndarray
    beta: np.ndarray
    sigma: np.ndarray
    m2loglik: float
    iterations: int


class UnstructuredReml:
    """The REML criterion of one data set (a :class:`PatternData`) under unstructured Sigma."""

    def __init__(self, data: PatternData) -> None:
        self.data = data
        self.structure = CovarianceStructure("unstructured", data.n_visits)
        t = data.n_visits
        self._diag = np.arange(t)
        self._rows, self._cols = np.tril_indices(t, -1)
        self._pad = np.where(data.pair_mask, 0.0, np.eye(t)[None])

    def evaluate(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """-2 l_R, its gradient in theta, beta and Sigma at one theta (single-Sigma path).

        The same quantities as :meth:`trial.models.reml.PatternData.evaluate` and
        ``gradient_sigma`` with the unstructured chain rule, written for one Sigma with few
        array operations (a refit calls it a few times per subject). Raises
        ``numpy.linalg.LinAlgError`` where Sigma_P or X'WX is not positive definite.
        """
        data, t, p = self.data, self.data.n_visits, self.data.n_fixed
        chol = np.zeros((t, t))
        chol[self._diag, self._diag] = np.exp(theta[:t])
        chol[self._rows, self._cols] = theta[t:]
        sigma = chol @ chol.T
        sub = np.where(data.pair_mask, sigma, self._pad)
        sign, logdets = np.linalg.slogdet(sub)
        zwz_flat = np.linalg.inv(sub).reshape(-1)
        w = zwz_flat.reshape(sub.shape)
        zwz = (zwz_flat[data.flat_index] @ data.s_all).reshape(p + 1, p + 1)
        sign_a, logdet_a = np.linalg.slogdet(zwz[:p, :p])
        if np.any(sign <= 0) or sign_a <= 0:
            raise np.linalg.LinAlgError("Sigma_P or X'WX not positive definite")
        a_inv = np.linalg.inv(zwz[:p, :p])
        beta = a_inv @ zwz[:p, p]
        rss = zwz[p, p] - zwz[:p, p] @ beta
        value = (data.n_obs - p) * LOG_2PI + float(logdets @ data.counts) + logdet_a + rss
        u = np.append(-beta, 1.0)
        m_mat = np.outer(u, u)
        m_mat[:p, :p] += a_inv
        g_flat = np.zeros(w.size)
        g_flat[data.flat_index] = data.s_all @ m_mat.ravel()
        g = g_flat.reshape(w.shape)
        counts_w = np.einsum("k,kab->ab", data.counts, np.where(data.pair_mask, w, 0.0))
        g_sigma = counts_w - (w @ g @ w).sum(0)
        d_chol = (g_sigma + g_sigma.T) @ chol
        grad = np.concatenate(
            [
                d_chol[self._diag, self._diag] * chol[self._diag, self._diag],
                d_chol[self._rows, self._cols],
            ]
        )
        return float(value), grad, beta, sigma

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """-2 l_R and its gradient; (inf, 0) where Sigma or X'WX is not positive definite."""
        try:
            value, grad, _, _ = self.evaluate(theta)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        return value, grad

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Central differences of the analytic gradient, all 2q points in one batch."""
        q = len(theta)
        thetas = np.concatenate(
            [theta + HESSIAN_STEP * np.eye(q), theta - HESSIAN_STEP * np.eye(q)]
        )
        state = self.data.evaluate(self.structure.sigma(thetas))
        grads = self.structure.chain_gradient(thetas, self.data.gradient_sigma(state))
        h = (grads[:q] - grads[q:]) / (2.0 * HESSIAN_STEP)
        return 0.5 * (h + h.T)

    def optimum(self, theta: np.ndarray, iterations: int) -> RemlOptimum:
        sigma = self.structure.sigma(theta[None])
        state = self.data.evaluate(sigma)
        return RemlOptimum(theta, state.beta[0], sigma[0], float(state.m2loglik[0]), iterations)

    def moment_start(self) -> np.ndarray:
        """theta of the pairwise covariance of OLS residuals, made positive definite."""
        data = self.data
        t = data.n_visits
        ols = data.evaluate(np.eye(t)[None]).beta[0]
        # residual cross-products per pattern from the stored sums: S_ab contracted with u u'
        u = np.concatenate([-ols, [1.0]])
        resid_pp = data.scatter((data.s_all @ np.outer(u, u).ravel())[None])[0]
        pairs = (data.pair_mask * data.counts[:, None, None]).sum(0)
        sigma0 = resid_pp.sum(0) / np.maximum(pairs, 1.0)
        eig, vec = np.linalg.eigh(0.5 * (sigma0 + sigma0.T))
        floor = 1e-2 * max(float(eig[-1]), 1e-8)
        return self.structure.start((vec * np.maximum(eig, floor)) @ vec.T)

    def newton(self, theta: np.ndarray, iterations: int = 0) -> tuple[RemlOptimum, np.ndarray]:
        """Newton from ``theta`` to the optimum; the optimum and the Hessian there."""
        for _ in range(MAX_NEWTON_STEPS):
            value, grad = self.value_and_gradient(theta)
            if not np.isfinite(value):
                break
            h = self.hessian(theta)
            eig = np.linalg.eigvalsh(h)
            if eig[0] <= 1e-9 * eig[-1]:
                break
            step = np.linalg.solve(h, grad)
            decrement = float(grad @ step)
            if decrement < NEWTON_TOL:
                theta = theta - step
                return self.optimum(theta, iterations + 1), self.hessian(theta)
            length = 1.0
            if decrement > FULL_STEP_DECREMENT:
                while (
                    length > 1e-8 and not self.value_and_gradient(theta - length * step)[0] <= value
                ):
                    length /= 2.0
                if length <= 1e-8:
                    break
            theta = theta - length * step
            iterations += 1
        raise ImputationModelError(
            "the REML fit of the imputation model (unstructured covariance) did not converge"
        )

    def fit(self, start: np.ndarray | None = None) -> tuple[RemlOptimum, np.ndarray]:
        """BFGS from ``start`` (default: the moment estimate), then Newton; the optimum and its
        Hessian."""
        opt = optimize.minimize(
            self.value_and_gradient,
            self.moment_start() if start is None else start,
            jac=True,
            method="BFGS",
            options={"maxiter": 2000, "gtol": 1e-4},
        )
        return self.newton(np.asarray(opt.x), int(opt.nit))

    def refit(
        self, theta0: np.ndarray, h0_inv: np.ndarray, fallback: np.ndarray | None = None
    ) -> tuple[RemlOptimum, bool]:
        """Optimum near ``theta0`` by fixed-Hessian Newton steps (see module doc); and whether
        a fallback was needed: Newton with a fresh Hessian from ``fallback`` (default
        ``theta0``), then BFGS and Newton from the moment estimate.

        Stops at the first theta whose decrement g' H0^-1 g is below :data:`REFIT_TOL` and
        returns the estimates evaluated there (no further evaluation).
        """
        theta = theta0.copy()
        for k in range(REFIT_MAX_ITER):
            try:
                value, grad, beta, sigma = self.evaluate(theta)
            except np.linalg.LinAlgError:
                break
            step = h0_inv @ grad
            if float(grad @ step) < REFIT_TOL:
                return RemlOptimum(theta, beta, sigma, value, k + 1), False
            theta = theta - step
        return self.refit_fallback(theta0 if fallback is None else fallback), True

    def refit_fallback(self, start: np.ndarray) -> RemlOptimum:
        """The fallback of :meth:`refit`: Newton with a fresh Hessian from ``start``, then BFGS
        and Newton from the moment estimate."""
        try:
            return self.newton(start)[0]
        except ImputationModelError:
            return self.fit()[0]
