"""Reading deliveries one at a time, and resolving the current raw datasets from them.

:func:`read_delivery_folder` reads every complete file of one delivery folder on its own (no
file of another delivery is opened), whether or not a later delivery supersedes it.
:func:`resolve_raw_datasets` then takes the per-delivery frames of any number of deliveries,
keeps the rows of the landing manifest's current file versions and applies the cross-file
rules of the readers: EDC latest snapshot per centre, gravimetry duplicate papers
(:func:`~ingest.readers.gravimetry.resolve_duplicate_papers`), vendor-A repeats and clock
placement (:func:`~ingest.readers.vendor_a.resolve_vendor_a`). :func:`resolve_vendor_b` resolves
the vendor-B telemetry one range of devices at a time (:mod:`ingest.telemetry`: duplicate lines,
sessions across files and deliveries). The results equal what the whole-tree readers
(:func:`ingest.delivery.read_delivery`) give.

Stored delivery frames may be given as frames or as lazy scans: only the telemetry is large,
and it is only ever scanned for a range of devices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from data_contracts.contracts import empty_frame, load_contract
from ingest.deliveries import complete_files
from ingest.integrity import apply_trial_rules, plausibility
from ingest.landing import EDC_TABLES, current_files, file_kind, landing_quarantine
from ingest.quarantine import combine, empty_quarantine
from ingest.readers.balance import read_balance, weighings_as_gravimetry
from ingest.readers.bench_ibu import read_bench_ibu
from ingest.readers.edc import read_edc_file
from ingest.readers.gravimetry import gravimetry_rows, resolve_duplicate_papers, type_gravimetry
from ingest.readers.text import CsvRows
from ingest.readers.vendor_a import earliest_consent, resolve_vendor_a, type_vendor_a_exports
from ingest.sealed import SealedListSignature
from ingest.snapshots import carried_rows
from ingest.telemetry import (
    Telemetry,
    parse_delivery_telemetry,
    parsed_schema,
    resolve_telemetry,
)

DELIVERY_FRAMES = (*EDC_TABLES, "gravimetry", "vendor_a", "vendor_b", "quarantine")
"""The frames :func:`read_delivery_folder` returns: EDC tables, gravimetry papers, vendor-A
rows before deduplication, vendor-B events with ``raw_text`` before duplicate lines are
dropped (sorted by device, :func:`ingest.telemetry.parse_delivery_telemetry`), and the
quarantine of the folder's files."""

DeliveryFrames = Mapping[str, pl.DataFrame | pl.LazyFrame]
"""One delivery's stored frames, named as :data:`DELIVERY_FRAMES`, eager or scanned."""


