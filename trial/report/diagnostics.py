"""Model diagnostics for the notebooks: marginal residuals of the primary MMRM and the empirical
residual covariance beside the fitted one.

Inputs are materialised assets: ``analysis_long`` (``OUT/tables``), and the MMRM result's
``estimates`` and ``covariance`` tables (``OUT/models/mmrm_primary_*.parquet``). Residuals are
on the model's scale (change in ln mg/min).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from study import Study
from trial.models.design import build_mmrm_design


def marginal_residuals(
    analysis_long: pl.DataFrame, estimates: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """``subject, visit, observed, fitted, residual, standardised`` per analysed row.

    ``fitted`` = X beta with the MMRM's design (``trial.models.design``) and the estimates'
    fixed effects matched by term name; ``standardised`` divides by the residual SD at the
    visit (sample SD of that visit's residuals)."""
    design = build_mmrm_design(analysis_long, study)
    beta_by_term = dict(
        zip(estimates["term"].to_list(), estimates["estimate"].to_list(), strict=True)
    )
    missing = [t for t in design.terms if t not in beta_by_term]
    if missing:
        raise KeyError(f"estimates lack the design terms {missing}")
    beta = np.array([beta_by_term[t] for t in design.terms])
    fitted = design.x @ beta
    frame = pl.DataFrame(
        {
            "subject": [design.subjects[i] for i in design.subject],
            "visit": [design.visits[j] for j in design.visit],
            "observed": design.y,
            "fitted": fitted,
            "residual": design.y - fitted,
        }
    )
    return frame.with_columns(
        (pl.col("residual") / pl.col("residual").std().over("visit")).alias("standardised")
    )


def empirical_covariance(residuals: pl.DataFrame, visits: list[str]) -> pl.DataFrame:
    """Pairwise-complete covariance of the residuals between visits, in the layout of the
    MMRM's ``covariance`` table: ``visit_row, visit_col, covariance, correlation, n_pairs``."""
    wide = residuals.pivot(on="visit", index="subject", values="residual")
    rows = []
    for a in visits:
        for b in visits:
            if a not in wide.columns or b not in wide.columns:
                continue
            pair = wide.select(pl.col(a).alias("x"), pl.col(b).alias("y")).drop_nulls()
            x, y = pair["x"].to_numpy(), pair["y"].to_numpy()
            n = len(x)
            cov = float(np.cov(x, y, ddof=1)[0, 1]) if n > 1 else float("nan")
            corr = float(np.corrcoef(x, y)[0, 1]) if n > 1 else float("nan")
            rows.append(
                {
                    "visit_row": a,
                    "visit_col": b,
                    "covariance": cov,
                    "correlation": corr,
                    "n_pairs": n,
                }
            )
    return pl.DataFrame(rows)


def covariance_comparison(fitted: pl.DataFrame, empirical: pl.DataFrame) -> pl.DataFrame:
    """Fitted (model) and empirical covariance side by side for every visit pair."""
    return fitted.select("visit_row", "visit_col", pl.col("covariance").alias("fitted")).join(
        empirical.select(
            "visit_row", "visit_col", pl.col("covariance").alias("empirical"), "n_pairs"
        ),
        on=["visit_row", "visit_col"],
        how="left",
    )
