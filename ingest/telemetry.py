"""Vendor-B telemetry at trial scale, in the two steps the pipeline runs.

A 600-subject trial sends about 50 million 2 Hz events (several GB of JSON lines) over many
deliveries. The telemetry is read in two phases, each in memory bounded by a batch:

1. :func:`parse_delivery_telemetry` (the ``delivery_frames`` step, each delivery alone, as
   many deliveries at once as there are cores): the delivery's vendor-B files are read in
   batches of whole devices, one after another, by the streaming reader's
   kernel (:mod:`ingest.readers.vendor_b_stream`: lines, canonical fast path, the reader's
   rules for every other line) into typed events with a 64-bit hash of their text
   (``line_hash``) and their device's range (below), sorted by range so that a scan for a
   batch of ranges reads only the row groups that hold them (:data:`ROW_GROUP_ROWS`). The
   text itself (``raw_text``) is kept only on the lines the resolution reads it from
   (:func:`keep_needed_text`); elsewhere it is null.
2. :func:`resolve_telemetry` (the ``raw_datasets`` step, over every delivery): the events of
   the landing manifest's current files are taken in batches of whole ranges of devices, in
   a stable layout (:data:`RANGES`: a device's range is a hash of its serial, so it never
   moves); each batch drops exact duplicate lines and is summarised into sessions. A range
   holds every event of its devices from every delivery, which makes both rules exact: an
   exact duplicate line has the same ``dev``, and a session (``dev``, ``sid``) spanning files
   or deliveries is joined whole. Duplicates are found by ``line_hash`` and decided on the
   exact text of the lines whose hash repeats; a line whose text was not kept and that the
   resolution needs (a hash repeated across deliveries, an event a trial-level rule
   quarantines) has it read back from its raw file (:func:`with_raw_text`). Distinct events
   are written as one Parquet part per range, in file and line order, beside the range's
   sessions, quarantine and findings; an output folder keeps them, so a refresh recomputes
   only the ranges whose files changed (a new delivery's devices) and reuses the others.

Peak memory is set by the largest delivery (phase 1) and by ``max_batch_events`` (phase 2:
whole ranges packed into batches), not by the length of the trial. :func:`read_telemetry`
runs both phases on folders of files, as the telemetry benchmark (``benchmarks/telemetry.py``)
measures them.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
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
from ingest.readers import vendor_b_stream
from ingest.readers.text import decode_file, relative_name
from ingest.readers.vendor_b import DATASET, FIELDS
from ingest.readers.vendor_b_stream import (
    MAX_BATCH_BYTES,
    batch_lines,
    device_batches,
    drop_duplicates,
    parse_lines,
)
from ingest.source_format import Resolution, Resolved, SourceFormat, TableParts
from ingest.telemetry_rules import (
    backwards_events,
    backwards_quarantine,
    key_findings,
    odd_key_count,
)

SESSIONS_DATASET = "device_sessions"
KIND = "vendor_b"
EVENTS = DATASET
SESSIONS = "vendor_b_sessions"
ROW_GROUP_ROWS = 8_192
"""Rows per Parquet row group of a delivery's parsed events: small enough that a scan for a
few ranges skips most of a delivery's file by the row groups' ``range`` statistics."""


def write_parsed(frame: pl.DataFrame, path: Path) -> None:
    """Store one delivery's parsed frame as ``delivery_frames`` stores it (the IO manager and
    :func:`read_telemetry` both call this): row groups of :data:`ROW_GROUP_ROWS` rows, LZ4 as
    for the range parts (on the telemetry benchmark's 5 M events, one thread: writing 1.8 s
    against zstd's 2.0-2.1 s, reading the ranges back 1.2 s against 1.3-1.5 s; 118 MB on disk
    against 83 MB)."""
    frame.write_parquet(path, row_group_size=ROW_GROUP_ROWS, compression="lz4")


RANGES = 128
"""The stable range layout: device ``dev`` belongs to range ``crc32(dev) % RANGES`` whatever the
trial's size or history, so a new delivery touches only the ranges of its devices (and the
resolved events come out in the same order however the deliveries arrived). 128 ranges keep a
range of a 50-million-event trial near 400,000 events."""
NO_DEVICE = RANGES
"""The range of events without a device (none pass the contract today; kept so that no event
can fall between the ranges)."""
MAX_BATCH_EVENTS = 500_000
"""Events resolved at once (about 250 MB of memory with their text): whole ranges are packed
into batches of at most this many events (a larger range is a batch of its own)."""
INDEX = "ranges.json"


@dataclass(frozen=True)
class Telemetry:
    """``events``: distinct events (``vendor_b_events`` columns) scanned lazily from the range
    parts under ``events_dir``; ``sessions``: one row per session in ``device_sessions``
    columns; ``quarantine``: events the trial-level rules rejected (implausible or non-finite
    numbers, time stamps out of order: never integrated); ``findings``: kept events with
    unknown or duplicated JSON keys (:mod:`ingest.telemetry_rules`); ``resolved``: the ranges
    computed by this call (the others were reused); ``parts``: the range parts ``events``
    scans, in range order (never written in place: a recomputed range's part is a new
    file)."""

    events: pl.LazyFrame
    sessions: pl.DataFrame
    quarantine: pl.DataFrame
    findings: pl.DataFrame
    resolved: tuple[int, ...] = ()
    parts: tuple[Path, ...] = ()


def parsed_schema() -> pl.Schema:
    """Columns of a delivery's parsed events: lineage, ``line_hash`` (UInt64,
    :func:`~ingest.readers.vendor_b_stream.line_hash` of the line's text), ``raw_text`` (null
    but where :func:`keep_needed_text` keeps it), the typed fields and the device's ``range``
    in the stable layout (:func:`range_of`)."""
    typed = load_contract(DATASET).schema
    return pl.Schema(
        {
            "source_file": pl.String(),
            "source_line": pl.Int64(),
            "line_hash": pl.UInt64(),
            "raw_text": pl.String(),
            **{f: typed[f] for f in FIELDS},
            "range": pl.Int64(),
        }
    )


def parse_delivery_telemetry(
    paths: Sequence[Path], raw_root: Path, max_batch_bytes: int = MAX_BATCH_BYTES
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One delivery's vendor-B files -> (typed events in :func:`parsed_schema`, sorted by
    range; quarantine), read one batch of devices after another
    (callers read several deliveries at once). Duplicates are kept: they are decided across
    deliveries by :func:`resolve_telemetry`."""
    schema = parsed_schema()
    with_text = pl.Schema({n: t for n, t in schema.items() if n not in ("line_hash", "range")})
    canonical = [pl.DataFrame(schema=with_text)]
    other = [pl.DataFrame(schema=with_text)]
    quarantines = [empty_quarantine()]
    for batch in device_batches(paths, max_batch_bytes):
        lines, q_files = batch_lines(batch, raw_root)
        quarantines.append(q_files)
        if lines.height:
            fast, slow, q_lines = parse_lines(lines)
            canonical.append(fast.select(with_text.names()).cast(with_text))
            other.append(slow.select(with_text.names()).cast(with_text))
            quarantines.append(q_lines)
    events = keep_needed_text(pl.concat(canonical), pl.concat(other))
    events = events.join(range_of(events["dev"].unique()), on="dev", how="left", nulls_equal=True)
    # By range only (a stable sort of an integer: within a range, rows stay in batch, file and
    # line order); the resolution reads a batch of ranges and orders what it keeps itself.
    ordered = events.sort("range", maintain_order=True).select(schema.names())
    return ordered, combine(quarantines)


