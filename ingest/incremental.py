"""Reading deliveries one at a time, and resolving the current raw datasets from them.

Both steps iterate over the registry of raw formats (:mod:`ingest.registry`).
:func:`read_delivery_folder` reads every complete file of one delivery folder on its own (no
file of another delivery is opened), whether or not a later delivery supersedes it: each
format read per delivery gives one frame, named by its kind, and the quarantine of the
folder's files. :func:`resolve_raw_datasets` then takes the per-delivery frames of any number
of deliveries and resolves each format in registry order: its rows of the landing manifest's
current file versions and its cross-file rules (EDC latest snapshot per centre, gravimetry
duplicate papers, vendor-A repeats and clock placement, vendor-B duplicate lines and sessions
across files and deliveries one range of devices at a time, bench captures read across
folders). The results equal what each reader gives on the current files of the whole tree
(``tests/pipelines/test_incremental.py``).

Stored delivery frames may be given as frames or as lazy scans: only the telemetry is large,
and it is only ever scanned for a range of devices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from ingest.deliveries import complete_files
from ingest.landing import classify, landing_quarantine
from ingest.quarantine import combine, empty_quarantine
from ingest.registry import SOURCES
from ingest.source_format import DeliveryFrames, Frame, Resolution, SourceFormat

QUARANTINE = "quarantine"


def read_delivery_folder(
    raw_root: Path, folder: str, sources: Sequence[SourceFormat] = SOURCES
) -> dict[str, pl.DataFrame]:
    """Every complete file of ``<raw_root>/<folder>`` read by its format's reader -> one frame
    per format read per delivery (named by kind; the files of one kind are read in one call)
    and ``quarantine``. Files of other kinds (unknown, read across deliveries, never read)
    are left to the landing manifest and the resolution."""
    raw_root = Path(raw_root)
    by_kind: dict[str, list[Path]] = {}
    for path in complete_files(raw_root / folder):
        by_kind.setdefault(classify(path.name, sources), []).append(path)
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
    scratch: Path,
    sources: Sequence[SourceFormat] = SOURCES,
) -> dict[str, Frame]:
    """Per-delivery frames (from :func:`read_delivery_folder`) of the current deliveries ->
    every dataset of every format (registry order) and ``quarantine`` (the landing area's,
    the current files' and each resolution's). ``tolerance_pct``: the study's
    ``treatment.current_tolerance_pct``. Large outputs (the vendor-B events) are lazy scans
    of files under ``scratch``, which the caller keeps until it has stored them."""
    resolved: dict[str, Frame] = {}
    papers: list[pl.DataFrame] = []

    def resolution() -> Resolution:
        return Resolution(
            manifest=manifest,
            raw_root=Path(raw_root),
            deliveries=deliveries,
            resolved=dict(resolved),
            papers=tuple(papers),
            tolerance_pct=tolerance_pct,
            scratch=Path(scratch),
        )

    quarantines = [landing_quarantine(manifest), resolution().current_rows(QUARANTINE)]
    for source in sources:
        if source.resolve is None:
            continue
        datasets, q = source.resolve(resolution())
        quarantines.append(q)
        resolved.update(datasets)
        if source.papers is not None:
            eager = {name: _collected(datasets[name]) for name in source.datasets}
            papers.append(source.papers(eager))
    resolved[QUARANTINE] = combine(quarantines)
    return resolved


def _collected(frame: Frame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame
