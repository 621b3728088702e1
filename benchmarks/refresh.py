"""Profile of ``ionto run`` on the demo trial: where the time of a run goes (issue 15).

The demo study is simulated once (300 subjects by default). Three runs of ``run_pipeline``
share one output folder, as a trial's refreshes do:

1. ``first``: every delivery but the last one (by delivery date) into an empty folder;
2. ``one_delivery``: the last delivery added, then the same folder run again;
3. ``no_change``: the same raw tree once more.

For every Dagster step (an asset or a multi-asset, with its assets' contract checks) the table
gives its wall and CPU seconds, and of those the IO manager's reads and writes and the contract
checks (they run inside the asset steps, ``pipelines/asset_step.py``); the summary splits the
steps' time further into the assets' own code (the time before each asset output since the
step's previous Dagster event), the reads, writes and checks, and the rest: Dagster's handling
of the step (input and output events, data versions, its event storage inside the step). The
run's fixed costs are rows of their own: importing the pipeline, building the definitions and
opening the instance (measured alone, before the runs), the instance's event storage (time
spent storing Dagster's events, inside and outside steps), Chromium printing the PDF (its wall
time: from the print's start to the end of its wait, inside the report step, which writes its
RTF files meanwhile; its CPU: every process of the Chromium, read from ``/proc`` when the run
stops it, wherever it was spent: ``ionto run`` starts Chromium ahead of the report, beside the
steps before it), and what is left of the run's wall time outside every step (Dagster's
orchestration).

CPU is user + system time of this process and its finished children (process pools), from
``getrusage``; on 2 cores a step's CPU can exceed its wall time. Chromium's CPU is not in any
step's (its processes run beside the steps and are reaped after the run).

Blinded by default (the sealed list stays closed: no estimands, no tipping point); ``--unblinded``
opens the simulated sealed list as ``ionto demo`` does.

Usage: ``python benchmarks/refresh.py [--subjects 300] [--seed 301] [--top 25] [--unblinded]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402

import pipelines.asset_step as asset_step  # noqa: E402
import trial.report.investigator as investigator  # noqa: E402
import trial.report.pdf as pdf  # noqa: E402
from ingest.deliveries import scan_deliveries  # noqa: E402
from pipelines.definitions import build_definitions  # noqa: E402
from pipelines.io_manager import ParquetIOManager  # noqa: E402
from pipelines.resources import TrialSettings  # noqa: E402
from pipelines.run import RunReport, run_pipeline  # noqa: E402
from study import load_study  # noqa: E402
from trial.simulate import simulate_trial  # noqa: E402

RUNS = ("first", "one_delivery", "no_change")
CHROMIUM = "chromium (PDF: wall in the report step, cpu of its processes)"


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children, in seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Cost:
    wall: float = 0.0
    cpu: float = 0.0

    def add(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


def total(costs: Mapping[str, Cost]) -> Cost:
    """The sum of ``costs`` (by step)."""
    return Cost(sum(c.wall for c in costs.values()), sum(c.cpu for c in costs.values()))


@dataclass
class Profile:
    """What one run spent, by step and by fixed cost."""

    steps: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    reads: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    writes: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    checks: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    code: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    """The asset's own code: in each step, the time before each of its asset outputs since the
    step's previous event."""
    last_event: dict[str, tuple[float, float]] = field(default_factory=dict)
    fixed: dict[str, Cost] = field(default_factory=lambda: defaultdict(Cost))
    step_started: dict[str, tuple[float, float]] = field(default_factory=dict)
    current_step: str = "?"
    """The step running now: the in-process executor runs one step at a time."""


PROFILE = Profile()


@contextmanager
def timed(cost: Cost) -> Iterator[None]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    try:
        yield
    finally:
        cost.add(time.perf_counter() - wall, cpu_seconds() - cpu)


