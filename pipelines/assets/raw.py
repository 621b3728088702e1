"""Raw group: the landing manifest and every raw dataset read from the current file versions.

One step reads all formats (the landing manifest decides which file versions are current);
each dataset is its own asset so that the UI shows its rows, preview and contract check.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl

from ingest.landing import current_files, landing_quarantine, scan_raw
from ingest.quarantine import combine
from ingest.readers.balance import read_balance, weighings_as_gravimetry
from ingest.readers.bench_ibu import read_bench_ibu
from ingest.readers.edc import read_edc_table, read_randomisation
from ingest.readers.gravimetry import read_gravimetry, resolve_duplicate_papers
from ingest.readers.vendor_a import earliest_consent, read_vendor_a
from ingest.readers.vendor_b import read_vendor_b
from pipelines.resources import TrialSettings

GROUP = "raw"
EDC_TABLES = ["dm", "eligibility", "visits", "hdss", "ae", "disposition", "devices"]
RAW_OUTPUTS = [
    *EDC_TABLES,
    "gravimetry",
    "gravimetry_duplicates",
    "vendor_a_sessions",
    "vendor_b_events",
    "bench_ibu_frames",
    "balance_weighings",
    "quarantine",
]


@dg.asset(group_name=GROUP, kinds={"polars"})
def landing_manifest(context: dg.AssetExecutionContext, settings: TrialSettings) -> pl.DataFrame:
    """Every file under the raw root with centre, delivery, SHA-256, size, version chain and
    whether a later delivery supersedes it; nothing is ever removed from it."""
    manifest = scan_raw(Path(settings.raw_dir))
    context.log.info(f"landing area: {manifest.height} files under {settings.raw_dir}")
    return manifest


@dg.multi_asset(
    group_name=GROUP,
    outs={name: dg.AssetOut(kinds={"polars"}) for name in RAW_OUTPUTS},
)
def raw_datasets(
    context: dg.AssetExecutionContext, settings: TrialSettings, landing_manifest: pl.DataFrame
) -> Iterator[dg.Output[pl.DataFrame]]:
    """Typed frames of every raw format, with lineage (source_file, source_line), and the
    quarantine of every line or file a reader rejected."""
    raw_root = Path(settings.raw_dir)
    quarantines = [landing_quarantine(landing_manifest)]
    edc: dict[str, pl.DataFrame] = {}
    for table in EDC_TABLES:
        edc[table], q = read_edc_table(raw_root, landing_manifest, table)
        quarantines.append(q)
        context.log.info(f"read {table}: {edc[table].height} rows, {q.height} quarantined")
        yield dg.Output(edc[table], output_name=table)
    sheets, q, sheet_pairs = read_gravimetry(raw_root, landing_manifest)
    quarantines.append(q)
    context.log.info(f"read gravimetry worksheets: {sheets.height} papers, {q.height} quarantined")
    weighings, q = read_balance(raw_root, landing_manifest)
    quarantines.append(q)
    context.log.info(f"read bench balance: {weighings.height} weighings, {q.height} quarantined")
    yield dg.Output(weighings, output_name="balance_weighings")
    # A paper weighed at the bench and also on a worksheet: later delivery, then later line.
    papers, bench_pairs = resolve_duplicate_papers(
        pl.concat([sheets, weighings_as_gravimetry(weighings)]), current_files(landing_manifest)
    )
    yield dg.Output(papers.sort("source_file", "source_line"), output_name="gravimetry")
    yield dg.Output(pl.concat([sheet_pairs, bench_pairs]), output_name="gravimetry_duplicates")
    consent = earliest_consent(edc["dm"], edc["devices"])
    sessions_a, q = read_vendor_a(raw_root, landing_manifest, consent)
    quarantines.append(q)
    context.log.info(f"read vendor A: {sessions_a.height} sessions, {q.height} quarantined")
    yield dg.Output(sessions_a, output_name="vendor_a_sessions")
    events_b, q = read_vendor_b(raw_root, landing_manifest)
    quarantines.append(q)
    context.log.info(f"read vendor B: {events_b.height} events, {q.height} quarantined")
    yield dg.Output(events_b, output_name="vendor_b_events")
    frames_ibu, q = read_bench_ibu(raw_root, landing_manifest)
    quarantines.append(q)
    context.log.info(f"read bench IBU: {frames_ibu.height} frames, {q.height} quarantined")
    yield dg.Output(frames_ibu, output_name="bench_ibu_frames")
    yield dg.Output(combine(quarantines), output_name="quarantine")


@dg.asset(group_name=GROUP, kinds={"polars"})
def randomisation(context: dg.AssetExecutionContext, settings: TrialSettings) -> pl.DataFrame:
    """The sealed randomisation list, read only in an unblinded run (``ionto run --unblind``);
    a blinded run never opens it and this asset is then empty."""
    if settings.blinded:
        context.log.info("blinded run: the sealed randomisation list is not read")
        from data_contracts.contracts import empty_frame, load_contract

        return empty_frame(load_contract("randomisation"))
    context.log.warning(f"UNBLINDED run: reading the sealed list {settings.unblind_path}")
    rows, q = read_randomisation(Path(settings.unblind_path))
    if q.height:
        raise ValueError(
            f"the sealed randomisation list {settings.unblind_path} has {q.height} bad rows: "
            + "; ".join(q["message"].head(5).to_list())
        )
    return rows
