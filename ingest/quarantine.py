"""The quarantine table: one row per rejected line or whole file (``docs/architecture.md``).

Columns (contract ``quarantine``): ``dataset``, ``source_file`` (relative to the raw root),
``source_line`` (1-based physical line; null for a whole file), ``field``, ``reason_code``,
``message`` (file, line, field, value and rule in one sentence) and ``raw_text`` (the line as
delivered, undecodable bytes escaped as ``\\xNN``).

Reason codes used by the readers:

| code | meaning |
| --- | --- |
| ``NOT_UTF8`` | the file is not UTF-8 (whole file) |
| ``BAD_HEADER`` | CSV header or vendor-A ``#`` lines not as the spec names them (whole file) |
| ``WRONG_FIELD_COUNT`` | a CSV row with more or fewer fields than the header |
| ``BAD_CSV`` | a CSV row whose quoting cannot be parsed |
| ``MISSING_REQUIRED`` | an empty cell (or absent JSON key) that the contract requires |
| ``BAD_NUMBER`` / ``BAD_DATE`` | a cell that is not a number / an ISO date or date-time |
| ``NOT_IN_CODELIST`` | a value outside the contract's codelist |
| ``OUT_OF_RANGE`` | a number outside the contract's minimum/maximum |
| ``BAD_FORMAT`` | a string not matching the contract's pattern |
| ``DUPLICATE_KEY`` | a second row with the same primary key in one EDC snapshot |
| ``CONFLICTING_REPEAT`` | vendor-A session row that a later export reports otherwise |
| ``BAD_JSON`` | a vendor-B line that is not a JSON object |
| ``TRUNCATED_LINE`` | a vendor-B file's last line cut off (device unplugged) |
| ``UNKNOWN_FILE`` | a file at the raw root, at centre level, or of a name no raw format has |
| ``UNKNOWN_FOLDER`` | a file in a folder that is no delivery folder (``latest``, ``2026-02-30``) |
| ``SYMLINK`` | a symbolic link (to a file or a folder): never followed, nothing behind it read |
| ``SEALED_LIST_IN_RAW`` | a copy of the sealed list (by name, header or rows): never read |

The trial-level rules (``data_contracts/trial_rules.yaml``, :mod:`ingest.integrity`) add their
blocking codes (``UNKNOWN_SUBJECT``, ``NON_FINITE``, ``TIMESTAMP_BACKWARDS``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from data_contracts.contracts import QUARANTINE_SCHEMA, empty_quarantine, quarantine_rows

__all__ = [
    "QUARANTINE_SCHEMA",
    "combine",
    "counts",
    "empty_quarantine",
    "escape_undecodable",
    "quarantine_rows",
]


def escape_undecodable(data: bytes) -> str:
    """Text of ``data`` with bytes that are not UTF-8 written as ``\\xNN``."""
    return data.decode("utf-8", errors="backslashreplace")


def combine(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """One quarantine frame from many, ordered by file, line (whole-file rows first), dataset."""
    parts = [f.select(list(QUARANTINE_SCHEMA)) for f in frames if f.height]
    if not parts:
        return empty_quarantine()
    return (
        pl.concat(parts, how="vertical")
        .cast(dict(QUARANTINE_SCHEMA))  # type: ignore[arg-type]
        .sort("source_file", "source_line", "dataset", nulls_last=False)
    )


def counts(quarantine: pl.DataFrame) -> pl.DataFrame:
    """Rows per dataset and reason code (for the data-quality report)."""
    return (
        quarantine.group_by("dataset", "reason_code")
        .agg(n=pl.len().cast(pl.Int64))
        .sort("dataset", "reason_code")
    )
