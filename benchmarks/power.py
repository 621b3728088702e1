# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)
"""Throughput of ``ionto power``: simulated trials fitted per second, by sample size.

Prints one table with, for each number of subjects, the replicates per second of

- ``power engine``: what ``ionto power`` runs per replicate - simulate the trial in memory,
  fit the configured MMRM on the prepared design (unstructured, fallbacks on failure), W4
  contrasts with Satterthwaite df (:func:`trial.models.power.simulate_power`);
- ``full result`` (baseline, same replicates): the general entry point the pipeline's
  ``mmrm_primary`` asset uses, :func:`trial.models.mmrm.fit_mmrm` on the replicate's
  ``analysis_long`` frame, which also builds every LS mean, contrast and covariance table.

Target: at least 30 replicates per second at 150 subjects (one BLAS thread), so 500
replicates at each of four sizes take about a minute.

Run: ``uv run --frozen --no-sync python benchmarks/power.py [--sims 100] [--subjects 60,150]``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one BLAS thread

import argparse
import time

import numpy as np

from study import load_study
from trial.models.mmrm import fit_mmrm
from trial.models.power import simulate_power, simulate_trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", default="60,90,120,150")
    parser.add_argument("--sims", type=int, default=100)
    args = parser.parse_args()
    study = load_study()
    sizes = [int(n) for n in args.subjects.split(",")]
    print(f"one BLAS thread, {args.sims} replicates per size, load {os.getloadavg()[0]:.1f}")
    print(f"{'subjects':>8} {'power engine /s':>16} {'full result /s':>15} {'ratio':>6}")
    for n in sizes:
        engine = simulate_power(study, [n], args.sims, seed=n).replicates_per_second
        rng = np.random.default_rng(n)
        frames = [simulate_trial(study, n, rng).frame() for _ in range(args.sims)]
        started = time.perf_counter()
        for frame in frames:
            fit_mmrm(frame, study)
        full = args.sims / (time.perf_counter() - started)
        print(f"{n:>8} {engine:>16.1f} {full:>15.1f} {engine / full:>6.1f}")


if __name__ == "__main__":
    main()
