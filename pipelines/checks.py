"""Dagster asset checks generated from the data contracts, run inside the assets' steps.

Each table asset with a contract ``data_contracts/<asset>.odcs.yaml`` (or the one the registry
of raw formats names) gets one check, ``contract``, that runs every rule of the contract on the
materialised frame. The check is declared on the asset (:func:`check_specs`) and runs in the
asset's own step, right after the IO manager stored the value
(:func:`pipelines.asset_step.pipeline_asset`). The check is blocking: a
failing rule of blocking severity (schema, keys, required columns of the contract) fails it with
ERROR severity, which fails the asset's step once its outputs are stored, so nothing downstream
runs on a frame that would corrupt it; failing rules of warning severity make it a WARN and let
the run go on.

A frame is checked as it was stored; a ``LazyFrame`` output is checked on its stored table.
A contract whose rules are all row-local (the vendor-B telemetry's) is checked
:data:`CHECK_BATCH_ROWS` rows at a time, so checking 50 million events needs the memory of one
batch; any other table is checked whole. A table stored in parts (:mod:`pipelines.stored_parts`:
the vendor-B telemetry) under a row-local contract is checked part by part, and a part's
results are kept by its content hash (``OUT/.checks/<asset>.json``), so a refresh checks only
the parts that changed (:func:`check_parts`). That is exact only because each rule judges rows
one at a time: a key, a unique column or a table-level rule could fail between an unchanged
part and a new one, so a contract with such a rule is checked whole.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from data_contracts.contracts import (
    BLOCKING,
    CheckResult,
    Contract,
    check_frame,
    check_lazy,
    is_row_local,
    list_contracts,
    load_contract,
    merged_results,
)
from ingest.source_format import TableParts
from pipelines.io_manager import table_path
from pipelines.stored_parts import StoredPart
from pipelines.write_whole import written_whole

CHECK_BATCH_ROWS = 1_000_000
CHECKS = ".checks"
"""Folder of ``OUT`` keeping each checked part's results (:func:`check_parts`)."""


FAILING = "failing"
"""The metadata entry of a contract check that lists its failing rules, blocking first
(:func:`failing_rules` reads it back)."""


def _failing(result: CheckResult) -> dict[str, Any]:
    return {
        "rule": result.name,
        "severity": result.severity,
        "failing": result.n_failing,
        "sample": list(result.sample[:3]),
    }


def failing_rules(metadata: Mapping[str, Any], most: int = 3) -> str:
    """The failing rules a contract check's ``metadata`` lists, as one line for a run's
    summary: ``validValues:centre_id (blocking): 46 failing, e.g. C01, C01, C01``, at most
    ``most`` of them, blocking first ("" when the metadata lists none)."""
    entry = metadata.get(FAILING)
    rules: list[dict[str, Any]] = list(getattr(entry, "value", entry) or [])
    rules.sort(key=lambda r: r["severity"] != BLOCKING)
    parts = []
    for rule in rules[:most]:
        sample = f", e.g. {', '.join(map(str, rule['sample']))}" if rule["sample"] else ""
        parts.append(f"{rule['rule']} ({rule['severity']}): {rule['failing']} failing{sample}")
    more = f"; and {len(rules) - most} more rules" if len(rules) > most else ""
    return "; ".join(parts) + more


def _rule_table(results: list[CheckResult]) -> str:
    lines = ["| rule | severity | passed | failing | sample |", "|---|---|---|---|---|"]
    for r in results:
        sample = ", ".join(r.sample)
        lines.append(f"| {r.name} | {r.severity} | {r.passed} | {r.n_failing} | {sample} |")
    return "\n".join(lines)


def contract_check_result(
    frame: pl.DataFrame | pl.LazyFrame,
    dataset: str | Path,
    blinded: bool,
    asset: str | None = None,
    parts: Sequence[StoredPart] | None = None,
    kept: Path | None = None,
) -> dg.AssetCheckResult:
    """Evaluate the contract of ``dataset`` (a dataset name of ``data_contracts/`` or a
    contract file) on ``frame`` as the Dagster result of ``asset``'s ``contract`` check
    (``asset`` may be left out where the step checks one asset only).

    In a blinded run the contract's unblinded-only columns (the arm, the randomisation date)
    must be absent: their presence is a blocking blinding failure, and the remaining rules are
    checked against the contract without them. ``parts`` (the stored parts ``frame`` scans)
    and ``kept`` (where their results are kept): a row-local contract is checked on the parts
    whose results are not kept yet (:func:`check_parts`)."""
    contract = load_contract(dataset)
    lazy = frame.lazy()
    columns = lazy.collect_schema().names()
    results: list[CheckResult] = []
    present: list[str] = []
    if blinded and contract.unblinded_only:
        present = [c for c in contract.unblinded_only if c in columns]
        results.append(
            CheckResult(
                name="blinding",
                column=None,
                rule="blinding",
                passed=not present,
                n_failing=len(present),
                sample=tuple(present),
                severity=BLOCKING,
                description="a blinded frame carries no unblinded-only column",
            )
        )
        contract = contract.blinded_view()
        lazy = lazy.drop(present)
    if is_row_local(contract) and parts is not None and kept is not None:
        results += check_parts(parts, contract, present, kept)
    elif is_row_local(contract):
        results += check_lazy(lazy, contract, CHECK_BATCH_ROWS)
    else:
        results += check_frame(lazy.collect(), contract)
    failed = [r for r in results if not r.passed]
    blocking = [r for r in failed if r.blocking]
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="contract",
        passed=not failed,
        severity=severity,
        metadata={
            "rules": dg.MetadataValue.int(len(results)),
            "failed_rules": dg.MetadataValue.int(len(failed)),
            "blocking_failures": dg.MetadataValue.json([r.name for r in blocking]),
            FAILING: dg.MetadataValue.json([_failing(r) for r in failed]),
            "results": dg.MetadataValue.md(_rule_table(failed or results[:10])),
        },
    )


