"""Vendor-A session summaries ``ionto-a_<serial>_<yyyymmdd>.csv``.

Layout: ``#key=value`` lines first (``serial``, ``firmware``, ``exported_at`` device clock without
offset, ``utc_offset`` such as ``+01:00``), then a CSV header and one row per session. The first
``#`` line is physical line 1. Missing or malformed ``#`` lines, or a ``serial`` differing from
the file name's, quarantine the whole file (``BAD_HEADER``).

Derived columns:

- ``start_local``: ``start`` parsed (naive, device local time as printed);
- ``start_utc`` = ``start_local - utc_offset`` (the offset the device was issued with; it does
  not follow daylight saving, so this is the true UTC when the clock is right);
- ``clock_reset``: the device clock had restarted (backup battery died; it restarts at
  2000-01-01): ``start`` before 2001-01-01, or after the export's own ``exported_at`` when that
  is itself dated after 2001, or (given ``consent`` from :func:`earliest_consent`, as
  as the registry entry does) before the consent of every subject the serial was assigned to. Such a
  session is never dropped;
- ``start_utc_placed``/``start_placement``: for a clock-reset session, an estimate placed by the
  counter among the same export's correctly dated sessions (:func:`place_clock_resets`); the
  printed ``start`` and ``start_utc`` are kept as delivered. Correct sessions: ``recorded``.

Each export repeats every session still in memory, so sessions are deduplicated over all
current exports by (``serial``, ``session_no``, ``start``): the counter alone is no key, it
restarts at 1 after a factory reset. The row of the latest export is kept, with ``n_exports``
and ``source_files`` naming every export that held it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import polars as pl

from data_contracts.contracts import Contract, empty_frame, load_contract, type_text_frame
from ingest.device_sessions import vendor_a_device_sessions
from ingest.integrity import plausibility
from ingest.manifest import current_files
from ingest.quarantine import combine, empty_quarantine, quarantine_rows
from ingest.readers.text import (
    CsvRows,
    DecodedFile,
    csv_rows,
    decode_file,
    relative_name,
    rows_frame,
)
from ingest.source_format import Resolution, Resolved, SourceFormat

DATASET = "vendor_a_sessions"
HEADER_KEYS = ("serial", "firmware", "exported_at", "utc_offset")
CSV_COLUMNS = [
    "session_no",
    "start",
    "duration_s",
    "programmed_ma",
    "mean_ma",
    "max_v",
    "charge_mc",
    "polarity_switches",
    "end_reason",
    "fault_code",
]
SESSION_KEY = ["serial", "session_no", "start"]
DEATH_BOUNDS = ("_death_low", "_death_high")
HELPERS = (*DEATH_BOUNDS, "_raw")
"""Working columns between typing and deduplication: restart bounds and the raw line."""
REPORTED = [
    "duration_s",
    "programmed_ma",
    "mean_ma",
    "max_v",
    "charge_mc",
    "polarity_switches",
    "end_reason",
    "fault_code",
]
"""The values an export reports for a session; a repeat must report the same."""
RESET_BEFORE = "2001-01-01T00:00:00"
_NAME = re.compile(r"^ionto-a_(?P<serial>[^_]+)_(?P<day>\d{8})\.csv$")
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_OFFSET = re.compile(r"^(?P<sign>[+-])(?P<h>\d{2}):(?P<m>\d{2})$")


def _file_header(
    decoded: DecodedFile, file_name: str
) -> tuple[dict[str, str] | None, int, pl.DataFrame]:
    """Parse the leading ``#`` lines -> (keys, first line after them, quarantine)."""
    src = decoded.source_file
    keys: dict[str, str] = {}
    idx = 0
    lines = decoded.lines
    while idx < len(lines) and (lines[idx].startswith("#") or not lines[idx].strip()):
        line = lines[idx]
        idx += 1
        if not line.strip():
            continue
        key, sep, value = line[1:].partition("=")
        if not sep or not key.strip():
            return None, idx, _bad_header(src, idx, None, "is not a '#key=value' line", line)
        keys[key.strip()] = value.strip()
    missing = [k for k in HEADER_KEYS if not keys.get(k)]
    if missing:
        return (
            None,
            idx,
            _bad_header(
                src,
                1,
                missing[0],
                "lacks the header line(s) " + ", ".join(f"'#{k}='" for k in missing),
                "",
            ),
        )
    if not _OFFSET.match(keys["utc_offset"]):
        line_no = _line_of(lines, "utc_offset")
        return (
            None,
            idx,
            _bad_header(src, line_no, "utc_offset", "utc_offset is not +HH:MM", lines[line_no - 1]),
        )
    m = _NAME.match(file_name)
    if m and m.group("serial") != keys["serial"]:
        line_no = _line_of(lines, "serial")
        return (
            None,
            idx,
            _bad_header(
                src,
                line_no,
                "serial",
                f"serial {keys['serial']!r} differs from the file name's {m.group('serial')!r}",
                lines[line_no - 1],
            ),
        )
    return keys, idx + 1, empty_quarantine()


