"""The code location: every asset, contract check and resource of the trial pipeline.

``dagster dev -w workspace.yaml`` loads ``defs`` (settings from the environment, see
:meth:`TrialSettings.from_env`); ``ionto run`` builds the same definitions with its own
settings through :func:`build_definitions`.
"""

from __future__ import annotations

import dagster as dg

from pipelines.assets import analysis_ready, models, raw
from pipelines.checks import contract_checks
from pipelines.io_manager import ParquetIOManager
from pipelines.resources import TrialSettings

ASSET_MODULES = [raw, analysis_ready, models]


def _asset_names(assets: list[dg.AssetsDefinition]) -> list[str]:
    return [key.to_user_string() for a in assets for key in a.keys]


def build_definitions(settings: TrialSettings) -> dg.Definitions:
    """All assets and checks, bound to ``settings`` and a Parquet IO manager under its
    output folder. Steps run in one process: the graph is many small steps."""
    assets = [
        a
        for module in ASSET_MODULES
        for a in dg.load_assets_from_modules([module])
        if isinstance(a, dg.AssetsDefinition)
    ]
    return dg.Definitions(
        assets=assets,
        asset_checks=contract_checks(_asset_names(assets)),
        resources={"settings": settings, "io_manager": ParquetIOManager(out_dir=settings.out_dir)},
        executor=dg.in_process_executor,
    )


defs = build_definitions(TrialSettings.from_env())
