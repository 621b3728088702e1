"""The landing-area sensor, and the jobs it starts (``docs/incremental.md``).

``delivery_sensor`` lists ``<raw>/<centre>/<YYYY-MM-DD>/`` folders. Completeness rule: only
files with their final name count; names starting with ``.`` or ending in ``.tmp`` or
``.part`` are being written and are ignored (uploaders write under such a name and rename
when done; no done-marker is used). Each folder's complete files are hashed into a delivery
key ``<centre>_<date>_<hash8>``; a key not seen before (a new folder, a file added or
corrected in place) is registered as a dynamic partition of ``deliveries`` and one run of
``process_delivery`` is requested for it (``run_key`` = the key, so it is never launched
twice). An unchanged folder requests nothing. The cursor is JSON: folder -> {key, signature};
the signature (file names, sizes, modification times) lets an unchanged folder skip hashing.

``refresh_after_delivery`` then requests ``refresh_analysis`` (every unpartitioned asset:
current-version resolution, clean, analysis-ready, models, reports) after a successful
delivery run when no other delivery run is pending. Both need the Dagster daemon
(``dagster dev`` starts it).
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from ingest.deliveries import Delivery, scan_deliveries
from pipelines.assets.raw import DELIVERIES, DELIVERIES_NAME, DELIVERY_FRAMES
from pipelines.resources import TrialSettings

PARTITIONED = dg.AssetSelection.assets(DELIVERY_FRAMES)
process_delivery = dg.define_asset_job("process_delivery", selection=PARTITIONED)
"""Reads one delivery (one partition of ``delivery_frames``)."""
refresh_analysis = dg.define_asset_job(
    "refresh_analysis", selection=dg.AssetSelection.all() - PARTITIONED
)
"""Every unpartitioned asset and check: resolution of the current versions and all downstream."""
PENDING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def read_cursor(cursor: str | None) -> dict[str, Delivery]:
    """Folder -> the delivery it held at the last evaluation (files not kept)."""
    known = json.loads(cursor) if cursor else {}
    return {
        folder: Delivery(folder=folder, key=v["key"], files=(), signature=v["signature"])
        for folder, v in known.items()
    }


def write_cursor(deliveries: list[Delivery]) -> str:
    return json.dumps(
        {d.folder: {"key": d.key, "signature": d.signature} for d in deliveries}, sort_keys=True
    )


@dg.sensor(job=process_delivery, minimum_interval_seconds=30)
def delivery_sensor(
    context: dg.SensorEvaluationContext, settings: TrialSettings
) -> dg.SensorResult:
    """Registers each new or corrected delivery folder (complete files only) as a partition
    of ``deliveries`` and requests its run; see the module docstring for the rules."""
    known = read_cursor(context.cursor)
    deliveries = scan_deliveries(Path(settings.raw_dir), known)
    new = [d for d in deliveries if d.folder not in known or known[d.folder].key != d.key]
    registered = set(context.instance.get_dynamic_partitions(DELIVERIES_NAME))
    to_add = sorted({d.key for d in deliveries} - registered)
    for d in new:
        context.log.info(f"new delivery {d.folder}: key {d.key}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=d.key, run_key=d.key) for d in new],
        dynamic_partitions_requests=[DELIVERIES.build_add_request(to_add)] if to_add else [],
        cursor=write_cursor(deliveries),
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[process_delivery],
    request_job=refresh_analysis,
)
def refresh_after_delivery(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
    """After a delivery is read, recompute everything unpartitioned from the stored partitions;
    skipped while other delivery runs are pending (the last of them triggers the refresh), so
    a burst of deliveries refreshes once or a few times, not once per delivery."""
    pending = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=process_delivery.name, statuses=PENDING)
    )
    if pending:
        return dg.SkipReason(f"{len(pending)} delivery runs pending; the last one refreshes")
    return dg.RunRequest(run_key=f"refresh-{context.dagster_run.run_id}")
