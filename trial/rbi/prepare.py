"""From the caller's long table and ICE table to the arrays the engine works on.

The grid is every subject at every visit: a visit whose row is absent, or present with an empty
outcome, is missing. Covariates constant within a subject are filled from the subject's other
rows; a covariate that varies within a subject must be given on every row of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from trial.rbi.formula import ModelFormula, Term, parse_terms
from trial.rbi.spec import STRATEGIES, STRATEGY_COLUMN, RbiInputError, RbiSpec

FACTOR_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)


@dataclass(frozen=True)
class Prepared:
    """The analysis on arrays (n subjects, t visits, p imputation-model columns).

    ``y`` (n, t): outcome, NaN where missing. ``strategy`` (n,): each subject's strategy;
    ``ice_visit`` (n,): index of the first visit its ICE affects (t when it has none).
    ``x_own`` / ``x_ref`` (n, t, p): imputation-model rows with the subject's own group and
    with the reference group. ``fit_mask`` (n, t): rows the imputation model is fitted on
    (observed and, unless ``spec.fit_post_ice``, not post-ICE under a reference-based
    strategy). ``x_analysis`` (t, n, k): per-visit ANCOVA rows; columns ``1 .. n_groups - 1``
    are the group dummies.
    """

    spec: RbiSpec
    subjects: list[str]
    visits: list[str]
    groups: list[str]
    group_index: np.ndarray
    y: np.ndarray
    strategy: np.ndarray
    ice_visit: np.ndarray
    x_own: np.ndarray
    x_ref: np.ndarray
    terms: list[str]
    fit_mask: np.ndarray
    x_analysis: np.ndarray
    analysis_terms: list[str]
    grid: pl.DataFrame

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    @property
    def n_visits(self) -> int:
        return len(self.visits)

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.y)


def _variables(terms: list[Term]) -> list[str]:
    return list(dict.fromkeys(name for term in terms for name in term))


def _require_columns(frame: pl.DataFrame, names: list[str], what: str) -> None:
    absent = [c for c in names if c not in frame.columns]
    if absent:
        raise RbiInputError(
            f"{what} has no column {', '.join(repr(c) for c in absent)}; "
            f"its columns are {', '.join(frame.columns)}"
        )


def _visit_order(frame: pl.DataFrame, spec: RbiSpec) -> list[str]:
    seen = frame.get_column(spec.visit).unique(maintain_order=True).to_list()
    if spec.visits is None:
        return [str(v) for v in seen]
    visits = [str(v) for v in spec.visits]
    unknown = [v for v in seen if v not in visits]
    if unknown:
        raise RbiInputError(
            f"visit(s) {unknown} of the data are not in the given visit order {visits}"
        )
    absent = [v for v in visits if v not in seen]
    if absent:
        raise RbiInputError(f"visit(s) {absent} of the given visit order have no row in the data")
    return visits


def _subject_constant(frame: pl.DataFrame, subject: str, column: str) -> pl.DataFrame:
    """Per subject: the number of distinct non-null values of ``column`` and the first one."""
    return frame.group_by(subject, maintain_order=True).agg(
        pl.col(column).drop_nulls().n_unique().alias("n_values"),
        pl.col(column).drop_nulls().first().alias("value"),
    )


def _fill_covariate(grid: pl.DataFrame, subject: str, visit: str, column: str) -> pl.DataFrame:
    """Fill nulls of a within-subject constant covariate; error on any value still missing."""
    per = _subject_constant(grid, subject, column)
    varying = per.filter(pl.col("n_values") > 1)
    filled = grid.join(per.select(subject, "value"), on=subject, how="left").with_columns(
        pl.when(pl.col(subject).is_in(varying.get_column(subject).implode()))
        .then(pl.col(column))
        .otherwise(pl.col(column).fill_null(pl.col("value")))
        .alias(column)
    )
    holes = filled.filter(pl.col(column).is_null())
    if holes.height:
        s, v = holes.row(0, named=True)[subject], holes.row(0, named=True)[visit]
        if s in set(varying.get_column(subject).to_list()):
            raise RbiInputError(
                f"covariate {column!r} varies within subject {s} and has no value at visit {v}; "
                f"give it on that row ({holes.height} such row(s))"
            )
        raise RbiInputError(f"covariate {column!r} has no value for subject {s} on any row")
    return filled.drop("value")


def _levels(frame: pl.DataFrame, column: str) -> list[str] | None:
    if not isinstance(frame.schema[column], FACTOR_TYPES):
        return None
    return sorted(frame.get_column(column).cast(pl.String).drop_nulls().unique().to_list())


def _strategies(
    ice: pl.DataFrame | None, spec: RbiSpec, subjects: list[str], visits: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    n = len(subjects)
    strategy = np.full(n, "MAR", dtype=object)
    ice_visit = np.full(n, len(visits), dtype=np.int64)
    if ice is None or ice.height == 0:
        return strategy, ice_visit
    _require_columns(ice, [spec.subject, spec.visit], "the ICE table")
    frame = ice.select(
        pl.col(spec.subject).cast(pl.String),
        pl.col(spec.visit).cast(pl.String),
        (
            pl.col(STRATEGY_COLUMN).cast(pl.String)
            if STRATEGY_COLUMN in ice.columns
            else pl.lit(None, pl.String).alias(STRATEGY_COLUMN)
        ),
    )
    if frame.get_column(spec.subject).is_duplicated().any():
        dup = frame.filter(pl.col(spec.subject).is_duplicated()).get_column(spec.subject)[0]
        raise RbiInputError(f"the ICE table lists subject {dup} twice; give one row per subject")
    index = {s: k for k, s in enumerate(subjects)}
    vindex = {v: k for k, v in enumerate(visits)}
    for row in frame.iter_rows(named=True):
        s, v, given = row[spec.subject], row[spec.visit], row[STRATEGY_COLUMN]
        if s not in index:
            raise RbiInputError(f"the ICE table names subject {s}, who has no row in the data")
        if v not in vindex:
            raise RbiInputError(
                f"the ICE table gives visit {v!r} for subject {s}, not a visit of the data "
                f"({', '.join(visits)})"
            )
        if given is not None and given not in STRATEGIES:
            raise RbiInputError(
                f"the ICE table gives strategy {given!r} for subject {s}; "
                f"use one of {', '.join(STRATEGIES)}"
            )
        if given is None and spec.strategy is None:
            raise RbiInputError(
                f"subject {s} of the ICE table has no strategy; add a 'strategy' column or give one"
            )
        chosen = spec.strategy if given != "MAR" and spec.strategy is not None else given
        strategy[index[s]] = chosen
        ice_visit[index[s]] = vindex[v]
    return strategy, ice_visit


def prepare(data: pl.DataFrame, ice: pl.DataFrame | None, spec: RbiSpec) -> Prepared:
    """Validate the inputs and build the grid, the design arrays and the fit mask."""
    cov_terms = parse_terms(spec.covariates)
    ana_terms = parse_terms(spec.analysis_covariates)
    key = [spec.subject, spec.visit, spec.group]
    covariates = [v for v in _variables(cov_terms + ana_terms) if v not in (spec.visit, spec.group)]
    _require_columns(data, [*key, spec.outcome, *covariates], "the data")
    if any(spec.visit in t for t in ana_terms) or any(spec.group in t for t in ana_terms):
        raise RbiInputError(
            "analysis covariates may not involve the visit or group column (one ANCOVA per visit, "
            "group enters once)"
        )
    if not data.schema[spec.outcome].is_numeric():
        raise RbiInputError(f"outcome column {spec.outcome!r} is not numeric")
    frame = data.select(
        *(pl.col(c).cast(pl.String) for c in key),
        pl.col(spec.outcome).cast(pl.Float64).fill_nan(None),
        *covariates,
    )
    for column in (spec.subject, spec.visit):
        if frame.get_column(column).null_count():
            raise RbiInputError(f"column {column!r} has empty values; every row needs one")
    if frame.select(pl.struct(spec.subject, spec.visit).is_duplicated().any()).item():
        dup = frame.filter(pl.struct(spec.subject, spec.visit).is_duplicated()).row(0)
        raise RbiInputError(f"subject {dup[0]} has two rows at visit {dup[1]}")

    visits = _visit_order(frame, spec)
    groups_per = _subject_constant(frame, spec.subject, spec.group)
    if groups_per.filter(pl.col("n_values") != 1).height:
        bad = groups_per.filter(pl.col("n_values") != 1).get_column(spec.subject)[0]
        raise RbiInputError(f"subject {bad} has no group or more than one in column {spec.group!r}")
    levels_present = sorted(groups_per.get_column("value").unique().to_list())
    if spec.reference not in levels_present:
        raise RbiInputError(
            f"reference level {spec.reference!r} is not a level of {spec.group!r} "
            f"({', '.join(levels_present)})"
        )
    if len(levels_present) < 2:
        raise RbiInputError(f"column {spec.group!r} has one level only; need a comparison")
    groups = [spec.reference, *(g for g in levels_present if g != spec.reference)]
    subjects = groups_per.get_column(spec.subject).to_list()

    grid = (
        pl.DataFrame({spec.subject: subjects})
        .join(pl.DataFrame({spec.visit: visits}), how="cross")
        .join(frame.drop(spec.group), on=[spec.subject, spec.visit], how="left")
        .join(groups_per.select(spec.subject, pl.col("value").alias(spec.group)), on=spec.subject)
    )
    for column in covariates:
        grid = _fill_covariate(grid, spec.subject, spec.visit, column)

    n, t = len(subjects), len(visits)
    y = grid.get_column(spec.outcome).to_numpy().astype(float).reshape(n, t)
    group_index = np.array([groups.index(g) for g in groups_per.get_column("value").to_list()])
    strategy, ice_visit = _strategies(ice, spec, subjects, visits)

    levels: dict[str, list[str] | None] = {spec.group: groups, spec.visit: visits}
    levels.update({c: _levels(grid, c) for c in covariates})
    model = ModelFormula.build(
        [(spec.group,), (spec.visit,), (spec.group, spec.visit), *cov_terms], levels
    )
    x_own = model.matrix(grid).reshape(n, t, -1)
    x_ref = model.matrix(grid.with_columns(pl.lit(spec.reference).alias(spec.group)))
    x_ref = x_ref.reshape(n, t, -1)
    post_ice = (np.arange(t)[None, :] >= ice_visit[:, None]) & (strategy != "MAR")[:, None]
    fit_mask = ~np.isnan(y) & (~post_ice | spec.fit_post_ice)
    x_fit = x_own[fit_mask]
    if not full_rank(x_fit):
        raise RbiInputError(
            "the imputation model is not estimable: some group x visit cell or covariate level "
            "has no observed, non-post-ICE outcome (or covariates are collinear)"
        )

    analysis = ModelFormula.build([(spec.group,), *ana_terms], levels)
    x_analysis = model_rows_by_visit(analysis, grid, n, t)
    for v in range(t):
        if not full_rank(x_analysis[v]):
            raise RbiInputError(
                f"the ANCOVA at visit {visits[v]} is not estimable (collinear analysis covariates)"
            )
    return Prepared(
        spec=spec,
        subjects=subjects,
        visits=visits,
        groups=groups,
        group_index=group_index,
        y=y,
        strategy=strategy,
        ice_visit=ice_visit,
        x_own=x_own,
        x_ref=x_ref,
        terms=model.column_names(),
        fit_mask=fit_mask,
        x_analysis=x_analysis,
        analysis_terms=analysis.column_names(),
        grid=grid.select(spec.subject, spec.visit, spec.group, spec.outcome),
    )


def full_rank(x: np.ndarray) -> bool:
    """Whether the columns of ``x`` are linearly independent (scaled X'X well conditioned)."""
    xtx = x.T @ x
    scale = np.sqrt(np.diag(xtx))
    if np.any(scale == 0):
        return False
    eig = np.linalg.eigvalsh(xtx / np.outer(scale, scale))
    return bool(eig[0] > 1e-10 * eig[-1])


def model_rows_by_visit(model: ModelFormula, grid: pl.DataFrame, n: int, t: int) -> np.ndarray:
    """Model matrix of a subject-major grid, as (t, n, k)."""
    return model.matrix(grid).reshape(n, t, -1).transpose(1, 0, 2).copy()