def _line_of(lines: list[str], key: str) -> int:
    for i, line in enumerate(lines, start=1):
        if line.startswith("#") and line[1:].partition("=")[0].strip() == key:
            return i
    return 1


def _bad_header(src: str, line: int | None, field: str | None, what: str, raw: str) -> pl.DataFrame:
    return quarantine_rows(
        DATASET, src, line, field, "BAD_HEADER", f"{what}; the whole file is not read", raw
    )


def vendor_a_rows(
    path: Path, raw_root: Path
) -> tuple[CsvRows | None, dict[str, str], pl.DataFrame]:
    """One export's session rows and its ``#`` header values (``serial``, ``firmware``,
    ``exported_at``, ``utc_offset``) -> (rows or None when rejected whole, header, quarantine)."""
    path = Path(path)
    src = relative_name(path, Path(raw_root))
    decoded, q_file = decode_file(path.read_bytes(), src, DATASET)
    if decoded is None:
        return None, {}, q_file
    keys, body_start, q_head = _file_header(decoded, path.name)
    if keys is None:
        return None, {}, q_head
    if not _is_local_time(keys["exported_at"]):
        line_no = _line_of(decoded.lines, "exported_at")
        return (
            None,
            {},
            _bad_header(
                src,
                line_no,
                "exported_at",
                f"exported_at {keys['exported_at']!r} is not YYYY-MM-DDTHH:MM:SS",
                decoded.lines[line_no - 1],
            ),
        )
    rows, q_rows = csv_rows(decoded, DATASET, CSV_COLUMNS, first_line=body_start)
    header = {k: keys[k] for k in HEADER_KEYS}
    return rows, header, q_rows


def _is_local_time(text: str) -> bool:
    if not _LOCAL_TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def earliest_consent(dm: pl.DataFrame, devices: pl.DataFrame) -> pl.DataFrame:
    """Per device serial (``serial``), the earliest ``consent_date`` of any subject it was
    assigned to: a session dated before it can only come from a device clock that restarted."""
    return (
        devices.join(dm.select("subject_id", "consent_date"), on="subject_id", how="inner")
        .group_by(pl.col("device_serial").alias("serial"))
        .agg(consent_date=pl.col("consent_date").min())
        .filter(pl.col("consent_date").is_not_null())
    )


