"""Contract checks run inside the asset's own step (``pipelines.asset_step.pipeline_asset``), on
toy assets with a toy contract: same check keys, same blocking semantics as a check step."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from pipelines.asset_step import pipeline_asset
from pipelines.checks import unchecked_contracts
from pipelines.definitions import defs
from pipelines.io_manager import ParquetIOManager
from pipelines.resources import TrialSettings

TOY = "toy_table"


def _contract(directory: Path) -> Path:
    """``id`` is a required primary key (blocking); ``score`` >= 0 is a warning only."""
    properties = [
        {
            "name": "id",
            "logicalType": "integer",
            "physicalType": "Int64",
            "required": True,
            "primaryKey": True,
            "primaryKeyPosition": 1,
        },
        {
            "name": "score",
            "logicalType": "number",
            "physicalType": "Float64",
            "logicalTypeOptions": {"minimum": 0},
            "customProperties": [{"property": "severity", "value": "warning"}],
        },
    ]
    contract = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "toy",
        "version": "1.0.0",
        "status": "active",
        "name": TOY,
        "description": {"purpose": "A toy table."},
        "schema": [{"name": TOY, "physicalType": "table", "properties": properties}],
    }
    path = directory / f"{TOY}.odcs.yaml"
    path.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    return path


def _run(tmp_path: Path, frame: pl.DataFrame | pl.LazyFrame) -> dg.ExecuteInProcessResult:
    """Materialise the toy table (``frame``), a multi-asset beside it and one asset downstream
    of the table."""
    contracts = {TOY: _contract(tmp_path), "toy_pair_a": _contract(tmp_path)}

    @pipeline_asset(dg.asset, contracts, name=TOY)
    def toy(settings: TrialSettings) -> pl.DataFrame | pl.LazyFrame:
        return frame

    @pipeline_asset(
        dg.multi_asset,
        contracts,
        outs={"toy_pair_a": dg.AssetOut(), "toy_pair_b": dg.AssetOut()},
    )
    def toy_pair(settings: TrialSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
        return pl.DataFrame({"id": [1], "score": [1.0]}), pl.DataFrame({"x": [1]})

    @dg.asset(deps=[TOY])
    def downstream() -> int:
        return 1

    out = tmp_path / "out"
    settings = TrialSettings(raw_dir=str(tmp_path), out_dir=str(out), study_path="")
    return dg.materialize(
        [toy, toy_pair, downstream],
        resources={"settings": settings, "io_manager": ParquetIOManager(out_dir=str(out))},
        raise_on_error=False,
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def _materialised(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_a_passing_check_runs_in_the_asset_step(tmp_path: Path) -> None:
    result = _run(tmp_path, pl.DataFrame({"id": [1, 2], "score": [0.5, 1.0]}))
    assert result.success
    checks = _checks(result)
    assert set(checks) == {f"{TOY}:contract", "toy_pair_a:contract"}
    assert all(c.passed for c in checks.values())
    steps = {e.step_key for e in result.all_events if e.is_step_start}
    assert steps == {TOY, "toy_pair", "downstream"}
    assert _materialised(result) == {TOY, "toy_pair_a", "toy_pair_b", "downstream"}


def test_a_failing_blocking_rule_stops_what_is_downstream(tmp_path: Path) -> None:
    result = _run(tmp_path, pl.DataFrame({"id": [1, 1], "score": [0.5, 1.0]}))
    assert not result.success
    check = _checks(result)[f"{TOY}:contract"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    # The table is stored (for the data managers to look at), nothing downstream runs.
    assert TOY in _materialised(result) and "downstream" not in _materialised(result)
    assert pl.read_parquet(tmp_path / "out" / "tables" / f"{TOY}.parquet").height == 2


def test_a_failing_warning_rule_lets_the_run_go_on(tmp_path: Path) -> None:
    result = _run(tmp_path, pl.DataFrame({"id": [1, 2], "score": [-1.0, 1.0]}))
    assert result.success
    check = _checks(result)[f"{TOY}:contract"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "downstream" in _materialised(result)


def test_a_lazy_output_is_checked_on_its_stored_table(tmp_path: Path) -> None:
    """The check of a ``LazyFrame`` reads the table the IO manager streamed: the frame's plan
    runs once (counted by a Python function in it), not again for the check."""
    rows: list[int] = []

    def count(value: int) -> int:
        rows.append(value)
        return value

    lazy = pl.LazyFrame({"id": [1, 1, 2], "score": [1.0, 2.0, 3.0]}).with_columns(
        pl.col("id").map_elements(count, return_dtype=pl.Int64)
    )
    result = _run(tmp_path, lazy)
    assert not _checks(result)[f"{TOY}:contract"].passed  # the stored table's duplicate id
    assert len(rows) == 3


def test_every_contract_of_the_pipeline_is_checked_in_its_asset_step() -> None:
    graph = defs.resolve_asset_graph()
    checked = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert {"dm", "vendor_b_events", "landing_manifest", "adsl", "addev"} <= checked
    assert {k.name for k in graph.asset_check_keys} == {"contract"}
    nodes = defs.resolve_job_def("refresh_analysis").graph.nodes
    assert not [n.name for n in nodes if n.name.endswith("_contract")]
    spec = next(s for a in graph.assets_defs for s in a.check_specs if s.key.name == "contract")
    assert spec.blocking and spec.description and spec.description.startswith("Every rule of")


def test_an_asset_with_a_contract_and_no_check_is_named(tmp_path: Path) -> None:
    """``build_definitions`` refuses the assets this names: a contract is never left
    unchecked because its asset was made with a plain ``dg.asset``."""
    contracts = {TOY: _contract(tmp_path)}

    @dg.asset(name=TOY)
    def plain() -> int:
        return 1

    @pipeline_asset(dg.asset, contracts, name=TOY)
    def checked(settings: TrialSettings) -> pl.DataFrame:
        return pl.DataFrame({"id": [1]})

    assert unchecked_contracts([plain], contracts) == [TOY]
    assert unchecked_contracts([checked], contracts) == []
