"""A small Parquet IO manager for Polars frames (dagster-polars 0.27 cannot load inputs under
polars 2, see ../shared/research/stack.md).

Tables go to ``<out_dir>/tables/<asset>.parquet``; model results to ``<out_dir>/models/`` as
Parquet (see :func:`trial.models.result.write_result`) with a pickle beside them so that
downstream assets get the typed object back; any other value (a report path, a small summary)
is pickled under ``<out_dir>/.objects/``. Every stored unpartitioned value's content hash is
recorded for :mod:`pipelines.freshness`, which decides what a refresh recomputes; an output
whose step reused the stored value (``REUSED``) is not written again.

Large tables stay out of memory (the dagster-polars convention): an asset may return a
``pl.LazyFrame``, which is streamed to its Parquet file (``sink_parquet``), and an input
annotated ``pl.LazyFrame`` is given as a lazy scan of the stored file. A table held in parts
(:class:`ingest.source_format.TableParts`, the vendor-B events) is stored as a folder
``<out_dir>/tables/<asset>/`` of links to its parts, swapped in whole
(:mod:`pipelines.stored_parts`): a refresh writes only the parts that changed; it is loaded as
one scan (or frame) of its parts, in order.

A partitioned asset (one partition per delivery, ``docs/incremental.md``) returns a dict
``{partition key: value}`` for the partitions of its run (one or a range) and is stored per
partition: a frame at ``<out_dir>/partitions/<asset>/<key>.parquet``, a dict of named frames
as a folder ``<out_dir>/partitions/<asset>/<key>/<name>.parquet``, as
:func:`ingest.telemetry.write_parsed` writes them (LZ4, in row groups of
:data:`ingest.telemetry.ROW_GROUP_ROWS` rows: a scan for a few devices of a delivery's
telemetry reads only theirs). A downstream asset loads the partitions it depends on as a dict
``{partition key: stored value}`` with each frame as a lazy scan; a partition never
materialised is left out, so the downstream asset decides what a missing one means.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from ingest.source_format import TableParts
from ingest.telemetry import write_parsed
from pipelines.freshness import REUSED, file_digest, files_digest, record_content
from pipelines.stored_parts import parts_folder, scan_stored, store_parts
from pipelines.write_whole import aside, written_whole
from trial.models.result import ModelResult, write_result

PREVIEW_ROWS = 5
NOT_PREVIEWED = frozenset({"randomisation"})
"""Tables whose rows never go into Dagster's metadata (the sealed list: the instance may be
shared, ``$DAGSTER_HOME``, and is read by people who must stay blinded); they get a row count
and a schema only."""


def table_metadata(
    frame: pl.DataFrame, n_rows: int | None = None, preview_rows: int = PREVIEW_ROWS
) -> dict[str, Any]:
    """Row count (``n_rows``, else the frame's), column schema and a preview of the first
    ``preview_rows`` rows for the Dagster UI."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name=n, type=str(t)) for n, t in frame.schema.items()]
    )
    preview = frame.head(preview_rows)
    header = "| " + " | ".join(preview.columns) + " |"
    rule = "|" + "---|" * len(preview.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in preview.iter_rows()]
    return {
        "dagster/row_count": dg.MetadataValue.int(frame.height if n_rows is None else n_rows),
        "dagster/column_schema": schema,
        "preview": dg.MetadataValue.md("\n".join([header, rule, *rows])),
    }


def table_path(out_dir: Path, asset: str) -> Path:
    """Where a frame of the unpartitioned ``asset`` is stored."""
    return Path(out_dir) / "tables" / f"{asset}.parquet"


