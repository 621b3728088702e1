"""What a raw source format is: one entry of the registry (:mod:`ingest.registry`).

A format (an EDC table, the gravimetry worksheets, a device vendor's exports, a bench unit's
captures) is described once, by a :class:`SourceFormat`: the file-name pattern that gives a
landed file its kind, the reader of one delivery's files of that kind, the contracts of the
datasets it yields, how the rows of every delivery resolve into those datasets, and how its
rows become device sessions or gravimetry papers. Landing, incremental reading, the raw
assets and the device sessions iterate over the registry; none of them names a format.

This module holds only the types (it imports no reader), so that readers may define their
own entries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ingest.integrity import empty_findings
from ingest.manifest import current_files
from ingest.quarantine import empty_quarantine


@dataclass(frozen=True)
class TableParts:
    """A table held in Parquet files whose concatenation, in order, is the table (the
    vendor-B events: one part per range of devices, ``ingest.telemetry``); ``schema``: its
    columns (the table of no part is empty). The IO manager stores it as a folder of links to
    these files (``pipelines/io_manager.py``), so a producer never writes a part in place: it
    writes a new file and renames it over the old name (a stored table keeps the old one)."""

    paths: tuple[Path, ...]
    schema: pl.Schema

    def scan(self) -> pl.LazyFrame:
        """The table as one lazy scan of its parts, in order."""
        if not self.paths:
            return pl.LazyFrame(schema=self.schema)
        return pl.scan_parquet(list(self.paths))


Frame = pl.DataFrame | pl.LazyFrame | TableParts
DeliveryFrames = Mapping[str, pl.DataFrame | pl.LazyFrame]
"""One delivery's stored frames by kind (plus ``quarantine``), eager or scanned."""

DeliveryReader = Callable[[Sequence[Path], Path], tuple[pl.DataFrame, pl.DataFrame]]
"""(one delivery's files of the kind, raw root) -> (typed rows with lineage, quarantine).
Called with no files it returns the empty typed frame (the columns a stored delivery must
have)."""


