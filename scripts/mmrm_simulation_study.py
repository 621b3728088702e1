"""Simulation study of the primary MMRM: CI coverage and type I error of the W4 contrasts.

Over many trials simulated from the study configuration (``trial.models.power.simulate_trial``,
SAP section 9 parameters, known truth), fit the configured MMRM (unstructured with fallbacks,
Satterthwaite df) and record, for each arm - reference contrast at the primary visit: bias,
mean model-based SE against the empirical SD of the estimates, coverage of the 95 % CI, and
the rejection rate at alpha. Two scenarios: ``alternative`` (configured mean changes) and
``null`` (every arm with the reference arm's mean change: rejection rate = type I error).
Prints one table; the numbers are recorded in docs/statistics.md.

Run: ``uv run --frozen --no-sync python scripts/mmrm_simulation_study.py --sims 1000``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from study import load_study
from trial.models.mmrm import CovarianceFitError, fit_design
from trial.models.power import simulate_trial, true_contrasts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--subjects", type=int, default=120)
    parser.add_argument("--seed", type=int, default=301)
    args = parser.parse_args()
    study = load_study()
    config = study.models.mmrm
    names = config.structures
    alpha = study.alpha
    visit, ref = study.primary_visit, study.reference_arm
    mean_change = study.simulation.primary_mean_change
    scenarios = {
        "alternative": dict(mean_change),
        "null": {a: mean_change[ref] for a in study.arm_codes},
    }
    print(
        f"{'scenario':<12} {'contrast':<8} {'truth':>7} {'bias':>8} {'mean SE':>8} "
        f"{'emp SD':>8} {'coverage':>9} {'MC SE':>6} {'reject':>7} {'MC SE':>6} "
        f"{'fallbacks':>9} {'failed':>6}"
    )
    for scenario, mu in scenarios.items():
        rng = np.random.default_rng(args.seed)
        truth = true_contrasts(study, mu)[visit]
        arms = study.arm_codes[1:]
        est = np.full((args.sims, len(arms)), np.nan)
        se, lo, hi, p = (np.full_like(est, np.nan) for _ in range(4))
        fallbacks = failed = 0
        started = time.perf_counter()
        for r in range(args.sims):
            design = simulate_trial(study, args.subjects, rng, mean_change=mu).design()
            try:
                fit = fit_design(design, names, ddf=config.ddf)
            except CovarianceFitError:
                failed += 1
                continue
            fallbacks += bool(fit.rejected)
            rows = np.array(
                [design.lsmean_vector(a, visit) - design.lsmean_vector(ref, visit) for a in arms]
            )
            inf = fit.inference(rows)
            half = stats.t.ppf(1 - alpha / 2, inf.df) * inf.std_error
            est[r], se[r] = inf.estimate, inf.std_error
            lo[r], hi[r] = inf.estimate - half, inf.estimate + half
            p[r] = 2 * stats.t.sf(np.abs(inf.estimate / inf.std_error), inf.df)
        ok = ~np.isnan(est[:, 0])
        n_ok = int(ok.sum())
        for k, arm in enumerate(arms):
            true = truth[f"{arm}-{ref}"]
            cover = float(np.mean((lo[ok, k] <= true) & (true <= hi[ok, k])))
            reject = float(np.mean(p[ok, k] < alpha))
            print(
                f"{scenario:<12} {arm + '-' + ref:<8} {true:>7.3f} "
                f"{np.mean(est[ok, k]) - true:>8.4f} {np.mean(se[ok, k]):>8.4f} "
                f"{np.std(est[ok, k], ddof=1):>8.4f} {cover:>9.3f} "
                f"{np.sqrt(cover * (1 - cover) / n_ok):>6.3f} {reject:>7.3f} "
                f"{np.sqrt(reject * (1 - reject) / n_ok):>6.3f} {fallbacks:>9} {failed:>6}"
            )
        elapsed = time.perf_counter() - started
        print(
            f"# {scenario}: {args.sims} trials x {args.subjects} subjects in {elapsed:.1f} s "
            f"({args.sims / elapsed:.1f} fits/s)"
        )


if __name__ == "__main__":
    main()
