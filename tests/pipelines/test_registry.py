"""The registry of raw formats: a third device vendor is one module and one registry line.

The toy vendor C below lives in this test only (its reader, its contract, its registry entry).
Registered next to the real formats, its files are landed (their own kind in the manifest),
read per delivery, resolved across deliveries, checked against its contract (a bad line is
quarantined with its file and line) and made device sessions beside vendors A and B, with no
other module told about it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from data_contracts.contracts import empty_frame, load_contract, type_text_frame
from ingest.deliveries import scan_deliveries
from ingest.incremental import FINDINGS, QUARANTINE
from ingest.quarantine import combine, empty_quarantine
from ingest.readers.text import csv_text_frame, decode_file, relative_name
from ingest.registry import (
    SOURCES,
    contract_files,
    edc_tables,
    raw_dataset_names,
    session_inputs,
)
from ingest.source_format import Resolution, Resolved, SourceFormat, check_registry
from pipelines.definitions import build_definitions
from pipelines.resources import TrialSettings

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "raw" / "mini"
DATASET = "vendor_c_sessions"
COLUMNS = ["session_no", "start_utc", "duration_s", "programmed_ma", "charge_mc"]


def _contract(directory: Path) -> Path:
    """Vendor C's contract, written where only this test finds it."""

    def col(name: str, logical: str, physical: str, **extra: object) -> dict[str, object]:
        return {"name": name, "logicalType": logical, "physicalType": physical, **extra}

    properties = [
        col("serial", "string", "String", required=True, primaryKey=True, primaryKeyPosition=1),
        col(
            "session_no",
            "integer",
            "Int64",
            required=True,
            primaryKey=True,
            primaryKeyPosition=2,
            logicalTypeOptions={"minimum": 1},
        ),
        col("start_utc", "timestamp", "Datetime(us, UTC)", required=True),
        col("duration_s", "integer", "Int64", required=True, logicalTypeOptions={"minimum": 0}),
        col("programmed_ma", "number", "Float64", logicalTypeOptions={"minimum": 0}),
        col("charge_mc", "number", "Float64", logicalTypeOptions={"minimum": 0}),
        col("source_file", "string", "String", required=True),
        col("source_line", "integer", "Int64", required=True),
    ]
    contract = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "toy-vendor-c",
        "version": "1.0.0",
        "status": "active",
        "name": DATASET,
        "description": {"purpose": "Toy vendor C: one row per session."},
        "schema": [{"name": DATASET, "physicalType": "table", "properties": properties}],
    }
    path = directory / f"{DATASET}.odcs.yaml"
    path.write_text(yaml.safe_dump(contract, sort_keys=False), encoding="utf-8")
    return path