def partition_path(out_dir: Path, asset: str, key: str) -> Path:
    """Where a partition of ``asset`` is stored, without suffix: ``<path>.parquet`` for a
    frame, the folder ``<path>`` for a dict of frames."""
    return Path(out_dir) / "partitions" / asset / key


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores Polars frames as Parquet and everything else as pickles under ``out_dir``."""

    out_dir: str

    def _name(self, key: dg.AssetKey) -> str:
        return "__".join(key.path)

    def _object_path(self, name: str) -> Path:
        return Path(self.out_dir) / ".objects" / f"{name}.pkl"

    def _partition_path(self, name: str, key: str) -> Path:
        return partition_path(Path(self.out_dir), name, key)

    def _handle_partitions(self, context: dg.OutputContext, name: str, obj: Any) -> None:
        keys = list(context.asset_partition_keys)
        if not isinstance(obj, dict) or sorted(obj) != sorted(keys):
            raise TypeError(f"{name}: return a dict with one value per partition of the run")
        rows: dict[str, int] = {}
        for key in keys:
            value = obj[key]
            path = self._partition_path(name, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(value, pl.DataFrame):
                with written_whole(path.with_suffix(".parquet")) as writing:
                    write_parsed(value, writing)
                rows[key] = value.height
                continue
            if not isinstance(value, dict) or not all(
                isinstance(v, pl.DataFrame) for v in value.values()
            ):
                raise TypeError(f"{name}/{key}: store a frame or a dict of frames")
            # Written aside, then renamed: a folder present is a partition stored whole.
            writing = aside(path)
            shutil.rmtree(writing, ignore_errors=True)
            writing.mkdir()
            for frame_name, frame in value.items():
                write_parsed(frame, writing / f"{frame_name}.parquet")
            shutil.rmtree(path, ignore_errors=True)
            writing.rename(path)
            rows[key] = sum(f.height for f in value.values())
        context.add_output_metadata(
            {
                "partitions": dg.MetadataValue.int(len(keys)),
                "rows": dg.MetadataValue.int(sum(rows.values())),
            }
        )

    def _load_partitions(self, name: str, keys: list[str]) -> dict[str, Any]:
        loaded: dict[str, Any] = {}
        for key in keys:
            path = self._partition_path(name, key)
            if path.with_suffix(".parquet").is_file():
                loaded[key] = pl.scan_parquet(path.with_suffix(".parquet"))
            elif path.is_dir():
                loaded[key] = {p.stem: pl.scan_parquet(p) for p in sorted(path.glob("*.parquet"))}
        return loaded

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is REUSED:  # the step reused the stored value: it stays as it is
            return
        name = self._name(context.asset_key)
        if context.has_asset_partitions:
            self._handle_partitions(context, name, obj)
            return
        if isinstance(obj, TableParts):
            digest, files = store_parts(Path(self.out_dir), name, obj)
            record_content(Path(self.out_dir), name, digest, files)
            n_rows = sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)
            head = obj.scan().head(PREVIEW_ROWS).collect()
            folder = parts_folder(Path(self.out_dir), name)
            context.add_output_metadata(
                {**table_metadata(head, n_rows), "path": str(folder), "parts": len(files)}
            )
            return
        if isinstance(obj, pl.DataFrame | pl.LazyFrame):
            path = table_path(Path(self.out_dir), name)
            shutil.rmtree(parts_folder(Path(self.out_dir), name), ignore_errors=True)
            if isinstance(obj, pl.LazyFrame):
                with written_whole(path) as writing:
                    obj.sink_parquet(writing)
                n_rows = pl.scan_parquet(path).select(pl.len()).collect().item()
                obj = pl.scan_parquet(path).head(PREVIEW_ROWS).collect()
            else:
                with written_whole(path) as writing:
                    obj.write_parquet(writing)
                n_rows = obj.height
            record_content(Path(self.out_dir), name, file_digest(path), [path])
            shown = 0 if name in NOT_PREVIEWED else PREVIEW_ROWS
            context.add_output_metadata({**table_metadata(obj, n_rows, shown), "path": str(path)})
            return
        written: list[Path] = []
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
        with written_whole(path) as writing, writing.open("wb") as handle:
            pickle.dump(obj, handle)
        # A model result's content is its Parquet tables: the pickle of equal Polars frames is
        # not the same bytes from one process to the next, the Parquet files are.
        digest = files_digest(written) if written else file_digest(path)
        record_content(Path(self.out_dir), name, digest, [path, *written])

    def load_input(self, context: dg.InputContext) -> Any:
        name = self._name(context.asset_key)
        if context.has_asset_partitions:
            return self._load_partitions(name, list(context.asset_partition_keys))
        parts = scan_stored(Path(self.out_dir), name)
        if parts is not None:
            lazy = context.dagster_type.typing_type is pl.LazyFrame
            return parts if lazy else parts.collect()
        table = table_path(Path(self.out_dir), name)
        if table.exists():
            if context.dagster_type.typing_type is pl.LazyFrame:
                return pl.scan_parquet(table)
            return pl.read_parquet(table)
        with self._object_path(name).open("rb") as handle:
            return pickle.load(handle)
