"""Clean and analysis-ready groups: device sessions of every registered format, per-paper sweat
rates, device sessions mapped to subjects, and the ADaM-style tables (ADSL, ADSWEAT,
ADSWEAT_SIDE, ADHDSS, ADAE, ADDEV) with the model inputs. Asset bodies call the Dagster-free
functions of ``trial.derive``.

Per subject, recomputed in proportion (:mod:`pipelines.subject_store`, rows kept under
``OUT/.resolved/<asset>/``): ``sweat_papers`` (with ``superseded_papers``) and ``adsweat``,
whose rows of one subject depend only on that subject's rows (papers: gravimetry; region
values: papers, visits and demographics), the study and the code. Not per subject:
``device_sessions`` is per device, but the vendor-B sessions it takes are already resolved in
proportion (the telemetry's ranges) and the rest is a renaming and a sort, cheaper than the
signatures; ``addev`` maps sessions through ``devices.csv`` date ranges, which cross subjects
(a serial moves between subjects, a date in two subjects' ranges is ambiguous, an unplaced
clock-reset session needs the serial's only owner); adherence is per subject but computed in
the trial-level ``adsl`` step from ``addev``, one group-by cheaper than reading stored rows.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg
import polars as pl

from ingest.device_sessions import registry_device_sessions
from ingest.registry import session_inputs
from ingest.source_format import SourceFormat
from pipelines.asset_step import pipeline_asset
from pipelines.freshness import code_version, file_digest
from pipelines.resources import TrialSettings
from pipelines.subject_store import SubjectDerivation, SubjectRefresh, derive_by_subject
from study import DEFAULT_STUDY, Study, example_study_path
from trial.derive.accountability import subjects_seen
from trial.derive.adice import derive_adice
from trial.derive.ae import ae_coding_findings, derive_adae
from trial.derive.analysis_long import build_analysis_long
from trial.derive.findings import gravimetry_findings, stratum_findings
from trial.derive.gravimetry import latest_papers, paper_rates
from trial.derive.hdss import derive_adhdss
from trial.derive.sessions import adherence, map_sessions, sessions_started
from trial.derive.subjects import derive_adsl
from trial.derive.sweat import derive_adsweat, derive_adsweat_side

CLEAN = "clean"
READY = "analysis_ready"


def device_sessions_asset(sources: Sequence[SourceFormat]) -> dg.AssetsDefinition:
    """``device_sessions`` for the registry ``sources``: its inputs are the datasets of every
    format that makes sessions."""

    @pipeline_asset(
        dg.asset,
        name="device_sessions",
        group_name=CLEAN,
        kinds={"polars"},
        ins={name: dg.AssetIn(name) for name in session_inputs(sources)},
    )
    def device_sessions(settings: TrialSettings, **datasets: pl.DataFrame) -> pl.DataFrame:
        """One row per distinct session of every home device and bench unit, each source
        format's rows made sessions its own way (summaries from the samples where the device
        sends samples: vendor B at 2 Hz, bench units at 10 Hz)."""
        tolerance = settings.study().current_tolerance_pct
        return registry_device_sessions(sources, datasets, tolerance)

    return device_sessions


def _paper_rates(inputs: Mapping[str, pl.DataFrame], study: Study) -> dict[str, pl.DataFrame]:
    latest, superseded = latest_papers(inputs["gravimetry"])
    return {"sweat_papers": paper_rates(latest, study), "superseded_papers": superseded}


def _region_values(inputs: Mapping[str, pl.DataFrame], study: Study) -> dict[str, pl.DataFrame]:
    return {
        "adsweat": derive_adsweat(inputs["sweat_papers"], inputs["visits"], inputs["dm"], study)
    }


def sweat_papers_derivation() -> SubjectDerivation:
    """Papers per subject, in the worksheets' file and line order (the order of
    ``gravimetry``). A function, not a constant, so that the asset's code version reaches
    the derivation's code (``pipelines.freshness``: an asset's own module is followed through
    the functions it calls)."""
    order = ("source_file", "source_line")
    return SubjectDerivation(
        name="sweat_papers",
        inputs=("gravimetry",),
        order={"sweat_papers": order, "superseded_papers": order},
        compute=_paper_rates,
    )


def adsweat_derivation() -> SubjectDerivation:
    """Region values per subject, in ADSWEAT's order (a function: see
    :func:`sweat_papers_derivation`)."""
    return SubjectDerivation(
        name="adsweat",
        inputs=("sweat_papers", "visits", "dm"),
        order={"adsweat": ("subject_id", "PARAMCD", "AVISITN")},
        compute=_region_values,
    )


def _by_subject(
    context: dg.AssetExecutionContext,
    settings: TrialSettings,
    derivation: SubjectDerivation,
    inputs: Mapping[str, pl.DataFrame],
) -> SubjectRefresh:
    """``derivation`` recomputed for the subjects whose rows changed since the last run into
    this output folder (salt: the asset's code version and the study file's bytes); the
    counts go to each output's metadata."""
    study_file = Path(settings.study_path) if settings.study_path else None
    salt = "\n".join(
        [
            code_version(context.assets_def),
            file_digest(study_file or example_study_path(DEFAULT_STUDY)),
        ]
    )
    refresh = derive_by_subject(
        derivation,
        inputs,
        settings.study(),
        Path(settings.out_dir) / ".resolved",
        salt,
    )
    context.log.info(
        f"{derivation.name}: {len(refresh.recomputed)} of {refresh.subjects} subjects "
        f"recomputed, {len(refresh.dropped)} dropped"
    )
    for name in derivation.order:
        output = context.assets_def.get_output_name_for_asset_key(dg.AssetKey(name))
        context.add_output_metadata(refresh.metadata(), output_name=output)
    return refresh


