"""Raw text shared by the readers: decoding, physical lines, and CSV rows as text cells.

Rules (``specs/site-exports.md`` section 5): a file that is not UTF-8 is quarantined whole
(``NOT_UTF8``); a UTF-8 byte-order mark and blank lines are tolerated; CRLF and LF line ends
count the same; line numbers are 1-based physical lines of the file as delivered.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ingest.quarantine import empty_quarantine, escape_undecodable, quarantine_rows

BOM = "\ufeff"


@dataclass(frozen=True)
class DecodedFile:
    """A raw file's text split into physical lines (line ``i`` is ``lines[i - 1]``), without
    line ends and without a leading byte-order mark."""

    source_file: str
    lines: list[str]
    ends_with_newline: bool


def relative_name(path: Path, raw_root: Path) -> str:
    """``path`` relative to ``raw_root`` with ``/`` separators; for a file outside the raw root
    (the sealed list) its parent folder and name, e.g. ``sealed/randomisation.csv``."""
    try:
        return path.relative_to(raw_root).as_posix()
    except ValueError:
        return f"{path.parent.name}/{path.name}"


def split_lines(text: str) -> tuple[list[str], bool]:
    """Physical lines of ``text`` (``\\n`` ends a line; a ``\\r`` before it is dropped) and
    whether the last line was terminated."""
    text = text.removeprefix(BOM)
    ends = text.endswith("\n")
    lines = text.split("\n")
    if ends:
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines], ends


def decode_file(
    data: bytes, source_file: str, dataset: str
) -> tuple[DecodedFile | None, pl.DataFrame]:
    """Decode ``data`` as UTF-8. On failure the whole file is quarantined (``NOT_UTF8``, the
    first offending line's text with bytes escaped) and ``None`` is returned."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        bad_line = escape_undecodable(data[start : end if end >= 0 else len(data)]).rstrip("\r")
        q = quarantine_rows(
            dataset,
            source_file,
            None,
            None,
            "NOT_UTF8",
            f"not UTF-8 (first undecodable byte 0x{data[exc.start]:02x} on line {line_no}); "
            "the whole file is not read: ask the sender for a UTF-8 export",
            bad_line,
        )
        return None, q
    lines, ends = split_lines(text)
    return DecodedFile(source_file, lines, ends), empty_quarantine()


def numbered_lines(
    path: Path, raw_root: Path, dataset: str
) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """A line-oriented file's non-blank physical lines: ``source_file``, ``source_line``
    (1-based), ``raw_text``, ``is_last`` (the last non-blank line) and ``file_terminated``
    (whether the file ends with a line end) -> (lines, or None when the file is not UTF-8,
    quarantine)."""
    src = relative_name(path, raw_root)
    decoded, q = decode_file(path.read_bytes(), src, dataset)
    if decoded is None:
        return None, q
    lines = (
        pl.DataFrame({"raw_text": pl.Series(decoded.lines, dtype=pl.String)})
        .with_row_index("source_line", offset=1)
        .with_columns(source_line=pl.col("source_line").cast(pl.Int64), source_file=pl.lit(src))
        .filter(pl.col("raw_text").str.strip_chars().str.len_bytes() > 0)
        .with_columns(
            is_last=pl.int_range(pl.len()) == pl.len() - 1,
            file_terminated=pl.lit(decoded.ends_with_newline),
        )
    )
    return lines.select("source_file", "source_line", "raw_text", "is_last", "file_terminated"), q


def parse_csv_rows(lines: list[str]) -> list[list[str] | None]:
    """Each physical line parsed as one CSV record (``None`` where its quoting is broken).

    A record never spans lines here: the spec's exports have no multi-line cells, and a line
    with an unbalanced quote is a malformed row, not the start of a longer record."""
    balanced = all(ln.count('"') % 2 == 0 for ln in lines)
    if balanced:
        try:
            return list(csv.reader(lines, strict=True))
        except csv.Error:
            pass
    out: list[list[str] | None] = []
    for ln in lines:
        if ln.count('"') % 2:
            out.append(None)
            continue
        try:
            out.append(next(csv.reader([ln], strict=True)))
        except csv.Error:
            out.append(None)
    return out


@dataclass(frozen=True)
class CsvRows:
    """Parsed rows of one CSV section: ``rows[i]`` (ordered as ``header``) is physical line
    ``lines[i]`` with text ``raw[i]``."""

    source_file: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int]
    raw: list[str]


