"""Vendor-B event streams ``ionto-b_<serial>_<yyyymmddHHMMSS>.jsonl``: one JSON object per line.

Events: ``start`` (``ma_set``), ``sample`` (``ma`` magnitude, ``v``; 2 Hz), ``polarity``,
``fault`` (``code``), ``end`` (``reason``), all with ``ts`` (UTC, milliseconds), ``dev``, ``sid``.

Reading is built for large inputs: lines are held in a Polars frame and parsed with
expressions (``str.json_path_match`` recognises a JSON object, ``str.json_decode`` decodes the
good ones, the contract types the cells); nothing loops over lines in Python. Bad input:

- a line that is not a JSON object (or holds a number too long to read, 39 digits or more)
  -> ``BAD_JSON``; when it is the file's last line it is a
  half-written line (device unplugged) -> ``TRUNCATED_LINE`` (the device resends that event
  whole as line 1 of its next file, so nothing is lost);
- a cell that breaks the contract -> its reason (``BAD_DATE``, ``NOT_IN_CODELIST``, ...); an
  event without the key its type needs (``sample`` without ``ma``, ``start`` without
  ``ma_set``, ``fault`` without ``code``, ``end`` without ``reason``) -> ``MISSING_REQUIRED``;
- an exact duplicate line (same text, anywhere in the current files) is dropped once and
  counted per session (``n_duplicate_events`` in the session summaries).

Sessions span files; :func:`ingest.device_sessions.summarise_sessions` joins them by
(``dev``, ``sid``).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from data_contracts.contracts import empty_frame, load_contract, type_text_frame
from ingest.manifest import current_files
from ingest.quarantine import combine, empty_quarantine
from ingest.readers.text import numbered_lines

DATASET = "vendor_b_events"
FIELDS = ("ts", "dev", "ev", "sid", "ma_set", "ma", "v", "code", "reason")
NEEDS = {"start": "ma_set", "sample": "ma", "fault": "code", "end": "reason"}
"""The key each event type must carry."""

_DECODE = pl.Struct({f: pl.String for f in FIELDS})


def vendor_b_lines(path: Path, raw_root: Path) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """A file's non-blank physical lines: ``source_file``, ``source_line``, ``raw_text``,
    ``is_last`` (the last non-blank line) -> (lines or None when not UTF-8, quarantine)."""
    lines, q = numbered_lines(Path(path), Path(raw_root), DATASET)
    if lines is None:
        return None, q
    return lines.drop("file_terminated"), q


def _decode_objects(lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mark each line ``_ok`` (a JSON object whose event keys hold scalars) and decode the good
    ones into the struct column ``_j`` -> (lines with ``_ok``, good lines with ``_j``).

    Fast path: Polars decodes all plausible lines (``{...}``) at once. Only when that fails are
    the lines of the failing files checked one by one in Python, to find the bad ones."""
    text = pl.col("raw_text").str.strip_chars()
    judged = lines.with_columns(_ok=text.str.starts_with("{") & text.str.ends_with("}"))
    try:
        good = judged.filter(pl.col("_ok"))
        return judged, good.with_columns(_j=pl.col("raw_text").str.json_decode(_DECODE))
    except pl.exceptions.ComputeError:
        pass
    ok_files: list[pl.DataFrame] = []
    checked: list[pl.DataFrame] = []
    for (_src,), frame in judged.group_by("source_file", maintain_order=True):
        try:
            good = frame.filter(pl.col("_ok"))
            ok_files.append(good.with_columns(_j=pl.col("raw_text").str.json_decode(_DECODE)))
            checked.append(frame)
        except pl.exceptions.ComputeError:
            texts = frame["raw_text"].to_list()
            flags = [_is_event_object(t) for t in texts]
            try:
                decoded = _decode_flagged(frame, flags)
            except pl.exceptions.ComputeError:
                # A line Python's decoder reads and Polars' does not (an integer of 39 or more
                # digits): ask Polars line by line.
                flags = [ok and _polars_decodes(t) for ok, t in zip(flags, texts, strict=True)]
                decoded = _decode_flagged(frame, flags)
            checked.append(frame.with_columns(_ok=pl.Series(flags, dtype=pl.Boolean)))
            ok_files.append(decoded)
    return pl.concat(checked), pl.concat(ok_files)