def keep_needed_text(canonical: pl.DataFrame, other: pl.DataFrame) -> pl.DataFrame:
    """Parsed events of one delivery (with ``raw_text``: those of its canonical lines, those of
    the others) -> one frame with ``line_hash`` and ``raw_text`` kept only where the
    resolution reads it: on lines whose hash repeats in the delivery (a copy, or a collision,
    to decide on the text) and on lines with an
    :func:`~ingest.telemetry_rules.odd_key_count` (the key findings; never a canonical line,
    so only the others are looked at). Storing a hash in place of every line's text keeps the
    stored frames small; a text the resolution needs beyond these (a hash repeated across
    deliveries, a quarantined event) is read back from the raw file by
    :func:`with_raw_text`."""
    odd = pl.concat(
        [
            canonical.with_columns(_odd=pl.lit(False)),
            other.with_columns(_odd=odd_key_count().fill_null(False)),
        ]
    )
    hashed = odd.with_columns(line_hash=vendor_b_stream.line_hash(pl.col("raw_text")))
    keep = pl.col("line_hash").is_duplicated() | pl.col("_odd")
    return hashed.with_columns(raw_text=pl.when(keep).then(pl.col("raw_text"))).drop("_odd")


def with_raw_text(
    rows: pl.DataFrame, raw_root: Path, where: pl.Series | None = None
) -> pl.DataFrame:
    """``rows`` (lineage, ``line_hash``, ``raw_text``) with the missing ``raw_text`` of the rows
    ``where`` marks (default: every row) read back from their raw files under ``raw_root``
    (the reader's own decoding and line split; each file opened once). A line read back must
    have the ``line_hash`` stored for it: otherwise the raw file no longer holds the line its
    events were read from (or the stored hashes were made by another hash function), and
    comparing texts or quarantining would name the wrong line, so this raises ``ValueError``
    naming the file and line."""
    lineage = ["source_file", "source_line"]
    missing = pl.col("raw_text").is_null()
    mask = missing if where is None else missing & pl.lit(where)
    need = rows.with_row_index("_row").filter(mask)
    if need.height == 0:
        return rows
    decoded: dict[str, list[str]] = {}
    texts: list[str | None] = []
    for file, line in need.select(lineage).iter_rows():
        if file not in decoded:
            path = Path(raw_root) / file
            found = decode_file(path.read_bytes(), file, DATASET)[0] if path.is_file() else None
            decoded[file] = found.lines if found is not None else []
        lines = decoded[file]
        texts.append(lines[line - 1] if 0 < line <= len(lines) else None)
    read = need.with_columns(raw_text=pl.Series(texts, dtype=pl.String))
    wrong = read.filter(
        pl.col("raw_text").is_null()
        | (vendor_b_stream.line_hash(pl.col("raw_text")) != pl.col("line_hash"))
    )
    if wrong.height:
        file, line = wrong.select(lineage).row(0)
        raise ValueError(
            f"{file} line {line}: the raw file no longer holds the line its stored vendor-B "
            f"events were read from (the text's hash differs from the stored one; "
            f"{wrong.height} such lines): it changed after its delivery was read, or that "
            "delivery was read by a version whose line hash differs; read its delivery again"
        )
    filled = rows["raw_text"].clone().scatter(need["_row"], read["raw_text"])
    return rows.with_columns(raw_text=filled)


