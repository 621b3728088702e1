"""Vendor-B telemetry at trial scale, in the two steps the pipeline runs.

A 600-subject trial sends about 50 million 2 Hz events (several GB of JSON lines) over many
deliveries. The telemetry is read in two phases, each in memory bounded by a batch:

1. :func:`parse_delivery_telemetry` (the ``delivery_frames`` step, each delivery alone, as
   many deliveries at once as there are cores): the delivery's vendor-B files are read in
   batches of whole devices, one after another, by the streaming reader's
   kernel (:mod:`ingest.readers.vendor_b_stream`: lines, canonical fast path, the reader's
   rules for every other line) into typed events that keep their ``raw_text``, sorted by
   ``dev`` so that a scan for a range of devices reads only the row groups that hold them
   (:data:`ROW_GROUP_ROWS`).
2. :func:`resolve_telemetry` (the ``raw_datasets`` step, over every delivery): the events of
   the landing manifest's current files are taken one range of devices at a time (ranges of
   at most ``max_range_events`` events); each range drops exact duplicate lines and is
   summarised into sessions. A range holds every event of its devices from every delivery,
   which makes both rules exact: an exact duplicate line has the same ``dev``, and a session
   (``dev``, ``sid``) spanning files or deliveries is joined whole. Distinct events are
   written as one Parquet part per range, in file and line order.

Peak memory is set by the largest delivery (phase 1) and by ``max_range_events`` (phase 2),
not by the length of the trial. :func:`read_telemetry` runs both phases on folders of files,
as the telemetry benchmark (``benchmarks/telemetry.py``) measures them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from data_contracts.contracts import cast_frame, empty_frame, load_contract
from ingest.device_sessions import summarise_sessions
from ingest.integrity import empty_findings, plausibility
from ingest.manifest import current_files
from ingest.quarantine import combine, empty_quarantine
from ingest.readers.text import relative_name
from ingest.readers.vendor_b import DATASET, FIELDS
from ingest.readers.vendor_b_stream import (
    MAX_BATCH_BYTES,
    batch_lines,
    device_batches,
    drop_duplicates,
    parse_lines,
)
from ingest.source_format import Resolution, Resolved, SourceFormat
from ingest.telemetry_rules import backwards_events, backwards_quarantine, key_findings

SESSIONS_DATASET = "device_sessions"
KIND = "vendor_b"
EVENTS = DATASET
SESSIONS = "vendor_b_sessions"
ROW_GROUP_ROWS = 8_192
"""Rows per Parquet row group of a delivery's parsed events: small enough that a scan for a
few devices skips most of a delivery's file by the row groups' ``dev`` statistics."""
MAX_RANGE_EVENTS = 500_000
"""Events resolved at once (about 250 MB of memory with their text); small enough that the
cores share the ranges of even a small trial."""


@dataclass(frozen=True)
class Telemetry:
    """``events``: distinct events (``vendor_b_events`` columns) scanned lazily from the parts
    under ``events_dir``; ``sessions``: one row per session in ``device_sessions`` columns;
    ``quarantine``: events the trial-level rules rejected (implausible or non-finite numbers,
    time stamps out of order: never integrated); ``findings``: kept events with unknown or
    duplicated JSON keys (:mod:`ingest.telemetry_rules`)."""

    events: pl.LazyFrame
    sessions: pl.DataFrame
    quarantine: pl.DataFrame
    findings: pl.DataFrame


def parsed_schema() -> pl.Schema:
    """Columns of a delivery's parsed events: lineage, ``raw_text`` and the typed fields."""
    typed = load_contract(DATASET).schema
    return pl.Schema(
        {
            "source_file": pl.String(),
            "source_line": pl.Int64(),
            "raw_text": pl.String(),
            **{f: typed[f] for f in FIELDS},
        }
    )


