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
# # Sweat-rate data: distributions and per-subject trajectories
#
# Reads the materialised tables of a run (`OUT/tables/*.parquet`, written by `ionto run` or
# `ionto demo`). Set `IONTO_OUT` to the run's output folder (default `out/demo/run`).
# A blinded run has no `arm` column: everything below is then pooled.
#
# Kept as a jupytext percent script (outputs are not stored); open it in Jupyter with
# jupytext, or run it as a plain script.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from trial.report.summaries import TOTAL, group_order, sweat_time_course
from study import load_study

OUT = Path(os.environ.get("IONTO_OUT", "out/demo/run"))
study = load_study()
adsl = pl.read_parquet(OUT / "tables" / "adsl.parquet")
adsweat = pl.read_parquet(OUT / "tables" / "adsweat.parquet")
groups = [g for g in group_order(adsl, study) if g != TOTAL] or [TOTAL]
print(f"{adsl.height} subjects in ADSL, {adsweat.height} ADSWEAT rows; groups: {groups}")

# %% [markdown]
# ## Distribution of the sweat rate by visit and region
# Rates are right-skewed; the analysis works on ln(rate). Summary per visit (mg/min).

# %%
per_visit = (
    adsweat.filter(pl.col("rate_mg_min").is_not_null())
    .group_by("PARAMCD", "AVISIT", "AVISITN")
    .agg(
        pl.len().alias("n"),
        pl.col("rate_mg_min").median().alias("median"),
        pl.col("rate_mg_min").quantile(0.25).alias("q1"),
        pl.col("rate_mg_min").quantile(0.75).alias("q3"),
        pl.col("AVAL").mean().exp().alias("geometric_mean"),
        pl.col("AVAL").skew().alias("skew_ln"),
        pl.col("rate_mg_min").skew().alias("skew_raw"),
    )
    .sort("PARAMCD", "AVISITN")
)
print(per_visit)

# %%
primary = study.primary_region.paramcd
palm = adsweat.filter((pl.col("PARAMCD") == primary) & pl.col("rate_mg_min").is_not_null())
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].hist(palm["rate_mg_min"].to_numpy(), bins=40, color="#1b6ca8")
axes[0].set_xlabel("palmar rate (mg/min)")
axes[0].set_title("raw scale")
axes[1].hist(palm["AVAL"].to_numpy(), bins=40, color="#2e933c")
axes[1].set_xlabel("ln palmar rate")
axes[1].set_title("log scale (analysis scale)")
fig.tight_layout()

# %% [markdown]
# ## Per-subject trajectories (palmar rate, log scale)
# One line per FAS subject by nominal week; the thick line is the geometric mean by visit
# (`trial.report.summaries.sweat_time_course`, the same numbers as the investigator report).

# %%
fas = adsl.filter(pl.col("FASFL") == "Y").select(
    "subject_id", *(["arm"] if "arm" in adsl.columns else [])
)
trajectories = (
    palm.join(fas, on="subject_id")
    .filter(pl.col("week").is_not_null())
    .sort("subject_id", "week")
)
course = sweat_time_course(adsl, adsweat, study)
fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.8), sharey=True, squeeze=False)
for ax, group in zip(axes[0], groups, strict=True):
    rows = trajectories if group == TOTAL else trajectories.filter(pl.col("arm") == group)
    for _, subject in rows.group_by("subject_id", maintain_order=True):
        ax.plot(subject["week"], subject["rate_mg_min"], color="#999999", alpha=0.35, linewidth=0.7)
    mean = course.filter(pl.col("group") == group).sort("week")
    ax.plot(mean["week"], mean["geo_mean"], color="#d1495b", linewidth=2.5)
    ax.set_yscale("log")
    ax.set_title("pooled" if group == TOTAL else group)
    ax.set_xlabel("week")
axes[0][0].set_ylabel("palmar rate (mg/min)")
fig.tight_layout()

# %% [markdown]
# ## Left/right agreement and change from baseline
# Subjects with one side only (`n_sides == 1`) and the spread of percent change at the
# primary visit.

# %%
one_side = palm.filter(pl.col("n_sides") == 1).height
at_primary = palm.filter(pl.col("AVISIT") == study.primary_visit)
print(f"palmar values from one side only: {one_side} of {palm.height}")
print(
    at_primary.select(
        pl.len().alias("n"),
        pl.col("PCHG").median().alias("median_pct_change"),
        (pl.col("PCHG") <= -50).mean().alias("share_reduced_50pct"),
    )
)
assert np.isfinite(at_primary["PCHG"].drop_nulls().to_numpy()).all()
