"""Benchmark of incremental deliveries (docs/incremental.md): adding one delivery to a history
costs reading that delivery, not the history.

A trial is simulated once; its delivery folders, in delivery-date order, make histories of
increasing size. For each history size N: a full run on the N deliveries before the last one
(fresh output folder), then the last delivery is added and ``run_pipeline`` runs again on the
same output folder. The table shows, for both runs, the wall time of the partitioned step
(reading deliveries: N of them, then 1) and of the refresh of every unpartitioned asset
(landing manifest, resolution of current versions, clean, analysis-ready, models, reports),
which still grows with the history; the last column is the refresh's share of the full run
(issue 15's ratio, on that history).

A model step that fails on a partial trial (``durability`` does, on main too) is listed under
the table; it fails, and its dependants are skipped, in both runs of the same history alike.

Usage: ``python benchmarks/incremental.py [--subjects 36] [--sizes 10,20,40]``.

``--telemetry 5e6 [--baseline CHECKOUT]``: the vendor-B telemetry's refresh at trial scale
instead. A telemetry-only delivery tree of that many events (``benchmarks/telemetry.py``'s
generator: one folder per centre and week) is run whole but for its newest delivery (one
centre's last week: a few devices), then that delivery is added and the same output folder
refreshed. Each checkout (``--baseline``, e.g. a worktree of an earlier commit, then this
one) runs in a fresh interpreter, one after the other; the table gives both runs' wall and
CPU seconds (the child's, ``getrusage``) and the MB of the files each run wrote in ``OUT``
(each file once however many links it has; a file linked unchanged was not written).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
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


def _row(label: str, n: int, report: RunReport, full: RunReport | None = None) -> str:
    """One run's line; with ``full`` (the full run on the same history), its share of it."""
    total = report.seconds
    share = f"{total / full.seconds:.0%}" if full is not None else ""
    return (
        f"| {n:>9} | {label:<24} | {len(report.deliveries_read):>5} | "
        f"{report.read_seconds:>9.1f} | {report.refresh_seconds:>10.1f} | {total:>8.1f} | "
        f"{share:>10} |"
    )


TELEMETRY_RUNS = """
import json, logging, resource, shutil, sys, time
from pathlib import Path
repo, raw, out, source, last = sys.argv[1:6]
sys.path.insert(0, repo)
from pipelines.run import run_pipeline
logging.getLogger("dagster").setLevel(logging.WARNING)
def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
def timed(label):
    wall, used, since = time.perf_counter(), cpu(), time.time_ns()
    report = run_pipeline(raw_dir=Path(raw), out_dir=Path(out))
    assert report.success, report.describe()
    files = {(s.st_ino, s.st_size, s.st_mtime_ns) for s in (
        p.stat() for p in Path(out).rglob("*") if p.is_file()
    )}
    written = sum(size for _, size, mtime in files if mtime >= since) / 1e6
    return {"run": label, "wall": time.perf_counter() - wall, "cpu": cpu() - used,
            "read": len(report.deliveries_read), "written_mb": written}
first = timed("full run")
shutil.copytree(Path(source) / last, Path(raw) / last)
print(json.dumps([first, timed("add 1 delivery")]))
"""
"""One checkout's two runs, in a fresh interpreter: (repo, raw, out, source, last folder)."""


def telemetry_refresh(events: float, checkouts: list[Path], cache: Path) -> None:
    """The telemetry-only tree of ``events`` events (generated once under ``cache``): a full
    run without its newest delivery, then the refresh adding it, for each checkout."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from telemetry import generate, label

    source = generate(int(events), cache / f"vendor_b_{label(events)}")
    folders = sorted(
        (f.relative_to(source).as_posix() for f in source.glob("*/*") if f.is_dir()),
        key=lambda f: (f.split("/")[1], f),
    )
    last = folders[-1]
    n_files = len(list((source / last).iterdir()))
    print(
        f"telemetry-only tree: {events:.0e} events, {len(folders)} deliveries; the newest "
        f"({last}, {n_files} files) is added in the refresh"
    )
    print("| checkout | run | read | wall s | cpu s | MB written in OUT |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for number, repo in enumerate(checkouts):
            raw, out = Path(tmp) / f"raw{number}", Path(tmp) / f"out{number}"
            shutil.copytree(source, raw)
            shutil.rmtree(raw / last)
            argv = [str(repo), str(raw), str(out), str(source), last]
            done = subprocess.run(
                [sys.executable, "-c", TELEMETRY_RUNS, *argv],
                check=True,
                capture_output=True,
                text=True,
                cwd=repo,
            )
            for row in json.loads(done.stdout.strip().splitlines()[-1]):
                print(
                    f"| {repo.name} | {row['run']} | {row['read']} | {row['wall']:.1f} | "
                    f"{row['cpu']:.1f} | {row['written_mb']:.1f} |",
                    flush=True,
                )
            shutil.rmtree(raw)
            shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=36)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sizes", default="10,20,40")
    parser.add_argument("--telemetry", type=float, help="events of a telemetry-only tree")
    parser.add_argument(
        "--baseline", type=Path, help="with --telemetry: another checkout, measured first"
    )
    parser.add_argument(
        "--cache", type=Path, default=REPO / "benchmarks" / ".cache", help="generated trees"
    )
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    if args.telemetry:
        checkouts = [args.baseline.resolve()] if args.baseline else []
        telemetry_refresh(args.telemetry, [*checkouts, REPO], args.cache)
        return
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
            "| history N | run                      | read  | read s    | refresh s  | total s  "
            "| of full run |"
        )
        print("|---|---|---|---|---|---|---|")
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
            print(_row("add 1 delivery", n, added, full), flush=True)
        print("\n".join(notes))


if __name__ == "__main__":
    main()