@pipeline_asset(
    dg.multi_asset,
    group_name=CLEAN,
    outs={"sweat_papers": dg.AssetOut(kinds={"polars"}), "superseded_papers": dg.AssetOut()},
)
def sweat_papers(
    context: dg.AssetExecutionContext, settings: TrialSettings, gravimetry: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sweat rate per paper in mg/min (grams converted), invalid rates (wet <= dry) flagged and
    excluded from region values, never clipped; per subject."""
    inputs = {"gravimetry": gravimetry}
    out = _by_subject(context, settings, sweat_papers_derivation(), inputs).outputs
    return out["sweat_papers"], out["superseded_papers"]


@pipeline_asset(
    dg.multi_asset,
    outs={
        "addev": dg.AssetOut(kinds={"polars"}, group_name=READY),
        "unmapped_sessions": dg.AssetOut(kinds={"polars"}, group_name=CLEAN),
    },
)
def addev(
    settings: TrialSettings,
    device_sessions: pl.DataFrame,
    devices: pl.DataFrame,
    visits: pl.DataFrame,
    vendor_b_events: pl.LazyFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Device sessions mapped to subjects through devices.csv date ranges (device swaps
    included); sessions matching no subject go to ``unmapped_sessions`` for the data managers."""
    return map_sessions(device_sessions, devices, visits, vendor_b_events, settings.study())


@pipeline_asset(dg.asset, group_name=READY, kinds={"polars"})
def adsweat(
    context: dg.AssetExecutionContext,
    settings: TrialSettings,
    sweat_papers: pl.DataFrame,
    visits: pl.DataFrame,
    dm: pl.DataFrame,
) -> pl.DataFrame:
    """BDS table of log sweat rate per region and visit: AVAL, BASE, CHG, PCHG, windows; per
    subject."""
    inputs = {"sweat_papers": sweat_papers, "visits": visits, "dm": dm}
    return _by_subject(context, settings, adsweat_derivation(), inputs).outputs["adsweat"]


@pipeline_asset(dg.asset, group_name=READY, kinds={"polars"})
def adsl(
    context: dg.AssetExecutionContext,
    settings: TrialSettings,
    dm: pl.DataFrame,
    eligibility: pl.DataFrame,
    visits: pl.DataFrame,
    disposition: pl.DataFrame,
    devices: pl.DataFrame,
    device_sessions: pl.DataFrame,
    addev: pl.DataFrame,
    adsweat: pl.DataFrame,
    sweat_papers: pl.DataFrame,
    randomisation: pl.DataFrame,
    quarantine: pl.DataFrame,
    hdss: pl.DataFrame,
    ae: pl.DataFrame,
    cm: pl.DataFrame,
    gravimetry: pl.DataFrame,
) -> pl.DataFrame:
    """One row per subject seen anywhere (``dm``, any other subject-keyed table, kept or
    quarantined, the sealed list when unblinded): demographics, stratum, analysis-set flags,
    eligibility reasons (the screening papers give the entry sweat-rate criterion), what is
    missing or quarantined and why (``dm_status``, ``data_issues``); the arm only in an
    unblinded run."""
    study = settings.study()
    sealed = None if settings.blinded else randomisation
    context.log.info("blinded: no arm column" if sealed is None else "unblinded: arm added")
    tables = {
        "eligibility": eligibility,
        "visits": visits,
        "hdss": hdss,
        "ae": ae,
        "cm": cm,
        "disposition": disposition,
        "devices": devices,
        "gravimetry": gravimetry,
    }
    seen = subjects_seen(dm, quarantine, tables, sealed)
    return derive_adsl(
        dm,
        eligibility,
        visits,
        disposition,
        adsweat,
        sweat_papers,
        sessions_started(device_sessions, devices, addev),
        adherence(addev, study),
        study,
        randomisation=sealed,
        seen=seen,
    )


@pipeline_asset(dg.asset, group_name=READY, kinds={"polars"})
def adsweat_side(
    settings: TrialSettings, sweat_papers: pl.DataFrame, adsweat: pl.DataFrame
) -> pl.DataFrame:
    """Per-side analysis values (sensitivity 3: sides as separate observations)."""
    return derive_adsweat_side(sweat_papers, adsweat, settings.study())


@pipeline_asset(dg.asset, group_name=READY, kinds={"polars"})
def adhdss(settings: TrialSettings, hdss: pl.DataFrame, visits: pl.DataFrame) -> pl.DataFrame:
    """HDSS per visit with baseline, change and responder flag."""
    return derive_adhdss(hdss, visits, settings.study())


@pipeline_asset(dg.asset, group_name=READY, kinds={"polars"})
def adae(settings: TrialSettings, ae: pl.DataFrame, adsl: pl.DataFrame) -> pl.DataFrame:
    """Adverse events (latest snapshot) with treatment-emergent flag and study day."""
    return derive_adae(ae, adsl, settings.study())


@pipeline_asset(dg.asset, group_name=READY, kinds={"polars"})
def adice(
    settings: TrialSettings,
    adsl: pl.DataFrame,
    disposition: pl.DataFrame,
    visits: pl.DataFrame,
    addev: pl.DataFrame,
    cm: pl.DataFrame,
    adsweat: pl.DataFrame,
) -> pl.DataFrame:
    """Intercurrent events (SAP section 11), one row per subject and ICE, derived from the
    data: discontinuation (withdrawal, or a session gap before the treatment-end visit) and
    rescue treatment (cm.csv), with the first visit each affects and its post-ICE rows."""
    return derive_adice(adsl, disposition, visits, addev, cm, adsweat, settings.study())


@pipeline_asset(dg.asset, group_name=READY, kinds={"polars"})
def analysis_long(
    settings: TrialSettings, adsl: pl.DataFrame, adsweat: pl.DataFrame
) -> pl.DataFrame:
    """Primary model input: FAS subjects x observed model visits (change in log palmar rate)."""
    return build_analysis_long(adsl, adsweat, settings.study(), population="FAS")


@pipeline_asset(dg.asset, group_name=READY, kinds={"polars"})
def analysis_long_pp(
    settings: TrialSettings, adsl: pl.DataFrame, adsweat: pl.DataFrame
) -> pl.DataFrame:
    """Sensitivity 2 input: PP subjects, out-of-window visits excluded."""
    return build_analysis_long(adsl, adsweat, settings.study(), population="PP")


@pipeline_asset(dg.asset, group_name=CLEAN, kinds={"polars"})
def derivation_findings(
    settings: TrialSettings,
    sweat_papers: pl.DataFrame,
    superseded_papers: pl.DataFrame,
    adsl: pl.DataFrame,
    adae: pl.DataFrame,
    randomisation: pl.DataFrame,
    integrity_findings: pl.DataFrame,
) -> pl.DataFrame:
    """Data-quality findings: the trial-level rules' findings on kept raw rows
    (``integrity_findings``), then the derivations': invalid or missing rates, papers outside
    the schedule, superseded paper rows, adverse events the study dictionary does not code,
    stratum disagreements (unblinded only)."""
    study = settings.study()
    findings = [
        integrity_findings,
        gravimetry_findings(sweat_papers, superseded_papers, study),
        ae_coding_findings(adae, study),
    ]
    if not settings.blinded:
        findings.append(stratum_findings(adsl, randomisation))
    return pl.concat(findings)