def _decode_flagged(frame: pl.DataFrame, flags: list[bool]) -> pl.DataFrame:
    """The lines of ``frame`` whose flag is set, decoded into ``_j``."""
    good = frame.filter(pl.Series(flags, dtype=pl.Boolean))
    return good.with_columns(_ok=pl.lit(True), _j=pl.col("raw_text").str.json_decode(_DECODE))


def _polars_decodes(line: str) -> bool:
    try:
        pl.Series([line]).str.json_decode(_DECODE)
    except pl.exceptions.ComputeError:
        return False
    return True


def _is_event_object(line: str) -> bool:
    """Python check of one line: a JSON object whose event keys hold scalars (or null)."""
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and not any(
        isinstance(value.get(k), dict | list) for k in FIELDS
    )


def parse_vendor_b_lines(lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines (as from :func:`vendor_b_lines`, any number of files) -> (typed events with
    lineage and ``raw_text``, quarantine). Duplicates are not removed here."""
    contract = load_contract(DATASET)
    judged, decoded = _decode_objects(lines)
    bad = judged.filter(~pl.col("_ok"))
    q_json = bad.select(
        pl.lit(DATASET).alias("dataset"),
        "source_file",
        "source_line",
        pl.lit(None, dtype=pl.String).alias("field"),
        pl.when(pl.col("is_last"))
        .then(pl.lit("TRUNCATED_LINE"))
        .otherwise(pl.lit("BAD_JSON"))
        .alias("reason_code"),
        pl.when(pl.col("is_last"))
        .then(
            pl.format(
                "{} line {}: the file's last line is cut off (device unplugged); the device "
                "resends the event whole as line 1 of its next file",
                "source_file",
                "source_line",
            )
        )
        .otherwise(pl.format("{} line {}: not a JSON object", "source_file", "source_line"))
        .alias("message"),
        "raw_text",
    )
    text = decoded.unnest("_j").drop("_ok", "is_last")
    typed, q_values = type_text_frame(
        text.with_columns(_line=pl.col("raw_text")), contract, DATASET, columns=list(FIELDS)
    )
    typed = typed.rename({"_line": "raw_text"})
    missing = pl.lit(None, dtype=pl.String)
    for ev, key in NEEDS.items():
        missing = (
            pl.when((pl.col("ev") == ev) & pl.col(key).is_null())
            .then(pl.lit(key))
            .otherwise(missing)
        )
    typed = typed.with_columns(_missing=missing)
    q_needs = typed.filter(pl.col("_missing").is_not_null()).select(
        pl.lit(DATASET).alias("dataset"),
        "source_file",
        "source_line",
        pl.col("_missing").alias("field"),
        pl.lit("MISSING_REQUIRED").alias("reason_code"),
        pl.format(
            "{} line {}: a '{}' event needs the key '{}'",
            "source_file",
            "source_line",
            "ev",
            "_missing",
        ).alias("message"),
        "raw_text",
    )
    events = typed.filter(pl.col("_missing").is_null()).drop("_missing")
    return events, combine([q_json, q_values, q_needs])


def drop_duplicate_lines(events: pl.DataFrame) -> pl.DataFrame:
    """Keep the first occurrence (file, line order) of each exact event line; the others are
    dropped and counted: adds ``n_duplicates`` (copies dropped of this line) and removes
    ``raw_text``."""
    ordered = events.sort("source_file", "source_line")
    counted = ordered.with_columns(n_duplicates=(pl.len().over("raw_text") - 1).cast(pl.Int64))
    return counted.filter(pl.col("raw_text").is_first_distinct()).drop("raw_text")


def read_vendor_b_files(paths: list[Path], raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Files -> (distinct typed events in contract order, quarantine)."""
    contract = load_contract(DATASET)
    parts = []
    quarantines = [empty_quarantine()]
    for path in paths:
        lines, q = vendor_b_lines(path, raw_root)
        quarantines.append(q)
        if lines is not None:
            parts.append(lines)
    if not parts:
        return empty_frame(contract), combine(quarantines)
    events, q = parse_vendor_b_lines(pl.concat(parts))
    distinct = drop_duplicate_lines(events)
    return distinct.select(contract.columns), combine([*quarantines, q])


def read_vendor_b(raw_root: Path, manifest: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every current vendor-B file -> (distinct events, quarantine)."""
    paths = [Path(raw_root) / p for p in current_files(manifest, "vendor_b")["source_file"]]
    return read_vendor_b_files(paths, Path(raw_root))
