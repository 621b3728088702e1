"""The typed result every model returns, and how it is written to disk.

A model function returns a :class:`ModelResult`; the Dagster assets write it with
:func:`write_result`, and the report and the tests read the same object (or the
Parquet files it was written to).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

ESTIMATE_COLUMNS: dict[str, pl.DataType] = {
    "term": pl.String(),
    "estimate": pl.Float64(),
    "std_error": pl.Float64(),
    "df": pl.Float64(),
    "statistic": pl.Float64(),
    "p_value": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
}
"""Columns of every tidy estimates table, in order. ``df`` is null where a normal
(z) reference distribution was used; ``statistic`` is t or z accordingly."""


@dataclass
class ModelResult:
    """What one model fit produced.

    ``estimates``: tidy table with :data:`ESTIMATE_COLUMNS` (fixed effects, odds ratios, ...).
    ``fit``: one-row summary - n_subjects, n_observations, reml_loglik (nlme convention where a
    REML fit), covariance_structure (the one actually used), converged, and variance parameters.
    ``tables``: further named tables a reader needs (``lsmeans``, ``contrasts``, ...).
    ``notes``: plain sentences for the report (fallbacks taken, warnings handled, blinding).
    """

    name: str
    estimates: pl.DataFrame
    fit: dict[str, Any]
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = [c for c in ESTIMATE_COLUMNS if c not in self.estimates.columns]
        if missing:
            raise ValueError(f"model {self.name}: estimates table lacks columns {missing}")
        self.estimates = self.estimates.select(
            [pl.col(c).cast(t) for c, t in ESTIMATE_COLUMNS.items()]
        )

    def fit_frame(self) -> pl.DataFrame:
        """The fit summary as a one-row frame (lists and dicts stored as strings)."""
        row: dict[str, Any] = {"model": self.name}
        for key, value in self.fit.items():
            row[key] = (
                value
                if isinstance(value, str | int | float | bool) or value is None
                else str(value)
            )
        return pl.DataFrame([row])


NOTES_TABLE = "notes"
"""File suffix of a result's notes: ``<name>_notes.parquet``, one String column ``note``, one
row per note in order (no rows when there are none)."""


def notes_frame(notes: list[str]) -> pl.DataFrame:
    """A result's notes as the table written to disk."""
    return pl.DataFrame({"note": notes}, schema={"note": pl.String})


def write_result(result: ModelResult, models_dir: Path) -> list[Path]:
    """Write ``<name>_estimates.parquet``, ``<name>_fit.parquet``, ``<name>_notes.parquet``
    (:data:`NOTES_TABLE`) and one file per extra table."""
    if NOTES_TABLE in result.tables:
        raise ValueError(f"model {result.name}: a table may not be named {NOTES_TABLE!r}")
    models_dir.mkdir(parents=True, exist_ok=True)
    written = []
    paths = {
        f"{result.name}_estimates": result.estimates,
        f"{result.name}_fit": result.fit_frame(),
        f"{result.name}_{NOTES_TABLE}": notes_frame(result.notes),
        **{f"{result.name}_{k}": v for k, v in result.tables.items()},
    }
    for stem, frame in paths.items():
        path = models_dir / f"{stem}.parquet"
        frame.write_parquet(path)
        written.append(path)
    return written