def range_of(devices: pl.Series) -> pl.DataFrame:
    """``dev`` -> its range (``range``, Int64) in the stable layout; a null device is
    :data:`NO_DEVICE`."""
    ranges = [NO_DEVICE if d is None else zlib.crc32(d.encode()) % RANGES for d in devices]
    return pl.DataFrame({"dev": devices, "range": pl.Series(ranges, dtype=pl.Int64)})


def pack_ranges(counts: pl.DataFrame, max_events: int) -> list[list[int]]:
    """``counts`` (``range``, ``len``) -> batches of whole ranges in range order, each of at
    most ``max_events`` events (a range with more is a batch of its own)."""
    batches: list[list[int]] = []
    size = 0
    for number, n in counts.sort("range").iter_rows():
        if not batches or (size and size + n > max_events):
            batches.append([])
            size = 0
        batches[-1].append(number)
        size += n
    return batches


def range_signatures(index: pl.DataFrame, current: pl.DataFrame, salt: str) -> dict[int, str]:
    """What each range is computed from: ``index`` (``source_file``, ``range``: the ranges
    each current file has events in) with the files' content hashes (``current``:
    ``source_file``, ``sha256``) and ``salt`` (the code version and the study's tolerance) ->
    range -> SHA-256. Equal signatures, equal results."""
    files = index.join(current.select("source_file", "sha256"), on="source_file", how="left")
    signatures = {}
    for (number,), rows in files.group_by("range"):
        lines = sorted(f"{f}\t{h}" for f, h in rows.select("source_file", "sha256").iter_rows())
        text = "\n".join([salt, *lines])
        signatures[int(number)] = hashlib.sha256(text.encode()).hexdigest()
    return signatures


