# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)
"""Simulation study of the reference-based imputation engine: J2R coverage and type I error.

Trials from :func:`trial.rbi.simulate.simulate_trial` (two arms 1:1, ``--visits`` visits,
30 % MCAR treatment discontinuation with no post-ICE data, 2 % intermittent misses, baseline
covariate), every discontinuation handled by jump to reference. Because discontinuation is
independent of the outcomes the J2R estimand is known from the parameters
(:func:`trial.rbi.simulate.true_j2r_effect`). For each replicate the J2R analysis is run by
conditional mean imputation with the jackknife and by approximate Bayesian MI (``--imputations``
bootstrap draws, Rubin's rules), and at the last visit we record bias, mean SE, empirical SD,
coverage of the 95 % CI and the rejection rate at alpha 0.05. Scenarios: ``alternative``
(effect -0.5 at the last visit) and ``null`` (no effect: rejection rate = type I error); the
same seed gives both scenarios the same noise. Prints a markdown table (docs/statistics.md).

Run: ``uv run --frozen --no-sync python scripts/rbi_simulation_study.py --sims 400``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one BLAS thread

import argparse
import time

import numpy as np
import polars as pl

from trial.rbi import RbiSpec, run_rbi
from trial.rbi.simulate import (
    TrialDesign,
    simulate_trial,
    simulated_trial_spec,
    true_j2r_effect,
)


def _spec(method: str, imputations: int, seed: int) -> RbiSpec:
    return simulated_trial_spec(method=method, n_samples=imputations, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=400)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--visits", type=int, default=4)
    parser.add_argument("--imputations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--out", default=None, help="optional CSV of every replicate's result")
    args = parser.parse_args()
    methods = ["condmean-jackknife", "bayes-approx"]
    last = f"W{args.visits}"
    records = []
    start = time.perf_counter()
    for scenario, effect in (("alternative", -0.5), ("null", 0.0)):
        design = TrialDesign(n_subjects=args.subjects, n_visits=args.visits, effect_last=effect)
        truth = float(true_j2r_effect(design)[-1])
        for rep in range(args.sims):
            data, ice = simulate_trial(design, seed=args.seed + rep)
            for method in methods:
                pooled = run_rbi(data, ice, _spec(method, args.imputations, rep)).pooled
                row = pooled.filter(
                    (pl.col("visit") == last) & (pl.col("parameter") == "trt_DRUG")
                ).row(0, named=True)
                records.append({"scenario": scenario, "method": method, "truth": truth, **row})
        print(f"{scenario}: {args.sims} replicates, {time.perf_counter() - start:.0f} s")
    frame = pl.DataFrame(records)
    if args.out:
        frame.write_csv(args.out)
    n = args.sims
    summary = (
        frame.group_by("scenario", "method", maintain_order=True)
        .agg(
            pl.col("truth").first(),
            (pl.col("estimate") - pl.col("truth")).mean().alias("bias"),
            (pl.col("estimate").std() / np.sqrt(n)).alias("bias_mcse"),
            pl.col("se").mean().alias("mean_se"),
            pl.col("estimate").std().alias("empirical_sd"),
            ((pl.col("lci") <= pl.col("truth")) & (pl.col("truth") <= pl.col("uci")))
            .mean()
            .alias("coverage"),
            (pl.col("pvalue") < 0.05).mean().alias("rejection"),
        )
        .with_columns(
            (pl.col("coverage") * (1 - pl.col("coverage")) / n).sqrt().alias("coverage_mcse"),
            (pl.col("rejection") * (1 - pl.col("rejection")) / n).sqrt().alias("rejection_mcse"),
        )
    )
    print(
        f"{n} replicates per scenario, {args.subjects} subjects, {args.visits} visits, "
        f"{args.imputations} imputations; {time.perf_counter() - start:.0f} s"
    )
    print(
        "| scenario | method | truth | bias (MC SE) | mean SE | empirical SD "
        "| CI coverage (MC SE) | rejection rate (MC SE) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in summary.iter_rows(named=True):
        print(
            f"| {r['scenario']} | {r['method']} | {r['truth']:.3f} | {r['bias']:.4f} "
            f"({r['bias_mcse']:.4f}) | {r['mean_se']:.4f} | {r['empirical_sd']:.4f} "
            f"| {r['coverage']:.3f} ({r['coverage_mcse']:.3f}) "
            f"| {r['rejection']:.3f} ({r['rejection_mcse']:.3f}) |"
        )


if __name__ == "__main__":
    main()
