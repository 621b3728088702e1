"""Benchmark of incremental deliveries (docs/incremental.md): adding one delivery to a history
costs reading that delivery, not the history.

A trial is simulated once; its delivery folders, in delivery-date order, make histories of
increasing size. For each history size N: a full run on the N deliveries before the last one
(fresh output folder), then the last delivery is added and ``run_pipeline`` runs again on the
same output folder. The table shows, for both runs, the wall time of the partitioned step
(reading deliveries: N of them, then 1) and of the refresh of every unpartitioned asset
(landing manifest, resolution of current versions, clean, analysis-ready, models, reports),
which still grows with the history.

A model step that fails on a partial trial (``durability`` does, on main too) is listed under
the table; it fails, and its dependants are skipped, in both runs of the same history alike.

Usage: ``python benchmarks/incremental.py [--subjects 36] [--sizes 10,20,40]``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.deliveries import scan_deliveries  # noqa: E402
from pipelines.run import RunReport, run_pipeline  # noqa: E402
from study import load_study  # noqa: E402
from trial.simulate import simulate_trial  # noqa: E402


def _copy(source: Path, folders: list[str], target: Path) -> None:
    for folder in folders:
        shutil.copytree(source / folder, target / folder, dirs_exist_ok=True)


def _row(label: str, n: int, report: RunReport) -> str:
    total = report.seconds
    return (
        f"| {n:>9} | {label:<24} | {len(report.deliveries_read):>5} | "
        f"{report.read_seconds:>9.1f} | {report.refresh_seconds:>10.1f} | {total:>8.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=36)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sizes", default="10,20,40")
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "source"
        simulate_trial(load_study(), n_subjects=args.subjects, seed=args.seed, raw_dir=source)
        folders = sorted(
            (d.folder for d in scan_deliveries(source)), key=lambda f: (f.split("/")[1], f)
        )
        if max(sizes) + 1 > len(folders):
            raise SystemExit(f"the simulated trial has {len(folders)} deliveries only")
        print(f"simulated trial: {args.subjects} subjects, {len(folders)} deliveries")
        print(
            "| history N | run                      | read  | read s    | refresh s  | total s  |"
        )
        print("|---|---|---|---|---|---|")
        notes: list[str] = []
        for n in sizes:
            raw, out = work / f"raw{n}", work / f"out{n}"
            _copy(source, folders[-n - 1 : -1], raw)
            full = run_pipeline(raw_dir=raw, out_dir=out)
            _copy(source, folders[-1:], raw)
            added = run_pipeline(raw_dir=raw, out_dir=out)
            failed = sorted({*full.failed_steps, *added.failed_steps})
            if failed:
                notes.append(f"N={n}: failed steps {', '.join(failed)}")
            print(_row("full run on N", n, full))
            print(_row("add 1 delivery", n, added), flush=True)
        print("\n".join(notes))


if __name__ == "__main__":
    main()
