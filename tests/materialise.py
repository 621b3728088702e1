"""Subsets of the real asset graph, materialised on a temporary folder for tests.

The asset graph is the only pipeline: tests that need the raw datasets of a delivery tree, or
the analysis-ready tables of hand-built raw frames, run the graph's own assets through Dagster
(in process, an ephemeral instance, the Parquet IO manager under ``out``) and read the tables
it stored. Nothing here chains the steps by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import dagster as dg
import polars as pl
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from ingest.deliveries import scan_deliveries
from ingest.incremental import FINDINGS, QUARANTINE
from ingest.registry import SOURCES, raw_dataset_names
from ingest.source_format import SourceFormat
from pipelines.assets.raw import DELIVERIES_NAME
from pipelines.definitions import build_definitions
from pipelines.resources import TrialSettings

CLEAN_AND_READY = ("clean", "analysis_ready")
"""Groups of the derivations (everything between the raw datasets and the models)."""


def group_assets(defs: dg.Definitions, groups: Iterable[str]) -> list[str]:
    """Names of the assets of ``groups`` in ``defs``."""
    graph = defs.resolve_asset_graph()
    wanted = set(groups)
    return sorted(
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).group_name in wanted
    )


def with_upstream(defs: dg.Definitions, names: Iterable[str]) -> list[str]:
    """``names`` with every unpartitioned asset they read, directly or not, and the other
    outputs of each multi-asset among them (a multi-asset runs whole)."""
    graph = defs.resolve_asset_graph()
    todo = [dg.AssetKey(n) for n in names]
    seen: set[dg.AssetKey] = set()
    while todo:
        key = todo.pop()
        if key in seen or graph.get(key).partitions_def is not None:
            continue
        seen.add(key)
        todo.extend(graph.get(key).parent_keys)
        todo.extend(defs.resolve_assets_def(key).keys)
    return sorted(k.to_user_string() for k in seen)


def _execute(defs: dg.Definitions, instance: dg.DagsterInstance, names: Sequence[str]) -> None:
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(n) for n in names],
        raise_on_error=False,
    )
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    if not result.success:
        raise RuntimeError(f"materialising {', '.join(names)} failed at {failed}")


class Tables(dict[str, pl.DataFrame]):
    """Stored tables by asset name, also as attributes (``tables.adsl``; ``tables.manifest``
    is ``landing_manifest``)."""

    def __getattr__(self, name: str) -> pl.DataFrame:
        key = "landing_manifest" if name == "manifest" else name
        if key not in self:
            raise AttributeError(name)
        return self[key]

    def datasets(self) -> dict[str, pl.DataFrame]:
        """The tables that have a contract in ``data_contracts/``."""
        from data_contracts.contracts import list_contracts

        return {name: frame for name, frame in self.items() if name in list_contracts()}


def read_tables(out: Path) -> Tables:
    """Every table the IO manager stored under ``out/tables`` (a file, or a folder of parts:
    ``pipelines/stored_parts.py``), by asset name."""
    tables = Tables()
    for path in sorted((out / "tables").glob("[!.]*")):
        if path.is_dir():
            tables[path.name] = pl.read_parquet(sorted(path.glob("part-*.parquet")))
        elif path.suffix == ".parquet":
            tables[path.stem] = pl.read_parquet(path)
    return tables


def materialise_tree(
    raw: Path,
    out: Path,
    study_path: Path | None = None,
    unblind_path: Path | None = None,
    groups: Iterable[str] = (),
    sources: Sequence[SourceFormat] = SOURCES,
) -> Tables:
    """The raw group on the delivery tree ``raw`` (every delivery read alone, then resolved),
    ``device_sessions`` and the assets of ``groups`` (e.g. :data:`CLEAN_AND_READY`), with their
    contract checks -> every stored table. Unblinded exactly when ``unblind_path`` is given."""
    settings = TrialSettings(
        raw_dir=str(raw),
        out_dir=str(out),
        study_path=str(study_path or ""),
        unblind_path=str(unblind_path or ""),
    )
    defs = build_definitions(settings, sources=sources)
    instance = dg.DagsterInstance.ephemeral()
    keys = [d.key for d in scan_deliveries(raw)]
    if keys:
        instance.add_dynamic_partitions(DELIVERIES_NAME, keys)
        tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
        read = defs.resolve_job_def("process_delivery").execute_in_process(
            instance=instance, tags=tags
        )
        if not read.success:
            raise RuntimeError(f"reading the deliveries of {raw} failed")
    raw_names = ["landing_manifest", *raw_dataset_names(sources), QUARANTINE, FINDINGS]
    names = {*raw_names, "randomisation", "device_sessions", *group_assets(defs, groups)}
    _execute(defs, instance, with_upstream(defs, names))
    return read_tables(out)


def materialise_from_raw(
    frames: Mapping[str, pl.DataFrame],
    out: Path,
    study_path: Path | None = None,
    blinded: bool = False,
    groups: Iterable[str] = CLEAN_AND_READY,
) -> Tables:
    """The assets of ``groups`` computed from hand-built upstream tables: each of ``frames``
    is stored as the asset of its name (as the IO manager would have stored it), every other
    upstream table the groups read is stored empty by its contract, and only the assets of
    ``groups`` not given in ``frames`` run -> every stored table.

    ``blinded``: the run's blinding (an unblinded run reads the stored ``randomisation``)."""
    from data_contracts.contracts import empty_frame, list_contracts, load_contract, use_study
    from study import load_study

    settings = TrialSettings(
        raw_dir=str(out / "raw"),
        out_dir=str(out),
        study_path=str(study_path or ""),
        unblind_path="" if blinded else str(out / "sealed" / "randomisation.csv"),
    )
    use_study(load_study(study_path))
    defs = build_definitions(settings)
    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    run = [n for n in group_assets(defs, groups) if n not in frames]
    graph = defs.resolve_asset_graph()
    upstream = {
        parent.to_user_string()
        for name in run
        for parent in graph.get(dg.AssetKey(name)).parent_keys
    } - set(run)
    contracts = set(list_contracts())
    for name in upstream:
        frame = frames.get(name)
        if frame is None:
            if name not in contracts:
                raise ValueError(f"{name} is read by {', '.join(run)}: give it in frames")
            frame = empty_frame(load_contract(name))
        frame.write_parquet(tables / f"{name}.parquet")
    _execute(defs, dg.DagsterInstance.ephemeral(), run)
    return read_tables(out)
