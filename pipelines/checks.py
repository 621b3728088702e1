"""Dagster asset checks generated from the data contracts, run inside the assets' steps.

Each table asset with a contract ``data_contracts/<asset>.odcs.yaml`` (or the one the registry
of raw formats names) gets one check, ``contract``, that runs every rule of the contract on the
materialised frame. The check is declared on the asset (:func:`contract_checked`) and runs in
the asset's own step, right after the IO manager stored the value: a separate check step cost
about 30 ms of Dagster's step overhead each, 28 of them a refresh. The check is blocking: a
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

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


AssetDecorator = Callable[..., Callable[[Callable[..., Any]], dg.AssetsDefinition]]
"""``dg.asset`` or ``dg.multi_asset``."""


def contract_of(asset: str, contracts: Mapping[str, str | Path] | None = None) -> str | Path | None:
    """The contract ``asset`` is checked against: the one ``contracts`` names for it (the
    registry of raw formats names its datasets' contracts), else
    ``data_contracts/<asset>.odcs.yaml`` when it exists; None for an asset without one."""
    contract = (contracts or {}).get(asset, asset)
    if isinstance(contract, str) and contract not in list_contracts():
        return None
    return contract


def _description(contract: str | Path) -> str:
    where = f"data_contracts/{contract}.odcs.yaml" if isinstance(contract, str) else contract
    return f"Every rule of {where} holds."


def contract_checked(
    decorator: AssetDecorator, contracts: Mapping[str, str | Path] | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``decorator(**kwargs)`` (``dg.asset`` or ``dg.multi_asset``) with a blocking
    ``contract`` check for each of its assets that has a contract (:func:`contract_of`), run
    inside the asset's own step: no step of its own, so no per-step overhead of Dagster.

    The decorated function returns its value (a tuple for a multi-asset, in the order of its
    ``outs``) or yields ``dg.Output``s. Each output is yielded (the IO manager stores it
    there and then), then its check result (:func:`contract_check_result` on the stored
    value, :func:`checked_value`). A check failing with ERROR severity fails the step after
    every output is stored, so nothing downstream of the step runs, as with a separate
    blocking check. The function must take the ``settings`` resource (the run's blinding and
    output folder)."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        outs: Mapping[str, dg.AssetOut] = kwargs.get("outs", {})
        names = list(outs) if outs else [kwargs.get("name", fn.__name__)]
        checked = {name: c for name in names if (c := contract_of(name, contracts)) is not None}
        specs = [
            dg.AssetCheckSpec("contract", asset=name, blocking=True, description=_description(c))
            for name, c in checked.items()
        ]

        @functools.wraps(fn)
        def compute(*args: Any, **fn_kwargs: Any) -> Iterator[dg.Output[Any] | dg.AssetCheckResult]:
            context = dg.AssetExecutionContext.get()
            settings: TrialSettings = context.resources.settings
            keys = context.assets_def.keys_by_output_name
            output_names = [o.name for o in context.op_def.output_defs if o.name in keys]
            for output in _outputs(fn(*args, **fn_kwargs), output_names):
                yield output
                name = keys[output.output_name].to_user_string()
                if name in checked:
                    out_dir = Path(settings.out_dir)
                    value = checked_value(output.value, out_dir, name)
                    in_parts = isinstance(output.value, TableParts)
                    parts = stored_parts(out_dir, name) if in_parts else None
                    kept = out_dir / CHECKS / f"{name}.json"
                    yield contract_check_result(
                        value, checked[name], settings.blinded, name, parts, kept
                    )

        return decorator(**kwargs, check_specs=specs)(compute)

    return decorate


def _outputs(result: Any, output_names: list[str]) -> Iterator[dg.Output[Any]]:
    """The outputs of a compute function's ``result``: yielded ``dg.Output``s as they are, a
    tuple one per output name in order, any other value the single output."""
    if isinstance(result, Iterator):
        yield from result
    elif len(output_names) == 1:
        yield dg.Output(result, output_name=output_names[0])
    else:
        for name, value in zip(output_names, result, strict=True):
            yield dg.Output(value, output_name=name)


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
    :func:`contract_checked`): :func:`pipelines.definitions.build_definitions` refuses them,
    so that a contract added for an asset is never silently left unchecked."""
    checked = {k.asset_key for a in assets for k in a.check_keys}
    return sorted(
        key.to_user_string()
        for a in assets
        if a.is_executable
        for key in a.keys
        if key not in checked and contract_of(key.to_user_string(), contracts) is not None
    )