def _wrap_io(method: Callable[..., Any], into: str) -> Callable[..., Any]:
    def wrapper(self: Any, context: Any, *args: Any) -> Any:
        with timed(getattr(PROFILE, into)[PROFILE.current_step]):
            return method(self, context, *args)

    return wrapper


def _wrap_events(method: Callable[..., Any]) -> Callable[..., Any]:
    """Time the instance's event storage, take each step's span from its events, and the
    asset's own code from the gap before each asset output (a check's output excluded: the
    check is timed apart; the IO manager writes after the output event)."""

    def wrapper(self: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        dagster_event = getattr(event, "dagster_event", None)
        key = dagster_event.step_key if dagster_event is not None else None
        if dagster_event is not None and key:
            now = (time.perf_counter(), cpu_seconds())
            if dagster_event.event_type == dg.DagsterEventType.STEP_START:
                PROFILE.step_started[key] = now
                PROFILE.current_step = key
            elif dagster_event.is_step_success or dagster_event.is_step_failure:
                wall, cpu = PROFILE.step_started.pop(key)
                PROFILE.steps[key].add(now[0] - wall, now[1] - cpu)
            elif dagster_event.event_type == dg.DagsterEventType.STEP_OUTPUT:
                output = dagster_event.step_output_data.step_output_handle.output_name
                if not output.endswith("_contract") and key in PROFILE.last_event:
                    wall, cpu = PROFILE.last_event[key]
                    PROFILE.code[key].add(now[0] - wall, now[1] - cpu)
        with timed(PROFILE.fixed["instance event storage"]):
            result = method(self, event, *args, **kwargs)
        if key:
            PROFILE.last_event[key] = (time.perf_counter(), cpu_seconds())
        return result

    return wrapper


def _wrap_pdf(start: Callable[..., Any]) -> Callable[..., Any]:
    """Time a PDF print from its start to the end of its wait (the report step writes its RTF
    files meanwhile): the wall time the print adds to the step, whose CPU is counted apart
    (:func:`_wrap_kill`)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        printing = start(*args, **kwargs)
        started, wait = time.perf_counter(), printing.wait

        def timed_wait() -> Any:
            try:
                return wait()
            finally:
                PROFILE.fixed[CHROMIUM].add(time.perf_counter() - started, 0.0)

        printing.wait = timed_wait
        return printing

    return wrapper


def process_group_cpu(group: int) -> float:
    """User + system CPU of the live processes of a process group (from ``/proc``), seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _wrap_kill(kill: Callable[..., Any]) -> Callable[..., Any]:
    """Count the CPU of every process of a Chromium (browser, zygote, renderer, GPU, utility;
    its own process group) just before it is stopped: more than ``getrusage`` sees, which
    misses the processes the zygote forks."""

    def wrapper(chromium: pdf.Chromium) -> Any:
        if chromium.is_running():
            PROFILE.fixed[CHROMIUM].add(0.0, process_group_cpu(chromium._process.pid))
        return kill(chromium)

    return wrapper


def _wrap_check(function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with timed(PROFILE.checks[PROFILE.current_step]):
            return function(*args, **kwargs)

    return wrapper


def instrument() -> None:
    """Patch the IO manager, the contract checks, the instance's event handling and the PDF
    printer with timers."""
    asset_step.contract_check_result = _wrap_check(asset_step.contract_check_result)  # type: ignore[assignment]
    ParquetIOManager.handle_output = _wrap_io(ParquetIOManager.handle_output, "writes")  # type: ignore[method-assign]
    ParquetIOManager.load_input = _wrap_io(ParquetIOManager.load_input, "reads")  # type: ignore[method-assign]
    dg.DagsterInstance.handle_new_event = _wrap_events(dg.DagsterInstance.handle_new_event)  # type: ignore[method-assign]
    investigator.start_pdf_print = _wrap_pdf(investigator.start_pdf_print)  # type: ignore[assignment]
    pdf.Chromium.kill = _wrap_kill(pdf.Chromium.kill)  # type: ignore[method-assign]


def import_cost() -> Cost:
    """Wall and CPU of importing the pipeline in a fresh interpreter (what ``ionto run`` pays)."""
    code = (
        "import resource, time; w = time.perf_counter(); import pipelines.run, "
        "pipelines.definitions; r = resource.getrusage(resource.RUSAGE_SELF); "
        "print(time.perf_counter() - w, r.ru_utime + r.ru_stime)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    wall, cpu = (float(v) for v in out.stdout.split()[-2:])
    return Cost(wall, cpu)


def start_cost(raw: Path, out: Path) -> Cost:
    """Building the definitions and opening an in-memory instance, as ``run_pipeline`` does."""
    cost = Cost()
    with timed(cost):
        settings = TrialSettings(raw_dir=str(raw), out_dir=str(out), study_path="", unblind_path="")
        build_definitions(settings)
        with dg.DagsterInstance.ephemeral():
            pass
    return cost


def dagster_floor(n_assets: int = 50, n_inputs: int = 3) -> Cost:
    """Dagster's own cost for a graph of this size: ``n_assets`` assets that return 1, each
    reading the ``n_inputs`` assets before it, run in-process on an in-memory instance with
    Dagster's in-memory IO manager (no file, no check, no work): the least a refresh of every
    asset can cost under Dagster's in-process executor."""
    names = [f"a{i}" for i in range(n_assets)]

    def one(**inputs: int) -> int:
        return 1

    assets = [
        dg.asset(name=name, ins={p: dg.AssetIn(p) for p in names[max(0, i - n_inputs) : i]})(one)
        for i, name in enumerate(names)
    ]
    job = dg.Definitions(
        assets=assets, resources={"io_manager": dg.mem_io_manager}
    ).resolve_implicit_global_asset_job_def()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    cost = Cost()
    with dg.DagsterInstance.ephemeral() as instance, timed(cost):
        job.execute_in_process(instance=instance, run_config=quiet)
    return cost


def profiled_run(raw: Path, out: Path, sealed: Path | None) -> tuple[RunReport, Profile]:
    global PROFILE
    PROFILE = Profile()
    report = run_pipeline(raw_dir=raw, out_dir=out, unblind_path=sealed)
    if not report.success:
        raise SystemExit(f"the run on {raw} failed: {report.failed_steps} {report.failed_checks}")
    return report, PROFILE


def print_steps(profiles: dict[str, Profile], top: int) -> None:
    keys = sorted(
        {k for p in profiles.values() for k in p.steps},
        key=lambda k: -profiles["first"].steps[k].wall if k in profiles["first"].steps else 0,
    )
    head = "| step | " + " | ".join(f"{r} wall | cpu | io read | io write" for r in RUNS) + " |"
    print(head)
    print("|---" * (1 + 4 * len(RUNS)) + "|")
    for key in keys[:top]:
        cells = []
        for run in RUNS:
            p = profiles[run]
            if key in p.steps:
                s, r, w = p.steps[key], p.reads[key], p.writes[key]
                cells.append(f"{s.wall:.2f} | {s.cpu:.2f} | {r.wall:.2f} | {w.wall:.2f}")
            else:
                cells.append("- | - | - | -")
        print(f"| {key} | " + " | ".join(cells) + " |")
    rest = keys[top:]
    if rest:
        cells = []
        for run in RUNS:
            p = profiles[run]
            wall = sum(p.steps[k].wall for k in rest if k in p.steps)
            cpu = sum(p.steps[k].cpu for k in rest if k in p.steps)
            read = sum(p.reads[k].wall for k in rest if k in p.reads)
            write = sum(p.writes[k].wall for k in rest if k in p.writes)
            cells.append(f"{wall:.2f} | {cpu:.2f} | {read:.2f} | {write:.2f}")
        print(f"| {len(rest)} other steps | " + " | ".join(cells) + " |")


def print_summary(
    reports: dict[str, RunReport],
    profiles: dict[str, Profile],
    imports: Cost,
    start: Cost,
    floor: Cost,
) -> None:
    print("| cost | " + " | ".join(f"{r} wall | cpu" for r in RUNS) + " |")
    print("|---" * (1 + 2 * len(RUNS)) + "|")
    print(f"| imports (fresh interpreter) | {imports.wall:.2f} | {imports.cpu:.2f} | | | | |")
    print(f"| definitions + instance (alone) | {start.wall:.2f} | {start.cpu:.2f} | | | | |")
    print(
        f"| Dagster floor: 50 no-op assets (alone) | {floor.wall:.2f} | {floor.cpu:.2f} | | | | |"
    )
    rows: dict[str, list[str]] = defaultdict(list)
    for run in RUNS:
        p, report = profiles[run], reports[run]
        steps, reads, writes = total(p.steps), total(p.reads), total(p.writes)
        check, code = total(p.checks), total(p.code)
        parts = (reads, writes, check, code)
        rest = Cost(steps.wall - sum(c.wall for c in parts), steps.cpu - sum(c.cpu for c in parts))
        for name, cost in [
            ("all steps", steps),
            ("  of which the assets' own code", code),
            ("  of which IO manager reads", reads),
            ("  of which IO manager writes", writes),
            ("  of which contract checks (in the asset steps)", check),
            ("  of which the rest (Dagster's step handling and its events)", rest),
            *sorted(p.fixed.items()),
        ]:
            rows[name].append(f"{cost.wall:.2f} | {cost.cpu:.2f}")
        rows["outside steps (orchestration)"].append(f"{report.seconds - steps.wall:.2f} | ")
        rows["run total (wall)"].append(f"{report.seconds:.2f} | ")
        rows["deliveries read"].append(f"{len(report.deliveries_read)} | ")
        rows["assets recomputed"].append(f"{len(report.recomputed)} of {report.assets_total} | ")
        rows["assets unchanged and reused"].append(f"{len(report.reused)} | ")
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=300)
    parser.add_argument("--seed", type=int, default=301)
    parser.add_argument("--top", type=int, default=25, help="steps listed one by one")
    parser.add_argument(
        "--unblinded",
        action="store_true",
        help="open the simulated sealed list, as the demo does (estimands and tipping point)",
    )
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    imports = import_cost()
    instrument()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source, raw, out = work / "source", work / "raw", work / "out"
        summary = simulate_trial(
            load_study(), n_subjects=args.subjects, seed=args.seed, raw_dir=source
        )
        sealed = summary.sealed_dir / "randomisation.csv" if args.unblinded else None
        start = start_cost(source, work / "start")
        floor = dagster_floor()
        # "<centre>/<date>" in delivery-date order: the last one is the newest delivery.
        folders = sorted(
            (d.folder for d in scan_deliveries(source)), key=lambda f: (f.split("/")[1], f)
        )
        for folder in folders[:-1]:
            shutil.copytree(source / folder, raw / folder)
        reports: dict[str, RunReport] = {}
        profiles: dict[str, Profile] = {}
        reports["first"], profiles["first"] = profiled_run(raw, out, sealed)
        shutil.copytree(source / folders[-1], raw / folders[-1])
        reports["one_delivery"], profiles["one_delivery"] = profiled_run(raw, out, sealed)
        reports["no_change"], profiles["no_change"] = profiled_run(raw, out, sealed)
    print(
        f"Demo trial: {args.subjects} subjects, seed {args.seed}, {len(folders)} deliveries, "
        f"{'UNBLINDED' if sealed else 'blinded'}; "
        f"the last ({folders[-1]}) is added in the second run. Seconds."
    )
    print()
    print_summary(reports, profiles, imports, start, floor)
    print()
    print_steps(profiles, args.top)


if __name__ == "__main__":
    main()
