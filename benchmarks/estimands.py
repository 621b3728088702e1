"""Benchmark of the estimands' and the tipping point's imputation work (issue 15): each route
the code takes beside the route it replaced, both measured in the same run.

Data: a simulated trial of :mod:`trial.rbi.simulate` (default 300 subjects, 6 visits, 30 %
discontinuation, imputation model ``y ~ arm * visit + base * visit``, ANCOVA ``y ~ arm + base``).

- ``jackknife refits``: the leave-one-out refits one subject at a time
  (``LeaveOneOut.refit`` per subject) against all at once (``LeaveOneOut.refit_all``);
- ``bootstrap refits``: the ``--samples`` bootstrap draws of approximate Bayesian MI (the
  estimands' check) with each resample's pattern sums built and refitted alone as it is drawn
  (``UnstructuredReml.refit``) against all resamples' refits batched
  (``trial.rbi.bootstrap.BootstrapRefits``, through ``engine._bootstrap``); same resamples;
- ``tipping curve``: a grid of ``--deltas`` deltas (step 0.05) for the drug arm analysed one
  delta at a time (``RbiFits.analyse``) against ``RbiFits.scaled_delta_curve`` (linear in delta);
- ``three strategies``: JR, CR and CIR with post-ICE values fitted, each fitted (``fit_rbi``)
  against fitted once and reused (``fit_rbi(..., reuse=...)``), then analysed;
- ``BLAS threads``: the three strategies and the tipping curve (new routes, through the
  engine's inner functions) with OpenBLAS's default threads against
  :func:`trial.rbi.threads.one_blas_thread`, which the engine's entry points now set.

Every other row runs on one BLAS thread. Wall time depends on what else runs on the shared
machine: the process CPU time (user + system, all threads) is printed beside it, with the load
average. ``max |diff|`` compares the two routes' results.

Run: ``uv run --frozen --no-sync python benchmarks/estimands.py [--subjects 300] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from trial.rbi import fit_rbi
from trial.rbi.engine import (
    _bootstrap,
    _stratified_resample,
    _valid_resample,
    analyse,
    draw_parameters,
    pattern_data,
    scaled_delta_curve,
)
from trial.rbi.jackknife import LeaveOneOut
from trial.rbi.prepare import Prepared, prepare
from trial.rbi.reml_fit import UnstructuredReml
from trial.rbi.simulate import TrialDesign, simulate_trial, simulated_trial_spec
from trial.rbi.threads import one_blas_thread


def _best(run: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Best wall and best CPU seconds of ``repeats`` runs, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus), result


def _jackknife(data: pl.DataFrame, ice: pl.DataFrame) -> tuple[LeaveOneOut, int]:
    prep = fit_rbi(data, ice, simulated_trial_spec()).prep
    model = UnstructuredReml(pattern_data(prep))
    full, hessian = model.fit()
    return LeaveOneOut(prep, model, full, np.linalg.inv(hessian)), prep.n_subjects


def _bootstrap_one_at_a_time(
    prep: Prepared, full_theta: np.ndarray, h_inv: np.ndarray
) -> np.ndarray:
    """The bootstrap's betas as they were drawn before the refits were batched: each estimable
    resample's pattern sums built and refitted alone as soon as it is drawn."""
    rng = np.random.default_rng(prep.spec.seed)
    betas = []
    while len(betas) < prep.spec.n_samples:
        ids = _stratified_resample(prep, rng)
        if _valid_resample(prep, ids):
            betas.append(UnstructuredReml(pattern_data(prep, ids)).refit(full_theta, h_inv)[0].beta)
    return np.array(betas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--visits", type=int, default=6)
    parser.add_argument("--deltas", type=int, default=121)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200, help="bootstrap draws")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    data, ice = simulate_trial(
        TrialDesign(n_subjects=args.subjects, n_visits=args.visits), args.seed
    )
    grid = [round(0.05 * k, 10) for k in range(args.deltas)]
    unit = pl.DataFrame({"arm": ["DRUG"], "delta": [1.0]})
    fitted_post = simulated_trial_spec(fit_post_ice=True)
    strategies = [ice.with_columns(strategy=pl.lit(s)) for s in ("JR", "CR", "CIR")]

    def each_fitted() -> list[pl.DataFrame]:
        return [fit_rbi(data, s, fitted_post).analyse().pooled for s in strategies]

    def reused() -> list[pl.DataFrame]:
        fits: list[Any] = []
        out = []
        for s in strategies:
            fits.append(fit_rbi(data, s, fitted_post, reuse=fits))
            out.append(fits[-1].analyse().pooled)
        return out

    def estimands_like() -> None:
        """The three strategies from one fit and the tipping curve, through the engine's
        functions that do not set the BLAS threads (its entry points do: one thread)."""
        prep = prepare(data, strategies[0], fitted_post)
        draws = draw_parameters(prep)
        for s in strategies:
            analyse(prepare(data, s, fitted_post), draws)
        mar = prepare(data, ice.with_columns(strategy=pl.lit("MAR")), fitted_post)
        scaled_delta_curve(mar, draw_parameters(mar), unit, grid)

    rows = []

    def row(
        step: str,
        old: str,
        new: str,
        a: tuple[float, float, Any],
        b: tuple[float, float, Any],
        diff: float | None,
    ) -> None:
        rows.append(
            {
                "step": step,
                "before": old,
                "after": new,
                "before wall s": round(a[0], 3),
                "before cpu s": round(a[1], 3),
                "after wall s": round(b[0], 3),
                "after cpu s": round(b[1], 3),
                "cpu ratio": round(a[1] / b[1], 1) if b[1] > 0 else None,
                "max |diff|": diff,
            }
        )

    estimands_like()  # warm-up (imports, caches)
    default = _best(estimands_like, args.repeats)
    with one_blas_thread():
        single = _best(estimands_like, args.repeats)
        row(
            "BLAS threads (3 strategies + curve)",
            f"{os.cpu_count()} threads (default)",
            "one_blas_thread",
            default,
            single,
            None,
        )
        loo, n = _jackknife(data, ice)
        one = _best(lambda: [loo.refit(i)[0].beta for i in range(n)], args.repeats)
        batch = _best(lambda: loo.refit_all()[0], args.repeats)
        row(
            "jackknife refits",
            "one subject at a time",
            "refit_all",
            one,
            batch,
            float(np.abs(np.array(one[2]) - batch[2]).max()),
        )
        bayes = prepare(
            data, ice, simulated_trial_spec(method="bayes-approx", n_samples=args.samples)
        )
        model = UnstructuredReml(pattern_data(bayes))
        full, hessian = model.fit()
        h_inv = np.linalg.inv(hessian)
        alone = _best(lambda: _bootstrap_one_at_a_time(bayes, full.theta, h_inv), args.repeats)
        batched = _best(lambda: _bootstrap(bayes, model, full, h_inv)[0], args.repeats)
        row(
            f"bootstrap refits ({args.samples} samples)",
            "one resample at a time",
            "BootstrapRefits",
            alone,
            batched,
            float(np.abs(alone[2] - batched[2]).max()),
        )
        fits = fit_rbi(data, ice.with_columns(strategy=pl.lit("MAR")), fitted_post)
        per_delta = _best(
            lambda: [fits.analyse(unit.with_columns(delta=pl.lit(d))).pooled for d in grid],
            args.repeats,
        )
        curve = _best(lambda: fits.scaled_delta_curve(unit, grid), args.repeats)
        old_est = np.concatenate([p["estimate"].to_numpy() for p in per_delta[2]])
        row(
            f"tipping curve ({len(grid)} deltas)",
            "analyse per delta",
            "scaled_delta_curve",
            per_delta,
            curve,
            float(np.abs(old_est - curve[2]["estimate"].to_numpy()).max()),
        )
        a, b = _best(each_fitted, args.repeats), _best(reused, args.repeats)
        row(
            "three strategies (JR, CR, CIR)",
            "three fits",
            "one fit reused",
            a,
            b,
            max(
                float(np.abs(x["estimate"] - y["estimate"]).max())
                for x, y in zip(a[2], b[2], strict=True)
            ),
        )
    print(
        f"{args.subjects} subjects, {args.visits} visits; best of {args.repeats}; "
        f"load average (1, 5, 15 min): {tuple(round(x, 1) for x in os.getloadavg())}"
    )
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=250,
        fmt_str_lengths=60,
        tbl_hide_dataframe_shape=True,
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
    ):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
