"""Read a finished run's outputs back: ``OUT/tables/*.parquet`` and ``OUT/models/*.parquet``.

For regenerating reports from a run, the notebooks and tests. Model files are
``<name>_estimates.parquet``, ``<name>_fit.parquet``, ``<name>_notes.parquet`` and
``<name>_<table>.parquet`` (``trial.models.result.write_result``); a file belongs to the
longest result name it starts with. A run written before notes were saved reads back with no
notes.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from trial.models.result import NOTES_TABLE, ModelResult


def read_tables(out_dir: Path) -> dict[str, pl.DataFrame]:
    """Every table asset of the run, by asset name."""
    return {p.stem: pl.read_parquet(p) for p in sorted((out_dir / "tables").glob("*.parquet"))}


def read_model_results(out_dir: Path) -> dict[str, ModelResult]:
    """Every model result of the run, by result name (fit strings stay strings)."""
    folder = out_dir / "models"
    files = sorted(folder.glob("*.parquet"))
    names = sorted(
        (p.stem.removesuffix("_estimates") for p in files if p.stem.endswith("_estimates")),
        key=len,
        reverse=True,
    )
    tables: dict[str, dict[str, pl.DataFrame]] = {n: {} for n in names}
    for path in files:
        owner = next((n for n in names if path.stem.startswith(n + "_")), None)
        if owner is not None:
            tables[owner][path.stem.removeprefix(owner + "_")] = pl.read_parquet(path)
    results = {}
    for name, parts in tables.items():
        fit_frame = parts.pop("fit", pl.DataFrame())
        fit = fit_frame.row(0, named=True) if fit_frame.height else {}
        fit.pop("model", None)
        notes = parts.pop(NOTES_TABLE, None)
        results[name] = ModelResult(
            name=name,
            estimates=parts.pop("estimates"),
            fit=fit,
            tables=parts,
            notes=[] if notes is None else notes.get_column("note").to_list(),
        )
    return results
