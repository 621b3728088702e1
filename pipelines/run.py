"""``ionto run`` and ``ionto demo``: materialise the code location's assets in-process.

The definitions are the same ones ``dagster dev -w workspace.yaml`` shows; only the run
settings (raw root, output folder, study, unblinding) are passed here instead of read from
the environment. Steps run in one process (Dagster's CLI would start a process per step,
about 28 s of overhead for a small graph, see ../shared/research/stack.md).

Runs are incremental (``docs/incremental.md``): every delivery folder's content key is
registered as a partition of ``deliveries`` in the instance of ``OUT``; only deliveries whose
partition ``OUT`` does not hold yet are read (``process_delivery``, one run for all of them),
then every stale unpartitioned asset is refreshed (``refresh_analysis``), reusing the stored
value of each whose inputs came out unchanged (``pipelines.freshness.step_freshness``). On an
empty ``OUT`` that is every delivery; the tables are the same either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import dagster as dg
import polars as pl
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from ingest.deliveries import deliveries_from_hashes, scan_deliveries
from ingest.registry import SOURCES
from ingest.source_format import SourceFormat
from pipelines.assets.raw import DELIVERIES_NAME
from pipelines.assets.reports import INVESTIGATOR_REPORT
from pipelines.blinding_record import check_instance, check_output_folder, claim_output_folder
from pipelines.checks import failing_rules
from pipelines.definitions import build_definitions
from pipelines.freshness import (
    Freshness,
    reusing_unchanged,
    settings_digest,
    tree_listing,
    was_reused,
)
from pipelines.hash_cache import read_hash_cache
from pipelines.io_manager import partition_path
from pipelines.out_lock import out_folder_lock
from pipelines.preflight import UsageError, check_run_arguments
from pipelines.resources import TrialSettings
from pipelines.run_log import file_logger, new_log_path, run_logging
from study import Study, load_study
from trial.report.exports import NOTES_NAME, read_export_notes
from trial.report.pdf import PrintBrowser
from trial.report.quality import ISSUES_NAME
from trial.report.quality import REPORT_NAME as QUALITY_REPORT

log = logging.getLogger("ionto")


@dataclass
class RunReport:
    """What a run did and where its outputs are."""

    success: bool
    out_dir: Path
    blinded: bool
    seconds: float
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    failing_rules: dict[str, str] = field(default_factory=dict)
    """Each failed check's failing rules, in one line (:func:`pipelines.checks.failing_rules`)."""
    preamble: list[str] = field(default_factory=list)
    deliveries_read: list[str] = field(default_factory=list)
    deliveries_total: int = 0
    read_seconds: float = 0.0
    """Wall time of the run reading the unread deliveries (0 when none)."""
    refresh_seconds: float = 0.0
    """Wall time of the run refreshing the stale unpartitioned assets."""
    recomputed: list[str] = field(default_factory=list)
    """The unpartitioned assets the refresh recomputed (``pipelines.freshness``)."""
    reused: list[str] = field(default_factory=list)
    """Stale assets whose inputs came out unchanged in the refresh: their stored values were
    reused, not recomputed (``pipelines.freshness.step_freshness``)."""
    assets_total: int = 0
    dagster_runs: list[str] = field(default_factory=list)
    """Ids of the Dagster runs launched (none when nothing changed)."""
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The metadata each materialised asset recorded in this run, by asset (what the Dagster
    UI would show; an in-memory instance keeps it only for the run)."""
    log_path: Path | None = None
    """The run's log file (``OUT/logs/run-<UTC time>.log``): Dagster's events, tracebacks."""
    outputs_to_read: list[str] = field(default_factory=list)
    """Lines on what the output folder holds for a person to act on (:func:`outputs_to_read`)."""

    def describe(self) -> str:
        status = "succeeded" if self.success else "FAILED"
        mode = "BLINDED" if self.blinded else "UNBLINDED"
        lines = [*self.preamble, f"{mode} run {status} in {self.seconds:.1f} s."]
        if self.success and not (self.deliveries_read or self.recomputed or self.reused):
            lines.append("  nothing changed: no new delivery, and every asset is up to date")
        earlier = self.deliveries_total - len(self.deliveries_read)
        lines.append(
            f"  deliveries: {len(self.deliveries_read)} of {self.deliveries_total} read "
            f"({self.read_seconds:.1f} s)"
            + (f", {earlier} read by an earlier run into this output folder" if earlier else "")
            + f"; other assets: {len(self.recomputed)} of {self.assets_total} recomputed, "
            f"{len(self.reused)} unchanged and reused ({self.refresh_seconds:.1f} s)"
        )
        lines += [f"  failed step: {s}" for s in self.failed_steps]
        for check in self.failed_checks:
            rules = self.failing_rules.get(check, "")
            lines.append(f"  failed check: {check}" + (f": {rules}" if rules else ""))
        lines += [f"  {line}" for line in self.outputs_to_read]
        if self.log_path is not None:
            lines.append(f"  log:     {self.log_path}")
        lines += [
            f"  tables:  {self.out_dir / 'tables'}",
            f"  models:  {self.out_dir / 'models'}",
            f"  reports: {self.out_dir / 'reports'}",
            f"  exports: {self.out_dir / 'exports'}",
            f"  contracts: {self.out_dir / 'contracts'}",
        ]
        return "\n".join(lines)


def _step_failure(event: dg.DagsterEvent) -> str:
    """``<step>: <first line of its error>`` (the error's class name left out), so that a
    check that stops a run, such as the sealed list's, says why in the run's summary."""
    error = event.step_failure_data.error if event.step_failure_data else None
    while error is not None and error.cause is not None:  # Dagster wraps the op's own error
        error = error.cause
    lines = error.message.strip().splitlines() if error is not None else []
    first = lines[0].split(": ", 1)[-1] if lines else ""
    if first.endswith(":") and len(lines) > 1:  # "N blocking asset checks failed ...:", which
        first = f"{first} {', '.join(line.strip() for line in lines[1:])}"
    return f"{event.step_key or '?'}: {first}" if first else event.step_key or "?"


def _instance() -> dg.DagsterInstance:
    """The instance in ``$DAGSTER_HOME`` if set, else one in memory for this run only.

    In memory by default: the SQLite instance Dagster keeps on disk costs about 3.5 ms of CPU
    to store each of a run's several hundred events (``docs/incremental.md``), and ``ionto
    run`` keeps what it needs across runs in files of ``OUT`` (stored partitions,
    fingerprints, file hashes, the run's log). The delivery keys are registered anew in each
    run's instance."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def partition_range(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """The registered partitions from the first to the last of ``keys`` in registration order:
    what one run can cover (new keys are registered last, so this is usually ``keys``; a
    partition in between that was read already is read again)."""
    order = list(instance.get_dynamic_partitions(DELIVERIES_NAME))
    span = sorted(order.index(k) for k in keys)
    return order[span[0] : span[-1] + 1]


class RunProgress(Protocol):
    """What a terminal shows of a run: its phases, and the steps of each as they end."""

    def phase(self, title: str, steps: int) -> None:
        """A phase begins; ``steps`` Dagster steps follow (0: none, e.g. the landing scan)."""

    def step(self, step_key: str, what: str) -> None:
        """A step's ``start``, ``success`` or ``failure``."""


class RunAborted(Exception):
    """The run stopped on an unexpected error; the message is one line naming the log file
    that holds the traceback."""


def run_pipeline(
    raw_dir: Path,
    out_dir: Path,
    study_path: Path | None = None,
    unblind_path: Path | None = None,
    verify: bool = False,
    sources: Sequence[SourceFormat] = SOURCES,
    progress: RunProgress | None = None,
) -> RunReport:
    """Materialise every asset (and run every check) on ``raw_dir``, writing under ``out_dir``.

    ``unblind_path`` is the sealed randomisation list; without it the run is blinded and the
    list is never opened (an unblinded run checks its header before starting). The study is
    loaded and validated first (:class:`study.StudyError` before any raw file is read); the
    contracts the run checks against, resolved for its study, are written to ``OUT/contracts/``
    by the ``landing_manifest`` asset.
    ``out_dir`` is claimed for the run's mode before anything else is written in it
    (:func:`pipelines.blinding_record.claim_output_folder` raises ``OutputFolderRefused`` for
    a folder of the other mode, ``check_instance`` for an unblinded run with a shared
    ``$DAGSTER_HOME``). ``verify``: hash every raw file again, not trusting stored hashes of
    files whose size and modification time are unchanged. ``sources``: the registry of raw
    formats (``ingest.registry``).

    Expected mistakes (no raw folder, no delivery, an output folder that is a file or not
    writable, a wrong sealed list, a folder another run holds) raise
    :class:`~pipelines.preflight.UsageError` before anything is written. Everything the run
    logs goes to ``OUT/logs/run-<UTC time>.log``; an unexpected error is logged there with its
    traceback and raised as :class:`RunAborted`.
    """
    study = load_study(study_path)
    # Refusals that write nothing (not even the output folder or its lock file), then the
    # folders' checks, which create the output folder last:
    check_instance(blinded=unblind_path is None)
    check_output_folder(out_dir, blinded=unblind_path is None)
    check_run_arguments(raw_dir, out_dir, unblind_path, study)
    with out_folder_lock(out_dir):
        # Under the lock: two first runs of different modes cannot both claim the folder.
        claim_output_folder(out_dir, blinded=unblind_path is None)
        log_path = new_log_path(out_dir)
        on_step = progress.step if progress is not None else None
        with run_logging(log_path, on_step) as dagster_log:
            try:
                report = _run_locked(
                    raw_dir,
                    out_dir,
                    study,
                    study_path,
                    unblind_path,
                    verify,
                    sources,
                    progress,
                    dagster_log,
                )
            except UsageError:
                raise
            except Exception as exc:
                log.exception("the run stopped on an unexpected error")
                raise RunAborted(
                    f"the run stopped on an unexpected error ({type(exc).__name__}: {exc}); "
                    f"the traceback is in {log_path}"
                ) from exc
    report.log_path = log_path
    # (A failed run may have left an earlier run's reports: they are not named as current.)
    report.outputs_to_read = outputs_to_read(out_dir) if report.success else []
    return report


def outputs_to_read(out_dir: Path) -> list[str]:
    """What ``out_dir`` holds for a person to act on, as the run's summary says it: the
    data-quality report's items (quarantined rows and files among them) and what the SAS v5
    limits changed in the exports; nothing for what the run has not written."""
    lines = []
    issues = out_dir / "reports" / ISSUES_NAME
    if issues.is_file():
        categories = pl.read_csv(issues, columns=["category"])["category"]
        quarantined = int((categories == "QUARANTINE").sum())
        lines.append(
            f"data quality: {categories.len()} items, {quarantined} of them quarantined rows "
            f"or files: {out_dir / 'reports' / f'{QUALITY_REPORT}.html'}"
        )
    notes = read_export_notes(out_dir / "exports" / "xpt")
    if notes:
        lines.append(
            f"SAS v5 exports: {len(notes)} {'change' if len(notes) == 1 else 'changes'} to fit "
            f"the format: {out_dir / 'exports' / 'xpt' / NOTES_NAME}"
        )
    return lines


def _run_locked(
    raw_dir: Path,
    out_dir: Path,
    study: Study,
    study_path: Path | None,
    unblind_path: Path | None,
    verify: bool,
    sources: Sequence[SourceFormat],
    progress: RunProgress | None,
    dagster_log: logging.Logger,
) -> RunReport:
    """:func:`run_pipeline` once its arguments are checked, ``OUT`` is locked and logging
    goes to the run's log file."""
    if unblind_path is not None:
        log.warning("UNBLINDED run requested with the randomisation list %s", unblind_path)
    settings = TrialSettings(
        raw_dir=str(raw_dir.resolve()),
        out_dir=str(out_dir.resolve()),
        study_path=str(study_path.resolve()) if study_path else "",
        unblind_path=str(unblind_path.resolve()) if unblind_path else "",
        verify=verify,
    )
    browser = PrintBrowser()
    defs = build_definitions(settings, sources=sources, browser=browser)
    loggers = {"ionto": file_logger(dagster_log)}
    run_config: dict[str, Any] = {"loggers": {"ionto": {}}}
    started = time.perf_counter()
    if progress is not None:
        what = "every file" if verify else "new and changed files"
        progress.phase(f"landing area: hashing {what}", 0)
    earlier = None if verify else read_hash_cache(out_dir)
    known = deliveries_from_hashes(earlier) if earlier is not None else None
    deliveries = scan_deliveries(raw_dir, known)
    to_read = [
        d.key
        for d in deliveries
        if not partition_path(out_dir.resolve(), "delivery_frames", d.key).is_dir()
    ]
    results = []
    read_seconds = refresh_seconds = 0.0
    reused: set[dg.AssetKey] = set()
    with _instance() as instance:
        registered = set(instance.get_dynamic_partitions(DELIVERIES_NAME))
        # One run reads the unread deliveries (a partition range: Dagster's run overhead is
        # paid once, not once per delivery); then one run refreshes everything else. Keys
        # already read are registered before unread ones, so that the unread form one range.
        unregistered = [d.key for d in deliveries if d.key not in registered]
        unregistered.sort(key=lambda key: key in to_read)
        instance.add_dynamic_partitions(DELIVERIES_NAME, unregistered)
        log.info("%d deliveries, %d not read yet", len(deliveries), len(to_read))
        process = defs.resolve_job_def("process_delivery").with_logger_defs(loggers)
        if to_read:
            to_read = partition_range(instance, to_read)
            tags = {
                ASSET_PARTITION_RANGE_START_TAG: to_read[0],
                ASSET_PARTITION_RANGE_END_TAG: to_read[-1],
            }
            if progress is not None:
                progress.phase(
                    f"reading {len(to_read)} of {len(deliveries)} deliveries", _steps(process)
                )
            read_started = time.perf_counter()
            results.append(
                process.execute_in_process(
                    instance=instance,
                    tags=tags,
                    raise_on_error=False,
                    run_config=run_config,
                )
            )
            read_seconds = time.perf_counter() - read_started
        freshness = Freshness(
            defs.resolve_asset_graph(),
            out_dir.resolve(),
            settings_digest(settings.study_path, settings.unblind_path),
            tree_listing(raw_dir) + "".join(sorted(d.key for d in deliveries)),
        )
        read_ok = all(r.success for r in results)
        stale = freshness.stale() if read_ok else []
        if stale:
            refresh_job = defs.resolve_job_def("refresh_analysis").with_logger_defs(loggers)
            if progress is not None:
                progress.phase(
                    f"refreshing {len(stale)} stale tables, models, reports and exports",
                    _steps(refresh_job, stale),
                )
            refresh_started = time.perf_counter()
            with reusing_unchanged(freshness), contextlib.closing(browser):
                if INVESTIGATOR_REPORT in stale:
                    # Chromium starts now, beside the steps before the report: its start-up
                    # is about half a second of a print's wall time.
                    browser.start()
                refresh = refresh_job.execute_in_process(
                    instance=instance,
                    raise_on_error=False,
                    run_config=run_config,
                    asset_selection=stale,
                )
            results.append(refresh)
            materialised = {
                e.asset_key: e.materialization.metadata
                for e in refresh.get_asset_materialization_events()
                if e.asset_key
            }
            # (Each step recorded the fingerprints of what it computed.)
            reused = {k for k, metadata in materialised.items() if was_reused(metadata)}
            refresh_seconds = time.perf_counter() - refresh_started
    events = [e for r in results for e in r.all_events]
    failed_steps = [_step_failure(e) for e in events if e.is_step_failure]
    failed = [e for r in results for e in r.get_asset_check_evaluations() if not e.passed]
    failed_checks = [
        f"{e.asset_check_key.asset_key.to_user_string()}:{e.asset_check_key.name}" for e in failed
    ]
    return RunReport(
        success=read_ok and all(r.success for r in results),
        out_dir=out_dir,
        blinded=settings.blinded,
        seconds=time.perf_counter() - started,
        failed_steps=failed_steps,
        failed_checks=failed_checks,
        failing_rules={
            c: failing_rules(e.metadata) for c, e in zip(failed_checks, failed, strict=True)
        },
        deliveries_read=to_read,
        deliveries_total=len(deliveries),
        read_seconds=read_seconds,
        refresh_seconds=refresh_seconds,
        recomputed=[k.to_user_string() for k in stale if k not in reused],
        reused=[k.to_user_string() for k in stale if k in reused],
        assets_total=len(freshness.assets),
        dagster_runs=[r.run_id for r in results],
        metadata={
            e.asset_key.to_user_string(): dict(e.materialization.metadata)
            for r in results
            for e in r.get_asset_materialization_events()
            if e.asset_key
        },
    )


def _steps(job: dg.JobDefinition, assets: Sequence[dg.AssetKey] | None = None) -> int:
    """How many steps a run of ``job`` (of only ``assets`` and their checks, if given)
    executes: one per op (an asset, a multi-asset, a check)."""
    if assets is not None:
        job = job.get_subset(asset_selection=set(assets))
    return len(job.graph.nodes)


def run_demo(
    out_dir: Path,
    raw_dir: Path | None = None,
    subjects: int = 300,
    seed: int = 301,
    blinded: bool = False,
    progress: RunProgress | None = None,
) -> RunReport:
    """The README's demo: simulate the bundled study if no raw root is given, then run it.

    Run again on the same ``out_dir`` with the same ``subjects`` and ``seed``, the demo runs
    on the trial it simulated before (:func:`_demo_simulation`): nothing changed, so nothing
    is recomputed, and it says so. A simulated study's sealed list is ours to open, so the
    demo runs unblinded (the explicit ``unblind_path`` route, logged like any other) into
    ``OUT/run``, and says so; ``blinded`` leaves the list closed and writes to
    ``OUT/run_blinded``. A given ``raw_dir`` has no sealed list the demo knows of: that run is
    blinded either way.
    """
    from trial.simulate import sealed_dir_for

    preamble: list[str] = []
    unblind: Path | None = None
    if raw_dir is None:
        raw_dir = out_dir / "raw"
        preamble.extend(_demo_simulation(out_dir, raw_dir, subjects, seed, progress))
        if blinded:
            preamble.append("The sealed list stays closed (--blinded): a BLINDED run.")
        else:
            unblind = sealed_dir_for(raw_dir) / "randomisation.csv"
            preamble.append(
                f"The demo opens the simulated sealed list {unblind}: an UNBLINDED run "
                "(ionto demo --blinded for a blinded one)."
            )
    run_dir = out_dir / ("run_blinded" if blinded else "run")
    report = run_pipeline(raw_dir=raw_dir, out_dir=run_dir, unblind_path=unblind, progress=progress)
    report.preamble = preamble + report.preamble
    return report


DEMO_SIMULATION = "simulation.json"
"""Beside the demo's raw tree (``OUT/simulation.json``): the study, subjects and seed it was
simulated with, written once the simulation is whole."""


def _demo_simulation(
    out_dir: Path, raw_dir: Path, subjects: int, seed: int, progress: RunProgress | None
) -> list[str]:
    """Simulate the bundled study into ``raw_dir`` (and its sealed folder) unless the demo
    simulated it there before with the same study, subjects and seed; returns the lines that
    say which. Anything else in those folders (another simulation, one that did not finish,
    files put there) is refused with what to do: nothing is ever deleted."""
    from trial.simulate import sealed_dir_for, simulate_trial

    study = load_study()
    wanted = {"study": study.study_id, "subjects": subjects, "seed": seed}
    record = out_dir / DEMO_SIMULATION
    try:
        earlier = json.loads(record.read_text("utf-8")) if record.is_file() else None
    except ValueError:
        earlier = None
    if earlier == wanted and raw_dir.is_dir():
        return [
            f"The demo study simulated earlier ({subjects} subjects, seed {seed}) is in "
            f"{raw_dir}: run again on it (remove {out_dir} to simulate it anew)."
        ]
    for folder in (raw_dir, sealed_dir_for(raw_dir)):
        if folder.is_dir() and any(folder.iterdir()):
            held = (
                f"a simulation of {earlier.get('subjects')} subjects (seed {earlier.get('seed')})"
                if isinstance(earlier, dict)
                else "files the demo did not simulate, or a simulation that did not finish"
            )
            raise UsageError(
                f"{folder} holds {held}: remove {out_dir}, or give another --out, to simulate "
                f"{subjects} subjects (seed {seed})"
            )
    if progress is not None:
        progress.phase(f"simulating the demo study ({subjects} subjects)", 0)
    summary = simulate_trial(study, n_subjects=subjects, seed=seed, raw_dir=raw_dir)
    record.write_text(json.dumps(wanted), encoding="utf-8")
    return summary.lines()
