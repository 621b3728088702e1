"""Reading deliveries one at a time, and resolving the current raw datasets from them.

Both steps iterate over the registry of raw formats (:mod:`ingest.registry`).
:func:`read_delivery_folder` reads every complete file of one delivery folder on its own (no
file of another delivery is opened), whether or not a later delivery supersedes it: each
format read per delivery gives one frame, named by its kind, and the quarantine of the
folder's files. :func:`resolve_raw_datasets` then takes the per-delivery frames of any number
of deliveries and resolves each format in registry order: its rows of the landing manifest's
current file versions and its cross-file rules (EDC snapshots in force per centre, gravimetry
duplicate papers, vendor-A repeats and clock placement, vendor-B duplicate lines and sessions
across files and deliveries one range of devices at a time, bench captures read across
folders), with the trial-level rules of :mod:`ingest.integrity` between a format's
``resolve`` and its ``settle``. Where no rule rejects a row, the results equal what each
reader gives on the current files of the whole tree (``tests/pipelines/test_incremental.py``).

Stored delivery frames may be given as frames or as lazy scans: only the telemetry is large,
and it is only ever scanned for a range of devices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from ingest.deliveries import complete_files
from ingest.integrity import apply_trial_rules, empty_findings
from ingest.landing import file_kind, landing_quarantine
from ingest.quarantine import combine, empty_quarantine
from ingest.registry import SOURCES, subject_datasets
from ingest.sealed import SealedListSignature
from ingest.source_format import (
    DeliveryFrames,
    Frame,
    Resolution,
    Resolved,
    SourceFormat,
    collected,
)

QUARANTINE = "quarantine"
FINDINGS = "integrity_findings"


def read_delivery_folder(
    raw_root: Path,
    folder: str,
    sealed: SealedListSignature,
    sources: Sequence[SourceFormat] = SOURCES,
) -> dict[str, pl.DataFrame]:
    """Every complete file of ``<raw_root>/<folder>`` read by its format's reader -> one frame
    per format read per delivery (named by kind; the files of one kind are read in one call)
    and ``quarantine``. Files of other kinds (unknown, read across deliveries, never read)
    are left to the landing manifest and the resolution; a file whose name or first bytes
    are the sealed list's (``sealed``: the study's signature, :mod:`ingest.sealed`) is never
    opened by a reader, whatever its name."""
    raw_root = Path(raw_root)
    by_kind: dict[str, list[Path]] = {}
    for path in complete_files(raw_root / folder):
        by_kind.setdefault(file_kind(path, sealed, sources), []).append(path)
    frames: dict[str, pl.DataFrame] = {}
    quarantines = [empty_quarantine()]
    for source in sources:
        if source.read is not None:
            frames[source.kind], q = source.read(by_kind.get(source.kind, []), raw_root)
            quarantines.append(q)
    frames[QUARANTINE] = combine(quarantines)
    return frames


def stale_deliveries(
    deliveries: Mapping[str, DeliveryFrames],
    raw_root: Path,
    sources: Sequence[SourceFormat] = SOURCES,
) -> list[str]:
    """Keys of stored deliveries that must be read again: a format read per delivery has no
    frame there, or its frame lacks columns the format's reader gives now (stored by an
    earlier version of the pipeline, e.g. before the telemetry was parsed per delivery, or
    before the format was registered)."""
    expected = {
        s.kind: set(s.read([], Path(raw_root))[0].columns) for s in sources if s.read is not None
    }
    return [
        key
        for key, frames in deliveries.items()
        if any(
            kind not in frames or needed - set(frames[kind].lazy().collect_schema().names())
            for kind, needed in expected.items()
        )
    ]


def resolve_raw_datasets(
    manifest: pl.DataFrame,
    deliveries: Sequence[DeliveryFrames],
    raw_root: Path,
    tolerance_pct: float,
    store: Path,
    sources: Sequence[SourceFormat] = SOURCES,
    code_version: str = "",
) -> dict[str, Frame]:
    """Per-delivery frames (from :func:`read_delivery_folder`) of the current deliveries ->
    every dataset of every format, ``quarantine`` (the landing area's, the readers' of the
    current files, and every rule's) and ``integrity_findings`` (rows kept but named by a
    rule).

    Three steps: each format's ``resolve`` in registry order; the trial-level rules
    (:func:`ingest.integrity.apply_trial_rules`) on every resolved dataset; each format's
    ``settle`` in registry order, on the datasets as the rules left them. ``tolerance_pct``:
    the study's ``treatment.current_tolerance_pct``. Large outputs (the vendor-B events) are
    held in parts (:class:`~ingest.source_format.TableParts`), files under ``store``, a folder
    the caller keeps between runs: with the resolution's ``code_version``, parts whose inputs
    are unchanged are reused from it (:attr:`ingest.source_format.Resolution.store`)."""
    resolved: dict[str, Frame] = {}
    papers: list[pl.DataFrame] = []
    reader_quarantine = empty_quarantine()

    def resolution() -> Resolution:
        return Resolution(
            manifest=manifest,
            raw_root=Path(raw_root),
            deliveries=deliveries,
            reader_quarantine=reader_quarantine,
            resolved=dict(resolved),
            papers=tuple(papers),
            tolerance_pct=tolerance_pct,
            store=Path(store),
            code_version=code_version,
        )

    current = resolution().current_rows(QUARANTINE)
    reader_quarantine = current if current.height else reader_quarantine
    quarantines = [landing_quarantine(manifest), reader_quarantine]
    findings = [empty_findings()]

    def take(step: Resolved) -> None:
        resolved.update(step.datasets)
        quarantines.append(step.quarantine)
        findings.append(step.findings)

    for source in sources:
        if source.resolve is not None:
            take(source.resolve(resolution()))
            if source.papers is not None:
                papers.append(source.papers({n: collected(resolved[n]) for n in source.datasets}))
    eager = {name: f for name, f in resolved.items() if isinstance(f, pl.DataFrame)}
    checked = apply_trial_rules(
        eager, combine(quarantines), Path(raw_root), subject_datasets(sources)
    )
    take(Resolved(checked.datasets, checked.quarantine, checked.findings))
    for source in sources:
        if source.settle is not None:
            take(source.settle(resolution()))
    resolved[QUARANTINE] = combine(quarantines)
    resolved[FINDINGS] = pl.concat(findings)
    return resolved