def type_vendor_a(
    text: pl.DataFrame, consent: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Text rows of one or more exports -> (typed rows with ``start_utc``, ``clock_reset`` and
    placement, one row per export and session; quarantine).

    ``consent`` (from :func:`earliest_consent`) adds the spec's own test of a restarted clock:
    a session dated before the consent of every subject the serial was assigned to."""
    contract = load_contract(DATASET)
    typed, q_values = type_text_frame(
        text.with_columns(_raw=pl.col("raw_text")),
        contract,
        DATASET,
        derived={"start_local": "start"},
    )
    minutes = _offset_minutes(pl.col("utc_offset"))
    reset_before = pl.lit(RESET_BEFORE).str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us")
    typed = typed.with_columns(
        start_utc=(pl.col("start_local") - pl.duration(minutes=minutes)).dt.replace_time_zone(
            "UTC"
        ),
        clock_reset=(pl.col("start_local") < reset_before)
        | (
            (pl.col("exported_at") >= reset_before)
            & (pl.col("start_local") > pl.col("exported_at"))
        ),
        n_exports=pl.lit(1, dtype=pl.Int64),
        source_files=pl.concat_list(pl.col("source_file")),
    )
    if consent is not None:
        typed = (
            typed.join(consent.select("serial", "consent_date"), on="serial", how="left")
            .with_columns(
                clock_reset=pl.col("clock_reset")
                | (pl.col("start_local").dt.date() < pl.col("consent_date")).fill_null(False)
            )
            .drop("consent_date")
        )
    return place_clock_resets(typed).select(*contract.columns, *HELPERS), q_values


def read_vendor_a_file(path: Path, raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One export -> (typed session rows, quarantine); no deduplication across exports."""
    rows, header, q = vendor_a_rows(path, raw_root)
    if rows is None:
        return empty_frame(load_contract(DATASET)), q
    typed, q_values = type_vendor_a(rows_frame([rows], [header]))
    return typed.drop(HELPERS), combine([q, q_values])


def place_clock_resets(sessions: pl.DataFrame) -> pl.DataFrame:
    """Add ``start_utc_placed`` and ``start_placement`` per export (``source_file``).

    A correctly dated session keeps ``start_utc`` (``recorded``). The others are placed by the
    counter against the export's correctly dated sessions:

    - a session dated from the clock's restart (before 2001): the clock ran from
      2000-01-01T00:00:00 device time when the battery died, so within a run of consecutive
      such counters the true start is (moment of death) + (printed start - 2000-01-01). The
      death lies after the end of the previous good session and early enough that the run's
      last session ends before the next good session starts and before the export
      (``exported_at``, when dated after 2001). The midpoint of these bounds is used
      (``interpolated``); with one bound only, that bound (``extrapolated``);
    - any other flagged session (e.g. dated after the export or before consent): linear in
      the counter between the neighbouring good sessions (``interpolated``), or from one of
      them at the export's median spacing per counter step (``extrapolated``);
    - ``unplaced`` (null) when the export gives nothing to place it by."""
    placed = place_by_counter(sessions)
    return place_restarted_clock(placed)


def place_restarted_clock(sessions: pl.DataFrame) -> pl.DataFrame:
    """Re-place the sessions dated from the clock restart (see :func:`place_clock_resets`)."""
    restart = pl.lit(RESET_BEFORE).str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us")
    epoch = pl.datetime(2000, 1, 1, time_unit="us")
    good = ~pl.col("clock_reset")
    from_restart = pl.col("clock_reset") & (pl.col("start_local") < restart)
    duration = pl.duration(seconds=pl.col("duration_s"))
    elapsed = pl.col("start_local") - epoch
    offset = pl.duration(minutes=_offset_minutes(pl.col("utc_offset")))
    s = sessions.sort("source_file", "session_no").with_columns(
        _run=(from_restart != from_restart.shift(1)).fill_null(True).cum_sum().over("source_file"),
        _prev_end=pl.when(good)
        .then(pl.col("start_utc") + duration)
        .forward_fill()
        .over("source_file"),
        _next_start=pl.when(good).then(pl.col("start_utc")).backward_fill().over("source_file"),
        _export=pl.when(pl.col("exported_at") >= restart).then(
            (pl.col("exported_at") - offset).dt.replace_time_zone("UTC")
        ),
        _elapsed=elapsed,
        _elapsed_end=elapsed + duration,
    )
    run = ["source_file", "_run"]
    last_end = pl.col("_elapsed_end").max().over(run)
    bounds = s.with_columns(
        _death_low=pl.when(from_restart).then(pl.col("_prev_end").first().over(run)),
        _death_high=pl.when(from_restart).then(
            pl.min_horizontal(
                pl.col("_next_start").last().over(run) - last_end,
                pl.col("_export").first().over(run) - last_end,
            )
        ),
    ).drop("_run", "_prev_end", "_next_start", "_export", "_elapsed", "_elapsed_end")
    return apply_death_bounds(bounds).sort("source_file", "source_line")


def apply_death_bounds(sessions: pl.DataFrame) -> pl.DataFrame:
    """Place the sessions dated from a clock restart from ``_death_low``/``_death_high`` (the
    bounds on the moment the clock restarted): midpoint of both, else the one known bound."""
    restart = pl.lit(RESET_BEFORE).str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us")
    from_restart = pl.col("clock_reset") & (pl.col("start_local") < restart)
    low, high = pl.col("_death_low"), pl.col("_death_high")
    both = low.is_not_null() & high.is_not_null()
    death = pl.when(both).then(low + (high - low) / 2).otherwise(pl.coalesce(low, high))
    how = (
        pl.when(both)
        .then(pl.lit("interpolated"))
        .when(death.is_not_null())
        .then(pl.lit("extrapolated"))
        .otherwise(pl.lit("unplaced"))
    )
    elapsed = pl.col("start_local") - pl.datetime(2000, 1, 1, time_unit="us")
    return sessions.with_columns(
        start_utc_placed=pl.when(from_restart)
        .then(death + elapsed)
        .otherwise(pl.col("start_utc_placed")),
        start_placement=pl.when(from_restart).then(how).otherwise(pl.col("start_placement")),
    )


def _offset_minutes(offset: pl.Expr) -> pl.Expr:
    """Minutes east of UTC of a ``+HH:MM`` text."""
    sign = pl.when(offset.str.slice(0, 1) == "-").then(-1).otherwise(1)
    return sign * (
        offset.str.slice(1, 2).cast(pl.Int64) * 60 + offset.str.slice(4, 2).cast(pl.Int64)
    )


def place_by_counter(sessions: pl.DataFrame) -> pl.DataFrame:
    """Counter-linear placement of every clock-reset session (see :func:`place_clock_resets`):
    between the nearest good sessions below and above it, or from the one on one side at the
    export's median spacing per counter step (which needs two good sessions)."""
    good = ~pl.col("clock_reset")
    good_start = pl.when(good).then(pl.col("start_utc"))
    good_no = pl.when(good).then(pl.col("session_no"))
    s = sessions.sort("source_file", "session_no").with_columns(
        _prev_t=good_start.forward_fill().over("source_file"),
        _prev_n=good_no.forward_fill().over("source_file"),
        _next_t=good_start.backward_fill().over("source_file"),
        _next_n=good_no.backward_fill().over("source_file"),
    )
    step_us = (
        s.filter(good)
        .sort("source_file", "session_no")
        .with_columns(
            _step=(
                pl.col("start_utc").diff().dt.total_microseconds()
                / pl.col("session_no").diff().cast(pl.Float64)
            ).over("source_file")
        )
        .filter(pl.col("_step") > 0)
        .group_by("source_file")
        .agg(_step=pl.col("_step").median())
    )
    s = s.join(step_us, on="source_file", how="left")
    n = pl.col("session_no").cast(pl.Float64)

    def shift(base: str, base_n: str, per_step: pl.Expr) -> pl.Expr:
        steps = n - pl.col(base_n).cast(pl.Float64)
        return pl.col(base) + pl.duration(microseconds=(steps * per_step).round().cast(pl.Int64))

    span = (pl.col("_next_t") - pl.col("_prev_t")).dt.total_microseconds().cast(pl.Float64)
    per_step_between = span / (pl.col("_next_n") - pl.col("_prev_n")).cast(pl.Float64)
    both = pl.col("_prev_t").is_not_null() & pl.col("_next_t").is_not_null()
    placed = (
        pl.when(good)
        .then(pl.col("start_utc"))
        .when(both)
        .then(shift("_prev_t", "_prev_n", per_step_between))
        .when(pl.col("_prev_t").is_not_null() & pl.col("_step").is_not_null())
        .then(shift("_prev_t", "_prev_n", pl.col("_step")))
        .when(pl.col("_next_t").is_not_null() & pl.col("_step").is_not_null())
        .then(shift("_next_t", "_next_n", pl.col("_step")))
    )
    how = (
        pl.when(good)
        .then(pl.lit("recorded"))
        .when(both)
        .then(pl.lit("interpolated"))
        .when(placed.is_not_null())
        .then(pl.lit("extrapolated"))
        .otherwise(pl.lit("unplaced"))
    )
    return (
        s.with_columns(start_utc_placed=placed, start_placement=how)
        .drop("_prev_t", "_prev_n", "_next_t", "_next_n", "_step")
        .sort("source_file", "source_line")
    )


def deduplicate_sessions(
    rows: pl.DataFrame, contract: Contract
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per (serial, session_no, start) -> (sessions, quarantine of conflicting repeats).

    The latest export's row is kept (delivery folder, then ``exported_at``, then file name),
    with ``n_exports`` and ``source_files`` over all exports holding it. A session dated from a
    clock restart is placed from the tightest bounds over every export holding it (``rows``
    carry each export's bounds in ``_death_low``/``_death_high``). An earlier export's row that
    reports other values (duration, currents, charge, ...) than the kept row is quarantined
    (``CONFLICTING_REPEAT``) so the replaced value is visible, not silently overwritten."""
    order = pl.col("source_file").str.split("/").list.get(-2, null_on_oob=True)
    ranked = rows.with_columns(_order=order).sort("_order", "exported_at", "source_file")
    held = ranked.group_by(SESSION_KEY).agg(
        n_exports=pl.len().cast(pl.Int64),
        source_files=pl.col("source_file").sort(),
        _death_low=pl.col("_death_low").max(),
        _death_high=pl.col("_death_high").min(),
    )
    keep = pl.struct(SESSION_KEY).is_last_distinct()
    latest = ranked.filter(keep)
    sessions = (
        apply_death_bounds(
            latest.drop("n_exports", "source_files", *DEATH_BOUNDS).join(
                held, on=SESSION_KEY, how="left"
            )
        )
        .sort("serial", "start_utc", "session_no")
        .select(contract.columns)
    )
    return sessions, conflicting_repeats(ranked.filter(~keep), latest)


def conflicting_repeats(earlier: pl.DataFrame, kept: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows for earlier exports' rows whose reported values differ from the kept
    row of the same session (first differing column named in ``field``)."""
    pairs = earlier.join(
        kept.select(*SESSION_KEY, *REPORTED, "source_file", "source_line"),
        on=SESSION_KEY,
        how="inner",
        suffix="_kept",
    )
    differs = [pl.col(c).ne_missing(pl.col(f"{c}_kept")) for c in REPORTED]
    first = pl.coalesce(
        [pl.when(d).then(pl.lit(c)) for c, d in zip(REPORTED, differs, strict=True)]
    )
    bad = pairs.filter(pl.any_horizontal(differs)).with_columns(_field=first)
    return bad.select(
        pl.lit(DATASET).alias("dataset"),
        "source_file",
        "source_line",
        pl.col("_field").alias("field"),
        pl.lit("CONFLICTING_REPEAT").alias("reason_code"),
        pl.format(
            "{} line {}: session {} of {} starting {} reports other values than the later "
            "export {} line {} (first: {}); the later export's values are used",
            "source_file",
            "source_line",
            "session_no",
            "serial",
            "start",
            "source_file_kept",
            "source_line_kept",
            "_field",
        ).alias("message"),
        pl.col("_raw").alias("raw_text"),
    )


def read_vendor_a_files(
    paths: list[Path], raw_root: Path, consent: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Exports -> (distinct sessions, quarantine). Text of all files is typed in one pass;
    ``consent`` as in :func:`type_vendor_a`."""
    contract = load_contract(DATASET)
    parts: list[CsvRows] = []
    headers: list[dict[str, str]] = []
    quarantines = []
    for path in paths:
        rows, header, q = vendor_a_rows(path, raw_root)
        quarantines.append(q)
        if rows is not None:
            parts.append(rows)
            headers.append(header)
    if not parts:
        return empty_frame(contract), combine(quarantines)
    typed, q_values = type_vendor_a(rows_frame(parts, headers), consent)
    sessions, q_conflicts = deduplicate_sessions(typed, contract)
    return sessions, combine([*quarantines, q_values, q_conflicts])


def read_vendor_a(
    raw_root: Path, manifest: pl.DataFrame, consent: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every current vendor-A export -> (distinct sessions, quarantine)."""
    paths = [Path(raw_root) / p for p in current_files(manifest, "vendor_a")["source_file"]]
    return read_vendor_a_files(paths, Path(raw_root), consent)


def type_vendor_a_exports(
    paths: Sequence[Path], raw_root: Path
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Exports typed in one pass, before consent and deduplication -> (rows in contract
    columns plus the working columns ``_death_low``, ``_death_high``, ``_raw``, or an empty
    frame without columns when no export has rows; quarantine). :func:`resolve_vendor_a`
    finishes rows of any number of exports."""
    parts: list[CsvRows] = []
    headers: list[dict[str, str]] = []
    quarantines = [empty_quarantine()]
    for path in paths:
        rows, header, q = vendor_a_rows(path, raw_root)
        quarantines.append(q)
        if rows is not None:
            parts.append(rows)
            headers.append(header)
    if not parts:
        return pl.DataFrame(), combine(quarantines)
    typed, q_values = type_vendor_a(rows_frame(parts, headers))
    return typed, combine([*quarantines, q_values])


def resolve_vendor_a(
    typed: pl.DataFrame, consent: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows from :func:`type_vendor_a_file` of several exports -> (distinct sessions,
    quarantine of conflicting repeats), as :func:`read_vendor_a_files` gives: the consent test
    of a restarted clock is added, every export is placed again, and sessions are deduplicated."""
    contract = load_contract(DATASET)
    if typed.height == 0:
        return empty_frame(contract), empty_quarantine()
    if consent is not None:
        typed = (
            typed.join(consent.select("serial", "consent_date"), on="serial", how="left")
            .with_columns(
                clock_reset=pl.col("clock_reset")
                | (pl.col("start_local").dt.date() < pl.col("consent_date")).fill_null(False)
            )
            .drop("consent_date")
        )
    placed = place_clock_resets(typed).select(*contract.columns, *HELPERS)
    return deduplicate_sessions(placed, contract)


def plausible_exports(resolution: Resolution) -> Resolved:
    """The current exports' rows of every delivery, implausible numbers quarantined before
    repeats are compared (a bad repeat must not make the good one look like a conflict) ->
    ``vendor_a_sessions`` before deduplication (with the reader's working columns)."""
    rows, quarantine = plausibility(resolution.current_rows("vendor_a"), DATASET, raw_text="_raw")
    return Resolved({DATASET: rows}, quarantine)


def settle_exports(resolution: Resolution) -> Resolved:
    """Rows of every current export -> distinct sessions (clock test against the consent of
    the ``dm`` and ``devices`` rows the trial-level rules kept) and the quarantine of
    conflicting repeats."""
    consent = earliest_consent(resolution.dataset("dm"), resolution.dataset("devices"))
    sessions, quarantine = resolve_vendor_a(resolution.dataset(DATASET), consent)
    return Resolved({DATASET: sessions}, quarantine)


def _device_sessions(datasets: Mapping[str, pl.DataFrame], _tolerance_pct: float) -> pl.DataFrame:
    return vendor_a_device_sessions(datasets[DATASET])


SOURCE = SourceFormat(
    kind="vendor_a",
    pattern=r"^ionto-a_[^_]+_\d{8}\.csv$",
    datasets=(DATASET,),
    read=type_vendor_a_exports,
    resolve=plausible_exports,
    settle=settle_exports,
    needs=("dm", "devices"),
    sessions=_device_sessions,
    session_inputs=(DATASET,),
)
"""Registry entry: exports typed per delivery, sessions deduplicated across deliveries."""
