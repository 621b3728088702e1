"""Dagster asset checks generated from the data contracts.

Each table asset with a contract ``data_contracts/<asset>.odcs.yaml`` gets one check,
``contract``, that runs every rule of the contract on the materialised frame. The check is
blocking: a failing rule of blocking severity (schema, keys, required columns of the contract)
fails it with ERROR severity, so nothing downstream runs on a frame that would corrupt it;
failing rules of warning severity make it a WARN and let the run go on.

The check scans the stored table. A contract whose rules are all row-local (the vendor-B
telemetry's) is checked :data:`CHECK_BATCH_ROWS` rows at a time, so checking 50 million
events needs the memory of one batch; any other table is checked whole. A table stored in
parts (:mod:`pipelines.stored_parts`) under a row-local contract is checked part by part, and
a part's results are kept by its content hash (``OUT/.checks/<asset>.json``), so a refresh
checks only the parts that changed (:func:`check_parts`). That is exact only because each rule
judges rows one at a time: a key, a unique column or a table-level rule could fail between an
unchanged part and a new one, so a contract with such a rule is checked whole.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

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
from pipelines.resources import TrialSettings
from pipelines.stored_parts import StoredPart, stored_parts

CHECK_BATCH_ROWS = 1_000_000
CHECKS = ".checks"
"""Folder of ``OUT`` keeping each checked part's results (:func:`check_parts`)."""


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
    parts: Sequence[StoredPart] | None = None,
    kept: Path | None = None,
) -> dg.AssetCheckResult:
    """Evaluate the contract of ``dataset`` (a dataset name of ``data_contracts/`` or a
    contract file) on ``frame`` as a Dagster check result.

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
        passed=not failed,
        severity=severity,
        metadata={
            "rules": dg.MetadataValue.int(len(results)),
            "failed_rules": dg.MetadataValue.int(len(failed)),
            "blocking_failures": dg.MetadataValue.json([r.name for r in blocking]),
            "results": dg.MetadataValue.md(_rule_table(failed or results[:10])),
        },
    )


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
    kept.parent.mkdir(parents=True, exist_ok=True)
    aside = kept.with_name(f".{kept.name}.writing")
    serialised = {d: [asdict(r) for r in rs] for d, rs in results.items()}
    aside.write_text(json.dumps({"contract": version, "parts": serialised}), "utf-8")
    aside.replace(kept)
    return merged_results(results[p.digest] for p in parts)


def _contract_check(asset_name: str, contract: str | Path) -> dg.AssetChecksDefinition:
    where = f"data_contracts/{contract}.odcs.yaml" if isinstance(contract, str) else contract

    @dg.asset_check(
        asset=asset_name,
        name="contract",
        blocking=True,
        description=f"Every rule of {where} holds.",
    )
    def _check(settings: TrialSettings, frame: pl.LazyFrame) -> dg.AssetCheckResult:
        out_dir = Path(settings.out_dir)
        return contract_check_result(
            frame,
            contract,
            blinded=settings.blinded,
            parts=stored_parts(out_dir, asset_name),
            kept=out_dir / CHECKS / f"{asset_name}.json",
        )

    return _check


def contract_checks(
    asset_names: Iterable[str], contracts: Mapping[str, str | Path] | None = None
) -> list[dg.AssetChecksDefinition]:
    """One blocking contract check for each asset that has a contract: the one ``contracts``
    names for it (the registry of raw formats names its datasets' contracts), else
    ``data_contracts/<asset>.odcs.yaml`` when it exists."""
    contracts = contracts or {}
    available = set(list_contracts())
    checks = []
    for name in asset_names:
        contract = contracts.get(name, name)
        if not isinstance(contract, str) or contract in available:
            checks.append(_contract_check(name, contract))
    return checks
