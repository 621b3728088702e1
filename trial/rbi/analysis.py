"""The analysis step: ANCOVA per visit on completed data, batched over samples.

At each visit, ``outcome ~ group + analysis covariates`` by least squares over the subjects of a
sample. A sample is given by integer subject weights: all ones (the data), a zero for the
subject left out (jackknife) or bootstrap multiplicities - weighted least squares with integer
weights is ordinary least squares on the sample with its repeated subjects.

Parameters per visit: ``trt_<level>`` (coefficient of each non-reference group: its difference
from the reference), then ``lsm_<level>`` for every group: the mean over the sample's subjects of
the fitted value with the group set to that level (rbmi's ``counterfactual`` weighting; without
group-by-covariate terms this is the prediction at the covariate means, factor covariates
weighted by their observed proportions). Standard errors (for Rubin's rules) are the usual
s^2 L (X'X)^-1 L' with df = n - k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trial.rbi.spec import RbiInputError


def parameter_names(groups: list[str]) -> list[str]:
    return [f"trt_{g}" for g in groups[1:]] + [f"lsm_{g}" for g in groups]


@dataclass(frozen=True)
class AncovaEstimates:
    """``estimate`` (S, t, P); ``variance`` (S, t, P) or None; residual ``df`` (S,)."""

    estimate: np.ndarray
    variance: np.ndarray | None
    df: np.ndarray


def ancova(
    x_analysis: np.ndarray,
    outcomes: np.ndarray,
    weights: np.ndarray,
    n_groups: int,
    *,
    with_variance: bool = False,
) -> AncovaEstimates:
    """Per-visit ANCOVA of ``outcomes`` (S, n, t) with subject ``weights`` (S, n).

    ``x_analysis`` (t, n, k): per-visit model rows, column 0 the intercept and columns
    1 .. n_groups - 1 the group dummies.
    """
    n_sets = outcomes.shape[0]
    t, _, k = x_analysis.shape
    n_par = 2 * n_groups - 1
    estimate = np.empty((n_sets, t, n_par))
    variance = np.empty((n_sets, t, n_par)) if with_variance else None
    total = weights.sum(1)
    df = total - k
    for v in range(t):
        x = x_analysis[v]
        y = outcomes[:, :, v]
        gram = (weights @ (x[:, :, None] * x[:, None, :]).reshape(len(x), k * k)).reshape(
            n_sets, k, k
        )
        rhs = (weights * y) @ x
        try:
            gram_inv = np.linalg.inv(gram)
        except np.linalg.LinAlgError as err:
            raise RbiInputError(
                "the ANCOVA is not estimable in a resample (a covariate level absent from a "
                "bootstrap sample?); use fewer factor levels or the jackknife"
            ) from err
        beta = np.einsum("skl,sl->sk", gram_inv, rhs)
        rows = np.repeat((weights @ x / total[:, None])[:, None, :], n_groups, axis=1)
        rows[:, :, 1:n_groups] = np.eye(n_groups)[:, 1:][None]
        contrasts = np.concatenate(
            [np.broadcast_to(np.eye(k)[1:n_groups], (n_sets, n_groups - 1, k)), rows], axis=1
        )
        estimate[:, v] = np.einsum("spk,sk->sp", contrasts, beta)
        if variance is not None:
            resid = y - beta @ x.T
            s2 = np.einsum("sn,sn->s", weights, resid**2) / df
            quad = np.einsum("spk,skl,spl->sp", contrasts, gram_inv, contrasts)
            variance[:, v] = s2[:, None] * quad
    return AncovaEstimates(estimate, variance, df)
