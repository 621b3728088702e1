"""The ``ionto`` command.

Subcommands import what they need when they run, so that ``ionto capture`` on a clinic PC
never loads Dagster, and ``ionto simulate`` never loads the models.

An expected user mistake (:class:`~pipelines.preflight.UsageError`) ends the command with one
line on stderr saying what to do, and exit code 2; a run that stops on an unexpected error
prints one line naming the log file with the traceback (``OUT/logs/``), exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.bench.cli import add_bench_commands
from pipelines.preflight import UsageError
from study import StudyError, load_study, study_file

if TYPE_CHECKING:
    from ionto.progress import TerminalProgress
    from pipelines.run import RunReport

DEFAULT_DEMO_SEED = 301
STUDY_HELP = (
    "study configuration YAML, or the name of a shipped example (ion301, ion302); "
    "default: the bundled ion301"
)
USAGE_EXIT = 2
ABORTED_EXIT = 1


def _import_pipelines() -> None:
    """Load the Dagster definitions with the beta notice of ``backfill_policy`` (a parameter
    the delivery assets use knowingly, docs/incremental.md) kept off the terminal."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function")
        import pipelines.run  # noqa: F401


def _cmd_simulate(args: argparse.Namespace) -> int:
    from trial.simulate import simulate_trial

    study = load_study(args.study)
    summary = simulate_trial(
        study, n_subjects=args.subjects, seed=args.seed, raw_dir=Path(args.out), faults=args.faults
    )
    print("\n".join(summary.lines()))
    return 0


def _refused(command: str, error: Exception) -> int:
    """A user's mistake the run refused before writing: one line on stderr, exit code 2."""
    print(f"ionto {command}: {error}", file=sys.stderr)
    return USAGE_EXIT


def _report_progress(command: str, run: Callable[[TerminalProgress], RunReport]) -> int:
    """``run`` with the phases and steps drawn on stderr; its summary on stdout (exit 0 if it
    succeeded, 1 if not); an unexpected error as one line naming the log (exit 1)."""
    from ionto.progress import TerminalProgress
    from pipelines.blinding_record import OutputFolderRefused
    from pipelines.run import RunAborted

    progress = TerminalProgress()
    try:
        report = run(progress)
    except RunAborted as exc:
        progress.close()
        print(f"ionto {command}: {exc}", file=sys.stderr)
        return ABORTED_EXIT
    except OutputFolderRefused as error:
        progress.close()
        return _refused(command, error)
    progress.close()
    print(report.describe())
    return 0 if report.success else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.blinding_record import (
        OutputFolderRefused,
        check_instance,
        check_output_folder,
    )
    from pipelines.preflight import check_run_arguments

    study = load_study(args.study)  # a broken study file stops here, before Dagster is loaded
    raw, out, study_path = Path(args.raw), Path(args.out), study_file(args.study)
    unblind = Path(args.unblind) if args.unblind else None
    # Before the pipeline (and Dagster) is loaded: a refusal is the only line printed.
    try:
        check_instance(blinded=unblind is None)
        check_output_folder(out, blinded=unblind is None)
    except OutputFolderRefused as error:
        return _refused("run", error)
    check_run_arguments(raw, out, unblind, study)
    _import_pipelines()
    from pipelines.run import run_pipeline

    return _report_progress(
        "run",
        lambda progress: run_pipeline(
            raw_dir=raw,
            out_dir=out,
            study_path=study_path,
            unblind_path=unblind,
            verify=args.verify,
            progress=progress,
        ),
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    _import_pipelines()
    from pipelines.run import run_demo

    return _report_progress(
        "demo",
        lambda progress: run_demo(
            out_dir=Path(args.out),
            raw_dir=Path(args.raw) if args.raw else None,
            subjects=args.subjects,
            seed=args.seed,
            blinded=args.blinded,
            progress=progress,
        ),
    )


def _parse_effects(text: str | None) -> dict[str, float] | None:
    """``A=-1.2,B=-1.6`` -> {"A": -1.2, "B": -1.6}: mean log change at the primary visit per
    arm code."""
    if not text:
        return None
    effects = {}
    for item in text.split(","):
        arm, _, value = item.partition("=")
        if not value:
            raise SystemExit(
                f"--effect: {item!r} is not ARM=VALUE (an arm code of the study, =, the change)"
            )
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

    from trial.models.power import simulate_power

    study = load_study(args.study)
    effects = {**study.simulation.primary_mean_change, **(_parse_effects(args.effect) or {})}
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
    alpha = float(result.table["alpha"][0])
    changes = ", ".join(f"{arm} {effects[arm]:+.2f}" for arm in study.arm_codes)
    print(
        f"Power of the primary MMRM contrasts at {study.primary_visit}: two-sided alpha "
        f"{alpha:g}, {args.sims} simulated trials per size (seed {args.seed})."
    )
    print(
        f"True mean change of log sweat rate at {study.primary_visit}: {changes}; "
        f"effect = arm - {study.reference_arm}, on the log scale."
    )
    table = result.table.select(
        pl.col("subjects").alias("subjects (total)"),
        pl.col("subjects_per_arm").alias(f"per arm ({'/'.join(study.arm_codes)})"),
        "hypothesis",
        "contrast",
        pl.col("effect").round(3),
        "alpha",
        "power",
        pl.col("mc_se").round(3).alias("MC SE"),
        pl.col("power_sequential").alias("power in the fixed sequence"),
        pl.col("mc_se_sequential").round(3).alias("MC SE (sequence)"),
        pl.col("failed_fits").alias("failed fits"),
    )
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=200,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_hide_dtype_separator=True,
    ):
        print(table)
    print(f"{result.replicates_per_second:.1f} replicates per second")
    return 0


