"""run_rbi: fit the imputation model, draw its parameters per sample, impute, analyse, pool.

Samples by method (all share the imputation model of :mod:`trial.rbi.reml_fit`):

- ``condmean-jackknife``: one REML refit per subject left out (the pattern sums with that
  subject's contribution removed, warm-started at the full fit: :mod:`trial.rbi.jackknife`);
  conditional mean imputation of every subject and the ANCOVA without the left-out subject.
- ``condmean-bootstrap``: subjects resampled with replacement within groups; REML refit on the
  bootstrap sample; conditional mean imputation; ANCOVA on the bootstrap sample.
- ``bayes-approx``: the bootstrap refits as parameter draws; one random imputation of the
  original data per draw; ANCOVA with its standard errors; Rubin's rules.

Parameter draws do not depend on a delta, so :func:`run_rbi_deltas` analyses many deltas from
one set of fits, and :func:`scaled_delta_curve` a grid of multiples of one delta (a
tipping-point curve) from two analyses (:func:`scaled_delta_curves`: several delta tables, the
analysis without a shift done once). Nor do they depend on the ICE strategies when the fit
rows are the same: :func:`fit_rbi` takes over the draws of such an earlier fit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from trial.models.reml import PatternData
from trial.rbi.analysis import AncovaEstimates, ancova, parameter_names
from trial.rbi.bootstrap import BootstrapRefits
from trial.rbi.impute import Imputer
from trial.rbi.jackknife import LeaveOneOut
from trial.rbi.pool import pool_bootstrap, pool_jackknife, pool_rubin
from trial.rbi.prepare import Prepared, full_rank, prepare
from trial.rbi.reml_fit import ImputationModelError, RemlOptimum, UnstructuredReml
from trial.rbi.spec import DELTA_COLUMN, RbiInputError, RbiSpec
from trial.rbi.threads import one_blas_thread

CHUNK = 128
"""Samples imputed and analysed at once (bounds memory at CHUNK x subjects x visits)."""

MAX_REDRAWN_SHARE = 0.1
"""Share of ``n_samples`` that may be redrawn (not estimable, or not fitted) before an error."""

POOLED_COLUMNS = ["visit", "parameter", "estimate", "se", "lci", "uci", "pvalue", "df"]


@dataclass
class RbiResult:
    """Pooled inference and what was fitted.

    ``pooled``: one row per visit and parameter (``trt_<level>``: level minus reference;
    ``lsm_<level>``: LS mean of a group), columns :data:`POOLED_COLUMNS`; ``df`` is null for
    the normal-based jackknife and bootstrap. ``samples``: the estimate of every sample
    (``sample``, ``visit``, ``parameter``, ``estimate``). ``imputed``: the grid with the
    full-data conditional-mean imputation (``imputed`` flags imputed values, delta included).
    ``coefficients`` / ``covariance``: the full-data imputation model. ``fit``: counts and
    settings (subjects, observations fitted, strategies, method, samples, refits that needed
    a fallback, bootstrap samples redrawn, -2 REML log-likelihood).
    """

    pooled: pl.DataFrame
    samples: pl.DataFrame
    imputed: pl.DataFrame
    coefficients: pl.DataFrame
    covariance: pl.DataFrame
    fit: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Draws:
    """Imputation-model parameters per sample and the subjects' weight in each sample
    (``weights`` None for the jackknife: sample i is every subject but i); ``full`` the
    full-data fit and ``hessian`` the Hessian of -2 l_R in theta there."""

    full: RemlOptimum
    hessian: np.ndarray
    betas: np.ndarray
    sigmas: np.ndarray
    weights: np.ndarray | None
    fallbacks: int
    redrawn: int
    seconds: dict[str, float] = field(default_factory=dict)


def pattern_data(prep: Prepared, ids: np.ndarray | None = None) -> PatternData:
    """Pattern sums of the fit rows, of all subjects or of a resample ``ids``."""
    mask = prep.fit_mask if ids is None else prep.fit_mask[ids]
    x = prep.x_own if ids is None else prep.x_own[ids]
    y = prep.y if ids is None else prep.y[ids]
    subject, visit = np.nonzero(mask)
    return PatternData(x[mask], y[mask], subject, visit, prep.n_visits)


def _stratified_resample(prep: Prepared, rng: np.random.Generator) -> np.ndarray:
    """Subject indices of a bootstrap sample, resampled within each group."""
    parts = []
    for g in range(len(prep.groups)):
        members = np.flatnonzero(prep.group_index == g)
        parts.append(rng.choice(members, size=len(members), replace=True))
    return np.sort(np.concatenate(parts))


def _single_subject_columns(prep: Prepared) -> str | None:
    """A model column that only one subject informs (the jackknife cannot leave it out)."""
    fit_cols = ((prep.x_own != 0) & prep.fit_mask[:, :, None]).any(1).sum(0)
    ana_cols = (prep.x_analysis != 0).any(0).sum(0)
    for names, counts in ((prep.terms, fit_cols), (prep.analysis_terms, ana_cols)):
        single = [name for name, c in zip(names, counts, strict=True) if c <= 1]
        if single:
            return single[0]
    return None


def _valid_resample(prep: Prepared, ids: np.ndarray) -> bool:
    """Whether the imputation model, and for conditional mean the ANCOVA of every visit, is
    estimable on the resample ``ids``."""
    mask = prep.fit_mask[ids]
    if not full_rank(prep.x_own[ids][mask]):
        return False
    if prep.spec.method == "bayes-approx":
        return True
    return all(full_rank(prep.x_analysis[v][ids]) for v in range(prep.n_visits))


def _jackknife(
    prep: Prepared, model: UnstructuredReml, full: RemlOptimum, h_inv: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """One refit per subject left out (all at once: :meth:`LeaveOneOut.refit_all`): betas,
    Sigmas and the number of fallbacks."""
    column = _single_subject_columns(prep)
    if column is not None:
        raise RbiInputError(
            f"model column {column!r} is informed by one subject only: the jackknife cannot "
            "leave that subject out; merge rare covariate levels"
        )
    return LeaveOneOut(prep, model, full, h_inv).refit_all()


def _bootstrap(
    prep: Prepared, model: UnstructuredReml, full: RemlOptimum, h_inv: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """``spec.n_samples`` bootstrap refits: betas, Sigmas, subject weights, the number of
    refits that needed a fallback and of samples redrawn.

    Resamples are drawn one after the other from ``spec.seed``; one that is not estimable is
    redrawn at once. The estimable ones are refitted in chunks of :data:`CHUNK` at once
    (:class:`trial.rbi.bootstrap.BootstrapRefits`); one that the batch could not finish (its
    fixed-Hessian steps did not converge, or its criterion could not be evaluated) goes on to
    the fallback of :meth:`UnstructuredReml.refit` alone, and one whose fit fails there is
    redrawn: the samples kept are the first ``n_samples`` draws that are estimable and fitted,
    in the order drawn, as when each was refitted alone as soon as it was drawn.
    """
    spec, n = prep.spec, prep.n_subjects
    rng = np.random.default_rng(spec.seed)
    refits = BootstrapRefits(prep, model, full, h_inv)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    fallbacks = redrawn = 0
    while len(kept) < spec.n_samples:
        drawn: list[np.ndarray] = []
        while len(kept) + len(drawn) < spec.n_samples and len(drawn) < CHUNK:
            if redrawn > MAX_REDRAWN_SHARE * spec.n_samples:
                raise RbiInputError(
                    f"{redrawn} bootstrap samples were not estimable or not fitted (a covariate "
                    "level too rare to be in every resample?); merge rare levels or use the "
                    "jackknife"
                )
            ids = _stratified_resample(prep, rng)
            if _valid_resample(prep, ids):
                drawn.append(ids)
            else:
                redrawn += 1
        weights = np.array([np.bincount(ids, minlength=n) for ids in drawn], dtype=float)
        betas, sigmas, done = refits.refit_all(weights)
        for j, ids in enumerate(drawn):
            if not done[j]:
                try:
                    opt = UnstructuredReml(pattern_data(prep, ids)).refit_fallback(full.theta)
                except (ImputationModelError, np.linalg.LinAlgError):
                    redrawn += 1
                    continue
                fallbacks += 1
                betas[j], sigmas[j] = opt.beta, opt.sigma
            kept.append((betas[j], sigmas[j], weights[j]))
    return (
        np.array([k[0] for k in kept]),
        np.array([k[1] for k in kept]),
        np.array([k[2] for k in kept]),
        fallbacks,
        redrawn,
    )


def draw_parameters(
    prep: Prepared, full_fit: tuple[RemlOptimum, np.ndarray] | None = None
) -> Draws:
    """Full-data fit plus the per-sample refits of the spec's method. ``full_fit``: the
    full-data optimum and Hessian when already fitted on the same rows
    (:func:`same_fit_rows`), else fitted here.

    A bootstrap sample on which the imputation model (or, for conditional mean, a visit's
    ANCOVA) is not estimable - a rare covariate level left out - or whose fit fails is drawn
    again, as rbmi does; more than :data:`MAX_REDRAWN_SHARE` of ``n_samples`` redrawn is an error.
    """
    spec = prep.spec
    start = time.perf_counter()
    model = UnstructuredReml(pattern_data(prep))
    full, hessian = model.fit() if full_fit is None else full_fit
    h_inv = np.linalg.inv(hessian)
    seconds = {"full_fit": time.perf_counter() - start}
    start = time.perf_counter()
    redrawn = 0
    weights: np.ndarray | None = None
    if spec.method == "condmean-jackknife":
        betas, sigmas, fallbacks = _jackknife(prep, model, full, h_inv)
    else:
        betas, sigmas, weights, fallbacks, redrawn = _bootstrap(prep, model, full, h_inv)
    seconds["refits"] = time.perf_counter() - start
    return Draws(full, hessian, betas, sigmas, weights, fallbacks, redrawn, seconds)


def point_estimates(prep: Prepared) -> np.ndarray:
    """Estimates (t, P) of the conditional-mean analysis of all subjects, fitted from scratch
    (the naive baseline of the jackknife: one of these per subject left out)."""
    full, _ = UnstructuredReml(pattern_data(prep)).fit()
    completed = Imputer(prep).complete(full.beta[None], full.sigma[None])
    ones = np.ones((1, prep.n_subjects))
    return ancova(prep.x_analysis, completed, ones, len(prep.groups)).estimate[0]


def delta_matrix(prep: Prepared, delta: pl.DataFrame | None) -> np.ndarray | None:
    """The (n, t) shifts of a delta table keyed by any of subject, group and visit columns."""
    if delta is None:
        return None
    spec = prep.spec
    keys = [c for c in (spec.subject, spec.group, spec.visit) if c in delta.columns]
    if DELTA_COLUMN not in delta.columns or not keys:
        raise RbiInputError(
            f"a delta table needs a {DELTA_COLUMN!r} column and at least one of the columns "
            f"{spec.subject!r}, {spec.group!r}, {spec.visit!r}"
        )
    table = delta.select(*(pl.col(k).cast(pl.String) for k in keys), pl.col(DELTA_COLUMN))
    if table.select(pl.struct(keys).is_duplicated().any()).item():
        raise RbiInputError(f"the delta table has two rows for the same {', '.join(keys)}")
    for k in keys:
        known = set(prep.grid.get_column(k).to_list())
        unknown = sorted(set(table.get_column(k).drop_nulls().to_list()) - known)
        if unknown:
            raise RbiInputError(f"the delta table names {k} value(s) {unknown} not in the data")
    joined = prep.grid.join(table, on=keys, how="left", maintain_order="left")
    values = joined.get_column(DELTA_COLUMN).cast(pl.Float64).fill_null(0.0).to_numpy()
    return values.reshape(prep.n_subjects, prep.n_visits)


def _sample_weights(prep: Prepared, draws: Draws, lo: int, hi: int) -> np.ndarray:
    """Subject weights (hi - lo, n) of samples ``lo .. hi - 1`` in the analysis: all ones for
    approximate Bayesian MI, a zero for the subject a jackknife sample leaves out, bootstrap
    multiplicities."""
    if prep.spec.method == "bayes-approx":
        return np.ones((hi - lo, prep.n_subjects))
    if draws.weights is None:  # jackknife: sample i leaves subject i out
        weights = np.ones((hi - lo, prep.n_subjects))
        weights[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        return weights
    return draws.weights[lo:hi]


def _analyse_samples(
    prep: Prepared, draws: Draws, imputer: Imputer, delta: np.ndarray | None
) -> AncovaEstimates:
    spec = prep.spec
    bayes = spec.method == "bayes-approx"
    rng = np.random.default_rng([spec.seed, 1]) if bayes else None
    n_sets = len(draws.betas)
    parts = []
    for lo in range(0, n_sets, CHUNK):
        hi = min(lo + CHUNK, n_sets)
        completed = imputer.complete(draws.betas[lo:hi], draws.sigmas[lo:hi], rng, delta)
        weights = _sample_weights(prep, draws, lo, hi)
        parts.append(
            ancova(prep.x_analysis, completed, weights, len(prep.groups), with_variance=bayes)
        )
    return AncovaEstimates(
        np.concatenate([p.estimate for p in parts]),
        np.concatenate([p.variance for p in parts if p.variance is not None]) if bayes else None,
        np.concatenate([p.df for p in parts]),
    )


def _long(prep: Prepared, values: dict[str, np.ndarray], n_rows: int = 1) -> pl.DataFrame:
    """Pooled values, (t, P) per key (or (n_rows, t, P): blocks one after the other), as
    :data:`POOLED_COLUMNS` rows, visit-major within a block."""
    names = parameter_names(prep.groups)
    t, n_par = len(prep.visits), len(names)
    frame = pl.DataFrame(
        {
            "visit": [v for v in prep.visits for _ in names] * n_rows,
            "parameter": names * t * n_rows,
            **{k: v.reshape(n_rows * t * n_par) for k, v in values.items()},
        }
    )
    return frame.with_columns(pl.col("df").fill_nan(None)).select(POOLED_COLUMNS)


def _pool(prep: Prepared, full: np.ndarray, samples: AncovaEstimates) -> dict[str, np.ndarray]:
    """Pooled inference of the spec's method; ``full`` and ``samples.estimate`` may carry
    trailing axes beyond (t, P) (every pooling rule works per element)."""
    spec = prep.spec
    if spec.method == "condmean-jackknife":
        return pool_jackknife(full, samples.estimate, spec.alpha)
    if spec.method == "condmean-bootstrap":
        return pool_bootstrap(full, samples.estimate, spec.alpha)
    assert samples.variance is not None
    v_com = float(prep.n_subjects - prep.x_analysis.shape[2])
    return pool_rubin(samples.estimate, samples.variance, v_com, spec.alpha)


def _sample_frame(prep: Prepared, estimate: np.ndarray) -> pl.DataFrame:
    """``sample, visit, parameter, estimate`` of sample estimates (S, t, P), sample-major."""
    names = parameter_names(prep.groups)
    n_sets, t, n_par = estimate.shape
    cell = np.arange(n_sets * t * n_par)
    return pl.DataFrame(
        {
            "sample": cell // (t * n_par),
            "visit": pl.Series(prep.visits).gather(cell // n_par % t),
            "parameter": pl.Series(names).gather(cell % n_par),
            "estimate": estimate.ravel(),
        }
    )


def analyse(prep: Prepared, draws: Draws, delta: pl.DataFrame | None = None) -> RbiResult:
    """Impute, analyse and pool for one delta (None: no shift)."""
    spec = prep.spec
    shift = delta_matrix(prep, delta)
    imputer = Imputer(prep)
    full_completed = imputer.complete(draws.full.beta[None], draws.full.sigma[None], None, shift)
    ones = np.ones((1, prep.n_subjects))
    full = ancova(prep.x_analysis, full_completed, ones, len(prep.groups)).estimate[0]
    samples = _analyse_samples(prep, draws, imputer, shift)
    pooled = _pool(prep, full, samples)
    n_sets, t = samples.estimate.shape[:2]
    sample_frame = _sample_frame(prep, samples.estimate)
    imputed = prep.grid.with_columns(
        pl.Series(spec.outcome, full_completed[0].ravel()),
        pl.Series("imputed", prep.missing.ravel()),
    )
    t_vis = prep.visits
    coefficients = pl.DataFrame({"term": prep.terms, "estimate": draws.full.beta})
    covariance = pl.DataFrame(
        {
            "visit_row": [a for a in t_vis for _ in t_vis],
            "visit_col": [b for _ in t_vis for b in t_vis],
            "covariance": draws.full.sigma.ravel(),
        }
    )
    strategies, counts = np.unique(prep.strategy[prep.ice_visit < t], return_counts=True)
    fit: dict[str, object] = {
        "method": spec.method,
        "n_subjects": prep.n_subjects,
        "n_visits": t,
        "n_observed": int((~prep.missing).sum()),
        "n_imputed": int(prep.missing.sum()),
        "n_fit_observations": int(prep.fit_mask.sum()),
        "ice_strategies": {str(s): int(c) for s, c in zip(strategies, counts, strict=True)},
        "n_samples": int(n_sets),
        "refit_fallbacks": draws.fallbacks,
        "redrawn_samples": draws.redrawn,
        "m2_reml_loglik": draws.full.m2loglik,
        "alpha": spec.alpha,
        "seconds": draws.seconds,
    }
    return RbiResult(
        pooled=_long(prep, pooled),
        samples=sample_frame,
        imputed=imputed,
        coefficients=coefficients,
        covariance=covariance,
        fit=fit,
    )


def run_rbi(
    data: pl.DataFrame,
    ice: pl.DataFrame | None,
    spec: RbiSpec,
    delta: pl.DataFrame | None = None,
) -> RbiResult:
    """Reference-based imputation of ``data`` under the ICEs of ``ice`` (see the package doc);
    on one BLAS thread (:func:`trial.rbi.threads.one_blas_thread`), like every entry point of
    the engine."""
    with one_blas_thread():
        prep = prepare(data, ice, spec)
        return analyse(prep, draw_parameters(prep), delta)


def scaled_delta_curve(
    prep: Prepared, draws: Draws, delta: pl.DataFrame, scales: Sequence[float]
) -> pl.DataFrame:
    """Pooled results for the delta table's shifts times each of ``scales``, by linearity.

    Under conditional mean imputation every sample's completed data are the data imputed
    without a delta plus the delta at the imputed cells, and the ANCOVA estimates are linear
    in the completed data: the estimates at ``c x delta`` are ``e_0 + c e_1``, with ``e_0`` the
    analysis without a shift and ``e_1`` the analysis of the shift alone (zero at observed
    cells). Two analyses of the samples then give the whole curve; only the pooling is done per
    scale. The same numbers as :func:`analyse` per scale up to rounding (relative 1e-14).

    Columns ``scale`` then :data:`POOLED_COLUMNS`, scale-major in the order given.
    Approximate Bayesian MI is not linear (its within-imputation variances are not): use
    :func:`analyse` per delta there.
    """
    return scaled_delta_curves(prep, draws, [delta], scales)[0]


def scaled_delta_curves(
    prep: Prepared, draws: Draws, deltas: Sequence[pl.DataFrame], scales: Sequence[float]
) -> list[pl.DataFrame]:
    """:func:`scaled_delta_curve` of each of ``deltas`` (e.g. one arm shifted at a time): the
    analysis without a shift, ``e_0``, is the same for every delta table and is done once."""
    if prep.spec.method == "bayes-approx":
        raise RbiInputError("a scaled delta curve needs conditional mean imputation")
    shifts = [delta_matrix(prep, delta) for delta in deltas]
    n_groups = len(prep.groups)
    imputer = Imputer(prep)
    ones = np.ones((1, prep.n_subjects))
    base_completed = imputer.complete(draws.full.beta[None], draws.full.sigma[None])
    full_base = ancova(prep.x_analysis, base_completed, ones, n_groups).estimate[0]
    samples_base = _analyse_samples(prep, draws, imputer, None).estimate
    n_sets = len(draws.betas)
    c = np.asarray(scales, dtype=float)
    curves = []
    for shift in shifts:
        assert shift is not None
        shift_only = np.where(prep.missing, shift, 0.0)[None]
        full_shift = ancova(prep.x_analysis, shift_only, ones, n_groups).estimate[0]
        samples_shift = np.concatenate(
            [
                ancova(
                    prep.x_analysis,
                    np.broadcast_to(shift_only, (hi - lo, *shift.shape)),
                    _sample_weights(prep, draws, lo, hi),
                    n_groups,
                ).estimate
                for lo in range(0, n_sets, CHUNK)
                for hi in [min(lo + CHUNK, n_sets)]
            ]
        )
        full = full_base[..., None] + c * full_shift[..., None]  # (t, P, C)
        samples = samples_base[..., None] + c * samples_shift[..., None]  # (S, t, P, C)
        pooled = _pool(prep, full, AncovaEstimates(samples, None, np.empty(0)))
        frame = _long(prep, {k: np.moveaxis(v, -1, 0) for k, v in pooled.items()}, n_rows=len(c))
        curves.append(
            frame.select(pl.Series("scale", np.repeat(c, frame.height // len(c))), pl.all())
        )
    return curves


@dataclass(frozen=True)
class RbiFits:
    """One imputation model's prepared data and parameter draws: any number of deltas can be
    analysed from them (:meth:`analyse` seeds its own generator, so a delta's result does not
    depend on which deltas were analysed before it)."""

    prep: Prepared
    draws: Draws

    def analyse(self, delta: pl.DataFrame | None = None) -> RbiResult:
        with one_blas_thread():
            return analyse(self.prep, self.draws, delta)

    def scaled_delta_curve(self, delta: pl.DataFrame, scales: Sequence[float]) -> pl.DataFrame:
        """:func:`scaled_delta_curve` of these fits."""
        with one_blas_thread():
            return scaled_delta_curve(self.prep, self.draws, delta, scales)

    def scaled_delta_curves(
        self, deltas: Sequence[pl.DataFrame], scales: Sequence[float]
    ) -> list[pl.DataFrame]:
        """:func:`scaled_delta_curves` of these fits."""
        with one_blas_thread():
            return scaled_delta_curves(self.prep, self.draws, deltas, scales)


def same_fit_rows(a: Prepared, b: Prepared) -> bool:
    """Whether the full-data fit of the imputation model of ``a`` is that of ``b``: the same
    subjects, visits, model columns, fit rows and values (the same pattern sums, added in the
    same order, so the same optimum to the last bit)."""
    return (
        (a.subjects, a.visits, a.terms) == (b.subjects, b.visits, b.terms)
        and np.array_equal(a.fit_mask, b.fit_mask)
        and np.array_equal(a.x_own[a.fit_mask], b.x_own[b.fit_mask])
        and np.array_equal(a.y[a.fit_mask], b.y[b.fit_mask])
    )


def same_fit_inputs(a: Prepared, b: Prepared) -> bool:
    """Whether the parameter draws of ``a`` are those of ``b``: the same method, samples and
    seed, the same fit rows (:func:`same_fit_rows`), groups and analysis rows (the ICE
    strategies may differ: they enter the draws only through the fit rows)."""
    sa, sb = a.spec, b.spec
    return (
        (sa.method, sa.n_samples, sa.seed) == (sb.method, sb.n_samples, sb.seed)
        and same_fit_rows(a, b)
        and a.groups == b.groups
        and a.x_analysis.shape == b.x_analysis.shape
        and np.array_equal(a.group_index, b.group_index)
        and np.array_equal(a.x_analysis, b.x_analysis)
    )


def fit_rbi(
    data: pl.DataFrame,
    ice: pl.DataFrame | None,
    spec: RbiSpec,
    reuse: Sequence[RbiFits] = (),
) -> RbiFits:
    """Prepare ``data`` and draw the imputation model's parameters once; or take the draws of
    the first of ``reuse`` fitted on the same rows (:func:`same_fit_inputs`: e.g. the same data
    under another reference-based strategy, when post-ICE values are fitted). With another
    method (or samples, or seed) on the same fit rows, only the full-data fit is taken over
    (:func:`same_fit_rows`: e.g. the check of an estimand, on the estimand's rows)."""
    with one_blas_thread():
        prep = prepare(data, ice, spec)
        for fits in reuse:
            if same_fit_inputs(prep, fits.prep):
                return RbiFits(prep, fits.draws)
        full_fit = next(
            ((f.draws.full, f.draws.hessian) for f in reuse if same_fit_rows(prep, f.prep)), None
        )
        return RbiFits(prep, draw_parameters(prep, full_fit))


def run_rbi_deltas(
    data: pl.DataFrame,
    ice: pl.DataFrame | None,
    spec: RbiSpec,
    deltas: Sequence[pl.DataFrame | None],
) -> list[RbiResult]:
    """One result per delta table, all from one set of imputation-model fits (tipping point)."""
    fits = fit_rbi(data, ice, spec)
    return [fits.analyse(d) for d in deltas]
