"""The ``ionto`` command.

Subcommands import what they need when they run, so that ``ionto capture`` on a clinic PC
never loads Dagster, and ``ionto simulate`` never loads the models.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ingest.bench.cli import add_bench_commands

DEFAULT_DEMO_SEED = 301


def _cmd_simulate(args: argparse.Namespace) -> int:
    from study import load_study
    from trial.simulate import simulate_trial

    study = load_study(args.study)
    summary = simulate_trial(
        study, n_subjects=args.subjects, seed=args.seed, raw_dir=Path(args.out), faults=args.faults
    )
    print("\n".join(summary.lines()))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.run import run_pipeline

    report = run_pipeline(
        raw_dir=Path(args.raw),
        out_dir=Path(args.out),
        study_path=Path(args.study) if args.study else None,
        unblind_path=Path(args.unblind) if args.unblind else None,
    )
    print(report.describe())
    return 0 if report.success else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.run import run_demo

    report = run_demo(
        out_dir=Path(args.out),
        raw_dir=Path(args.raw) if args.raw else None,
        subjects=args.subjects,
        seed=args.seed,
    )
    print(report.describe())
    return 0 if report.success else 1


def _parse_effects(text: str | None) -> dict[str, float] | None:
    """``TAP=-1.2,GLY=-1.6`` -> {"TAP": -1.2, "GLY": -1.6}: mean log change at the primary visit."""
    if not text:
        return None
    effects = {}
    for item in text.split(","):
        arm, _, value = item.partition("=")
        if not value:
            raise SystemExit(f"--effect: {item!r} is not ARM=VALUE (e.g. GLY=-1.6)")
        effects[arm.strip()] = float(value)
    return effects


def _progress_bar(done: int, total: int) -> None:
    """One line on stderr, redrawn in place: replicates done of all, and the share."""
    width = 30
    filled = width * done // total
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done == total else ""
    print(f"\r[{bar}] {done}/{total} replicates", end=end, file=sys.stderr, flush=True)


def _cmd_power(args: argparse.Namespace) -> int:
    import polars as pl

    from study import load_study
    from trial.models.power import simulate_power

    study = load_study(args.study)
    effects = {**study.simulation["mean_change_w4"], **(_parse_effects(args.effect) or {})}
    unknown = set(effects) - set(study.arm_codes)
    if unknown:
        raise SystemExit(f"--effect names arms {sorted(unknown)} not in {study.arm_codes}")
    subjects = [int(n) for n in args.subjects.split(",")]
    result = simulate_power(
        study,
        subjects,
        args.sims,
        seed=args.seed,
        mean_change=effects,
        progress=None if args.quiet else _progress_bar,
    )
    print(f"true mean change at {study.primary_visit}: {effects}")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=160):
        print(result.table)
    print(f"{result.replicates_per_second:.1f} replicates per second")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ionto",
        description="Iontophoresis trial pipeline: simulate, ingest, validate, derive, analyse.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated raw delivery tree (known truth)")
    sim.add_argument("--subjects", type=int, required=True, help="subjects screened")
    sim.add_argument("--seed", type=int, required=True)
    sim.add_argument("--out", required=True, help="raw root to write (sealed list goes beside it)")
    sim.add_argument("--faults", action="store_true", help="inject faults, listed in faults.json")
    sim.add_argument("--study", default=None, help="study configuration YAML (default ION-301)")
    sim.set_defaults(func=_cmd_simulate)

    run = sub.add_parser("run", help="materialise every asset through Dagster")
    run.add_argument("--raw", required=True, help="raw delivery root")
    run.add_argument("--out", required=True, help="output folder (tables, models, reports)")
    run.add_argument(
        "--unblind",
        default=None,
        metavar="PATH",
        help="sealed randomisation list: the explicit, logged way to an unblinded run",
    )
    run.add_argument("--study", default=None, help="study configuration YAML (default ION-301)")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser(
        "demo", help="simulate the demo study if no raw data is given, then run it end to end"
    )
    demo.add_argument("--raw", default=None, help="raw root to use instead of simulating")
    demo.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    demo.add_argument("--subjects", type=int, default=300)
    demo.add_argument("--seed", type=int, default=DEFAULT_DEMO_SEED)
    demo.set_defaults(func=_cmd_demo)

    power = sub.add_parser(
        "power", help="power of the primary MMRM contrasts by simulation, per sample size"
    )
    power.add_argument("--subjects", required=True, help="comma-separated sizes, e.g. 60,90,120")
    power.add_argument("--sims", type=int, default=500, help="replicates per size")
    power.add_argument(
        "--effect",
        default=None,
        help="true mean log change at the primary visit per arm, e.g. TAP=-1.2,GLY=-1.5 "
        "(default: the study configuration's simulation values)",
    )
    power.add_argument("--seed", type=int, default=20260112)
    power.add_argument("--study", default=None, help="study configuration YAML (default ION-301)")
    power.add_argument("--quiet", action="store_true", help="no progress bar")
    power.set_defaults(func=_cmd_power)

    add_bench_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
