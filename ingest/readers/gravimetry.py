"""Gravimetry worksheets ``gravimetry_<anything>.csv``: one row per filter paper.

Worksheets are incremental; the landing manifest already drops file versions superseded by a
correction under the same name. Two different worksheets (or two lines) holding the same paper
(``subject_id``, ``visit``, ``region``, ``side``) are resolved as the spec says: the later
delivery wins, then the later line; :func:`read_gravimetry` returns the pairs so the data-quality
report can list them. Empty weights are missing values (a lost paper), not errors.
``collected_at`` stays as written (local time with offset); ``collected_at_utc`` is its UTC time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from data_contracts.contracts import empty_frame, file_columns, load_contract, type_text_frame
from ingest.integrity import plausibility
from ingest.manifest import current_files
from ingest.quarantine import combine, empty_quarantine
from ingest.readers.text import CsvRows, csv_rows, decode_file, relative_name, rows_frame
from ingest.source_format import Resolution, Resolved, SourceFormat

DATASET = "gravimetry"
PAPER_KEY = ["subject_id", "visit", "region", "side"]
DERIVED = {"collected_at_utc": "collected_at"}

DUPLICATE_SCHEMA = pl.Schema(
    {
        **{k: pl.String() for k in PAPER_KEY},
        "kept_file": pl.String(),
        "kept_line": pl.Int64(),
        "superseded_file": pl.String(),
        "superseded_line": pl.Int64(),
    }
)
"""Resolved duplicate papers: the row kept and the row it superseded."""


def gravimetry_rows(path: Path, raw_root: Path) -> tuple[CsvRows | None, pl.DataFrame]:
    """One worksheet's rows as text -> (rows or None when rejected whole, quarantine)."""
    contract = load_contract(DATASET)
    src = relative_name(Path(path), Path(raw_root))
    decoded, q_file = decode_file(Path(path).read_bytes(), src, DATASET)
    if decoded is None:
        return None, q_file
    columns = [c for c in file_columns(contract) if c not in DERIVED]
    return csv_rows(decoded, DATASET, columns)


def type_gravimetry(parts: list[CsvRows]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Text rows of one or more worksheets -> (typed rows in contract order, quarantine)."""
    contract = load_contract(DATASET)
    if not parts:
        return empty_frame(contract), empty_quarantine()
    typed, q = type_text_frame(rows_frame(parts), contract, DATASET, derived=DERIVED)
    return typed.select(contract.columns), q


def read_gravimetry_file(path: Path, raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One worksheet -> (typed rows in contract order, quarantine); no duplicate resolution."""
    rows, q = gravimetry_rows(path, raw_root)
    typed, q_values = type_gravimetry([] if rows is None else [rows])
    return typed, combine([q, q_values])


def resolve_duplicate_papers(
    rows: pl.DataFrame, delivered: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep one row per paper: the later delivery, then the later line (then the later file
    name). A file's delivery is its manifest ``content_delivered`` when ``delivered``
    (``source_file``, ``content_delivered``) is given, so identical bytes delivered again do not
    move a paper; else the delivery-date folder of ``source_file``. Returns (kept rows, pairs)."""
    folder = pl.col("source_file").str.split("/").list.get(-2, null_on_oob=True)
    if delivered is not None:
        rows = rows.join(
            delivered.select("source_file", _delivered=pl.col("content_delivered").cast(pl.String)),
            on="source_file",
            how="left",
        )
    else:
        rows = rows.with_columns(_delivered=folder)
    ranked = rows.with_columns(_order=pl.coalesce("_delivered", folder)).drop("_delivered")
    ranked = ranked.sort("_order", "source_line", "source_file")
    ranked = ranked.with_columns(_last=pl.struct(PAPER_KEY).is_last_distinct())
    kept = ranked.filter(pl.col("_last"))
    losers = ranked.filter(~pl.col("_last"))
    pairs = losers.join(
        kept.select(
            *PAPER_KEY,
            pl.col("source_file").alias("kept_file"),
            pl.col("source_line").alias("kept_line"),
        ),
        on=PAPER_KEY,
        how="left",
        nulls_equal=True,
    ).select(
        *PAPER_KEY,
        "kept_file",
        "kept_line",
        pl.col("source_file").alias("superseded_file"),
        pl.col("source_line").alias("superseded_line"),
    )
    return kept.drop("_order", "_last"), pairs.sort(PAPER_KEY).cast(
        dict(DUPLICATE_SCHEMA)  # type: ignore[arg-type]
    )


def read_worksheets(paths: Sequence[Path], raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One delivery's worksheets typed in one pass -> (papers, quarantine); duplicates are
    resolved across deliveries (:func:`resolve_gravimetry`)."""
    parts: list[CsvRows] = []
    quarantines = [empty_quarantine()]
    for path in paths:
        rows, q = gravimetry_rows(path, raw_root)
        quarantines.append(q)
        if rows is not None:
            parts.append(rows)
    typed, q_values = type_gravimetry(parts)
    return typed, combine([*quarantines, q_values])


def gravimetry_papers(resolution: Resolution) -> Resolved:
    """The current worksheets' papers and the papers of the paper-making formats (bench
    weighings), every one plausible (:func:`ingest.integrity.plausibility`) -> ``gravimetry``
    before duplicates are resolved (the trial-level rules see every paper)."""
    contract = load_contract(DATASET)
    rows = resolution.current_rows(DATASET)
    papers = pl.concat(
        [rows if rows.height else empty_frame(contract), *resolution.papers], how="vertical"
    )
    kept, quarantine = plausibility(papers, DATASET, raw_root=resolution.raw_root)
    return Resolved({DATASET: kept}, quarantine)


def settle_duplicates(resolution: Resolution) -> Resolved:
    """The papers the trial-level rules kept -> ``gravimetry`` (one row per paper, the spec's
    rule) and ``gravimetry_duplicates`` (the pairs resolved)."""
    contract = load_contract(DATASET)
    papers = resolution.dataset(DATASET)
    kept, pairs = resolve_duplicate_papers(papers, current_files(resolution.manifest))
    kept = kept.sort("source_file", "source_line").select(contract.columns)
    return Resolved({DATASET: kept, "gravimetry_duplicates": pairs})


SOURCE = SourceFormat(
    kind=DATASET,
    pattern=r"^gravimetry_.+\.csv$",
    datasets=(DATASET, "gravimetry_duplicates"),
    read=read_worksheets,
    resolve=gravimetry_papers,
    settle=settle_duplicates,
)
"""Registry entry: worksheets read per delivery, papers checked and resolved across
deliveries."""


def read_gravimetry_files(
    paths: list[Path], raw_root: Path, delivered: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Worksheets -> (typed papers, duplicates resolved; quarantine; duplicate pairs);
    ``delivered`` as in :func:`resolve_duplicate_papers`."""
    contract = load_contract(DATASET)
    parts: list[CsvRows] = []
    quarantines = []
    for path in paths:
        rows, q = gravimetry_rows(path, raw_root)
        quarantines.append(q)
        if rows is not None:
            parts.append(rows)
    typed, q_values = type_gravimetry(parts)
    kept, pairs = resolve_duplicate_papers(typed, delivered)
    kept = kept.sort("source_file", "source_line").select(contract.columns)
    return kept, combine([*quarantines, q_values]), pairs


def read_gravimetry(
    raw_root: Path, manifest: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Every current worksheet -> (typed papers, quarantine, duplicate pairs)."""
    current = current_files(manifest, DATASET)
    paths = [Path(raw_root) / p for p in current["source_file"]]
    return read_gravimetry_files(paths, Path(raw_root), current)
