"""Device adherence and delivered dose by arm (SAP section 7, "Device").

Per arm (``pooled`` in a blinded run) and treated region (each region has its own device and
schedule), over Safety-set subjects and their device sessions in the treatment phases (phases
of the study configuration with sessions planned):

- sessions completed / planned: completed = ``end_reason == "COMPLETED"``; planned = subjects
  treated on the region (all for the primary region; ``plantar_involved == "Y"`` for a region
  that requires involvement) x the study's planned sessions (``Study.planned_sessions_total``),
  i.e. the full schedule (ongoing or withdrawn subjects are not pro-rated - notes say so);
- delivered charge per session, mC: mean and SD over sessions with a charge;
- share of time within +/- tolerance of the programmed current (``within_tolerance_share``,
  tolerance ``treatment.current_tolerance_pct``): duration-weighted mean over sessions that
  have samples (vendor A reports none: those sessions are counted, not used);
- aborted sessions (``end_reason != "COMPLETED"``), and counts per fault code.
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.models.result import ModelResult
from trial.models.tidy import empty_estimates

NAME = "device"
POOLED = "pooled"
COMPLETED = "COMPLETED"


def device_summary(addev: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> ModelResult:
    """Adherence and dose tables.

    Reads ``adsl``: ``subject_id, SAFFL, plantar_involved`` (+ ``arm``); ``addev``:
    ``subject_id, region, phase, end_reason, fault_code, charge_mc, within_tolerance_share,
    duration_s``. Tables: ``by_arm`` (one row per arm and region) and ``fault_codes`` (arm,
    region, fault_code, description, n_sessions).
    """
    notes = [
        f"within-tolerance share: +/-{study.current_tolerance_pct:g} % of the programmed "
        "current, duration-weighted, sessions with samples only (vendor A has none)",
        "planned sessions = subjects x full schedule "
        f"({study.planned_sessions_total} per subject), not pro-rated for time on study",
    ]
    arm = pl.col("arm") if "arm" in adsl.columns else pl.lit(POOLED)
    if "arm" not in adsl.columns:
        notes.append("blinded run: arms pooled")
    subjects = adsl.filter(pl.col("SAFFL") == "Y").select(
        "subject_id", "plantar_involved", arm.alias("arm")
    )
    treated = pl.concat(
        [
            (
                subjects.filter(pl.col("plantar_involved") == "Y")
                if region.requires_involvement
                else subjects
            ).select("subject_id", "arm", pl.lit(region.code).alias("region"))
            for region in study.regions
        ]
    )
    treatment_phases = [p.name for p in study.treatment.phases if p.sessions_per_week > 0]
    sessions = addev.join(subjects.select("subject_id", "arm"), on="subject_id", how="inner")
    outside = sessions.filter(~pl.col("phase").is_in(treatment_phases)).height
    if outside:
        notes.append(f"{outside} sessions outside the treatment phases are not summarised")
    sessions = sessions.filter(pl.col("phase").is_in(treatment_phases))
    completed = pl.col("end_reason") == COMPLETED
    has_share = pl.col("within_tolerance_share").is_not_null()
    per_arm = sessions.group_by("arm", "region").agg(
        n_sessions=pl.len(),
        sessions_completed=completed.sum(),
        aborted=(~completed).sum(),
        charge_mean_mc=pl.col("charge_mc").mean(),
        charge_sd_mc=pl.col("charge_mc").std(),
        n_sessions_with_samples=has_share.sum(),
        within_tolerance_share=pl.when(has_share.any()).then(
            (pl.col("within_tolerance_share") * pl.col("duration_s")).filter(has_share).sum()
            / pl.col("duration_s").filter(has_share).sum()
        ),
    )
    by_arm = (
        treated.group_by("arm", "region")
        .agg(n_subjects=pl.len())
        .join(per_arm, on=["arm", "region"], how="full", coalesce=True)
        .with_columns(
            pl.col(
                "n_subjects",
                "n_sessions",
                "sessions_completed",
                "aborted",
                "n_sessions_with_samples",
            )
            .fill_null(0)
            .cast(pl.Int64),
        )
        .with_columns(sessions_planned=pl.col("n_subjects") * study.planned_sessions_total)
        .with_columns(
            completed_share=pl.col("sessions_completed") / pl.col("sessions_planned"),
            aborted_pct=100.0 * pl.col("aborted") / pl.col("n_sessions"),
        )
        .select(
            "arm",
            "region",
            "n_subjects",
            "sessions_planned",
            "n_sessions",
            "sessions_completed",
            "completed_share",
            "charge_mean_mc",
            "charge_sd_mc",
            "n_sessions_with_samples",
            "within_tolerance_share",
            "aborted",
            "aborted_pct",
        )
        .sort("arm", "region")
    )
    descriptions = dict(study.codelists.fault_code)
    faults = (
        sessions.filter(pl.col("fault_code").is_not_null() & (pl.col("fault_code") != ""))
        .group_by("arm", "region", "fault_code")
        .agg(n_sessions=pl.len())
        .with_columns(
            description=pl.col("fault_code").replace_strict(
                descriptions, default="not in the codelist", return_dtype=pl.String
            )
        )
        .select("arm", "region", "fault_code", "description", "n_sessions")
        .sort("arm", "region", "fault_code")
    )
    return ModelResult(
        name=NAME,
        estimates=empty_estimates(),
        fit={"n_subjects": subjects.height, "n_observations": sessions.height},
        tables={"by_arm": by_arm, "fault_codes": faults},
        notes=notes,
    )
