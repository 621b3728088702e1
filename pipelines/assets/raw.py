"""Raw group: the landing manifest, each delivery read alone, and every raw dataset of the
current file versions; all made from the registry of raw formats (``ingest.registry``).

``delivery_frames`` is partitioned by delivery (dynamic partitions ``deliveries``, one key per
``<centre>/<date>`` folder content, ``docs/incremental.md``): a new delivery is read alone.
``raw_datasets`` (one step) resolves every format's datasets from the stored delivery frames
of the current file versions; each dataset is its own asset so that the UI shows its rows,
preview and contract check. The vendor-B telemetry is never loaded whole: the stored delivery
frames come as lazy scans, and the events are resolved one range of devices at a time
(``ingest.telemetry``) into ``vendor_b_events`` (one Parquet part per range, stored as a
folder of links to the parts: ``pipelines/stored_parts.py``) and their session summaries
``vendor_b_sessions``.
"""

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import polars as pl

from data_contracts.contracts import empty_frame, load_contract, write_resolved_contracts
from ingest.deliveries import folder_delivery, key_folder, manifest_delivery_keys
from ingest.incremental import (
    FINDINGS,
    QUARANTINE,
    read_delivery_folder,
    resolve_raw_datasets,
    stale_deliveries,
)
from ingest.integrity import quarantined_keys
from ingest.landing import file_hashes, scan_raw
from ingest.readers.edc import read_randomisation
from ingest.registry import contract_files, raw_dataset_names
from ingest.sealed import sealed_signature
from ingest.source_format import Frame, SourceFormat
from pipelines.asset_step import pipeline_asset
from pipelines.blinding_record import claim_output_folder
from pipelines.freshness import code_version
from pipelines.hash_cache import read_hash_cache, write_hash_cache
from pipelines.resources import TrialSettings
from trial.derive.sessions import sessions_started
from trial.derive.unblinding import SealedListError, check_sealed_list, sealed_list_problems

GROUP = "raw"
DELIVERIES_NAME = "deliveries"
DELIVERIES = dg.DynamicPartitionsDefinition(name=DELIVERIES_NAME)
"""One partition per delivery folder content: ``<centre>_<date>_<hash8>``."""
DELIVERY_FRAMES = "delivery_frames"


def raw_assets(sources: Sequence[SourceFormat]) -> list[dg.AssetsDefinition]:
    """The raw group for the registry ``sources``: ``landing_manifest``, ``delivery_frames``,
    one asset per dataset of every format plus ``quarantine`` (``raw_datasets``), and
    ``randomisation``."""
    return [
        _landing_manifest(sources),
        _delivery_frames(sources),
        _raw_datasets(sources),
        randomisation,
    ]


def _landing_manifest(sources: Sequence[SourceFormat]) -> dg.AssetsDefinition:
    @pipeline_asset(dg.asset, group_name=GROUP, kinds={"polars"})
    def landing_manifest(
        context: dg.AssetExecutionContext, settings: TrialSettings
    ) -> pl.DataFrame:
        """Every file (and symbolic link, never followed) under the raw root with centre,
        delivery, kind, SHA-256, size, version chain and whether a later delivery supersedes
        it; nothing is ever removed from it. Files unchanged since the last run keep their
        stored hashes (``pipelines/hash_cache.py``), unless the run verifies (``ionto run
        --verify``): then every file is hashed again. Like the graph's other root
        asset ``delivery_frames`` (and ``randomisation``) it first claims the output folder for
        the run's mode (``pipelines/blinding_record.py``), so that a run started from the UI is
        refused too. It writes the data contracts the run checks against, resolved for the
        run's study, to ``OUT/contracts/``, with those of registered formats kept elsewhere."""
        claim_output_folder(Path(settings.out_dir), settings.blinded)
        write_resolved_contracts(
            settings.study(), Path(settings.out_dir) / "contracts", contract_files(sources)
        )
        stored = read_hash_cache(Path(settings.out_dir))
        earlier = None if settings.verify else stored
        sealed = sealed_signature(settings.study())
        hashes = file_hashes(Path(settings.raw_dir), earlier, sealed)
        write_hash_cache(Path(settings.out_dir), hashes)
        manifest = scan_raw(Path(settings.raw_dir), hashes, sources=sources)
        reused = 0 if earlier is None else hashes.join(earlier, on=list(hashes.columns)).height
        context.log.info(
            f"landing area: {manifest.height} files under {settings.raw_dir} "
            f"({manifest.height - reused} hashed, {reused} unchanged since the last run)"
        )
        if settings.verify and stored is not None:
            stat_columns = ["source_file", "size_bytes", "mtime_ns"]
            silent = hashes.join(stored, on=stat_columns, suffix="_stored").filter(
                pl.col("sha256") != pl.col("sha256_stored")
            )
            context.log.warning(
                f"verify: {silent.height} files changed without a change of size or "
                f"modification time{': ' if silent.height else ''}"
                f"{', '.join(silent['source_file'].head(10))}"
            )
        return manifest

    return landing_manifest


