"""Bench balance weighings ``balance_<NNNNNN>_<serial>_<yyyymmddTHHMMSSZ>.jsonl``
(``ionto capture balance``), read as gravimetry.

One JSON object per paper with both phases: ``paper_id, subject_id, visit, region, side,
balance_serial, operator, dry{value, unit, raw, at}, wet{value, unit, raw, at}``. Outputs:

- ``balance_weighings`` (contract ``balance_weighings``): one row per record with both raw
  reply lines and times, and lineage;
- the gravimetry frame shape (contract ``gravimetry``, site-exports section 2 columns):
  ``dry_weight``/``wet_weight`` from the decimal texts, ``unit`` (when the two phases were
  weighed in different units both are converted to ``mg`` exactly), ``collected_at`` = the wet
  weighing's time (UTC with offset) and ``collected_at_utc``; ``collection_s``,
  ``room_temp_c``, ``humidity_pct``, ``acclimatisation_min`` are not captured (null);
- quarantine rows for lines that are not complete records (``BAD_JSON``, ``TRUNCATED_LINE``,
  ``MISSING_REQUIRED``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from data_contracts.contracts import bound_study, cast_frame, empty_frame, load_contract
from ingest.quarantine import combine, quarantine_rows
from ingest.readers.text import decode_file, relative_name
from ingest.source_format import Resolution, Resolved, SourceFormat

DATASET = "balance_weighings"
GRAVIMETRY = "gravimetry"
LANDING_KIND = "balance"
META = ("paper_id", "subject_id", "visit", "region", "side", "balance_serial", "operator")
PHASE_KEYS = ("value", "unit", "raw", "at")


def _flatten(obj: dict[str, object]) -> dict[str, object] | str:
    """The record's columns, or the name of the first missing or malformed key."""
    row: dict[str, object] = {}
    for key in META:
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            return key
        row[key] = value
    for phase in ("dry", "wet"):
        part = obj.get(phase)
        if not isinstance(part, dict):
            return phase
        for key in PHASE_KEYS:
            value = part.get(key)
            if not isinstance(value, str) or not value:
                return f"{phase}.{key}"
            row[f"{phase}_{key}"] = value
    return row


def read_balance_file(path: Path, raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One capture file -> (weighing rows as text with lineage, quarantine)."""
    src = relative_name(path, raw_root)
    decoded, q = decode_file(path.read_bytes(), src, DATASET)
    if decoded is None:
        return pl.DataFrame(), q
    rows: list[dict[str, object]] = []
    quarantines = [q]
    last = len(decoded.lines)
    for line_no, text in enumerate(decoded.lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            truncated = line_no == last and not decoded.ends_with_newline
            quarantines.append(
                quarantine_rows(
                    DATASET,
                    src,
                    line_no,
                    None,
                    "TRUNCATED_LINE" if truncated else "BAD_JSON",
                    "the last line was cut off (driver stopped while writing)"
                    if truncated
                    else "not a weighing record (a JSON object)",
                    text,
                )
            )
            continue
        row = _flatten(obj)
        if isinstance(row, str):
            quarantines.append(
                quarantine_rows(
                    DATASET,
                    src,
                    line_no,
                    row,
                    "MISSING_REQUIRED",
                    f"weighing record without {row}: not used",
                    text,
                )
            )
            continue
        row["source_file"] = src
        row["source_line"] = line_no
        rows.append(row)
    return pl.DataFrame(rows), combine(quarantines)


def read_balance_files(paths: list[Path], raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Capture files -> (``balance_weighings`` frame, quarantine)."""
    contract = load_contract(DATASET)
    parts: list[pl.DataFrame] = []
    quarantines: list[pl.DataFrame] = []
    for path in sorted(paths, key=lambda p: relative_name(Path(p), Path(raw_root))):
        rows, q = read_balance_file(Path(path), Path(raw_root))
        quarantines.append(q)
        if rows.height:
            parts.append(rows)
    if not parts:
        return empty_frame(contract), combine(quarantines)
    text = pl.concat(parts, how="diagonal")
    ts = {
        f"{p}_at": pl.col(f"{p}_at").str.to_datetime(time_zone="UTC", time_unit="us")
        for p in ("dry", "wet")
    }
    typed = text.with_columns(**ts)
    return cast_frame(typed.select(contract.columns), contract), combine(quarantines)


def resolve_balance(resolution: Resolution) -> Resolved:
    """Every current balance capture, read across delivery folders -> ``balance_weighings``
    and the quarantine (their papers are checked with the worksheets')."""
    paths = resolution.current_paths(LANDING_KIND)
    if not paths:
        return Resolved({DATASET: empty_frame(load_contract(DATASET))})
    weighings, q = read_balance_files(paths, resolution.raw_root)
    return Resolved({DATASET: weighings}, q)


def weighings_as_gravimetry(weighings: pl.DataFrame) -> pl.DataFrame:
    """``balance_weighings`` rows in the gravimetry frame shape (contract ``gravimetry``)."""
    contract = load_contract(GRAVIMETRY)
    same = pl.col("dry_unit") == pl.col("wet_unit")

    study = bound_study()
    if study is None:
        raise RuntimeError("bench weighings need the run's study (data_contracts.use_study)")
    to_mg = study.unit_to_mg  # the factors the sweat-rate derivation uses too

    def mg(phase: str) -> pl.Expr:
        factor = pl.col(f"{phase}_unit").replace_strict(to_mg, return_dtype=pl.Float64)
        return pl.col(f"{phase}_value").cast(pl.Float64) * factor

    frame = weighings.select(
        subject_id="subject_id",
        visit="visit",
        region="region",
        side="side",
        paper_id="paper_id",
        dry_weight=pl.when(same).then(pl.col("dry_value").cast(pl.Float64)).otherwise(mg("dry")),
        wet_weight=pl.when(same).then(pl.col("wet_value").cast(pl.Float64)).otherwise(mg("wet")),
        unit=pl.when(same).then(pl.col("dry_unit")).otherwise(pl.lit("mg")),
        collection_s=pl.lit(None, dtype=pl.Int64),
        collected_at=pl.col("wet_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00"),
        room_temp_c=pl.lit(None, dtype=pl.Float64),
        humidity_pct=pl.lit(None, dtype=pl.Float64),
        acclimatisation_min=pl.lit(None, dtype=pl.Int64),
        operator="operator",
        balance_serial="balance_serial",
        collected_at_utc="wet_at",
        source_file="source_file",
        source_line="source_line",
    )
    return cast_frame(frame.select(contract.columns), contract)


def _papers(datasets: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    return weighings_as_gravimetry(datasets[DATASET])


SOURCE = SourceFormat(
    kind=LANDING_KIND,
    pattern=r"^(bench_)?balance[_-].*\.jsonl$",
    datasets=(DATASET,),
    resolve=resolve_balance,
    papers=_papers,
)
"""Registry entry: captures read across delivery folders; each weighing is a paper, joined
with the worksheets' papers under the spec's rule (later delivery, then later line)."""