def _vendor_c(contract_path: Path) -> SourceFormat:
    """The toy vendor's module: a reader of ``ionto-c_<serial>_<yyyymmdd>.csv`` (one CSV row
    per session, the serial in the file name), its resolution and its sessions."""

    def read(paths: Sequence[Path], raw_root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
        contract = load_contract(contract_path)
        frames, quarantines = [empty_frame(contract)], [empty_quarantine()]
        for path in paths:
            src = relative_name(path, raw_root)
            decoded, q_file = decode_file(path.read_bytes(), src, DATASET)
            quarantines.append(q_file)
            if decoded is None:
                continue
            text, q_rows = csv_text_frame(decoded, DATASET, COLUMNS)
            quarantines.append(q_rows)
            if text is None:
                continue
            serial = path.name.split("_")[1]
            typed, q_values = type_text_frame(
                text.with_columns(serial=pl.lit(serial)), contract, DATASET
            )
            frames.append(typed.select(contract.columns))
            quarantines.append(q_values)
        return pl.concat(frames), combine(quarantines)

    def resolve(resolution: Resolution) -> Resolved:
        rows = resolution.current_rows("vendor_c")
        if rows.height == 0:
            rows = empty_frame(load_contract(contract_path))
        return Resolved({DATASET: rows.unique(["serial", "session_no"], keep="last")})

    def sessions(datasets: Mapping[str, pl.DataFrame], _tolerance_pct: float) -> pl.DataFrame:
        return datasets[DATASET].select(
            device_serial="serial",
            vendor=pl.lit("C"),
            session_key=pl.format("C:{}:{}", "serial", "session_no"),
            start_utc="start_utc",
            end_utc=pl.col("start_utc") + pl.duration(seconds="duration_s"),
            duration_s=pl.col("duration_s").cast(pl.Float64),
            programmed_ma="programmed_ma",
            mean_ma=pl.lit(None, dtype=pl.Float64),
            charge_mc="charge_mc",
            polarity_switches=pl.lit(None, dtype=pl.Int64),
            end_reason=pl.lit("COMPLETED"),
            fault_code=pl.lit(None, dtype=pl.String),
            within_tolerance_share=pl.lit(None, dtype=pl.Float64),
            clock_reset=pl.lit(False),
            n_duplicate_events=pl.lit(0, dtype=pl.Int64),
            start_utc_placed="start_utc",
            source_files=pl.concat_list("source_file"),
        )

    return SourceFormat(
        kind="vendor_c",
        pattern=r"^ionto-c_[^_]+_\d{8}\.csv$",
        datasets=(DATASET,),
        read=read,
        resolve=resolve,
        sessions=sessions,
        session_inputs=(DATASET,),
        contracts={DATASET: contract_path},
    )


HEADER = ",".join(COLUMNS) + "\n"


def _deliver(raw: Path) -> None:
    """Vendor C's exports in two deliveries of C01; the second repeats session 2 and holds a
    line whose current is negative (against the contract)."""
    first = raw / "C01" / "2026-03-09" / "ionto-c_C-00009_20260308.csv"
    first.write_text(
        HEADER
        + "1,2026-03-01T18:00:00+00:00,900,12.0,10800.0\n"
        + "2,2026-03-03T18:05:00+00:00,600,12.0,7200.0\n"
    )
    later = raw / "C01" / "2026-04-06" / "ionto-c_C-00009_20260405.csv"
    later.write_text(
        HEADER
        + "2,2026-03-03T18:05:00+00:00,600,12.0,7200.0\n"
        + "3,2026-03-20T18:00:00+00:00,900,-4.0,0.0\n"
        + "4,2026-04-01T18:00:00+00:00,1200,15.0,18000.0\n"
    )


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.ExecuteInProcessResult]:
    """The raw assets and ``device_sessions`` materialised on the mini tree with vendor C
    registered: every delivery read (one run over the partition range), then resolved."""
    base = tmp_path_factory.mktemp("registry")
    raw, out = base / "raw", base / "out"
    shutil.copytree(MINI, raw)
    _deliver(raw)
    sources = (*SOURCES, _vendor_c(_contract(base)))
    defs = build_definitions(TrialSettings(raw_dir=str(raw), out_dir=str(out)), sources=sources)
    instance = dg.DagsterInstance.ephemeral()
    keys = [d.key for d in scan_deliveries(raw)]
    instance.add_dynamic_partitions("deliveries", keys)
    tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    read = defs.resolve_job_def("process_delivery").execute_in_process(instance=instance, tags=tags)
    assert read.success
    names = ["landing_manifest", *raw_dataset_names(sources), QUARANTINE, FINDINGS]
    resolved = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(n) for n in (*names, "device_sessions")],
    )
    return out, resolved