def parse_delivery_telemetry(
    paths: Sequence[Path], raw_root: Path, max_batch_bytes: int = MAX_BATCH_BYTES
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One delivery's vendor-B files -> (typed events with ``raw_text``, sorted by ``dev``,
    file and line; quarantine), read one batch of devices after another (callers read
    several deliveries at once). Duplicates are kept: they are decided across deliveries by
    :func:`resolve_telemetry`."""
    schema = parsed_schema()
    frames = [pl.DataFrame(schema=schema)]
    quarantines = [empty_quarantine()]
    for batch in device_batches(paths, max_batch_bytes):
        lines, q_files = batch_lines(batch, raw_root)
        quarantines.append(q_files)
        if lines.height:
            events, q_lines = parse_lines(lines)
            frames.append(events.select(schema.names()).cast(schema))
            quarantines.append(q_lines)
    events = pl.concat(frames)
    return events.sort("dev", "source_file", "source_line", nulls_last=True), combine(quarantines)


def device_ranges(counts: pl.DataFrame, max_events: int) -> list[tuple[str, str]]:
    """``counts`` (``dev``, ``len``; no null ``dev``) -> (first, last) device of each range:
    devices in sorted order packed into ranges of at most ``max_events`` events (a device with
    more is a range of its own: a device is never split)."""
    ranges: list[tuple[str, str]] = []
    first = last = ""
    size = 0
    for dev, n in counts.sort("dev").iter_rows():
        if size and size + n > max_events:
            ranges.append((first, last))
            size = 0
        if size == 0:
            first = dev
        last = dev
        size += n
    if size:
        ranges.append((first, last))
    return ranges


def _device_filters(parsed: pl.LazyFrame, max_events: int) -> list[pl.Expr]:
    """One filter per range of devices, and one for events without a device (none pass the
    contract today; kept so that no event can fall between the ranges)."""
    counts = parsed.group_by("dev").len().collect(engine="streaming")
    known = counts.filter(pl.col("dev").is_not_null())
    filters = [
        pl.col("dev").is_between(pl.lit(first), pl.lit(last))
        for first, last in device_ranges(known, max_events)
    ]
    if known.height < counts.height:
        filters.append(pl.col("dev").is_null())
    return filters


def resolve_telemetry(
    parsed: Sequence[pl.LazyFrame],
    current: pl.DataFrame,
    tolerance_pct: float,
    events_dir: Path,
    max_range_events: int = MAX_RANGE_EVENTS,
    workers: int | None = None,
) -> Telemetry:
    """Parsed events of any number of deliveries (lazy scans of
    :func:`parse_delivery_telemetry`'s output) -> distinct events of the ``current`` files
    (``source_file`` column: the landing manifest's current versions) and their sessions.

    Exact duplicate lines are dropped and counted by the reader's rule (first by file, then
    line); sessions are summarised by :func:`~ingest.device_sessions.summarise_sessions`
    (``tolerance_pct``: the study's ``treatment.current_tolerance_pct``). ``events_dir`` is
    emptied of earlier ``part-*.parquet`` files first. ``workers``: ranges resolved at once
    (default: the cores; peak memory about workers x one range)."""
    contract = load_contract(DATASET)
    events_dir = Path(events_dir)
    events_dir.mkdir(parents=True, exist_ok=True)
    for old in events_dir.glob("part-*.parquet"):
        old.unlink()
    scans = [p.select(parsed_schema().names()) for p in parsed]
    if not scans:
        return _no_telemetry(tolerance_pct)
    files = current.select("source_file").unique().lazy()
    events = pl.concat(scans).join(files, on="source_file", how="semi")

    def resolve(job: tuple[int, pl.Expr]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        number, in_range = job
        rows, q_values = plausibility(events.filter(in_range).collect(), DATASET)
        # In file and line order: the same rows in the same order whatever the order in
        # which the deliveries were read.
        distinct = drop_duplicates(rows).select(contract.columns).sort("source_file", "source_line")
        back = backwards_events(distinct)
        lineage = ["source_file", "source_line"]
        q_order = backwards_quarantine(
            distinct.filter(back).join(rows.select(*lineage, "raw_text"), on=lineage)
        )
        # Only lines with an odd key count are looked at; of those, the distinct ones count.
        findings = key_findings(rows).join(distinct.select(lineage), on=lineage, how="semi")
        del rows
        distinct = distinct.filter(~back)
        distinct.write_parquet(events_dir / f"part-{number:05d}.parquet")
        sessions = summarise_sessions(distinct, tolerance_pct).collect()
        return sessions, combine([q_values, q_order]), findings

    filters = _device_filters(events, max_range_events)
    if not filters:
        return _no_telemetry(tolerance_pct)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        parts = list(pool.map(resolve, enumerate(filters)))
    return Telemetry(
        events=pl.scan_parquet(sorted(events_dir.glob("part-*.parquet"))),
        sessions=cast_frame(
            pl.concat([p[0] for p in parts]).sort("device_serial", "start_utc"),
            load_contract(SESSIONS_DATASET),
        ),
        quarantine=combine([p[1] for p in parts]),
        findings=pl.concat([p[2] for p in parts]).sort("source_file", "source_line"),
    )


def _no_telemetry(tolerance_pct: float) -> Telemetry:
    no_events = empty_frame(load_contract(DATASET))
    sessions = summarise_sessions(no_events, tolerance_pct).collect()
    return Telemetry(
        events=no_events.lazy(),
        sessions=cast_frame(sessions, load_contract(SESSIONS_DATASET)),
        quarantine=empty_quarantine(),
        findings=empty_findings(),
    )


def read_telemetry(
    deliveries: Sequence[Sequence[Path]],
    raw_root: Path,
    tolerance_pct: float,
    work_dir: Path,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    max_range_events: int = MAX_RANGE_EVENTS,
    workers: int | None = None,
) -> tuple[Telemetry, pl.DataFrame]:
    """Both phases as the pipeline runs them: each delivery's files (one list per delivery,
    all current) parsed alone, ``workers`` deliveries at once (default: the cores), and
    stored as Parquet under ``work_dir/parsed``; then resolved into ``work_dir/events`` ->
    (telemetry, quarantine)."""
    parsed_dir = Path(work_dir) / "parsed"
    parsed_dir.mkdir(parents=True, exist_ok=True)

    def parse(job: tuple[int, Sequence[Path]]) -> tuple[Path, pl.DataFrame]:
        number, paths = job
        events, quarantine = parse_delivery_telemetry(paths, raw_root, max_batch_bytes)
        path = parsed_dir / f"delivery-{number:05d}.parquet"
        events.write_parquet(path, row_group_size=ROW_GROUP_ROWS)
        return path, quarantine

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        parsed = list(pool.map(parse, enumerate(deliveries)))
    current = pl.DataFrame(
        {"source_file": [relative_name(Path(p), raw_root) for d in deliveries for p in d]}
    )
    telemetry = resolve_telemetry(
        [pl.scan_parquet(path) for path, _ in parsed],
        current,
        tolerance_pct,
        Path(work_dir) / "events",
        max_range_events,
        workers,
    )
    return telemetry, combine([telemetry.quarantine, *(q for _, q in parsed)])


def resolve_vendor_b(resolution: Resolution) -> Resolved:
    """Every delivery's parsed events (scanned, never collected whole) -> ``vendor_b_events``
    (lazy scan of the parts under the resolution's scratch folder, which the caller keeps
    until the events are stored) and ``vendor_b_sessions``, with the events the trial-level
    rules rejected and the findings on kept ones (unreadable lines were quarantined when
    each delivery was parsed)."""
    current = current_files(resolution.manifest, KIND).select("source_file")
    telemetry = resolve_telemetry(
        resolution.scans(KIND), current, resolution.tolerance_pct, resolution.scratch / KIND
    )
    return Resolved(
        {EVENTS: telemetry.events, SESSIONS: telemetry.sessions},
        telemetry.quarantine,
        telemetry.findings,
    )


def _device_sessions(datasets: Mapping[str, pl.DataFrame], _tolerance_pct: float) -> pl.DataFrame:
    return datasets[SESSIONS]


SOURCE = SourceFormat(
    kind=KIND,
    pattern=r"^ionto-b_[^_]+_\d{14}\.jsonl$",
    datasets=(EVENTS, SESSIONS),
    read=parse_delivery_telemetry,
    resolve=resolve_vendor_b,
    sessions=_device_sessions,
    session_inputs=(SESSIONS,),
    contracts={SESSIONS: SESSIONS_DATASET},
)
"""Registry entry: vendor-B event streams parsed per delivery, resolved one range of devices
at a time; sessions summarised from the events (contract ``device_sessions``)."""