def _cmd_rbi(args: argparse.Namespace) -> int:
    import os

    if "numpy" not in sys.modules:  # small matrices: one BLAS thread is fastest (benchmarks/rbi.py)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import polars as pl

    from trial.rbi.command import RbiCommand, execute, split_list
    from trial.rbi.spec import RbiInputError, RbiSpec

    try:
        spec = RbiSpec(
            subject=args.subject,
            visit=args.visit,
            group=args.group,
            reference=args.reference,
            outcome=args.outcome,
            covariates=split_list(args.covariates),
            analysis_covariates=split_list(args.analysis_covariates),
            visits=split_list(args.visits) or None,
            strategy=args.strategy,
            method=args.method,
            n_samples=args.samples,
            seed=args.seed,
            alpha=args.alpha,
            fit_post_ice=args.fit_post_ice,
        )
        command = RbiCommand(
            data=Path(args.data),
            ice=Path(args.ice) if args.ice else None,
            delta=Path(args.delta) if args.delta else None,
            out=Path(args.out),
            spec=spec,
        )
        result = execute(command)
    except RbiInputError as err:
        print(f"ionto rbi: {err}", file=sys.stderr)
        return 2
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=160):
        print(result.pooled)
    print(f"tables written to {args.out}")
    return 0


def _add_rbi_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rbi = sub.add_parser(
        "rbi",
        help="reference-based imputation (MAR, JR, CR, CIR) of a long table, like rbmi",
        description="Impute missing continuous outcomes under MAR or a reference-based "
        "strategy, analyse each visit by ANCOVA and pool (docs/statistics.md).",
    )
    rbi.add_argument("--data", required=True, help="long CSV: one row per subject and visit")
    rbi.add_argument("--subject", required=True, help="subject column")
    rbi.add_argument("--visit", required=True, help="visit column")
    rbi.add_argument("--group", required=True, help="treatment group column")
    rbi.add_argument("--reference", required=True, help="reference level of the group column")
    rbi.add_argument("--outcome", required=True, help="outcome column (numeric; empty = missing)")
    rbi.add_argument(
        "--covariates",
        default="",
        help='imputation-model terms beyond group*visit, e.g. "BASE*VISIT,REGION"',
    )
    rbi.add_argument(
        "--analysis-covariates", default="", help='per-visit ANCOVA terms beyond group, e.g. "BASE"'
    )
    rbi.add_argument(
        "--ice",
        default=None,
        help="ICE CSV: subject and visit columns (first visit affected) and 'strategy'",
    )
    rbi.add_argument(
        "--strategy",
        choices=["MAR", "JR", "CR", "CIR"],
        default=None,
        help="replaces every non-MAR strategy of the ICE table (and is the strategy of an ICE "
        "table without a 'strategy' column)",
    )
    rbi.add_argument(
        "--method",
        choices=["condmean-jackknife", "condmean-bootstrap", "bayes-approx"],
        default="condmean-jackknife",
    )
    rbi.add_argument(
        "--samples", type=int, default=200, help="bootstrap samples or imputations (default 200)"
    )
    rbi.add_argument(
        "--delta",
        default=None,
        help="CSV with a 'delta' column keyed by any of the subject, group and visit columns: "
        "added to imputed values (tipping point)",
    )
    rbi.add_argument("--visits", default="", help="visit order, comma-separated (default: data)")
    rbi.add_argument(
        "--fit-post-ice",
        action="store_true",
        help="also fit the imputation model on observed post-ICE values (default: rbmi's "
        "convention, used in the analysis only)",
    )
    rbi.add_argument("--seed", type=int, default=2013)
    rbi.add_argument("--alpha", type=float, default=0.05)
    rbi.add_argument("--out", required=True, help="folder for the tables (CSV and Parquet)")
    rbi.set_defaults(func=_cmd_rbi)


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
    sim.add_argument("--study", default=None, help=STUDY_HELP)
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
    run.add_argument("--study", default=None, help=STUDY_HELP)
    run.add_argument(
        "--verify",
        action="store_true",
        help="hash every raw file again, also those whose size and modification time are "
        "unchanged since the last run (see docs/incremental.md for when)",
    )
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser(
        "demo", help="simulate the demo study if no raw data is given, then run it end to end"
    )
    demo.add_argument("--raw", default=None, help="raw root to use instead of simulating")
    demo.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    demo.add_argument("--subjects", type=int, default=300)
    demo.add_argument("--seed", type=int, default=DEFAULT_DEMO_SEED)
    demo.add_argument(
        "--blinded",
        action="store_true",
        help="do not open the simulated sealed list (the demo otherwise runs UNBLINDED)",
    )
    demo.set_defaults(func=_cmd_demo)

    power = sub.add_parser(
        "power", help="power of the primary MMRM contrasts by simulation, per sample size"
    )
    power.add_argument("--subjects", required=True, help="comma-separated sizes, e.g. 60,90,120")
    power.add_argument("--sims", type=int, default=500, help="replicates per size")
    power.add_argument(
        "--effect",
        default=None,
        help="true mean log change at the primary visit per arm, ARM=VALUE pairs with the "
        "study's arm codes, e.g. <reference>=-1.2,<arm>=-1.5 "
        "(default: the study configuration's simulation values)",
    )
    power.add_argument("--seed", type=int, default=20260112)
    power.add_argument("--study", default=None, help=STUDY_HELP)
    power.add_argument("--quiet", action="store_true", help="no progress bar")
    power.set_defaults(func=_cmd_power)

    _add_rbi_command(sub)
    add_bench_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"ionto {args.command}: {exc}", file=sys.stderr)
        return USAGE_EXIT
    except StudyError as exc:  # a mistake in the study file: one line, the key path in it
        print(f"ionto {args.command}: study configuration: {exc}", file=sys.stderr)
        return USAGE_EXIT
    return code


if __name__ == "__main__":
    sys.exit(main())