def test_a_third_vendor_is_landed_read_contracted_and_made_sessions(
    toy_run: tuple[Path, dg.ExecuteInProcessResult],
) -> None:
    out, result = toy_run
    assert result.success
    manifest = pl.read_parquet(out / "tables" / "landing_manifest.parquet")
    files = manifest.filter(pl.col("kind") == "vendor_c")["source_file"].to_list()
    assert files == [
        "C01/2026-03-09/ionto-c_C-00009_20260308.csv",
        "C01/2026-04-06/ionto-c_C-00009_20260405.csv",
    ]
    # Read per delivery: each stored delivery has a vendor_c frame of its own files.
    stored = sorted((out / "partitions" / "delivery_frames").glob("*/vendor_c.parquet"))
    assert sum(pl.read_parquet(p).height for p in stored) == 4  # 2 + (3 - 1 bad line)
    # Resolved across deliveries: session 2 once; the bad line quarantined at its line.
    sessions = pl.read_parquet(out / "tables" / f"{DATASET}.parquet")
    assert sessions.sort("session_no")["session_no"].to_list() == [1, 2, 4]
    quarantine = pl.read_parquet(out / "tables" / "quarantine.parquet").filter(
        pl.col("dataset") == DATASET
    )
    assert quarantine.select("source_file", "source_line", "field", "reason_code").rows() == [
        ("C01/2026-04-06/ionto-c_C-00009_20260405.csv", 3, "programmed_ma", "OUT_OF_RANGE")
    ]
    # Contracted: its own contract check ran, beside the real formats' checks.
    checks = {
        e.asset_check_key.asset_key.to_user_string(): e.passed
        for e in result.get_asset_check_evaluations()
    }
    assert checks[DATASET] is True and checks["dm"] is True
    # Made sessions beside vendors A and B (charge as delivered, end = start + duration).
    device = pl.read_parquet(out / "tables" / "device_sessions.parquet")
    assert set(device["vendor"]) == {"A", "B", "C"}
    vendor_c = device.filter(pl.col("vendor") == "C").sort("session_key")
    assert vendor_c["session_key"].to_list() == ["C:C-00009:1", "C:C-00009:2", "C:C-00009:4"]
    assert vendor_c["charge_mc"].to_list() == [10800.0, 7200.0, 18000.0]
    assert vendor_c["end_utc"][2] - vendor_c["start_utc"][2] == timedelta(seconds=1200)


def test_the_third_vendors_contract_is_in_the_runs_contracts(
    toy_run: tuple[Path, dg.ExecuteInProcessResult],
) -> None:
    """Every contract the run used lands in ``OUT/contracts/``, the toy vendor's too (its file
    lives outside ``data_contracts/``), with a first line naming where it came from."""
    out, _ = toy_run
    written = out / "contracts" / f"{DATASET}.odcs.yaml"
    text = written.read_text("utf-8")
    source = out.parent / f"{DATASET}.odcs.yaml"
    assert text.splitlines()[0].startswith(f"# {source.resolve()} resolved for study ")
    assert yaml.safe_load(text) == yaml.safe_load(source.read_text("utf-8"))
    assert (out / "contracts" / "dm.odcs.yaml").is_file()
    assert contract_files((*SOURCES, _vendor_c(source))) == (source.resolve(),)
    assert contract_files() == ()


def test_a_contract_named_like_one_of_data_contracts_is_refused(tmp_path: Path) -> None:
    from data_contracts.contracts import write_resolved_contracts
    from study import load_study

    shadow = tmp_path / "dm.odcs.yaml"
    shutil.copy(_contract(tmp_path), shadow)
    with pytest.raises(ValueError, match=r"has the name of data_contracts/dm\.odcs\.yaml"):
        write_resolved_contracts(load_study(), tmp_path / "out", [shadow])


def test_the_edc_tables_and_session_inputs_come_from_the_registry() -> None:
    assert edc_tables() == (
        "dm",
        "eligibility",
        "visits",
        "hdss",
        "ae",
        "cm",
        "disposition",
        "devices",
    )
    assert session_inputs() == ("vendor_a_sessions", "vendor_b_sessions", "bench_ibu_frames")


def test_a_registry_out_of_order_is_refused() -> None:
    vendor_a = next(s for s in SOURCES if s.kind == "vendor_a")
    with pytest.raises(ValueError, match="'vendor_a' needs 'dm'"):
        check_registry([vendor_a, *(s for s in SOURCES if s is not vendor_a)])
    with pytest.raises(ValueError, match="registered twice"):
        check_registry([*SOURCES, vendor_a])
