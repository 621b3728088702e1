"""The ``ionto`` command.

Subcommands import what they need when they run, so that ``ionto capture`` on a clinic PC
never loads Dagster, and ``ionto simulate`` never loads the models.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_DEMO_SEED = 301


def _cmd_simulate(args: argparse.Namespace) -> int:
    from trial.simulate import simulate_trial
    from trial.study import load_study

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

    try:
        from ingest.bench.cli import add_bench_commands
    except ImportError:  # the bench driver is an optional part of a partial checkout
        pass
    else:
        add_bench_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
