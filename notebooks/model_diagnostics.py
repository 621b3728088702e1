# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Primary MMRM diagnostics: residuals, Q-Q, fitted vs empirical covariance
#
# Reads the run's materialised model input and result: `OUT/tables/analysis_long.parquet`,
# `OUT/models/mmrm_primary_estimates.parquet`, `OUT/models/mmrm_primary_covariance.parquet`
# and `..._fit.parquet`. Set `IONTO_OUT` to the run's output folder (default `out/demo/run`).
# In a blinded run the MMRM is not fitted (no arms): the notebook says so and stops there.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from scipy import stats

from trial.report.diagnostics import covariance_comparison, empirical_covariance, marginal_residuals
from study import load_study

OUT = Path(os.environ.get("IONTO_OUT", "out/demo/run"))
study = load_study()
analysis_long = pl.read_parquet(OUT / "tables" / "analysis_long.parquet")
estimates = pl.read_parquet(OUT / "models" / "mmrm_primary_estimates.parquet")
fit = pl.read_parquet(OUT / "models" / "mmrm_primary_fit.parquet")
fitted_cov_path = OUT / "models" / "mmrm_primary_covariance.parquet"
FITTED = estimates.height > 0 and fitted_cov_path.exists()
print(fit.select([c for c in ("covariance_structure", "converged", "n_subjects", "n_observations", "reml_loglik") if c in fit.columns]))
if not FITTED:
    print("MMRM not fitted (blinded run): no diagnostics.")

# %% [markdown]
# ## Marginal residuals (observed - X beta)
# Residuals by visit and against fitted values; a trend or a funnel would question the
# mean model or the per-visit variances.

# %%
if FITTED:
    residuals = marginal_residuals(analysis_long, estimates, study)
    print(
        residuals.group_by("visit", maintain_order=True).agg(
            pl.len().alias("n"),
            pl.col("residual").mean().alias("mean"),
            pl.col("residual").std().alias("sd"),
        )
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].scatter(residuals["fitted"], residuals["residual"], s=8, alpha=0.5)
    axes[0].axhline(0, color="#555555", linewidth=1)
    axes[0].set_xlabel("fitted change (ln)")
    axes[0].set_ylabel("residual")
    order = study.model_visits
    axes[1].boxplot([residuals.filter(pl.col("visit") == v)["residual"].to_numpy() for v in order])
    axes[1].set_xticks(range(1, len(order) + 1), order)
    axes[1].set_ylabel("residual")
    fig.tight_layout()

# %% [markdown]
# ## Normal Q-Q plot of standardised residuals

# %%
if FITTED:
    z = np.sort(residuals["standardised"].drop_nulls().to_numpy())
    theoretical = stats.norm.ppf((np.arange(1, len(z) + 1) - 0.5) / len(z))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(theoretical, z, s=8)
    ax.plot([-3, 3], [-3, 3], color="#d1495b")
    ax.set_xlabel("normal quantile")
    ax.set_ylabel("standardised residual")
    print("Shapiro-Wilk p (informal):", stats.shapiro(z[:5000]).pvalue)

# %% [markdown]
# ## Fitted covariance (model) vs empirical residual covariance
# The empirical matrix is pairwise complete; with data missing at random it is only a rough
# check of the fitted structure (the structure used is in the fit table above).

# %%
if FITTED:
    fitted_cov = pl.read_parquet(fitted_cov_path)
    empirical = empirical_covariance(residuals, study.model_visits)
    comparison = covariance_comparison(fitted_cov, empirical)
    print(comparison)
    visits = study.model_visits
    t = len(visits)
    fitted_m = comparison["fitted"].to_numpy().reshape(t, t)
    empirical_m = comparison["empirical"].to_numpy().reshape(t, t)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    high = float(np.nanmax([fitted_m.max(), np.nanmax(empirical_m)]))
    for ax, m, title in ((axes[0], fitted_m, "fitted"), (axes[1], empirical_m, "empirical")):
        image = ax.imshow(m, vmin=0, vmax=high, cmap="viridis")
        ax.set_xticks(range(t), visits)
        ax.set_yticks(range(t), visits)
        ax.set_title(title)
    fig.colorbar(image, ax=axes, shrink=0.8)
    print("max |fitted - empirical| variance:", float(np.nanmax(np.abs(np.diag(fitted_m) - np.diag(empirical_m)))))