def contracts_of(
    assets: Iterable[str], contracts: Mapping[str, str | Path] | None = None
) -> dict[str, str | Path]:
    """The contract each of ``assets`` that has one is checked against: the one ``contracts``
    names for it (the registry of raw formats names its datasets' contracts), else
    ``data_contracts/<asset>.odcs.yaml`` when it exists."""
    available = set(list_contracts())
    found: dict[str, str | Path] = {}
    for asset in assets:
        contract = (contracts or {}).get(asset, asset)
        if not isinstance(contract, str) or contract in available:
            found[asset] = contract
    return found


def check_parts(
    parts: Sequence[StoredPart], contract: Contract, dropped: Sequence[str], kept: Path
) -> list[CheckResult]:
    """``contract`` on a table stored in ``parts`` (in order; each part's columns ``dropped``
    first), checking only the parts whose results for this contract are not in the file
    ``kept`` (by the part's content hash); ``kept`` then holds the results of ``parts``.

    The table's results are the parts' results added up (:func:`merged_results`), which is
    the whole table's result only for a row-local contract (:func:`is_row_local`): for any
    other, ``ValueError`` (check the table whole)."""
    if not is_row_local(contract):
        raise ValueError(
            f"contract {contract.name} has rules that look across rows; check the table whole"
        )
    version = hashlib.sha256(repr((contract, list(dropped))).encode()).hexdigest()
    try:
        stored = json.loads(kept.read_text("utf-8"))
    except (OSError, ValueError):
        stored = {}
    known = stored.get("parts", {}) if stored.get("contract") == version else {}
    results: dict[str, list[CheckResult]] = {}
    for part in parts:
        if part.digest in results:
            continue
        if part.digest in known:
            results[part.digest] = [
                CheckResult(**{**r, "sample": tuple(r["sample"])}) for r in known[part.digest]
            ]
        else:
            scan = pl.scan_parquet(part.path).drop(dropped)
            results[part.digest] = check_lazy(scan, contract, CHECK_BATCH_ROWS)
    serialised = {d: [asdict(r) for r in rs] for d, rs in results.items()}
    with written_whole(kept) as aside:
        aside.write_text(json.dumps({"contract": version, "parts": serialised}), "utf-8")
    return merged_results(results[p.digest] for p in parts)


def check_specs(contracts: Mapping[str, str | Path]) -> list[dg.AssetCheckSpec]:
    """One blocking ``contract`` check for each asset of ``contracts`` (asset -> contract)."""
    specs = []
    for asset, contract in contracts.items():
        where = f"data_contracts/{contract}.odcs.yaml" if isinstance(contract, str) else contract
        description = f"Every rule of {where} holds."
        specs.append(
            dg.AssetCheckSpec("contract", asset=asset, blocking=True, description=description)
        )
    return specs


def reused_check_result(asset: str) -> dg.AssetCheckResult:
    """The ``contract`` check of ``asset`` whose stored value a step reuses: it passed when
    the value was made (a value whose checks failed keeps no fingerprint, so it is never
    reused), and the contract is part of the fingerprint."""
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="contract",
        passed=True,
        metadata={"reused": dg.MetadataValue.text("the stored value passed it when it was made")},
    )


def checked_value(
    value: pl.DataFrame | pl.LazyFrame | TableParts, out_dir: Path, asset: str
) -> pl.DataFrame | pl.LazyFrame:
    """What the check of ``asset`` reads once its ``value`` is stored: a frame in memory as
    it is (it is what was written), a ``LazyFrame`` as a scan of the stored table (its plan,
    run again, would redo the asset's work; the IO manager streamed it to the file), a table
    in parts as a scan of its parts (the stored folder links them)."""
    if isinstance(value, TableParts):
        return value.scan()
    if isinstance(value, pl.LazyFrame):
        return pl.scan_parquet(table_path(out_dir, asset))
    return value


def unchecked_contracts(
    assets: Iterable[dg.AssetsDefinition], contracts: Mapping[str, str | Path] | None = None
) -> list[str]:
    """Assets that have a contract but no ``contract`` check (not made with
    :func:`pipelines.asset_step.pipeline_asset`): ``build_definitions`` refuses them, so that
    a contract added for an asset is never silently left unchecked."""
    checked = {k.asset_key for a in assets for k in a.check_keys}
    return sorted(
        key.to_user_string()
        for a in assets
        if a.is_executable
        for key in a.keys
        if key not in checked and contracts_of([key.to_user_string()], contracts)
    )