def _delivery_frames(sources: Sequence[SourceFormat]) -> dg.AssetsDefinition:
    @dg.asset(
        name=DELIVERY_FRAMES,
        group_name=GROUP,
        kinds={"polars"},
        partitions_def=DELIVERIES,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def delivery_frames(
        context: dg.AssetExecutionContext, settings: TrialSettings
    ) -> dict[str, dict[str, pl.DataFrame]]:
        """Each delivery folder of the run's partitions read alone (every complete file,
        superseded later or not): a typed frame per format read per delivery and the
        quarantine of its files (``ingest.incremental``), by partition key. A run may cover a
        range of partitions (one step for many deliveries: Dagster's per-run overhead is paid
        once); its deliveries are read as many at once as there are cores."""
        claim_output_folder(Path(settings.out_dir), settings.blinded)
        raw_root = Path(settings.raw_dir)
        sealed = sealed_signature(settings.study())
        folders: dict[str, str] = {}
        n_files: dict[str, int] = {}
        for key in context.partition_keys:
            folder = key_folder(key)
            now = folder_delivery(raw_root, folder)
            if now is None or now.key != key:
                raise ValueError(
                    f"delivery {key}: the folder {folder} now holds "
                    f"{'nothing complete' if now is None else now.key}; its content changed "
                    "after the key was registered (a correction gets a new key: process that one)"
                )
            folders[key] = folder
            n_files[key] = len(now.files)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            frames = pool.map(
                lambda folder: read_delivery_folder(raw_root, folder, sealed, sources),
                folders.values(),
            )
            read = dict(zip(folders, frames, strict=True))
        for key, delivery in read.items():
            counts = ", ".join(f"{n} {f.height}" for n, f in delivery.items() if f.height)
            context.log.info(f"read delivery {key} ({n_files[key]} files): {counts}")
        return read

    return delivery_frames


def _raw_datasets(sources: Sequence[SourceFormat]) -> dg.AssetsDefinition:
    outputs = [*raw_dataset_names(sources), QUARANTINE, FINDINGS]
    contracts = {name: source.contract(name) for source in sources for name in source.datasets}

    @pipeline_asset(
        dg.multi_asset,
        contracts,
        group_name=GROUP,
        outs={name: dg.AssetOut(kinds={"polars"}) for name in outputs},
    )
    def raw_datasets(
        context: dg.AssetExecutionContext,
        settings: TrialSettings,
        landing_manifest: pl.DataFrame,
        delivery_frames: dict[str, dict[str, pl.LazyFrame]],
    ) -> Iterator[dg.Output[Frame]]:
        """Typed frames of every registered raw format, with lineage (source_file,
        source_line), and the quarantine of every line or file a reader or a trial-level rule
        rejected: the current file versions of the stored delivery frames (rows of a
        shrinking EDC snapshot kept in force), cross-file rules applied.
        ``vendor_b_sessions``: the vendor-B sessions summarised from their events (joined
        across files and deliveries). ``integrity_findings``: rows kept but named by a
        trial-level rule (``data_contracts/trial_rules.yaml``)."""
        raw_root = Path(settings.raw_dir)
        keys = manifest_delivery_keys(landing_manifest)
        missing = [k for k in keys["delivery_key"] if k not in delivery_frames]
        if missing:
            raise ValueError(
                f"{len(missing)} deliveries not yet read (materialise delivery_frames for them "
                f"first): {', '.join(missing[:5])}"
            )
        context.log.info(
            f"{keys.height} current deliveries of {len(delivery_frames)} stored partitions"
        )
        current = {k: delivery_frames[k] for k in keys["delivery_key"]}
        stale = stale_deliveries(current, raw_root, sources)
        if stale:
            raise ValueError(
                f"{len(stale)} stored deliveries were read by an earlier version of the "
                "pipeline (a frame of a registered format is missing or lacks columns its "
                f"reader gives now): remove "
                f"{Path(settings.out_dir) / 'partitions' / DELIVERY_FRAMES}/<key> for "
                f"{', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''} and run again, and "
                "they are read anew"
            )
        # Formats resolved in parts (the vendor-B telemetry's ranges) keep them here between
        # runs and reuse the parts whose files and code are unchanged (one run at a time
        # writes an output folder: pipelines/out_lock.py).
        datasets = resolve_raw_datasets(
            landing_manifest,
            list(current.values()),
            raw_root,
            settings.study().current_tolerance_pct,
            Path(settings.out_dir) / ".resolved",
            sources,
            code_version=code_version(context.assets_def),
        )
        for name in outputs:
            frame = datasets[name]
            if isinstance(frame, pl.DataFrame):
                context.log.info(f"{name}: {frame.height} rows")
            yield dg.Output(frame, output_name=name)

    return raw_datasets


@pipeline_asset(dg.asset, group_name=GROUP, kinds={"polars"})
def randomisation(
    context: dg.AssetExecutionContext,
    settings: TrialSettings,
    dm: pl.DataFrame,
    visits: pl.DataFrame,
    disposition: pl.DataFrame,
    devices: pl.DataFrame,
    device_sessions: pl.DataFrame,
    addev: pl.DataFrame,
    quarantine: pl.DataFrame,
) -> pl.DataFrame:
    """The sealed randomisation list, read only in an unblinded run (``ionto run --unblind``);
    a blinded run never opens it and this asset is then empty. Every arm-bearing asset
    depends on it, so it first claims the output folder for the run's mode
    (``pipelines/blinding_record.py``): a run of the other mode stops here. Before anything
    is derived from it, the list is checked against the study and the data
    (:mod:`trial.derive.unblinding`: arm codes, every randomised or treated subject exactly
    once, no unknown subject, strata as ``dm.csv`` says, plausible dates); a list that does not
    fit stops the run here, with one line naming its first problems."""
    claim_output_folder(Path(settings.out_dir), settings.blinded)
    if settings.blinded:
        context.log.info("blinded run: the sealed randomisation list is not read")
        return empty_frame(load_contract("randomisation"))
    context.log.warning(f"UNBLINDED run: reading the sealed list {settings.unblind_path}")
    rows, q = read_randomisation(Path(settings.unblind_path))
    if q.height:
        raise SealedListError(
            f"the sealed randomisation list {settings.unblind_path} has {q.height} bad rows: "
            + "; ".join(q["message"].head(5).to_list())
            + ". Nothing unblinded was written"
        )
    dm_held = quarantined_keys(quarantine, "dm", ["subject_id"])["subject_id"]
    problems = sealed_list_problems(
        rows,
        dm,
        dm_held,
        visits,
        disposition,
        sessions_started(device_sessions, devices, addev),
        settings.study(),
    )
    check_sealed_list(problems, settings.unblind_path)
    context.log.info(f"sealed list checked: {rows.height} subjects fit the study and its data")
    return rows
