"""What an asset's step runs around the asset's function: :func:`pipeline_asset`.

- An asset whose inputs' content hashes, code version and settings equal its recorded
  fingerprint, once its upstream assets are (re)materialised in this run, is not computed
  again: its stored value is reused (not rewritten, its content hash kept) and its
  materialisation says ``reused`` (:func:`pipelines.freshness.step_freshness`; in every run,
  ``ionto run``'s or the Dagster UI's).
- Otherwise the function runs; each output is stored by the IO manager as it is yielded, then
  checked against its data contract (:mod:`pipelines.checks`) in the same step: a check step of
  its own cost about 30 ms of Dagster's step overhead, 26 of them a refresh. Once every output
  is stored and checked, the step records their fingerprints
  (:meth:`pipelines.freshness.Freshness.record`).
"""

import functools
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from ingest.source_format import TableParts
from pipelines.checks import (
    CHECKS,
    check_specs,
    checked_value,
    contract_check_result,
    contracts_of,
    reused_check_result,
)
from pipelines.freshness import REUSED, REUSED_METADATA, step_freshness
from pipelines.resources import TrialSettings
from pipelines.stored_parts import stored_parts

AssetDecorator = Callable[..., Callable[[Callable[..., Any]], dg.AssetsDefinition]]
"""``dg.asset`` or ``dg.multi_asset``."""
StepEvent = dg.Output[Any] | dg.MaterializeResult | dg.AssetCheckResult


def pipeline_asset(
    decorator: AssetDecorator, contracts: Mapping[str, str | Path] | None = None, **kwargs: Any
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """``decorator(**kwargs)`` (``dg.asset`` or ``dg.multi_asset``) around a function that
    returns its value (a tuple for a multi-asset, in the order of its ``outs``; a
    ``dg.MaterializeResult`` for an asset that stores its own files) or yields ``dg.Output``s.

    Each of its assets that has a contract (:func:`pipelines.checks.contracts_of`, with
    ``contracts`` naming the registry's) gets a blocking ``contract`` check run in this step
    after the output is stored; one failing with ERROR severity fails the step once every
    output is stored, so nothing downstream of the step runs. The step reuses the stored values
    when every asset of the step is unchanged (:func:`pipelines.freshness.step_freshness`). The
    function must take the ``settings`` resource (the run's blinding and output folder)."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        outs: Mapping[str, dg.AssetOut] = kwargs.get("outs", {})
        checked = contracts_of(list(outs) or [kwargs.get("name", fn.__name__)], contracts)
        options = dict(kwargs, check_specs=check_specs(checked))
        if typing.get_type_hints(fn).get("return") is dg.MaterializeResult:
            options["dagster_type"] = dg.Nothing  # what Dagster infers when not wrapped

        @functools.wraps(fn)
        def step(*args: Any, **fn_kwargs: Any) -> Iterator[StepEvent]:
            context = dg.AssetExecutionContext.get()
            settings: TrialSettings = context.resources.settings
            keys = context.assets_def.keys_by_output_name
            outputs = [o for o in context.op_def.output_defs if o.name in keys]
            freshness = step_freshness(context)
            if freshness.unchanged(keys.values()):
                context.log.info("inputs, code and settings unchanged: the stored value is reused")
                for o in outputs:
                    reused = None if o.dagster_type.is_nothing else REUSED
                    yield dg.Output(reused, output_name=o.name, metadata=REUSED_METADATA)
                yield from (reused_check_result(name) for name in checked)
                return
            self_stored: dict[dg.AssetKey, list[Path]] = {}
            failed: set[dg.AssetKey] = set()
            for event in _events(fn(*args, **fn_kwargs), [o.name for o in outputs]):
                yield event
                if isinstance(event, dg.MaterializeResult):
                    key = event.asset_key or context.asset_key
                    self_stored[dg.AssetKey.from_coercible(key)] = _paths(event)
                    continue
                if not isinstance(event, dg.Output):
                    continue
                name = keys[event.output_name].to_user_string()
                if name in checked:
                    out_dir = Path(settings.out_dir)
                    value = checked_value(event.value, out_dir, name)
                    in_parts = isinstance(event.value, TableParts)
                    parts = stored_parts(out_dir, name) if in_parts else None
                    kept = out_dir / CHECKS / f"{name}.json"
                    result = contract_check_result(
                        value, checked[name], settings.blinded, name, parts, kept
                    )
                    if not result.passed:
                        failed.add(keys[event.output_name])
                    yield result
            # Every output is stored and checked: their fingerprints (a blocking failure
            # fails the step after this, with the outputs stored).
            freshness.record({key: self_stored.get(key, []) for key in keys.values()}, failed)

        return decorator(**options)(step)

    return decorate


def _paths(result: dg.MaterializeResult) -> list[Path]:
    """The files an asset that stores its own (a report) names in its metadata."""
    values = (result.metadata or {}).values()
    return [Path(v.value) for v in values if isinstance(v, dg.PathMetadataValue)]


def _events(
    result: Any, output_names: list[str]
) -> Iterator[dg.Output[Any] | dg.MaterializeResult]:
    """The outputs of a function's ``result``: yielded ``dg.Output``s and a
    ``dg.MaterializeResult`` as they are, a tuple one per output name in order, any other value
    the single output."""
    if isinstance(result, Iterator):
        yield from result
    elif isinstance(result, dg.MaterializeResult):
        yield result
    elif len(output_names) == 1:
        yield dg.Output(result, output_name=output_names[0])
    else:
        for name, value in zip(output_names, result, strict=True):
            yield dg.Output(value, output_name=name)
