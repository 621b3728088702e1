"""Reports group: the investigator report, the data-quality report and the SAS v5 exports,
rebuilt whenever their inputs change. Files go under ``OUT/reports`` and ``OUT/exports/xpt``;
the asset's metadata says where."""

from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.asset_step import pipeline_asset
from pipelines.resources import TrialSettings
from trial.models.result import ModelResult
from trial.report.data import build_report_data
from trial.report.exports import write_xpt_exports
from trial.report.outputs import with_count_findings, write_investigator_outputs
from trial.report.pdf import PrintBrowser, find_chromium
from trial.report.quality import render_data_quality_report
from trial.report.run_info import run_info_for

GROUP = "reports"
INVESTIGATOR_REPORT = dg.AssetKey("investigator_report")


@pipeline_asset(dg.asset, group_name=GROUP, kinds={"html"})
def investigator_report(
    context: dg.AssetExecutionContext,
    settings: TrialSettings,
    browser: dg.ResourceParam[PrintBrowser],
    landing_manifest: pl.DataFrame,
    eligibility: pl.DataFrame,
    adsl: pl.DataFrame,
    adsweat: pl.DataFrame,
    adhdss: pl.DataFrame,
    mmrm_primary: ModelResult,
    mmrm_pp: ModelResult,
    lmm_sensitivity1: ModelResult,
    sides_sensitivity3: ModelResult,
    ancova_sensitivity4: ModelResult,
    responders: ModelResult,
    subgroups: ModelResult,
    plantar: ModelResult,
    durability: ModelResult,
    safety: ModelResult,
    device: ModelResult,
    fixed_sequence: ModelResult,
    estimands: ModelResult,
    tipping_point: ModelResult,
) -> dg.MaterializeResult:
    """One self-contained HTML report (and a PDF print when Chromium is installed), BLINDED
    or UNBLINDED on every page; blinded runs show pooled results only. Adverse events and
    device use are the safety and device model results (pooled in a blinded run). The PDF is
    printed with the run's Chromium when ``ionto run`` started one ahead (``browser``)."""
    run = run_info_for(landing_manifest, blinded=settings.blinded)
    tables = {"eligibility": eligibility, "adsl": adsl, "adsweat": adsweat, "adhdss": adhdss}
    models = [mmrm_primary, mmrm_pp, lmm_sensitivity1, sides_sensitivity3, ancova_sensitivity4]
    models += [responders, subgroups, plantar, durability, safety, device, fixed_sequence]
    models += [estimands, tipping_point]
    study = settings.study()
    data = build_report_data(tables, {m.name: m for m in models}, study, run)
    reports = Path(settings.out_dir) / "reports"
    pdf = find_chromium() is not None
    written = write_investigator_outputs(data, reports, pdf=pdf, chromium=browser.chromium)
    html, rtf_files = written["investigator"][0], written["rtf"]
    context.log.info(
        f"investigator report: {html}" + (" (+ PDF)" if pdf else " (no Chromium: no PDF)")
    )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(html)),
            "pdf": dg.MetadataValue.path(str(html.with_suffix(".pdf"))) if pdf else "not printed",
            "blinded": settings.blinded,
            "data_version": run.data_version,
            "rtf_outputs": len(rtf_files),
        }
    )


@pipeline_asset(dg.asset, group_name=GROUP, kinds={"html"})
def data_quality_report(
    settings: TrialSettings,
    landing_manifest: pl.DataFrame,
    quarantine: pl.DataFrame,
    device_sessions: pl.DataFrame,
    unmapped_sessions: pl.DataFrame,
    gravimetry_duplicates: pl.DataFrame,
    derivation_findings: pl.DataFrame,
    adsl: pl.DataFrame,
    adsweat: pl.DataFrame,
    adhdss: pl.DataFrame,
    addev: pl.DataFrame,
    eligibility: pl.DataFrame,
    safety: ModelResult,
    device: ModelResult,
) -> dg.MaterializeResult:
    """Every item a data manager must act on, with file, line, field and what to fix, and its
    life (stable id, first-seen delivery, resolved since the previous run, open findings per
    centre with their age; ``OUT/reports/findings_ledger.parquet`` kept between runs), and
    every N of the investigator report's numbered outputs that disagrees with its analysis set
    (``trial.report.count_reconciliation``; the outputs' Ns come from ADSL and the safety and
    device results, as the run is blinded or not). Always BLINDED (it goes to data managers),
    also in an unblinded run."""
    study = settings.study()
    counted = build_report_data(
        {"eligibility": eligibility, "adsl": adsl, "adsweat": adsweat, "adhdss": adhdss},
        {safety.name: safety, device.name: device},
        study,
        run_info_for(landing_manifest, blinded=settings.blinded),
    )
    run = run_info_for(landing_manifest, blinded=True)
    tables = {
        "quarantine": quarantine,
        "device_sessions": device_sessions,
        "unmapped_sessions": unmapped_sessions,
        "gravimetry_duplicates": gravimetry_duplicates,
        "derivation_findings": derivation_findings,
        "adsl": adsl,
        "adsweat": adsweat,
        "adhdss": adhdss,
        "addev": addev,
    }
    path = render_data_quality_report(
        with_count_findings(tables, counted),
        study,
        run,
        Path(settings.out_dir) / "reports",
        landing_manifest,
    )
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "quarantined": quarantine.height}
    )


@pipeline_asset(dg.asset, group_name=GROUP, kinds={"sas"})
def xpt_exports(
    context: dg.AssetExecutionContext,
    settings: TrialSettings,
    adsl: pl.DataFrame,
    adsweat: pl.DataFrame,
    adsweat_side: pl.DataFrame,
    adhdss: pl.DataFrame,
    adae: pl.DataFrame,
    addev: pl.DataFrame,
) -> dg.MaterializeResult:
    """The analysis-ready tables as SAS transport v5 files with a define table built from the
    data contracts; what the v5 limits changed (a value over 200 bytes cut, a label cut,
    text transliterated to ASCII) is listed in ``export_notes.txt`` beside them and logged as
    a warning."""
    tables = {"adsl": adsl, "adsweat": adsweat, "adsweat_side": adsweat_side, "adhdss": adhdss}
    tables |= {"adae": adae, "addev": addev}
    result = write_xpt_exports(tables, Path(settings.out_dir) / "exports" / "xpt")
    for note in result.notes:
        context.log.warning(f"XPT export: {note}")
    # Each file as a path: the paths an asset reports are what its fingerprint trusts
    # (pipelines/freshness.py), so a deleted export makes the asset stale.
    return dg.MaterializeResult(
        metadata={
            **{p.name: dg.MetadataValue.path(str(p)) for p in result.paths},
            "notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in result.notes) or "-"),
        }
    )
