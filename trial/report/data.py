"""Everything the investigator report shows, as Polars frames: :func:`build_report_data`.

The HTML renderer only formats these frames; the tests check these numbers. Adverse events and
device use come from the ``safety`` and ``device`` model results, the same typed results the
models group writes. In a blinded run (``RunInfo.blinded``; ``adsl`` without ``arm``) every
frame is pooled (``group == "TOTAL"``; the safety and device results are then pooled too) and
no arm-level model result is shown: those are withheld until unblinding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import polars as pl

from study import Study
from trial.derive.accountability import DM_ABSENT
from trial.estimands import results as estimand_results
from trial.models import device as device_model
from trial.models import safety as safety_model
from trial.models.result import ModelResult
from trial.report import model_tables as mt
from trial.report import summaries as sm
from trial.report.accountability import data_issue_subjects, reconciliation
from trial.report.count_reconciliation import accountability_rows, count_reconciliation
from trial.report.estimands_section import EstimandsSection, section_data
from trial.report.investigator_tables import investigator_outputs
from trial.report.run_info import RunInfo

REQUIRED_TABLES = ("adsl", "adsweat", "adhdss")
"""Tables :func:`build_report_data` needs; ``eligibility`` (raw) is optional and gives the
screen-failure reasons. Adverse events and device use come from the ``safety`` and ``device``
model results, not from ADAE and ADDEV."""


@dataclass(frozen=True)
class ReportData:
    """Numbers behind every table and figure of the investigator report.

    Frames from :mod:`trial.report.summaries` (descriptive, by ``group``; adverse events and
    device use from the safety and device results, with no columns when a result is missing)
    and :mod:`trial.report.model_tables` (model results; empty when blinded or not fitted)."""

    study: Study
    run: RunInfo
    groups: list[str]
    consort: pl.DataFrame
    enrolment: pl.DataFrame
    baseline: pl.DataFrame
    time_course: pl.DataFrame
    plantar_time_course: pl.DataFrame
    responders: pl.DataFrame
    ae_soc_pt: pl.DataFrame
    ae_severity: pl.DataFrame
    ae_related: pl.DataFrame
    ae_discontinuation: pl.DataFrame
    serious_events: pl.DataFrame
    device: pl.DataFrame
    induction_adherence: pl.DataFrame
    faults: pl.DataFrame
    primary_lsmeans: pl.DataFrame
    multiplicity: pl.DataFrame
    baseline_visits: pl.DataFrame
    primary_contrasts: pl.DataFrame
    covariance_structure: str | None
    sensitivity: pl.DataFrame
    subgroups: pl.DataFrame
    responder_models: pl.DataFrame
    secondary: pl.DataFrame
    model_notes: pl.DataFrame
    methods: list[tuple[str, str]]
    estimands: EstimandsSection | None = None
    accountability: pl.DataFrame = field(default_factory=pl.DataFrame)
    data_issue_subjects: pl.DataFrame = field(default_factory=pl.DataFrame)
    count_reconciliation: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def blinded(self) -> bool:
        return self.run.blinded

    def frames(self) -> dict[str, pl.DataFrame]:
        """Every frame by name (for writing next to the report, scanning and tests)."""
        return {
            name: value for name, value in vars(self).items() if isinstance(value, pl.DataFrame)
        }


def check_blinding(adsl: pl.DataFrame, run: RunInfo) -> None:
    """Refuse to build a report whose blinding label disagrees with its data: a blinded report
    from an ADSL carrying ``arm`` would print arm-level results under a BLINDED banner."""
    if run.blinded and sm.is_unblinded(adsl):
        raise ValueError("blinded report requested, but adsl carries the arm column")
    if not run.blinded and not sm.is_unblinded(adsl):
        raise ValueError("unblinded report requested, but adsl has no arm column")


def check_result_blinding(result: ModelResult, run: RunInfo, pooled: str) -> None:
    """Refuse a safety or device result whose arms disagree with the report's blinding label:
    a blinded report takes pooled results only (arm ``pooled``), an unblinded one results by
    arm."""
    arms = {
        arm
        for table in result.tables.values()
        if "arm" in table.columns
        for arm in table["arm"].drop_nulls().unique().to_list()
    }
    if run.blinded and arms - {pooled}:
        raise ValueError(f"blinded report requested, but model result {result.name!r} is by arm")
    if not run.blinded and pooled in arms:
        raise ValueError(f"unblinded report requested, but model result {result.name!r} is pooled")


def methods_block(
    study: Study, run: RunInfo, consort: pl.DataFrame, baseline_visits: pl.DataFrame | None = None
) -> list[tuple[str, str]]:
    """Methods and populations footnotes generated from the study configuration.

    A blinded run names neither the arms nor the block size (CONSORT items 8-11 are
    completed at unblinding)."""
    alloc = study.allocation
    ratio = ":".join(str(r) for r in alloc.ratio)
    arms = (
        "; ".join(f"{a.code} = {a.name} ({a.solution})" for a in study.arms)
        if not run.blinded
        else f"{len(study.arms)} arms, masked in this blinded report"
    )
    block = "" if run.blinded else f", permuted blocks of {alloc.block_size}"
    pp = study.analysis_sets.pp
    models = study.models
    mmrm = models.mmrm
    responder = study.endpoints.responder
    region = study.region_label(study.primary_region.code).lower()
    windows = ", ".join(
        f"{v.code} day {v.target_day}" + (f" ±{v.window_days}" if v.window_days else "")
        for v in study.visits
    )

    def total(stage: str) -> int:
        rows = consort.filter(
            (pl.col("stage") == stage) & (pl.col("group") == sm.TOTAL) & pl.col("reason").is_null()
        )
        return int(rows["n"].sum())

    subgroups = ", ".join(g.name.replace("_", " ") for g in models.subgroups)
    base_counts = (
        {}
        if baseline_visits is None
        else dict(zip(baseline_visits["visit"], baseline_visits["n"], strict=True))
    )
    fallback = study.baseline_fallback_visit
    from_fallback = base_counts.get(fallback, 0) if fallback else 0
    baseline_note = (
        f"Baseline = the {study.baseline_visit} visit value; where it is missing or invalid, the "
        f"{fallback} value (screening) is the baseline: {from_fallback} of "
        f"{sum(base_counts.values())} FAS subjects took their baseline from {fallback}."
        if fallback
        else f"Baseline = the {study.baseline_visit} visit value."
    )
    return [
        ("Study", f"{study.study_id}: {study.title}. Centres: {', '.join(study.centres)}."),
        (
            "Randomisation",
            f"Allocation {ratio}{block}, stratified by {' and '.join(alloc.strata)}. Arms: {arms}.",
        ),
        ("Visits", f"Target study day and window (days): {windows}. Day 1 is the baseline visit."),
        ("Baseline", baseline_note),
        (
            "Primary endpoint",
            f"Change from baseline in ln {region} sweat rate at {study.primary_visit}; percent "
            "reduction within an arm = 100 x (1 - exp(LS mean change)); treatment effect = ratio "
            "of geometric means versus the reference arm.",
        ),
        (
            "Analysis sets",
            f"Screened {total('screened')}, randomised {total('randomised')}. "
            f"Full analysis set (FAS, n = {total('analysed_fas')}): randomised, >= 1 session, a "
            f"baseline and >= 1 post-baseline {region} value; analysed as randomised. Per-protocol "
            f"(n = {total('analysed_pp')}): FAS with >= {pp.min_induction_sessions_share:.0%} "
            f"of planned induction sessions at >= {pp.min_current_share:.0%} of the "
            f"prescribed current for >= {pp.min_duration_share:.0%} of the duration, no major "
            "eligibility violation, out-of-window visits excluded. Safety "
            f"(n = {total('analysed_safety')}): >= 1 session started; analysed as treated.",
        ),
        (
            "Primary model",
            f"MMRM on the FAS, visits {', '.join(study.model_visits)}; fixed effects arm, visit, "
            "arm x visit, ln baseline, ln baseline x visit, centre, screening HDSS stratum; "
            f"{mmrm.covariance} within-subject covariance (fallback "
            f"{', '.join(mmrm.fallback)}), REML, {mmrm.ddf} denominator df. Missing data "
            "assumed missing at random (no imputation).",
        ),
        (
            "Responders",
            f"HDSS improvement >= {responder.hdss_improvement} points, or {region} rate "
            f"reduction >= {responder.sweat_reduction_pct:g} %, at {study.primary_visit}; a "
            "missing value counts as non-response. Logistic regression on arm, centre and "
            "stratum; Cochran-Mantel-Haenszel by centre as a check.",
        ),
        ("Subgroups", f"Treatment effect at {study.primary_visit} by {subgroups}."),
        (
            "Summaries",
            f"Sweat rates: geometric means with t-based {study.ci_label} on the log scale. Adverse "
            "events: "
            "treatment-emergent, subjects counted once per term and level, safety set. Device: "
            f"{study.planned_sessions_total} planned sessions per subject and treated region; "
            "charge = integral of current over time (mC).",
        ),
    ]


def build_report_data(
    tables: Mapping[str, pl.DataFrame],
    models: Mapping[str, ModelResult],
    study: Study,
    run: RunInfo,
    roles: mt.ModelRoles = mt.DEFAULT_ROLES,
) -> ReportData:
    """All numbers of the investigator report.

    ``tables``: ``adsl, adsweat, adhdss`` (``docs/architecture.md``), optionally
    the raw ``eligibility`` table for screen-failure reasons. ``models``: model results (keyed by
    anything; matched by ``ModelResult.name`` as ``ModelRoles`` says, and ``safety`` and
    ``device`` for adverse events and device use, pooled in a blinded run; a missing or
    unfitted one leaves its section saying so)."""
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise KeyError(f"report needs tables {missing}")
    adsl, adsweat = tables["adsl"], tables["adsweat"]
    check_blinding(adsl, run)
    groups = sm.group_order(adsl, study)
    # Subjects seen only outside dm.csv keep an ADSL row but were never screened.
    screened = (
        adsl.filter(pl.col("dm_status") != DM_ABSENT) if "dm_status" in adsl.columns else adsl
    )
    consort = sm.consort_flow(screened, adsweat, study, tables.get("eligibility"))
    plantar = [r for r in study.regions if not r.primary]
    named = mt.by_result_name(models)
    safety = named.get(safety_model.NAME)
    device = named.get(device_model.NAME)
    if safety is not None:
        check_result_blinding(safety, run, safety_model.POOLED)
    if device is not None:
        check_result_blinding(device, run, device_model.POOLED)
    arm_models = {} if run.blinded else named
    pooled = {r.name: r for r in (safety, device) if r is not None}
    primary = arm_models.get(roles.primary)
    has_primary = mt.fitted(primary) and primary is not None and "lsmeans" in primary.tables

    def ae(table: str, category: str | None = None) -> pl.DataFrame:
        if safety is None or table not in safety.tables:
            return pl.DataFrame()
        return sm.ae_hierarchy(safety, table, groups, category)

    data = ReportData(
        study=study,
        run=run,
        groups=groups,
        consort=consort,
        enrolment=sm.enrolment_by_centre(screened, study),
        baseline=sm.baseline_characteristics(adsl, adsweat, study),
        time_course=sm.sweat_time_course(adsl, adsweat, study),
        plantar_time_course=sm.sweat_time_course(adsl, adsweat, study, paramcd=plantar[0].paramcd)
        if plantar
        else pl.DataFrame(),
        responders=sm.responder_shares(adsl, adsweat, tables["adhdss"], study),
        ae_soc_pt=ae("soc_pt"),
        ae_severity=ae("soc_pt_severity", "severity"),
        ae_related=ae("soc_pt_related", "related"),
        ae_discontinuation=ae("soc_pt_discontinuation"),
        serious_events=sm.serious_event_listing(safety, adsl)
        if safety is not None
        else pl.DataFrame(),
        device=sm.device_table(device, study, groups) if device is not None else pl.DataFrame(),
        induction_adherence=sm.induction_adherence(adsl, study),
        faults=sm.fault_table(device, study, groups) if device is not None else pl.DataFrame(),
        multiplicity=mt.multiplicity(arm_models),
        baseline_visits=sm.baseline_visits(adsl, adsweat, study),
        primary_lsmeans=mt.primary_lsmeans(primary)
        if has_primary and primary is not None
        else pl.DataFrame(),
        primary_contrasts=mt.contrasts_with_ratio(primary.tables["contrasts"])
        if has_primary and primary is not None and "contrasts" in primary.tables
        else pl.DataFrame(),
        covariance_structure=mt.covariance_used(primary)
        if has_primary and primary is not None
        else None,
        sensitivity=mt.sensitivity_comparison(arm_models, study, roles),
        subgroups=mt.subgroup_effects(arm_models, roles),
        responder_models=mt.responder_models(arm_models, roles),
        secondary=mt.secondary_contrasts(arm_models, roles),
        model_notes=mt.model_notes({**arm_models, **pooled}),
        methods=methods_block(study, run, consort, sm.baseline_visits(adsl, adsweat, study)),
        estimands=section_data(
            named.get(estimand_results.NAME),
            named.get(estimand_results.TIPPING_NAME),
            blinded=run.blinded,
        ),
        data_issue_subjects=data_issue_subjects(adsl),
    )
    # The accountability outputs state counts too: reconcile them with the flow's rows in.
    flow = replace(data, accountability=reconciliation(adsl, consort))
    counts = count_reconciliation(investigator_outputs(flow), adsl)
    return replace(
        flow,
        accountability=pl.concat([flow.accountability, accountability_rows(counts)]),
        count_reconciliation=counts,
    )
