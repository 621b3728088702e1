"""Helpers shared by the sensitivity, responder, subgroup and safety models.

- :func:`tidy_estimates` turns estimates and standard errors into the tidy table of
  :data:`trial.models.result.ESTIMATE_COLUMNS` (t reference when ``df`` is given, else z);
- :func:`treatment_design` builds an R-style treatment-coded model matrix from a polars frame,
  with R's term names (``arm<B>``, ``visit<V>``, ``arm<B>:visit<V>`` for arm ``<B>`` and
  visit ``<V>``), so results compare directly with ``../shared/reference``;
- :func:`emmeans_rows` builds the emmeans reference grid rows (equal weights over the nuisance
  factors, numeric covariates at their mean over the analysed rows);
- blinding: a model that needs arms, called on a blinded frame (no ``arm`` column), returns
  :func:`not_fitted_blinded` - an empty estimates table and the note
  ``"not fitted: blinded run"`` - instead of raising, so a blinded pipeline run goes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special

from trial.models.result import ESTIMATE_COLUMNS, ModelResult

BLINDED_NOTE = "not fitted: blinded run"
"""The note of a model that needs treatment arms and was called on blinded data."""


def is_blinded(frame: pl.DataFrame) -> bool:
    """A frame is blinded when it has no ``arm`` column."""
    return "arm" not in frame.columns


def empty_estimates() -> pl.DataFrame:
    """A tidy estimates table with no rows."""
    return pl.DataFrame(schema=ESTIMATE_COLUMNS)


def not_fitted_blinded(name: str, **fit: object) -> ModelResult:
    """The result of a model that needs arms on a blinded run: nothing fitted, said in notes."""
    return ModelResult(
        name=name,
        estimates=empty_estimates(),
        fit={"converged": False, "blinded": True, **fit},
        notes=[BLINDED_NOTE],
    )


def tidy_estimates(
    terms: Sequence[str],
    estimate: np.ndarray,
    std_error: np.ndarray,
    df: float | np.ndarray | None = None,
    level: float = 0.95,
) -> pl.DataFrame:
    """Tidy table: Wald statistic, two-sided p and CI from t(df), or N(0, 1) if ``df`` is None."""
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    stat = est / se
    if df is None:
        dfs = np.full(est.shape, np.nan)
        p = 2.0 * special.ndtr(-np.abs(stat))
        q = np.full(est.shape, special.ndtri(0.5 + level / 2.0))
    else:
        dfs = np.broadcast_to(np.asarray(df, dtype=float), est.shape).copy()
        p = 2.0 * special.stdtr(dfs, -np.abs(stat))
        q = special.stdtrit(dfs, 0.5 + level / 2.0)
    return pl.DataFrame(
        {
            "term": list(terms),
            "estimate": est,
            "std_error": se,
            "df": pl.Series(dfs).fill_nan(None),
            "statistic": stat,
            "p_value": p,
            "ci_low": est - q * se,
            "ci_high": est + q * se,
        },
        schema=ESTIMATE_COLUMNS,
    )


@dataclass(frozen=True)
class Factor:
    """A categorical column with its levels in order; the first is the reference level."""

    column: str
    levels: list[str]


@dataclass(frozen=True)
class Design:
    """A treatment-coded model matrix and its R-style column names."""

    matrix: np.ndarray
    names: list[str]


def _check_levels(frame: pl.DataFrame, factor: Factor) -> None:
    values = frame.get_column(factor.column).cast(pl.String)
    unknown = sorted(set(values.drop_nulls().unique().to_list()) - set(factor.levels))
    if unknown or values.null_count():
        raise ValueError(
            f"column {factor.column!r} has values {unknown or [None]} outside its levels "
            f"{factor.levels}"
        )


def treatment_design(
    frame: pl.DataFrame,
    main: Sequence[Factor | str],
    interactions: Sequence[tuple[str, str]] = (),
    intercept: bool = True,
) -> Design:
    """R's ``model.matrix`` for ``~ t1 + t2 + ... + a:b`` with treatment coding.

    ``main`` holds the main-effect terms in formula order: a :class:`Factor` (one dummy per
    non-reference level) or the name of a numeric column. Interactions follow, each with the
    first term varying fastest (``armB:visitV2, armC:visitV2, armB:visitV3, ...``), as R
    orders them; an interaction may pair a factor with a numeric column (``visitV2:logbase``).
    """
    cols: list[np.ndarray] = []
    names: list[str] = []
    if intercept:
        cols.append(np.ones(frame.height))
        names.append("(Intercept)")
    expanded: dict[str, list[tuple[str, np.ndarray]]] = {}
    for term in main:
        if isinstance(term, Factor):
            _check_levels(frame, term)
            values = frame.get_column(term.column).cast(pl.String).to_numpy()
            expanded[term.column] = [
                (f"{term.column}{lev}", (values == lev).astype(float)) for lev in term.levels[1:]
            ]
        else:
            expanded[term] = [(term, frame.get_column(term).cast(pl.Float64).to_numpy())]
        for name, col in expanded[term.column if isinstance(term, Factor) else term]:
            names.append(name)
            cols.append(col)
    for a, b in interactions:
        for rname, rcol in expanded[b]:
            for lname, lcol in expanded[a]:
                names.append(f"{lname}:{rname}")
                cols.append(lcol * rcol)
    return Design(matrix=np.column_stack(cols).astype(float), names=names)


def emmeans_rows(
    cells: Sequence[dict[str, str]],
    main: Sequence[Factor | str],
    numeric_values: dict[str, float],
    interactions: Sequence[tuple[str, str]] = (),
) -> np.ndarray:
    """L rows, one per cell: model-matrix rows averaged over the grid of the other factors.

    A cell fixes some factors (e.g. ``{"arm": "B", "visit": "V4"}``); the factors it does
    not fix get equal weight per level (emmeans' default); numeric covariates sit at
    ``numeric_values`` (e.g. the mean over analysed rows). One design for all cells.
    """
    fixed_cols = list(cells[0])
    averaged = [f for f in main if isinstance(f, Factor) and f.column not in fixed_cols]
    grid = pl.DataFrame(
        {"_cell": list(range(len(cells))), **{c: [cell[c] for cell in cells] for c in fixed_cols}}
    )
    n_grid = 1
    for f in averaged:
        grid = grid.join(pl.DataFrame({f.column: f.levels}), how="cross")
        n_grid *= len(f.levels)
    grid = grid.sort("_cell", maintain_order=True).with_columns(
        [pl.lit(v, dtype=pl.Float64).alias(k) for k, v in numeric_values.items()]
    )
    design = treatment_design(grid, main, interactions)
    return np.asarray(design.matrix.reshape(len(cells), n_grid, -1).mean(axis=1))


def arm_comparisons(
    beta: np.ndarray,
    cov: np.ndarray,
    main: Sequence[Factor | str],
    interactions: Sequence[tuple[str, str]],
    numeric_values: dict[str, float],
    arms: Sequence[str],
    visits: Sequence[str | None] = (None,),
    df: float | None = None,
    level: float = 0.95,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """LS means per arm (and visit) and contrasts of each arm against ``arms[0]``.

    ``main``/``interactions`` describe the fitted model as in :func:`treatment_design`; a
    visit of ``None`` means the model has no visit factor. LS means are emmeans' (see
    :func:`emmeans_rows`) on the log scale of a change from baseline, so each carries
    ``percent_reduction = 100 (1 - exp(LS mean))`` and each contrast its ratio of geometric
    means ``ratio_geometric_means = exp(contrast)`` with CI (column names as the MMRM's
    tables), CIs of coverage ``level``. Returns ``(lsmeans, contrasts)``, both with a
    ``visit`` column (null without a visit factor) beside the tidy estimate columns.
    """
    cells = [
        {"arm": arm} if visit is None else {"visit": visit, "arm": arm}
        for visit in visits
        for arm in arms
    ]
    n_arms = len(arms)
    rows = emmeans_rows(cells, main, numeric_values, interactions)
    per_visit = rows.reshape(len(visits), n_arms, -1)
    diffs = (per_visit[:, 1:, :] - per_visit[:, :1, :]).reshape(-1, rows.shape[1])
    ls = tidy_estimates(
        [c["arm"] for c in cells], rows @ beta, _quad_se(rows, cov), df, level
    ).rename({"term": "arm"})
    lsmeans = ls.select(
        pl.Series("visit", [c.get("visit") for c in cells], dtype=pl.String),
        pl.all(),
        (100.0 * (1.0 - pl.col("estimate").exp())).alias("percent_reduction"),
        (100.0 * (1.0 - pl.col("ci_high").exp())).alias("percent_reduction_ci_low"),
        (100.0 * (1.0 - pl.col("ci_low").exp())).alias("percent_reduction_ci_high"),
    )
    labels = [f"{arm}-{arms[0]}" for _ in visits for arm in arms[1:]]
    ct = tidy_estimates(labels, diffs @ beta, _quad_se(diffs, cov), df, level).rename(
        {"term": "contrast"}
    )
    contrasts = ct.select(
        pl.Series("visit", [v for v in visits for _ in arms[1:]], dtype=pl.String),
        pl.all(),
        pl.col("estimate").exp().alias("ratio_geometric_means"),
        pl.col("ci_low").exp().alias("ratio_ci_low"),
        pl.col("ci_high").exp().alias("ratio_ci_high"),
    )
    return lsmeans, contrasts


def _quad_se(rows: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """sqrt(diag(L C L')) for the rows of L."""
    return np.asarray(np.sqrt(np.einsum("ij,jk,ik->i", rows, cov, rows)))
