# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)
"""Benchmark of the primary MMRM fit: pattern cross-product REML vs a dense per-subject baseline.

Prints one table: wall time of a full fit (design matrix from the prepared ``analysis_long``
table, unstructured REML to convergence with the Newton/Hessian check) at 1,500 and 6,000
simulated subjects x 6 model visits, with one BLAS thread. Targets: <= 0.05 s at 1,500 and
<= 0.15 s at 6,000 subjects. For comparison, in the same run:

- ``dense``: a straightforward implementation that loops over subjects to evaluate -2 l_R and
  lets scipy's BFGS take finite-difference gradients (run at the sizes in --dense-sizes);
- ``nlme::gls``: the R reference fit (corSymm + varIdent, REML), timed inside R, when
  ``Rscript`` is on the PATH (sizes in --r-sizes).

Run: ``uv run --frozen --no-sync python benchmarks/mmrm.py`` (add ``--repeats``, sizes).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one BLAS thread

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy import optimize

from study import load_study
from trial.models.covariance import CovarianceStructure
from trial.models.design import MmrmDesign, build_mmrm_design
from trial.models.mmrm import fit_mmrm_model
from trial.models.power import simulate_trial

LOG_2PI = float(np.log(2.0 * np.pi))

R_SCRIPT = r"""
suppressMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
visits <- strsplit(args[2], ",")[[1]]
d$arm <- factor(d$arm, levels = strsplit(args[3], ",")[[1]])
d$visit <- factor(d$visit, levels = visits)
d$centre <- factor(d$centre)
d$stratum <- factor(d$stratum)
elapsed <- system.time(fit <- gls(chg ~ arm * visit + logbase * visit + centre + stratum,
  data = d, correlation = corSymm(form = ~ visit_index | subject),
  weights = varIdent(form = ~ 1 | visit), method = "REML", na.action = na.omit,
  control = glsControl(maxIter = 200, msMaxIter = 500)))[["elapsed"]]
cat(sprintf('{"seconds": %.6f, "reml_loglik": %.10f}\n', elapsed, as.numeric(logLik(fit))))
"""


def dense_m2loglik(design: MmrmDesign, sigma: np.ndarray) -> float:
    """-2 REML log-likelihood (nlme convention) by a plain loop over subjects."""
    p = design.x.shape[1]
    xtwx = np.zeros((p, p))
    xtwy = np.zeros(p)
    ytwy = 0.0
    logdet = 0.0
    order = np.argsort(design.subject, kind="stable")
    bounds = np.flatnonzero(np.diff(design.subject[order])) + 1
    for rows in np.split(order, bounds):
        v = design.visit[rows]
        sub = sigma[np.ix_(v, v)]
        w = np.linalg.inv(sub)
        x, y = design.x[rows], design.y[rows]
        xtwx += x.T @ w @ x
        xtwy += x.T @ w @ y
        ytwy += y @ w @ y
        logdet += np.linalg.slogdet(sub)[1]
    beta = np.linalg.solve(xtwx, xtwy)
    return float(
        (len(design.y) - p) * LOG_2PI + logdet + np.linalg.slogdet(xtwx)[1] + ytwy - xtwy @ beta
    )


def dense_fit(design: MmrmDesign) -> tuple[float, float]:
    """Baseline: BFGS with finite-difference gradients on the dense criterion; (s, loglik)."""
    start = time.perf_counter()
    structure = CovarianceStructure("unstructured", len(design.visits))
    resid = design.y - design.x @ np.linalg.lstsq(design.x, design.y, rcond=None)[0]
    sd0 = np.array([resid[design.visit == k].std() for k in range(len(design.visits))])
    theta0 = structure.start(np.diag(sd0**2) * 0.5 + 0.5 * np.outer(sd0, sd0))

    def objective(theta: np.ndarray) -> float:
        try:
            return dense_m2loglik(design, structure.sigma(theta))
        except np.linalg.LinAlgError:
            return np.inf

    opt = optimize.minimize(objective, theta0, method="BFGS", options={"gtol": 1e-4})
    return time.perf_counter() - start, -0.5 * float(opt.fun)


def r_fit(frame: pl.DataFrame, visits: list[str], arms: list[str]) -> tuple[float, float] | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "d.csv", Path(tmp) / "fit.R"
        frame.write_csv(csv)
        script.write_text(R_SCRIPT)
        out = subprocess.run(
            ["Rscript", str(script), str(csv), ",".join(visits), ",".join(arms)],
            capture_output=True,
            text=True,
            check=True,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), float(result["reml_loglik"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1500,6000")
    parser.add_argument("--dense-sizes", default="1500")
    parser.add_argument("--r-sizes", default="1500")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    study = load_study()
    targets = {1500: 0.05, 6000: 0.15}
    dense_sizes = {int(s) for s in args.dense_sizes.split(",") if s}
    r_sizes = {int(s) for s in args.r_sizes.split(",") if s}
    fit_mmrm_model(simulate_trial(study, 150, np.random.default_rng(0)).frame(), study)  # warm-up

    header = (
        f"{'subjects':>8} {'rows':>6} {'patterns':>8} {'method':<22} {'seconds':>9} "
        f"{'target':>7} {'reml_loglik':>14}"
    )
    print(header)
    print("-" * len(header))
    for n in (int(s) for s in args.sizes.split(",")):
        frame = simulate_trial(study, n, np.random.default_rng(args.seed + n)).frame()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fit = fit_mmrm_model(frame, study)
            times.append(time.perf_counter() - start)
        target = targets.get(n)
        tgt = f"{target:.2f}" if target else ""
        rows = [
            ("pattern REML (median)", float(np.median(times)), tgt, fit.result.reml_loglik),
            ("pattern REML (best)", float(np.min(times)), tgt, fit.result.reml_loglik),
        ]
        if n in dense_sizes:
            seconds, loglik = dense_fit(build_mmrm_design(frame, study))
            rows.append(("dense per-subject loop", seconds, "", loglik))
        if n in r_sizes:
            r = r_fit(
                frame.with_columns(pl.col("visit_index")), study.model_visits, study.arm_codes
            )
            if r is not None:
                rows.append(("nlme::gls (R)", r[0], "", r[1]))
        for method, seconds, tgt, loglik in rows:
            print(
                f"{n:>8} {frame.height:>6} {fit.data.n_patterns:>8} {method:<22} "
                f"{seconds:>9.4f} {tgt:>7} {loglik:>14.6f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
