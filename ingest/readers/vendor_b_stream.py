"""The vendor-B reader's rules at trial scale: the kernel :mod:`ingest.telemetry` runs on
batches of files.

A 600-subject trial sends about 50 million 2 Hz events (several GB of JSON lines).
:func:`ingest.readers.vendor_b.read_vendor_b_files` reads them all into one frame; here the
same rules run on a batch of files at a time (:func:`device_batches`: whole devices, at most
``max_batch_bytes`` of text), giving the reader's values and quarantine for every line:

- A batch's lines come from one multi-file Polars ``scan_lines`` (physical lines, ``\\r\\n``
  or ``\\n``, numbered per file by where its path starts and ends in the scan, a UTF-8
  byte-order mark dropped from line 1, blank lines skipped but counted), the same lines the
  reader's ``decode_file`` gives; a batch that is not valid UTF-8 falls back to the reader's
  per-file decode, which quarantines the bad file whole (``NOT_UTF8``).
- Lines in the devices' exact shape (:func:`canonical_pattern`) take a fast path: one regex
  match, the fields sliced out between their keys, numbers cast from their text, giving the
  values the reader gives; every other line goes through the reader's
  ``parse_vendor_b_lines`` itself. Duplicates are found by a 64-bit hash of the text
  (:func:`line_hash`) and decided by the reader's ``drop_duplicate_lines`` on the exact text
  of the lines whose hash repeats (:func:`drop_duplicates`; across deliveries, by
  :func:`ingest.telemetry.resolve_telemetry`, one range of devices at a time).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from data_contracts.contracts import Contract, load_contract, typed_expr
from ingest.quarantine import combine, empty_quarantine
from ingest.readers.text import BOM, decode_file, relative_name
from ingest.readers.vendor_b import (
    DATASET,
    FIELDS,
    NEEDS,
    drop_duplicate_lines,
    parse_vendor_b_lines,
)

MAX_BATCH_BYTES = 64 * 2**20
"""JSON text per batch: about 650 000 events, about 0.6 GB of memory while it is read."""
_NAME = re.compile(r"^ionto-b_(?P<serial>.+)_\d{14}\.jsonl$")


def device_batches(paths: Sequence[Path], max_batch_bytes: int) -> list[list[Path]]:
    """Files grouped by the device serial in their name (a file with another name is a group
    of its own), groups packed in serial order into batches of at most ``max_batch_bytes``
    (a device larger than that is a batch of its own: a device is never split)."""
    groups: dict[str, list[Path]] = {}
    for path in sorted(Path(p) for p in paths):
        match = _NAME.match(path.name)
        key = match.group("serial") if match else f"\0{path}"
        groups.setdefault(key, []).append(path)
    batches: list[list[Path]] = []
    current: list[Path] = []
    size = 0
    for key in sorted(groups):
        files = groups[key]
        group_size = sum(p.stat().st_size for p in files)
        if current and size + group_size > max_batch_bytes:
            batches.append(current)
            current, size = [], 0
        current.extend(files)
        size += group_size
    if current:
        batches.append(current)
    return batches


def _distinct_runs(paths: Sequence[Path]) -> list[list[Path]]:
    """``paths`` cut, in order, into runs that name no file twice (usually one run): a scan
    tells its files apart by path, so a file listed twice must go to another scan."""
    runs: list[list[Path]] = [[]]
    seen: set[Path] = set()
    for path in paths:
        if path in seen:
            runs.append([])
            seen.clear()
        runs[-1].append(path)
        seen.add(path)
    return runs


def _read_run(paths: list[Path], raw_root: Path) -> pl.LazyFrame:
    """One multi-file ``scan_lines`` of distinct files, read now into one chunk (the scan
    gives about three chunks per file, and every string kernel after it pays per chunk).
    Its rows come in file order then line order, so a file's lines are numbered from the row
    where its path first appears, and its last non-blank line is the one before the path
    changes (no grouping by path)."""
    names = [str(p) for p in paths]
    scanned = pl.scan_lines(names, name="raw_text", include_file_paths="source_file", glob=False)
    file = pl.col("source_file")
    text = pl.col("raw_text")
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    first_row = pl.when(file != file.shift(1, fill_value="")).then(row).forward_fill()
    return (
        scanned.collect()
        .rechunk()
        .lazy()
        .with_columns(source_line=row - first_row + 1)
        # A character that is not whitespace (Unicode White_Space, as strip()); a line 1 of
        # a byte-order mark and whitespace alone is blank too, left to _collect_lines (a
        # second pattern on every line cost as much as this one).
        .filter(text.str.contains(r"\S"))
        .select(
            file.replace_strict(names, [relative_name(p, raw_root) for p in paths]),
            "source_line",
            "raw_text",
            is_last=file != file.shift(-1, fill_value=""),
        )
    )


def scan_vendor_b_lines(paths: Sequence[Path], raw_root: Path) -> pl.LazyFrame:
    """Physical lines of ``paths`` holding a character that is not whitespace
    (``source_file``, ``source_line``, ``raw_text`` with the byte-order mark still on line 1,
    ``is_last``) in file then line order: the files are read now (raising ``ComputeError``
    when one is not UTF-8), the rest is lazy. A line 1 of a byte-order mark and whitespace
    alone is still there (it can be the file's last line only when it is its only line)."""
    runs = _distinct_runs([Path(p) for p in paths])
    return pl.concat([_read_run(run, Path(raw_root)) for run in runs if run])


def _collect_lines(paths: list[Path], raw_root: Path) -> pl.DataFrame:
    """:func:`scan_vendor_b_lines` collected, with a UTF-8 byte-order mark dropped from line 1
    (only there: elsewhere it is text) and a line 1 left blank by it dropped; the common case,
    no mark, costs one ``starts_with``."""
    lines = scan_vendor_b_lines(paths, raw_root).collect()
    text = pl.col("raw_text")
    marked = (pl.col("source_line") == 1) & text.str.starts_with(BOM)
    if not lines.select(marked.any()).item():
        return lines
    return lines.filter(~(marked & text.str.contains(rf"^{BOM}\s*$"))).with_columns(
        raw_text=pl.when(marked).then(text.str.strip_prefix(BOM)).otherwise(text)
    )


def batch_lines(paths: list[Path], raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A batch's non-blank physical lines as :func:`ingest.readers.vendor_b.vendor_b_lines`
    gives them (``source_file``, ``source_line``, ``raw_text``, ``is_last``: the file's last
    non-blank line), in file then line order, and the quarantine of its files that are not
    UTF-8. One scan reads every file; only when it fails does the reader's ``decode_file``
    find the files to quarantine whole (``NOT_UTF8``), and the others are scanned again."""
    try:
        return _collect_lines(paths, raw_root), empty_quarantine()
    except pl.exceptions.ComputeError:
        pass
    good: list[Path] = []
    quarantines = [empty_quarantine()]
    for path in paths:
        decoded, q = decode_file(path.read_bytes(), relative_name(path, raw_root), DATASET)
        quarantines.append(q)
        if decoded is not None:
            good.append(path)
    if not good:
        return vendor_b_lines_empty(), combine(quarantines)
    return _collect_lines(good, raw_root), combine(quarantines)


def vendor_b_lines_empty() -> pl.DataFrame:
    """No lines, in the columns of :func:`scan_vendor_b_lines`."""
    return pl.DataFrame(
        schema={
            "source_file": pl.String,
            "source_line": pl.Int64,
            "raw_text": pl.String,
            "is_last": pl.Boolean,
        }
    )


_DIGITS = "[0-9]"
_UNSIGNED = r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,17})?"
_SIGNED = r"(?:0|-?(?:[1-9][0-9]{0,14}(?:\.[0-9]{1,17})?|0\.[0-9]{1,17}))"
_TEXT = r"[A-Za-z0-9_.:-]+"


def canonical_pattern(contract: Contract) -> str:
    """Regex of an event line exactly as the devices write it: keys in the spec's order, no
    spaces, no escapes, codelist values from the contract, ASCII digits, and numbers in the
    subset of JSON whose text Polars' cast turns into the float the reader's JSON decoder
    gives (no leading zeros, at most 15 integer and 17 fraction digits, no integer ``-0``,
    which the decoder reads as ``0``). A line of this shape is valid JSON and passes every
    rule of the reader except a calendar check of ``ts`` and the key its event type needs,
    which :func:`parse_canonical` adds. No captures: :func:`parse_canonical` only asks
    whether a line matches (in ASCII mode, the fastest)."""

    def codes(name: str) -> str:
        values = contract.prop(name).valid_values or []
        return "|".join(re.escape(str(v)) for v in values)

    d = _DIGITS
    return (
        rf'(?-u)^\{{"ts":"{d}{{4}}-{d}{d}-{d}{d}T{d}{d}:{d}{d}:{d}{d}\.{d}{{1,6}}Z",'
        rf'"dev":"{_TEXT}","ev":"(?:{codes("ev")})","sid":"{_TEXT}"'
        rf'(?:,"ma_set":{_UNSIGNED}'
        rf'|,"ma":{_UNSIGNED},"v":{_SIGNED}'
        rf'|,"code":"(?:{codes("code")})"'
        rf'|,"reason":"(?:{codes("reason")})")?\}}$'
    )


_KEYS = {
    "dev": '","dev":"',
    "ev": '","ev":"',
    "sid": '","sid":"',
    "ma_set": ',"ma_set":',
    "ma": ',"ma":',
    "v": ',"v":',
    "code": ',"code":"',
    "reason": ',"reason":"',
}
"""Where each field's key begins in a canonical line (the text before the field's value)."""


def _canonical_fields(candidates: pl.DataFrame) -> pl.DataFrame:
    """The fields of canonical lines (see :func:`canonical_pattern`) as slices between their
    keys: ``{"ts":"<ts>","dev":"<dev>","ev":"<ev>","sid":"<sid>"`` then an optional tail
    ``,"ma_set":<n>}``, ``,"ma":<n>,"v":<n>}``, ``,"code":"<c>"}`` or ``,"reason":"<r>"}``
    (null where absent); the numbers cast to Float64. Valid only on lines the pattern matched:
    there no value holds a quote, so each key occurs once and a value ends where the next key
    (or the closing ``"}`` or ``}``) begins. Key positions are found once, then sliced."""
    line = pl.col("raw_text")
    at = {name: pl.col(f"_at_{name}") for name in _KEYS}
    end = pl.col("_at_end")
    sid_end = pl.coalesce(at["ma_set"], at["ma"], at["code"], at["reason"], end) - 1

    def value(name: str, stop: pl.Expr) -> pl.Expr:
        start = at[name] + len(_KEYS[name])
        return line.str.slice(start, stop - start).alias(name)

    return (
        candidates.with_columns(
            *(line.str.find(key, literal=True).alias(f"_at_{name}") for name, key in _KEYS.items()),
            _at_end=line.str.len_bytes() - 1,
        )
        .with_columns(
            line.str.slice(7, at["dev"] - 7).alias("ts"),
            value("dev", at["ev"]),
            value("ev", at["sid"]),
            value("sid", sid_end),
            value("ma_set", end).cast(pl.Float64),
            value("ma", at["v"]).cast(pl.Float64),
            value("v", end).cast(pl.Float64),
            value("code", end - 1),
            value("reason", end - 1),
        )
        .drop(f"_at_{name}" for name in [*_KEYS, "end"])
    )


def parse_canonical(lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``lines`` into (typed events of the canonical lines, the other lines).

    The fast path: a regex match (no captures) picks the lines of the devices' exact shape,
    whose fields are then sliced out between their keys (no JSON decoding). The pattern
    admits only values that pass the contract's rules, and numbers that Polars' cast turns
    into the reader's floats; the checks left are the contract's time-stamp parse and the key
    each event type needs. A line failing either is left to the reader (which quarantines
    it): every line the fast path keeps is one the reader keeps, with the same values."""
    contract = load_contract(DATASET)
    canonical = lines.select(pl.col("raw_text").str.contains(canonical_pattern(contract)))
    candidates = lines.filter(canonical.to_series())
    typed = _canonical_fields(candidates).with_columns(
        typed_expr(contract.prop("ts"), pl.col("ts"))
    )
    has_needed: pl.Expr = pl.col("ts").is_not_null()
    for ev, key in NEEDS.items():
        has_needed = has_needed & ~((pl.col("ev") == ev) & pl.col(key).is_null())
    keep = typed.select(has_needed).to_series()
    fast = typed.filter(keep).select("source_file", "source_line", "raw_text", *FIELDS)
    rest = pl.concat([lines.filter(~canonical.to_series()), candidates.filter(~keep)])
    return fast, rest


def parse_lines(lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The reader's :func:`~ingest.readers.vendor_b.parse_vendor_b_lines` with the canonical
    fast path: (typed events with lineage and ``raw_text`` of the canonical lines, the same
    of the other lines the reader keeps, quarantine). A canonical line names each of its keys
    once, and only keys of the spec."""
    fast, rest = parse_canonical(lines)
    if rest.height == 0:
        return fast, fast.clear(), empty_quarantine()
    slow, quarantine = parse_vendor_b_lines(rest)
    return fast, slow.select(fast.columns).cast(fast.schema), quarantine


def line_hash(text: pl.Expr) -> pl.Expr:
    """64-bit hash of each line's text (Polars' own, seeds fixed; equal texts, equal hashes).

    Stored with each delivery's parsed events and compared across deliveries read in other
    runs, so it must not change between runs: Polars guarantees it only within a version,
    and ``tests/ingest/test_vendor_b_streaming.py`` pins its value (a Polars that hashes
    otherwise fails that test before it can leave duplicates undetected across deliveries)."""
    return text.hash()


def drop_duplicates(events: pl.DataFrame, repeated: pl.Series) -> pl.DataFrame:
    """The reader's :func:`~ingest.readers.vendor_b.drop_duplicate_lines` on hashes:
    ``events`` carry ``line_hash`` (:func:`line_hash` of each line's text) and ``raw_text``,
    which may be null on lines whose hash is unique in ``events``; ``repeated`` is
    ``events["line_hash"].is_duplicated()`` (the caller has it already). A line whose hash is
    unique cannot have a copy (``n_duplicates`` 0); the reader's own function decides among
    the rest (true copies and any hash collisions) on the exact text. Adds ``n_duplicates``;
    removes ``raw_text`` and ``line_hash``."""
    copies = events.filter(repeated).drop("line_hash")
    if copies["raw_text"].null_count():
        raise ValueError("drop_duplicates: a line whose hash repeats has no text to compare")
    unique = events.filter(~repeated).select(
        pl.exclude("raw_text", "line_hash"), n_duplicates=pl.lit(0, dtype=pl.Int64)
    )
    return pl.concat([unique, drop_duplicate_lines(copies).select(unique.columns)])