def _resolve_batch(
    parsed: pl.DataFrame, tolerance_pct: float, raw_root: Path
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Whole ranges' parsed events (every delivery's, with ``range``) -> (distinct kept events
    with ``range``, in range then file and line order; sessions, quarantine and findings, each
    with the ``range`` of its device). Texts the parsed events did not keep are read back
    from ``raw_root`` where a rule needs them (:func:`with_raw_text`).

    Every rule is exact on whole ranges taken together as on each range alone: an exact
    duplicate line and a session (``dev``, ``sid``) never span two ranges (both have one
    device), and the other rules are row-local. So a batch is resolved at once, and its
    distinct events are cut into one part per range afterwards (by slices, no copy)."""
    lineage = ["source_file", "source_line"]
    rows, q_values = plausibility(parsed, DATASET)
    if q_values.height:
        rejected = parsed.join(q_values.select(lineage), on=lineage, how="semi")
        texts = with_raw_text(rejected, raw_root).select(*lineage, "raw_text", "range")
        q_values = q_values.drop("raw_text").join(
            texts, on=lineage, how="left", maintain_order="left"
        )
    else:
        q_values = q_values.with_columns(range=pl.lit(None, dtype=pl.Int64))
    repeated = rows["line_hash"].is_duplicated()
    rows = with_raw_text(rows, raw_root, repeated)
    # In range, then file and line order: the same rows in the same order whatever the order
    # in which the deliveries were read.
    distinct = drop_duplicates(rows, repeated).sort(_range_file_line())
    back = backwards_events(distinct)
    out_of_order = with_raw_text(
        distinct.filter(back)
        .drop("range")
        .join(rows.select(*lineage, "line_hash", "raw_text", "range"), on=lineage),
        raw_root,
    )
    q_order = backwards_quarantine(out_of_order).with_columns(range=out_of_order["range"])
    # Only lines with an odd key count are looked at; of those, the distinct ones count (the
    # join, a hash table of every distinct event, only when there is a finding to keep).
    findings = key_findings(rows)
    findings = (
        findings.join(distinct.select(*lineage, "range"), on=lineage, maintain_order="left")
        if findings.height
        else findings.with_columns(range=pl.lit(None, dtype=pl.Int64))
    )
    distinct = distinct.filter(~back)
    sessions = summarise_sessions(distinct, tolerance_pct).collect()
    devices = range_of(sessions["device_serial"].unique()).rename({"dev": "device_serial"})
    sessions = sessions.join(devices, on="device_serial", maintain_order="left", nulls_equal=True)
    quarantine = pl.concat([q_values, q_order.select(q_values.columns)])
    return distinct, sessions, quarantine, findings


def _range_file_line() -> pl.Expr:
    """One UInt64 per event that orders by ``range``, then ``source_file`` (as strings), then
    ``source_line``: the range times 2^56 plus the rank of the file among the frame's files
    times 2^32 plus the line (a range is below 2^8, a batch has fewer than 2^24 files and a file
    fewer than 2^32 lines). Sorting by it costs about half a sort on the three columns (no
    string comparisons)."""
    file = pl.col("source_file")
    rank = file.rank("dense").cast(pl.UInt64) - 1
    return (
        pl.col("range").cast(pl.UInt64) * 2**56
        + rank * 2**32
        + pl.col("source_line").cast(pl.UInt64)
    )


def _range_parts(distinct: pl.DataFrame, numbers: Sequence[int]) -> dict[int, pl.DataFrame]:
    """``distinct`` (sorted by ``range``) cut into one frame per range of ``numbers`` (slices,
    no copy; a range without distinct events gets an empty frame), in contract columns."""
    columns = load_contract(DATASET).columns
    runs = distinct.group_by("range", maintain_order=True).len()
    starts = dict.fromkeys(numbers, (0, 0))
    offset = 0
    for number, n in runs.iter_rows():
        starts[int(number)] = (offset, n)
        offset += n
    return {
        number: distinct.slice(start, n).select(columns) for number, (start, n) in starts.items()
    }


SUMMARIES = ("sessions", "quarantine", "findings")
"""The small results of every range, kept as one Parquet file each (with a ``range``
column) beside the range parts."""


def _read_index(events_dir: Path) -> dict[int, str]:
    path = events_dir / INDEX
    if not path.is_file():
        return {}
    return {int(k): str(v) for k, v in json.loads(path.read_text("utf-8")).items()}


def _write_index(events_dir: Path, signatures: Mapping[int, str]) -> None:
    """Written aside and renamed: the index is whole, and names only ranges whose part and
    summary rows are stored."""
    path = events_dir / INDEX
    aside = path.with_name(f".{INDEX}.writing")
    aside.write_text(json.dumps({str(k): v for k, v in sorted(signatures.items())}), "utf-8")
    aside.replace(path)


def _part(events_dir: Path, number: int) -> Path:
    return events_dir / f"part-{number:03d}.parquet"


def _write_whole(frame: pl.DataFrame, path: Path) -> None:
    """Written aside and renamed: a file at ``path`` is always whole. LZ4, not Polars' default
    zstd: a range's distinct events are written in about 60 % of the CPU time (measured on
    the telemetry benchmark's 5 M events: 1.03 s against 1.65 s), in files about twice as
    large (67 MB against 35 MB), scanned as fast."""
    aside = path.with_name(f".{path.name}.writing")
    frame.write_parquet(aside, compression="lz4")
    aside.replace(path)


def resolve_telemetry(
    parsed: Sequence[pl.LazyFrame],
    current: pl.DataFrame,
    raw_root: Path,
    tolerance_pct: float,
    events_dir: Path,
    max_batch_events: int = MAX_BATCH_EVENTS,
    workers: int | None = None,
    salt: str | None = None,
) -> Telemetry:
    """Parsed events of any number of deliveries (lazy scans of
    :func:`parse_delivery_telemetry`'s output) -> distinct events of the ``current`` files
    (``source_file``: the landing manifest's current versions, under ``raw_root``) and their
    sessions.

    Events are resolved in batches of whole ranges of devices (:data:`RANGES`, a stable
    layout); an exact duplicate line has the same ``dev`` and a session spanning files or
    deliveries is joined whole, so each range is exact alone, and so is a batch of them.
    Exact duplicate lines are dropped and counted by the reader's rule (first by file, then
    line); sessions are summarised by
    :func:`~ingest.device_sessions.summarise_sessions` (``tolerance_pct``: the study's
    ``treatment.current_tolerance_pct``). ``workers``: batches resolved at once (default: the
    cores; peak memory about workers x ``max_batch_events`` events).

    ``events_dir`` holds one Parquet part per range and the ranges' sessions, quarantine and
    findings. With a ``salt`` (the code version of the caller) and the files' ``sha256`` in
    ``current``, a range whose files and salt are those it was last computed from is reused
    from ``events_dir`` (an output folder's refresh computes only the ranges a new delivery
    touches); without, every range is computed and ``events_dir`` emptied first."""
    events_dir = Path(events_dir)
    events_dir.mkdir(parents=True, exist_ok=True)
    reuse = salt is not None and "sha256" in current.columns
    stored = _read_index(events_dir) if reuse else {}
    scans = [p.select(parsed_schema().names()) for p in parsed]
    delivered = pl.concat(scans) if scans else None
    if delivered is None:
        per_file = pl.DataFrame(
            schema={"source_file": pl.String, "range": pl.Int64, "len": pl.UInt32}
        )
    else:
        per_file = delivered.group_by("source_file", "range").len().collect(engine="streaming")
    is_current = pl.col("source_file").is_in(current["source_file"].implode())
    index = per_file.filter(is_current)
    # Events of files a later delivery superseded are left out (a first run has none, and
    # skips the filter: a hash of every event's file name).
    superseded = per_file.filter(~is_current)["source_file"].unique()
    events = (
        delivered.filter(~pl.col("source_file").is_in(superseded.implode()))
        if delivered is not None and superseded.len()
        else delivered
    )
    ranges = sorted(int(r) for r in index["range"].unique())
    key = f"{salt}\ttolerance {tolerance_pct!r}"
    signatures = (
        range_signatures(index.select("source_file", "range"), current, key) if reuse else {}
    )
    todo = [r for r in ranges if not reuse or stored.get(r) != signatures[r]]
    # Ranges to recompute or gone are forgotten first: a run killed from here on leaves
    # them to be computed again, never a part that its signature does not describe.
    kept = {r: sig for r, sig in stored.items() if r in ranges and r not in todo}
    _write_index(events_dir, kept)
    for part in events_dir.glob("part-*.parquet"):
        if int(part.stem.split("-")[1]) not in kept:
            part.unlink()
    counts = index.filter(pl.col("range").is_in(todo)).group_by("range").agg(pl.col("len").sum())

    def resolve(batch: list[int]) -> dict[str, pl.DataFrame]:
        assert events is not None
        # The interval lets the scan skip row groups by their statistics (the parsed events
        # are sorted by range); the list keeps out the reused ranges between the batch's.
        span = pl.col("range").is_between(batch[0], batch[-1])
        rows = events.filter(span & pl.col("range").is_in(batch)).collect()
        distinct, *summaries = _resolve_batch(rows, tolerance_pct, Path(raw_root))
        for number, part in _range_parts(distinct, batch).items():
            _write_whole(part, _part(events_dir, number))
        return dict(zip(SUMMARIES, summaries, strict=True))

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        computed = list(pool.map(resolve, pack_ranges(counts, max_batch_events)))
    summaries = {}
    for name, empty in zip(SUMMARIES, _empty_summaries(tolerance_pct), strict=True):
        path = events_dir / f"{name}.parquet"
        earlier = (
            pl.read_parquet(path).filter(pl.col("range").is_in(list(kept)))
            if (kept and path.is_file())
            else empty
        )
        frame = pl.concat(
            [earlier, *(c[name] for c in computed if name in c)], how="vertical_relaxed"
        )
        _write_whole(frame, path)
        summaries[name] = frame
    _write_index(events_dir, {**kept, **{r: signatures[r] for r in todo if r in signatures}})
    parts = [p for p in (_part(events_dir, r) for r in ranges) if p.is_file()]
    lineage = ["source_file", "source_line"]
    return Telemetry(
        events=pl.scan_parquet(parts) if parts else empty_frame(load_contract(DATASET)).lazy(),
        sessions=cast_frame(
            summaries["sessions"].drop("range").sort("device_serial", "start_utc"),
            load_contract(SESSIONS_DATASET),
        ),
        quarantine=combine([summaries["quarantine"].drop("range")]),
        findings=summaries["findings"].drop("range").sort(lineage),
        resolved=tuple(todo),
        parts=tuple(parts),
    )


def _empty_summaries(tolerance_pct: float) -> tuple[pl.DataFrame, ...]:
    """Empty sessions, quarantine and findings with their ``range`` column."""
    no_events = empty_frame(load_contract(DATASET))
    sessions = summarise_sessions(no_events, tolerance_pct).collect()
    return tuple(
        f.with_columns(range=pl.lit(None, dtype=pl.Int64))
        for f in (sessions, empty_quarantine(), empty_findings())
    )


def read_telemetry(
    deliveries: Sequence[Sequence[Path]],
    raw_root: Path,
    tolerance_pct: float,
    work_dir: Path,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    max_batch_events: int = MAX_BATCH_EVENTS,
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
        write_parsed(events, path)
        return path, quarantine

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        parsed = list(pool.map(parse, enumerate(deliveries)))
    current = pl.DataFrame(
        {"source_file": [relative_name(Path(p), raw_root) for d in deliveries for p in d]}
    )
    telemetry = resolve_telemetry(
        [pl.scan_parquet(path) for path, _ in parsed],
        current,
        raw_root,
        tolerance_pct,
        Path(work_dir) / "events",
        max_batch_events,
        workers,
    )
    return telemetry, combine([telemetry.quarantine, *(q for _, q in parsed)])


def resolve_vendor_b(resolution: Resolution) -> Resolved:
    """Every delivery's parsed events (scanned, never collected whole) -> ``vendor_b_events``
    (the range parts under ``<resolution.store>/vendor_b``, stored as they are) and
    ``vendor_b_sessions``, with the events the trial-level rules rejected and the findings on
    kept ones (unreadable lines were quarantined when each delivery was parsed). Ranges whose
    files and code are unchanged since the store's last run are reused."""
    current = current_files(resolution.manifest, KIND).select("source_file", "sha256")
    telemetry = resolve_telemetry(
        resolution.scans(KIND),
        current,
        resolution.raw_root,
        resolution.tolerance_pct,
        resolution.store / KIND,
        salt=resolution.code_version,
    )
    return Resolved(
        {
            EVENTS: TableParts(telemetry.parts, load_contract(DATASET).schema),
            SESSIONS: telemetry.sessions,
        },
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