def _stack(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Frames with rows stacked (frames without rows are left out: their schema may be empty)."""
    rows = [f for f in frames if f.height]
    return pl.concat(rows, how="vertical_relaxed") if rows else pl.DataFrame()


def read_delivery_folder(
    raw_root: Path, folder: str, sealed: SealedListSignature
) -> dict[str, pl.DataFrame]:
    """Every complete file of ``<raw_root>/<folder>`` read by its kind's reader -> frames named
    as :data:`DELIVERY_FRAMES` (the files of one kind are typed in one pass). Files of other
    kinds (unknown, bench captures) are left to the landing manifest's quarantine; a file
    whose name or first bytes are the sealed list's (``sealed``: the study's signature,
    :mod:`ingest.sealed`) is never opened by a reader, whatever its name."""
    raw_root = Path(raw_root)
    by_kind: dict[str, list[Path]] = {}
    for path in complete_files(raw_root / folder):
        by_kind.setdefault(file_kind(path, sealed), []).append(path)
    frames: dict[str, pl.DataFrame] = {}
    quarantines = [empty_quarantine()]
    for table in EDC_TABLES:
        typed = [empty_frame(load_contract(table))]
        for path in by_kind.get(table, []):
            rows, q = read_edc_file(path, raw_root, table)
            typed.append(rows)
            quarantines.append(q)
        frames[table] = pl.concat(typed, how="vertical")
    papers: list[CsvRows] = []
    for path in by_kind.get("gravimetry", []):
        rows_g, q = gravimetry_rows(path, raw_root)
        quarantines.append(q)
        if rows_g is not None:
            papers.append(rows_g)
    frames["gravimetry"], q = type_gravimetry(papers)
    quarantines.append(q)
    frames["vendor_a"], q = type_vendor_a_exports(by_kind.get("vendor_a", []), raw_root)
    quarantines.append(q)
    frames["vendor_b"], q = parse_delivery_telemetry(by_kind.get("vendor_b", []), raw_root)
    quarantines.append(q)
    frames["quarantine"] = combine(quarantines)
    return frames


def _current(frame: pl.DataFrame, order: pl.DataFrame) -> pl.DataFrame:
    """Rows of ``frame`` from the files in ``order`` (``source_file``, ``_file_no``), sorted by
    file order then line, as the whole-tree readers stack them."""
    if frame.height == 0:
        return frame
    return (
        frame.join(order, on="source_file", how="inner")
        .sort("_file_no", "source_line", maintain_order=True, nulls_last=False)
        .drop("_file_no")
    )


def stale_deliveries(deliveries: Mapping[str, DeliveryFrames]) -> list[str]:
    """Keys of stored deliveries whose ``vendor_b`` frame lacks the typed telemetry columns of
    :func:`ingest.telemetry.parsed_schema` (stored by a version of the pipeline before the
    telemetry was parsed per delivery): they must be read again."""
    needed = set(parsed_schema().names())
    return [
        key
        for key, frames in deliveries.items()
        if needed - set(frames["vendor_b"].lazy().collect_schema().names())
    ]


def _collected(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def resolve_raw_datasets(
    manifest: pl.DataFrame, deliveries: Sequence[DeliveryFrames], raw_root: Path
) -> dict[str, pl.DataFrame]:
    """Per-delivery frames (from :func:`read_delivery_folder`) -> the raw datasets of the
    manifest's current file versions: the EDC tables, ``gravimetry``,
    ``gravimetry_duplicates``, ``vendor_a_sessions``, ``bench_ibu_frames``,
    ``balance_weighings``, ``quarantine`` (vendor-B telemetry: :func:`resolve_vendor_b`).

    Bench-unit captures are read here, from ``raw_root``'s current capture files, not per
    delivery: a driver restarted into a new date folder re-fetches frames that an earlier
    folder holds, and only a read across folders finds those repeats. Weighed papers join the
    worksheets' papers under the usual rule (later delivery, then later line)."""
    small = [name for name in DELIVERY_FRAMES if name != "vendor_b"]
    stacked = {name: _stack([_collected(d[name]) for d in deliveries]) for name in small}
    order = current_files(manifest).select(
        "source_file", _file_no=pl.int_range(pl.len(), dtype=pl.Int64)
    )
    out: dict[str, pl.DataFrame] = {}
    reader_quarantine = empty_quarantine()
    if stacked["quarantine"].height:
        reader_quarantine = _current(stacked["quarantine"], order)
    carried_findings = []
    for table in EDC_TABLES:
        contract = load_contract(table)
        rows = _current(stacked[table], order)
        carried, found = carried_rows(table, stacked[table], manifest, reader_quarantine)
        carried_findings.append(found)
        if carried.height:
            rows = pl.concat([rows.select(contract.columns), carried.select(contract.columns)])
        out[table] = rows.select(contract.columns) if rows.height else empty_frame(contract)
    papers_contract = load_contract("gravimetry")
    papers = _current(stacked["gravimetry"], order)
    if papers.height == 0:
        papers = empty_frame(papers_contract)
    weighings, q_balance = read_balance(raw_root, manifest)
    out["balance_weighings"] = weighings
    papers = pl.concat([papers, weighings_as_gravimetry(weighings)])
    papers, q_papers = plausibility(papers, "gravimetry", raw_root=raw_root)
    checked = apply_trial_rules(
        {**{t: out[t] for t in EDC_TABLES}, "gravimetry": papers},
        combine([reader_quarantine, q_papers]),
        raw_root,
    )
    out.update({t: checked.datasets[t] for t in EDC_TABLES})
    kept, pairs = resolve_duplicate_papers(checked.datasets["gravimetry"], current_files(manifest))
    out["gravimetry"] = kept.sort("source_file", "source_line").select(papers_contract.columns)
    out["gravimetry_duplicates"] = pairs
    consent = earliest_consent(out["dm"], out["devices"])
    vendor_a = _current(stacked["vendor_a"], order)
    vendor_a, q_vendor_a = plausibility(vendor_a, "vendor_a_sessions", raw_text="_raw")
    sessions, q_repeats = resolve_vendor_a(vendor_a, consent)
    out["vendor_a_sessions"] = sessions
    frames, q_ibu = read_bench_ibu(raw_root, manifest)
    out["bench_ibu_frames"], q_ibu_values = plausibility(
        frames, "bench_ibu_frames", raw_root=raw_root
    )
    out["quarantine"] = combine(
        [
            landing_quarantine(manifest),
            reader_quarantine,
            q_papers,
            checked.quarantine,
            q_vendor_a,
            q_repeats,
            q_balance,
            q_ibu,
            q_ibu_values,
        ]
    )
    out["integrity_findings"] = pl.concat([*carried_findings, checked.findings])
    return out


def resolve_vendor_b(
    manifest: pl.DataFrame,
    deliveries: Sequence[DeliveryFrames],
    tolerance_pct: float,
    events_dir: Path,
) -> Telemetry:
    """The vendor-B events of the manifest's current files in every delivery -> distinct events
    (Parquet parts under ``events_dir``, scanned lazily) and session summaries, resolved one
    range of devices at a time (:func:`ingest.telemetry.resolve_telemetry`).
    ``tolerance_pct``: the study's ``treatment.current_tolerance_pct``."""
    scans = [d["vendor_b"].lazy() for d in deliveries]
    current = current_files(manifest, "vendor_b").select("source_file")
    return resolve_telemetry(scans, current, tolerance_pct, events_dir)
