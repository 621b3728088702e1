"""What a reference-based imputation run is asked to do (column names, model terms, method).

Nothing here knows a study: every name is a column of the caller's long table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STRATEGIES = ("MAR", "JR", "CR", "CIR")
"""MAR; jump to reference; copy reference; copy increments in reference (Carpenter et al. 2013)."""

METHODS = ("condmean-jackknife", "condmean-bootstrap", "bayes-approx")
"""Conditional mean imputation with leave-one-subject-out jackknife or with bootstrap
(Wolbers et al. 2022); approximate Bayesian multiple imputation (bootstrap draws of the
imputation model, one random imputation per draw) pooled with Rubin's rules."""

STRATEGY_COLUMN = "strategy"
"""Column of the ICE table holding each subject's strategy."""

DELTA_COLUMN = "delta"
"""Column of the delta table holding the shift added to imputed values (outcome units)."""


class RbiInputError(ValueError):
    """The caller's data or specification cannot be analysed; the message says what to fix."""


@dataclass(frozen=True)
class RbiSpec:
    """One reference-based imputation analysis.

    ``subject``, ``visit``, ``group``, ``outcome``: column names of the long table.
    ``reference``: the level of ``group`` that is the reference arm (first level).
    ``covariates``: terms of the imputation model beyond ``group * visit``, R style
    (``"A*VISIT"`` expands to ``A + VISIT + A:VISIT``; ``"A:B"`` an interaction only; names are
    columns of the data, the visit and group columns included). ``analysis_covariates``: terms
    of the per-visit ANCOVA beyond ``group`` (no visit term: one model per visit).
    ``visits``: the visit order (default: order of first appearance in the data).
    ``strategy``: when given, replaces the strategy of every ICE row that is not ``MAR`` (and
    is the strategy of every row of an ICE table without a ``strategy`` column).
    ``n_samples``: bootstrap samples (``condmean-bootstrap``) or imputations
    (``bayes-approx``); the jackknife always uses one sample per subject.
    ``alpha``: two-sided level of the confidence intervals.
    ``fit_post_ice``: also fit the imputation model on observed values after a reference-based
    ICE (default False: rbmi's convention leaves them out of the fit and keeps them in the
    analysis; True where a protocol fits the model on every observed value that is not
    excluded by a hypothetical strategy, e.g. treatment-policy values after discontinuation).
    """

    subject: str
    visit: str
    group: str
    reference: str
    outcome: str
    covariates: list[str] = field(default_factory=list)
    analysis_covariates: list[str] = field(default_factory=list)
    visits: list[str] | None = None
    strategy: str | None = None
    method: str = "condmean-jackknife"
    n_samples: int = 200
    seed: int = 2013
    alpha: float = 0.05
    fit_post_ice: bool = False

    def __post_init__(self) -> None:
        if self.strategy is not None and self.strategy not in STRATEGIES:
            raise RbiInputError(
                f"unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}"
            )
        if self.method not in METHODS:
            raise RbiInputError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.method != "condmean-jackknife" and self.n_samples < 2:
            raise RbiInputError(f"n_samples must be at least 2 for {self.method}")
        if not 0.0 < self.alpha < 1.0:
            raise RbiInputError(f"alpha must be in (0, 1), not {self.alpha}")
