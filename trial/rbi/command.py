"""``ionto rbi``: reference-based imputation of a long CSV from anywhere, tidy tables out.

Reads the data, ICE and delta CSVs (the subject, visit and group columns as text, so that
``001`` stays ``001``; empty cells and ``NA`` are missing), runs :func:`trial.rbi.run_rbi` and
writes to ``OUT``: ``pooled``, ``samples``, ``imputed``, ``model_coefficients``,
``model_covariance`` (each ``.csv`` and ``.parquet``) and ``fit.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from trial.rbi.engine import RbiResult, run_rbi
from trial.rbi.reml_fit import ImputationModelError
from trial.rbi.spec import RbiInputError, RbiSpec

NULL_VALUES = ["", "NA"]


@dataclass(frozen=True)
class RbiCommand:
    """The command's arguments (paths and a spec)."""

    data: Path
    ice: Path | None
    delta: Path | None
    out: Path
    spec: RbiSpec


def split_list(text: str | None) -> list[str]:
    """``"A*VISIT, B"`` -> ``["A*VISIT", "B"]`` (empty text: no terms)."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _read_csv(path: Path, text_columns: list[str], what: str) -> pl.DataFrame:
    if not path.is_file():
        raise RbiInputError(f"{what} file {path} does not exist")
    try:
        header = pl.read_csv(path, n_rows=0).columns
        overrides = {c: pl.String for c in text_columns if c in header}
        return pl.read_csv(
            path, schema_overrides=overrides, null_values=NULL_VALUES, infer_schema_length=None
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RbiInputError(f"{what} file {path} is not a readable CSV: {first}") from err


def execute(command: RbiCommand) -> RbiResult:
    """Read the inputs, run the analysis, write the tables; the result."""
    spec = command.spec
    keys = [spec.subject, spec.visit, spec.group]
    data = _read_csv(command.data, keys, "data")
    ice = _read_csv(command.ice, keys, "ICE") if command.ice else None
    delta = _read_csv(command.delta, keys, "delta") if command.delta else None
    try:
        result = run_rbi(data, ice, spec, delta)
    except ImputationModelError as err:
        raise RbiInputError(str(err)) from err
    out = command.out
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "pooled": result.pooled,
        "samples": result.samples,
        "imputed": result.imputed,
        "model_coefficients": result.coefficients,
        "model_covariance": result.covariance,
    }
    for name, frame in tables.items():
        frame.write_csv(out / f"{name}.csv")
        frame.write_parquet(out / f"{name}.parquet")
    settings = {
        "data": str(command.data),
        "ice": str(command.ice) if command.ice else None,
        "delta": str(command.delta) if command.delta else None,
        "spec": spec.__dict__,
    }
    (out / "fit.json").write_text(json.dumps({**result.fit, **settings}, indent=2, default=str))
    return result
