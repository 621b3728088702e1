# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)
"""Benchmark of the conditional-mean jackknife: pattern-sum refits vs refits from scratch.

A full leave-one-subject-out jackknife (``condmean-jackknife``, J2R, imputation model
``y ~ arm * visit + base * visit``, ANCOVA ``y ~ arm + base`` per visit) of a simulated trial
(:mod:`trial.rbi.simulate`: 6 visits, 30 % discontinuation, 2 % intermittent missing) at 300
and 1,500 subjects, with one BLAS thread. Targets (issue 13): under 1 s at 300 and under 5 s at
1,500 subjects on the 2-core machine. Wall time depends on what else runs on the shared machine,
so the process CPU time is printed beside it (with one thread, CPU time is the wall time of an
otherwise idle core); the load average is printed with the table.

- ``fast``: :func:`trial.rbi.run_rbi` end to end (checks, design, full REML fit, one refit per
  subject by removing that subject's cross-product sums from its missingness pattern and taking
  fixed-Hessian Newton steps from the full fit, imputation and ANCOVA of every sample, pooling).
- ``naive``: what the jackknife costs done plainly, per subject: build the data without the
  subject, fit the imputation model from scratch (moment start, BFGS, Newton), impute, analyse.
  Timed on ``--naive-subjects`` subjects and scaled to all; its estimates are compared with the
  fast run's samples of the same subjects (``max |diff|``).

Run: ``uv run --frozen --no-sync python benchmarks/rbi.py`` (``--sizes``, ``--repeats``).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one BLAS thread

import argparse
import time

import numpy as np
import polars as pl

from trial.rbi import run_rbi
from trial.rbi.engine import point_estimates
from trial.rbi.prepare import prepare
from trial.rbi.simulate import TrialDesign, simulate_trial, simulated_trial_spec

SPEC = simulated_trial_spec()


def _naive(data: pl.DataFrame, ice: pl.DataFrame, subjects: list[str]) -> tuple[float, np.ndarray]:
    """Seconds per leave-one-out refit from scratch, and the estimates (subjects, rows)."""
    start = time.perf_counter()
    estimates = []
    for s in subjects:
        prep = prepare(
            data.filter(pl.col("subject") != s), ice.filter(pl.col("subject") != s), SPEC
        )
        estimates.append(point_estimates(prep).ravel())
    return (time.perf_counter() - start) / len(subjects), np.array(estimates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300,1500")
    parser.add_argument("--visits", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-subjects", type=int, default=20)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        data, ice = simulate_trial(TrialDesign(n_subjects=n, n_visits=args.visits), args.seed)
        run_rbi(data, ice, SPEC)  # warm-up (imports, caches)
        times, cpu, result = [], [], None
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = run_rbi(data, ice, SPEC)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        assert result is not None
        subjects = result.imputed.get_column("subject").unique(maintain_order=True).to_list()
        chosen = subjects[:: max(1, n // args.naive_subjects)][: args.naive_subjects]
        per_refit, naive_est = _naive(data, ice, chosen)
        index = [subjects.index(s) for s in chosen]
        samples = result.samples.sort("sample").get_column("estimate").to_numpy()
        fast_est = samples.reshape(n, -1)[index]
        seconds = result.fit["seconds"]
        assert isinstance(seconds, dict)
        rows.append(
            {
                "subjects": n,
                "visits": args.visits,
                "fast_s (best)": round(min(times), 3),
                "fast_s (median)": round(float(np.median(times)), 3),
                "fast_cpu_s (best)": round(min(cpu), 3),
                "refits_s (last run)": round(seconds["refits"], 3),
                "refit_fallbacks": result.fit["refit_fallbacks"],
                "naive_ms_per_refit": round(1000 * per_refit, 1),
                "naive_s (x subjects)": round(per_refit * n, 1),
                "speed-up": round(per_refit * n / min(times), 1),
                "max_abs_diff": float(np.abs(fast_est - naive_est).max()),
            }
        )
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=220):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
