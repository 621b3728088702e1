"""The code location: every asset, contract check and resource of the trial pipeline.

``dagster dev -w workspace.yaml`` loads ``defs`` (settings from the environment, see
:meth:`TrialSettings.from_env`); ``ionto run`` builds the same definitions with its own
settings through :func:`build_definitions`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg

from data_contracts.contracts import use_study
from ingest.registry import SOURCES
from ingest.source_format import SourceFormat, check_registry
from pipelines.assets import analysis_ready, estimands, models, raw, reports
from pipelines.checks import unchecked_contracts
from pipelines.io_manager import ParquetIOManager
from pipelines.resources import TrialSettings
from pipelines.sensors import (
    delivery_sensor,
    process_delivery,
    refresh_after_delivery,
    refresh_analysis,
)
from trial.report.pdf import PrintBrowser

ASSET_MODULES = [analysis_ready, models, estimands, reports]
"""Modules of the assets that do not depend on the registry of raw formats."""
EXECUTORS = ("in_process", "multiprocess")


def executor_from_env(choice: str | None = None) -> dg.ExecutorDefinition:
    """``in_process`` (default: per-step process start-up dominates this graph of small
    steps) or ``multiprocess`` (a process per step, at most ``os.cpu_count()`` at once: for
    a production host where model fits run side by side). ``choice`` defaults to
    ``$IONTO_EXECUTOR``. ``ionto run`` always executes in-process (docs/deployment.md)."""
    choice = choice or os.environ.get("IONTO_EXECUTOR", "in_process")
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "multiprocess":
        return dg.multiprocess_executor.configured({"max_concurrent": os.cpu_count() or 1})
    raise ValueError(f"IONTO_EXECUTOR={choice!r}: choose one of {', '.join(EXECUTORS)}")


def build_definitions(
    settings: TrialSettings,
    executor: str | None = None,
    sources: Sequence[SourceFormat] = SOURCES,
    browser: PrintBrowser | None = None,
) -> dg.Definitions:
    """All assets and checks, bound to ``settings`` and a Parquet IO manager under its
    output folder, with the delivery jobs and sensors (``docs/incremental.md``);
    ``executor`` as in :func:`executor_from_env` (default in-process). ``sources``: the
    registry of raw formats the raw assets and ``device_sessions`` are made from. ``browser``:
    the Chromium the investigator report prints with, when the caller starts one ahead
    (``ionto run``); by default none, and the print starts its own.

    The study is loaded and validated here, once, and bound for the contracts
    (:func:`data_contracts.contracts.use_study`): a broken study file stops the definitions
    with one line naming the key path, before any raw file is read."""
    study = settings.study()
    use_study(study)
    sources = check_registry(sources)
    assets = [
        *raw.raw_assets(sources),
        analysis_ready.device_sessions_asset(sources),
        *(
            a
            for module in ASSET_MODULES
            for a in dg.load_assets_from_modules([module])
            if isinstance(a, dg.AssetsDefinition)
        ),
    ]
    contracts = {name: source.contract(name) for source in sources for name in source.datasets}
    unchecked = unchecked_contracts(assets, contracts)
    if unchecked:
        raise ValueError(
            f"assets with a data contract but no contract check: {', '.join(unchecked)} "
            "(make them with pipelines.asset_step.pipeline_asset)"
        )
    return dg.Definitions(
        assets=assets,
        resources={
            "settings": settings,
            "io_manager": ParquetIOManager(out_dir=settings.out_dir),
            "browser": PrintBrowser() if browser is None else browser,
        },
        executor=executor_from_env(executor),
        jobs=[process_delivery, refresh_analysis],
        sensors=[delivery_sensor, refresh_after_delivery],
    )


defs = build_definitions(TrialSettings.from_env())