def csv_rows(
    decoded: DecodedFile,
    dataset: str,
    expected_columns: list[str],
    first_line: int = 1,
) -> tuple[CsvRows | None, pl.DataFrame]:
    """Parse a CSV section into :class:`CsvRows` plus quarantine rows.

    The header is the first non-blank line at or after physical line ``first_line``; it must
    name exactly ``expected_columns`` (any order), else the whole file is quarantined
    (``BAD_HEADER``) and ``None`` returned. Blank lines are skipped. A row with the wrong
    number of fields (``WRONG_FIELD_COUNT``) or broken quoting (``BAD_CSV``) is quarantined and
    the rest of the file is read."""
    src = decoded.source_file
    lines = decoded.lines
    idx = first_line - 1
    while idx < len(lines) and not lines[idx].strip():
        idx += 1
    if idx >= len(lines):
        q = quarantine_rows(
            dataset, src, None, None, "BAD_HEADER", "no header row: the file is empty", ""
        )
        return None, q
    header_no = idx + 1
    parsed_header = parse_csv_rows([lines[idx]])[0]
    header = [] if parsed_header is None else [h.removeprefix(BOM) for h in parsed_header]
    missing = [c for c in expected_columns if c not in header]
    extra = [c for c in header if c not in expected_columns]
    if missing or extra or len(set(header)) != len(header):
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(extra)}" if extra else "",
                "a column is named twice" if len(set(header)) != len(header) else "",
            )
            if part
        )
        q = quarantine_rows(
            dataset,
            src,
            header_no,
            None,
            "BAD_HEADER",
            f"header does not name the columns of site-exports.md ({detail}); "
            "the whole file is not read",
            lines[idx],
        )
        return None, q
    body = lines[idx + 1 :]
    kept = [(n, ln) for n, ln in enumerate(body, start=header_no + 1) if ln.strip()]
    records = parse_csv_rows([ln for _, ln in kept])
    width = len(header)
    order = [header.index(c) for c in expected_columns]
    good_rows: list[list[str]] = []
    good_lines: list[int] = []
    good_raw: list[str] = []
    bad: list[pl.DataFrame] = []
    for (n, ln), rec in zip(kept, records, strict=True):
        if rec is None:
            bad.append(
                quarantine_rows(
                    dataset, src, n, None, "BAD_CSV", "quoting cannot be parsed as CSV", ln
                )
            )
        elif len(rec) != width:
            bad.append(
                quarantine_rows(
                    dataset,
                    src,
                    n,
                    None,
                    "WRONG_FIELD_COUNT",
                    f"{len(rec)} fields where the header has {width}",
                    ln,
                )
            )
        else:
            good_rows.append([rec[k] for k in order])
            good_lines.append(n)
            good_raw.append(ln)
    quarantine = pl.concat(bad) if bad else empty_quarantine()
    return CsvRows(src, list(expected_columns), good_rows, good_lines, good_raw), quarantine


def rows_frame(parts: list[CsvRows], constants: list[dict[str, str]] | None = None) -> pl.DataFrame:
    """One String frame from several files' rows (same ``header``), with ``source_file``,
    ``source_line``, ``raw_text`` and, per part, constant String columns (e.g. header keys)."""
    if not parts:
        return pl.DataFrame()
    header = parts[0].header
    columns: dict[str, list[str]] = {
        c: [row[k] for p in parts for row in p.rows] for k, c in enumerate(header)
    }
    if constants:
        for key in constants[0]:
            columns[key] = [c[key] for p, c in zip(parts, constants, strict=True) for _ in p.rows]
    columns["source_file"] = [p.source_file for p in parts for _ in p.rows]
    columns["raw_text"] = [r for p in parts for r in p.raw]
    frame = pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String()))
    return frame.with_columns(
        source_line=pl.Series([n for p in parts for n in p.lines], dtype=pl.Int64)
    )


def csv_text_frame(
    decoded: DecodedFile,
    dataset: str,
    expected_columns: list[str],
    first_line: int = 1,
) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """One CSV section as String cells plus ``source_file``, ``source_line``, ``raw_text``
    (see :func:`csv_rows`); ``None`` when the whole file is rejected."""
    rows, quarantine = csv_rows(decoded, dataset, expected_columns, first_line)
    if rows is None:
        return None, quarantine
    return rows_frame([rows]), quarantine
