"""REML fits of the imputation model: MMRM with unstructured covariance, and fast refits.

The criterion, its analytic gradient and the pattern cross-product sums are the project's MMRM
engine (:mod:`trial.models.reml`, :mod:`trial.models.covariance`). A fit runs BFGS from a moment
estimate, then Newton steps with a finite-difference Hessian of the analytic gradient until the
Newton decrement g' H^-1 g of -2 l_R falls below :data:`NEWTON_TOL` (the last step is taken).

A *refit* near a known optimum (leave one subject out, a bootstrap sample) iterates
theta <- theta - H0^-1 g(theta) with the Hessian H0 of the full-data fit held fixed: a
contraction with rate of order 1 / n for a leave-one-out change, so a few gradient evaluations
reach the refit's optimum. A refit that does not converge in :data:`REFIT_MAX_ITER` steps falls
back to BFGS and Newton from the same start (then from the moment estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from trial.models.covariance import CovarianceStructure
from trial.models.reml import PatternData

NEWTON_TOL = 1e-12
"""Newton decrement (-2 l_R units) below which a fit stops after taking its last step."""
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

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """-2 l_R and its gradient; (inf, 0) where Sigma or X'WX is not positive definite."""
        try:
            state = self.data.evaluate(self.structure.sigma(theta[None]))
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        grad = self.structure.chain_gradient(theta[None], self.data.gradient_sigma(state))
        return float(state.m2loglik[0]), grad[0]

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
            length = 1.0
            while length > 1e-8 and not self.value_and_gradient(theta - length * step)[0] <= value:
                length /= 2.0
            if length <= 1e-8:
                if decrement < NEWTON_TOL:
                    return self.optimum(theta, iterations), h
                break
            theta = theta - length * step
            iterations += 1
            if decrement < NEWTON_TOL:
                return self.optimum(theta, iterations), self.hessian(theta)
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
        the BFGS and Newton fallback (from ``fallback``, default ``theta0``) was needed.

        Stops at the first theta whose decrement g' H0^-1 g is below :data:`REFIT_TOL` and
        returns the estimates evaluated there (no further evaluation).
        """
        theta = theta0.copy()
        for k in range(REFIT_MAX_ITER):
            try:
                sigma = self.structure.sigma(theta[None])
                state = self.data.evaluate(sigma)
            except np.linalg.LinAlgError:
                break
            grad = self.structure.chain_gradient(theta[None], self.data.gradient_sigma(state))[0]
            step = h0_inv @ grad
            if float(grad @ step) < REFIT_TOL:
                m2 = float(state.m2loglik[0])
                return RemlOptimum(theta, state.beta[0], sigma[0], m2, k + 1), False
            theta = theta - step
        try:
            return self.fit(theta0 if fallback is None else fallback)[0], True
        except ImputationModelError:
            return self.fit()[0], True