@dataclass(frozen=True)
class Resolution:
    """What a format's resolver reads: the landing manifest, the raw root, every current
    delivery's stored frames, the readers' quarantine of the current files, the datasets of
    the formats resolved before it (registry order; after the trial-level rules, for
    ``settle``), the papers the paper-making formats gave so far, the study's current
    tolerance (%, ``treatment.current_tolerance_pct``), a folder of the output kept between
    runs (``store``: a format resolved in parts, such as the vendor-B telemetry's ranges, keeps
    them there and reuses those whose inputs did not change) and the code version of the
    resolution (``pipelines.freshness``: stored parts are reused only under the same code; empty
    means never reuse)."""

    manifest: pl.DataFrame
    raw_root: Path
    deliveries: Sequence[DeliveryFrames]
    reader_quarantine: pl.DataFrame
    resolved: Mapping[str, Frame]
    papers: Sequence[pl.DataFrame]
    tolerance_pct: float
    store: Path
    code_version: str = ""

    def delivered_rows(self, kind: str) -> pl.DataFrame:
        """The rows of every delivery's ``kind`` frame, current or superseded, in delivery
        order (frames without rows left out: an empty result has no columns). The stored
        frames are collected in one call, in parallel."""
        frames = pl.collect_all([d[kind].lazy() for d in self.deliveries])
        rows = [frame for frame in frames if frame.height]
        return pl.concat(rows, how="vertical_relaxed") if rows else pl.DataFrame()

    def current_rows(self, kind: str) -> pl.DataFrame:
        """The rows of every delivery's ``kind`` frame that come from the manifest's current
        file versions, in delivery order (date, centre, file name) then line: as reading the
        current files one after another gives them (an empty result has no columns)."""
        return self.current_of(self.delivered_rows(kind))

    def current_of(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The rows of :meth:`delivered_rows` that come from the manifest's current file
        versions, ordered as :meth:`current_rows` says."""
        if rows.height == 0:
            return rows
        order = current_files(self.manifest).select(
            "source_file", _file_no=pl.int_range(pl.len(), dtype=pl.Int64)
        )
        return (
            rows.join(order, on="source_file", how="inner")
            .sort("_file_no", "source_line", maintain_order=True, nulls_last=False)
            .drop("_file_no")
        )

    def dataset(self, name: str) -> pl.DataFrame:
        """A dataset an earlier format resolved (named in the format's ``needs``)."""
        return collected(self.resolved[name])

    def scans(self, kind: str) -> list[pl.LazyFrame]:
        """Every delivery's ``kind`` frame as a lazy scan (for frames too large to collect)."""
        return [d[kind].lazy() for d in self.deliveries]

    def current_paths(self, kind: str) -> list[Path]:
        """Absolute paths of the current files of ``kind``, in delivery order (for formats
        read across deliveries at resolution rather than per delivery)."""
        return [self.raw_root / p for p in current_files(self.manifest, kind)["source_file"]]


@dataclass(frozen=True)
class Resolved:
    """What a resolver gives: datasets by name, the rows it quarantined and the findings on
    rows it kept (``data_contracts.trial_rules.FINDINGS_SCHEMA``)."""

    datasets: Mapping[str, Frame]
    quarantine: pl.DataFrame = field(default_factory=empty_quarantine)
    findings: pl.DataFrame = field(default_factory=empty_findings)


Resolver = Callable[[Resolution], Resolved]
"""A :class:`Resolution` -> the format's datasets, quarantine and findings."""

SessionMaker = Callable[[Mapping[str, pl.DataFrame], float], pl.DataFrame]
"""(the format's ``session_inputs`` datasets by name, current tolerance in %) -> its device
sessions in ``device_sessions`` columns."""

PaperMaker = Callable[[Mapping[str, pl.DataFrame]], pl.DataFrame]
"""(the format's datasets by name) -> its papers in ``gravimetry`` columns."""


@dataclass(frozen=True)
class SourceFormat:
    """One raw source format.

    - ``kind``: the landing manifest's kind for its files, and the name of its frame in a
      stored delivery (``delivery_frames``);
    - ``pattern``: regular expression a file name must match from its start (first entry of
      the registry that matches wins);
    - ``datasets``: the raw datasets (assets) it yields; each is checked against the
      contract ``data_contracts/<dataset>.odcs.yaml`` unless ``contracts`` names another
      contract file for it;
    - ``read``: reads one delivery's files of the kind (None: the files are read across
      deliveries by ``resolve``, or never read);
    - ``resolve``: the datasets from every delivery (None: the files are not read, e.g. the
      capture driver's own state); row-local rules (plausibility) belong here;
    - ``settle``: a second step after the trial-level rules (:mod:`ingest.integrity`) have
      run on every resolved dataset, for rules that must see only rows the trial rules kept
      (duplicate papers, vendor-A repeats and the consent of the kept assignments);
    - ``needs``: datasets of earlier entries that ``resolve`` reads;
    - ``sessions`` / ``session_inputs``: how its datasets become rows of ``device_sessions``;
    - ``papers``: how its datasets become gravimetry papers (joined with the worksheets');
    - ``edc``: an EDC export (a cumulative snapshot table of the trial database).
    """

    kind: str
    pattern: str
    datasets: tuple[str, ...] = ()
    read: DeliveryReader | None = None
    resolve: Resolver | None = None
    settle: Resolver | None = None
    needs: tuple[str, ...] = ()
    sessions: SessionMaker | None = None
    session_inputs: tuple[str, ...] = ()
    papers: PaperMaker | None = None
    contracts: Mapping[str, str | Path] = field(default_factory=dict)
    edc: bool = False

    def matches(self, file_name: str) -> bool:
        return re.match(self.pattern, file_name) is not None

    def contract(self, dataset: str) -> str | Path:
        """The contract of one of its datasets: a dataset name of ``data_contracts/`` or a
        contract file."""
        return self.contracts.get(dataset, dataset)


def check_registry(sources: Sequence[SourceFormat]) -> tuple[SourceFormat, ...]:
    """``sources`` as a tuple, after checking that kinds and datasets are unique, every
    ``needs`` is yielded by an earlier entry and every ``session_inputs`` by the entry itself;
    raises ValueError naming the entry otherwise."""
    kinds: set[str] = set()
    yielded: set[str] = set()
    for source in sources:
        if source.kind in kinds:
            raise ValueError(f"source format {source.kind!r} is registered twice")
        kinds.add(source.kind)
        for name in source.needs:
            if name not in yielded:
                raise ValueError(
                    f"source format {source.kind!r} needs {name!r}, which no earlier entry "
                    "of the registry yields: move the entry after the one that does"
                )
        for name in source.datasets:
            if name in yielded or name == "quarantine":
                raise ValueError(f"dataset {name!r} of {source.kind!r} is already yielded")
            yielded.add(name)
        if source.datasets and source.resolve is None:
            raise ValueError(f"source format {source.kind!r} yields datasets but has no resolve")
        missing = set(source.session_inputs) - set(source.datasets)
        if missing or (source.sessions is None) != (not source.session_inputs):
            raise ValueError(
                f"source format {source.kind!r}: sessions need session_inputs among its own "
                f"datasets ({', '.join(sorted(missing)) or 'none given'})"
            )
    return tuple(sources)


def collected(frame: Frame) -> pl.DataFrame:
    """A resolved dataset in memory, however it is held."""
    if isinstance(frame, TableParts):
        return frame.scan().collect()
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame
