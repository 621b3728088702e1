"""A small Parquet IO manager for Polars frames (dagster-polars 0.27 cannot load inputs under
polars 2, see ../shared/research/stack.md).

Tables go to ``<out_dir>/tables/<asset>.parquet``; model results to ``<out_dir>/models/`` as
Parquet (see :func:`trial.models.result.write_result`) with a pickle beside them so that
downstream assets get the typed object back; any other value (a report path, a small summary)
is pickled under ``<out_dir>/.objects/``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from trial.models.result import ModelResult, write_result

PREVIEW_ROWS = 5


def table_metadata(frame: pl.DataFrame) -> dict[str, Any]:
    """Row count, column schema and a short preview for the Dagster UI."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name=n, type=str(t)) for n, t in frame.schema.items()]
    )
    preview = frame.head(PREVIEW_ROWS)
    header = "| " + " | ".join(preview.columns) + " |"
    rule = "|" + "---|" * len(preview.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in preview.iter_rows()]
    return {
        "dagster/row_count": dg.MetadataValue.int(frame.height),
        "dagster/column_schema": schema,
        "preview": dg.MetadataValue.md("\n".join([header, rule, *rows])),
    }


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores Polars frames as Parquet and everything else as pickles under ``out_dir``."""

    out_dir: str

    def _name(self, key: dg.AssetKey) -> str:
        return "__".join(key.path)

    def _table_path(self, name: str) -> Path:
        return Path(self.out_dir) / "tables" / f"{name}.parquet"

    def _object_path(self, name: str) -> Path:
        return Path(self.out_dir) / ".objects" / f"{name}.pkl"

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        name = self._name(context.asset_key)
        if isinstance(obj, pl.DataFrame):
            path = self._table_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            obj.write_parquet(path)
            context.add_output_metadata({**table_metadata(obj), "path": str(path)})
            return
        if isinstance(obj, ModelResult):
            written = write_result(obj, Path(self.out_dir) / "models")
            context.add_output_metadata(
                {
                    "files": dg.MetadataValue.json([str(p) for p in written]),
                    "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in obj.notes) or "-"),
                    "estimates": dg.MetadataValue.int(obj.estimates.height),
                }
            )
        path = self._object_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            pickle.dump(obj, handle)

    def load_input(self, context: dg.InputContext) -> Any:
        name = self._name(context.asset_key)
        table = self._table_path(name)
        if table.exists():
            return pl.read_parquet(table)
        with self._object_path(name).open("rb") as handle:
            return pickle.load(handle)
