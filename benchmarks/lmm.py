"""Time the sensitivity-1 LMM: own pattern REML engine vs statsmodels MixedLM (vs lme4 if R).

Data: ref1's ``analysis_long.csv`` resampled by subject (with replacement, new ids) to
1,500 and 6,000 subjects, so visit patterns and covariates stay realistic. Each engine is
timed end to end through :func:`trial.models.lmm.fit_lmm` (design, fit, LS means), best of
``--repeat`` runs after one warm-up. lme4 (``lmer``, default control) is timed in-process in
R with ``system.time`` when ``Rscript`` is on the PATH; the README's reference is 0.45 s at
1,500 subjects.

    OPENBLAS_NUM_THREADS=1 uv run --frozen --no-sync python benchmarks/lmm.py [--repeat 3]

On a shared, loaded machine run it with single-threaded BLAS (as above): the engine's
matrices are small (<= 138 x 138), and BLAS threads fighting for cores cost more than they
give (on 2 busy cores: 0.24 s with threads, 0.055 s without, at 1,500 subjects).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from study import load_study
from trial.models.lmm import fit_lmm

REPO = Path(__file__).resolve().parent.parent
STUDY_FILE = REPO / "study" / "studies" / "ion301.yaml"
R_SCRIPT = """
d <- read.csv(commandArgs(TRUE)[1])
for (f in c("arm", "visit", "centre", "stratum")) d[[f]] <- factor(d[[f]])
d$arm <- relevel(d$arm, "TAP"); d$visit <- factor(d$visit, c("W1","W2","W3","W4","W8","W12"))
suppressMessages(library(lme4))
fit <- lmer(chg ~ arm * visit + logbase + centre + stratum + (1 + week | subject), d, REML = TRUE)
t <- min(sapply(1:3, function(i) system.time(
  lmer(chg ~ arm * visit + logbase + centre + stratum + (1 + week | subject), d, REML = TRUE)
)[["elapsed"]]))
cat(t, "\\n")
"""


def resample(long: pl.DataFrame, n_subjects: int, seed: int) -> pl.DataFrame:
    """``n_subjects`` subjects drawn with replacement from ``long``, renamed S000001..."""
    ids = long.get_column("subject").unique(maintain_order=True).to_numpy()
    draw = np.random.default_rng(seed).choice(ids, size=n_subjects, replace=True)
    pick = pl.DataFrame({"subject": draw, "new_id": [f"S{i:06d}" for i in range(n_subjects)]})
    return (
        pick.join(long, on="subject", how="inner")
        .drop("subject")
        .rename({"new_id": "subject"})
        .sort("subject", "visit_index")
    )


def best_time(fn: object, repeat: int) -> tuple[float, float]:
    """Best wall-clock and best process CPU time (s) over ``repeat`` runs after a warm-up."""
    assert callable(fn)
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def time_lme4(frame: pl.DataFrame) -> float | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "d.csv"
        script = Path(tmp) / "bench.R"
        frame.write_csv(csv)
        script.write_text(R_SCRIPT)
        out = subprocess.run(
            [rscript, str(script), str(csv)], capture_output=True, text=True, check=False
        )
    if out.returncode != 0:
        return None
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--ref1", type=Path, default=REPO / "tests" / "fixtures" / "ref1", help="reference folder"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1500, 6000])
    args = parser.parse_args()
    study = load_study(STUDY_FILE)
    long = pl.read_csv(args.ref1 / "expected" / "analysis_long.csv")
    load = os.getloadavg()[0]
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"load average {load:.1f} on {os.cpu_count()} CPUs, OPENBLAS_NUM_THREADS={threads} "
        "(times are wall-clock, best of runs)"
    )
    header = f"{'subjects':>8} {'rows':>7} {'own (s)':>8} {'own cpu':>8} {'statsmodels':>12}"
    print(f"{header} {'lme4 (s)':>9} {'lme4/own':>9}")
    for n in args.sizes:
        frame = resample(long, n, seed=n)
        own, own_cpu = best_time(lambda f=frame: fit_lmm(f, study, engine="own"), args.repeat)
        sm, _ = best_time(lambda f=frame: fit_lmm(f, study, engine="statsmodels"), 1)
        r = time_lme4(frame)
        r_text = f"{'n/a (no R)':>9} {'':>9}" if r is None else f"{r:9.3f} {r / own:9.1f}"
        print(f"{n:>8} {frame.height:>7} {own:>8.3f} {own_cpu:>8.3f} {sm:>12.3f} {r_text}")
    print("lme4 reference at 1,500 subjects (README): 0.45 s; target own engine <= 0.09 s")


if __name__ == "__main__":
    main()
