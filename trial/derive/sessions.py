"""Device sessions -> subjects (ADDEV), unmapped sessions, and adherence per subject.

Mapping: a session belongs to the subject to whom ``devices.csv`` assigned its serial on the
session's date (``from_date .. to_date`` inclusive, empty ``to_date`` = still assigned), so a
device swap moves later sessions to the new serial's row. The session date is the UTC date of
``start_utc`` (the assignment form has local dates and no time zone; a session within a few
hours of midnight on a swap day is the only case this can move).

Clock-reset sessions (``clock_reset``; vendor A clock restarted at 2000-01-01) are dated by the
reader's ``start_utc_placed`` (placed by the session counter where the export allows, see the
``device_sessions`` contract). A reset session the reader could not place (null
``start_utc_placed``) is still attributed to the subject when its serial was only ever
assigned to one subject (study day and phase null); otherwise it is reported as unmapped.

Prescribed current of a session: its ``programmed_ma`` (the subject's current after the
titration the protocol allows), else the study's ``treatment.prescribed_ma``. The device
contract's ``within_tolerance_share`` is also judged against ``programmed_ma``, and a subject
titrated to 10 mA for tolerance would otherwise never have an adequate session.

Adequate session (PP rule, SAP section 6): the current was >= ``min_current_share`` of the
prescribed current for >= ``min_duration_share`` of the planned session duration
(``treatment.session_minutes``; so a session stopped early is not adequate). Vendor B: time
at current = share of samples with ``ma >= min_current_share * prescribed`` times
``duration_s``. Vendor A has only ``mean_ma``: the approximation is time at current =
``duration_s`` when ``mean_ma`` reaches the threshold, else 0 (a session whose mean current is
adequate is taken as adequate throughout).

``tolerance_share`` (share of time within +/- ``current_tolerance_pct`` of the prescribed
current): vendor B the reader's ``within_tolerance_share``; vendor A 1 or 0 from ``mean_ma``.

Not per subject: the mapping takes ``devices.csv`` rows across subjects (a serial passes from
one subject to another at a swap; a date inside two subjects' ranges is ambiguous; an unplaced
clock-reset session goes to a serial's only owner, which needs every subject that ever had it),
and the vendor-B shares are per device, read from every event. A subject's ADDEV rows can
change when another subject's assignment does, so ``addev`` is recomputed whole. Adherence is
per subject given ADDEV (one group-by by subject), computed inside the trial-level ADSL step.
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.derive.schedule import baseline_dates, study_day

PHASE_PRE_BASELINE = "pre_baseline"
PHASE_POST_SCHEDULE = "post_schedule"

UNMAPPED_NOT_ASSIGNED = "SERIAL_NOT_ASSIGNED"
UNMAPPED_OUTSIDE_DATES = "OUTSIDE_ASSIGNMENT_DATES"
UNMAPPED_AMBIGUOUS = "AMBIGUOUS_ASSIGNMENT"
UNMAPPED_CLOCK_RESET = "CLOCK_RESET_UNPLACED"


def vendor_b_session_key(dev: pl.Expr, sid: pl.Expr) -> pl.Expr:
    """The ``device_sessions`` key of a vendor-B session: ``B:<dev>:<sid>`` (its contract)."""
    return pl.concat_str(pl.lit("B:"), dev, pl.lit(":"), sid)


def vendor_b_current_shares(
    vendor_b_events: pl.DataFrame | pl.LazyFrame, study: Study
) -> pl.DataFrame:
    """Per vendor-B session (``session_key``): ``share_at_min_current``, the share of samples
    with ``ma >= min_current_share * ma_set`` (the start event's set current, else the study's
    prescribed current). ``vendor_b_events`` holds distinct lines (the reader dropped exact
    duplicates), so every sample counts once. Runs on Polars' streaming engine: memory grows
    with the number of sessions, not of events."""
    low_share = study.analysis_sets.pp.min_current_share
    events = vendor_b_events.lazy()
    set_ma = (
        events.filter(pl.col("ev") == "start")
        .group_by("dev", "sid")
        .agg(ma_set=pl.col("ma_set").first())
    )
    return (
        events.filter(pl.col("ev") == "sample")
        .join(set_ma, on=["dev", "sid"], how="left")
        .with_columns(_low=low_share * pl.col("ma_set").fill_null(study.prescribed_ma))
        .group_by("dev", "sid")
        .agg(share_at_min_current=(pl.col("ma") >= pl.col("_low")).mean().cast(pl.Float64))
        .select(
            vendor_b_session_key(pl.col("dev"), pl.col("sid")).alias("session_key"),
            "share_at_min_current",
        )
        .collect(engine="streaming")
    )


def _phase(study: Study) -> pl.Expr:
    """Treatment phase from ``study_day``: day <= 0 pre-baseline, else week = ceil(day / 7)
    inside a configured phase's ``weeks``; after the last phase ``post_schedule``."""
    week = (pl.col("study_day") + 6) // 7
    in_phase = [
        pl.when(week.is_between(p.weeks[0], p.weeks[1])).then(pl.lit(p.name))
        for p in study.treatment.phases
    ]
    return (
        pl.when(pl.col("study_day").is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("study_day") <= 0)
        .then(pl.lit(PHASE_PRE_BASELINE))
        .otherwise(pl.coalesce(*in_phase, pl.lit(PHASE_POST_SCHEDULE)))
    )


def _with_adequacy(
    device_sessions: pl.DataFrame, vendor_b_events: pl.DataFrame | pl.LazyFrame, study: Study
) -> pl.LazyFrame:
    pp = study.analysis_sets.pp
    prescribed = pl.col("programmed_ma").fill_null(study.prescribed_ma)
    threshold = pp.min_current_share * prescribed
    min_time_s = pp.min_duration_share * study.treatment.session_s
    tol = study.current_tolerance_pct / 100.0 * prescribed
    shares = vendor_b_current_shares(vendor_b_events, study)
    mean_ok = pl.col("mean_ma") >= threshold
    time_at_current = (
        pl.when(pl.col("share_at_min_current").is_not_null())
        .then(pl.col("share_at_min_current") * pl.col("duration_s"))
        .otherwise(pl.when(mean_ok).then(pl.col("duration_s")).otherwise(0.0))
    )
    within = (
        pl.when(pl.col("within_tolerance_share").is_not_null())
        .then(pl.col("within_tolerance_share"))
        .otherwise(((pl.col("mean_ma") - prescribed).abs() <= tol).cast(pl.Float64))
    )
    return (
        device_sessions.lazy()
        .join(shares.lazy(), on="session_key", how="left")
        .with_columns(
            time_at_min_current_s=time_at_current.cast(pl.Float64),
            tolerance_share=within,
        )
        .with_columns(
            session_date=pl.col("start_utc_placed").dt.date(),
            adequate=(pl.col("time_at_min_current_s") >= min_time_s).fill_null(False),
        )
        .drop("share_at_min_current")
    )


def map_sessions(
    device_sessions: pl.DataFrame,
    devices: pl.DataFrame,
    visits: pl.DataFrame,
    vendor_b_events: pl.DataFrame | pl.LazyFrame,
    study: Study,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Map every device session to a subject. Returns ``(addev, unmapped)``.

    ``addev``: ``device_sessions`` columns plus ``subject_id``, ``region``, ``session_date``
    (UTC date of ``start_utc_placed``), ``study_day``, ``phase``, ``time_at_min_current_s``,
    ``tolerance_share``, ``adequate`` (see the module docstring).
    ``unmapped``: ``device_sessions`` columns plus ``unmapped_reason``
    (SERIAL_NOT_ASSIGNED, OUTSIDE_ASSIGNMENT_DATES, AMBIGUOUS_ASSIGNMENT, CLOCK_RESET_UNPLACED).
    """
    sessions = _with_adequacy(device_sessions, vendor_b_events, study).with_row_index("_sid")
    assign = devices.lazy().select(
        "subject_id",
        "device_serial",
        "region",
        "from_date",
        "to_date",
    )
    by_serial = sessions.join(assign, on="device_serial", how="inner")
    in_dates = (pl.col("session_date") >= pl.col("from_date")) & (
        pl.col("to_date").is_null() | (pl.col("session_date") <= pl.col("to_date"))
    )
    dated = (
        by_serial.filter(in_dates)
        .with_columns(_n=pl.col("subject_id").n_unique().over("_sid"))
        .unique(subset=["_sid", "subject_id"], keep="first")
    )
    # An unplaced reset session on a serial that only one subject ever had.
    serial_owner = (
        assign.group_by("device_serial")
        .agg(_owners=pl.col("subject_id").n_unique(), subject_id=pl.col("subject_id").first())
        .filter(pl.col("_owners") == 1)
        .drop("_owners")
    )
    region_of_owner = assign.group_by("device_serial", "subject_id").agg(
        region=pl.col("region").first()
    )
    unplaced = (
        sessions.filter(pl.col("session_date").is_null())
        .join(serial_owner, on="device_serial", how="inner")
        .join(region_of_owner, on=["device_serial", "subject_id"], how="left")
    )
    cols = sessions.collect_schema().names()
    mapped = pl.concat(
        [
            dated.filter(pl.col("_n") == 1).select(*cols, "subject_id", "region"),
            unplaced.select(*cols, "subject_id", "region"),
        ]
    )
    bl = baseline_dates(visits, study)
    derived = [
        "time_at_min_current_s",
        "tolerance_share",
        "session_date",
        "adequate",
        "study_day",
        "phase",
    ]
    addev = (
        mapped.join(bl.lazy(), on="subject_id", how="left")
        .with_columns(study_day=study_day(pl.col("session_date"), pl.col("bl_date")))
        .with_columns(phase=_phase(study), STUDYID=pl.lit(study.study_id))
        .drop("bl_date", "_sid")
        .select("STUDYID", "subject_id", "region", *device_sessions.columns, *derived)
        .sort("subject_id", "start_utc_placed", "device_serial", nulls_last=True)
        .collect()
    )
    assigned_serials = assign.select("device_serial").unique()
    ambiguous = dated.filter(pl.col("_n") > 1).select("_sid").unique()
    reason = (
        pl.when(pl.col("_sid").is_in(ambiguous.collect()["_sid"].implode()))
        .then(pl.lit(UNMAPPED_AMBIGUOUS))
        .when(~pl.col("device_serial").is_in(assigned_serials.collect()["device_serial"].implode()))
        .then(pl.lit(UNMAPPED_NOT_ASSIGNED))
        .when(pl.col("session_date").is_null())
        .then(pl.lit(UNMAPPED_CLOCK_RESET))
        .otherwise(pl.lit(UNMAPPED_OUTSIDE_DATES))
    )
    unmapped = (
        sessions.join(mapped.select("_sid"), on="_sid", how="anti")
        .with_columns(unmapped_reason=reason)
        .sort("device_serial", "start_utc")
        .drop("_sid")
        .collect()
    )
    return addev, unmapped


def sessions_started(
    device_sessions: pl.DataFrame, devices: pl.DataFrame, addev: pl.DataFrame
) -> pl.DataFrame:
    """Per subject: ``n_sessions`` started on any serial ever assigned to them (SAP section 10)
    and ``trt_start_date`` / ``trt_end_date`` (UTC dates of the first and last dated session,
    clock-reset sessions by their placed start). A session that
    the date mapping gave to another subject does not count for them."""
    owner = addev.select("session_key", mapped_to="subject_id")
    pairs = (
        device_sessions.lazy()
        .select("session_key", "device_serial", "start_utc_placed")
        .join(
            devices.lazy().select("subject_id", "device_serial").unique(),
            on="device_serial",
            how="inner",
        )
        .join(owner.lazy(), on="session_key", how="left")
        .filter(pl.col("mapped_to").is_null() | (pl.col("mapped_to") == pl.col("subject_id")))
        .unique(subset=["subject_id", "session_key"])
    )
    good_date = pl.col("start_utc_placed").dt.date()
    return (
        pairs.group_by("subject_id")
        .agg(
            n_sessions=pl.len().cast(pl.Int64),
            trt_start_date=good_date.min(),
            trt_end_date=good_date.max(),
        )
        .collect()
    )


def adherence(addev: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Per subject with mapped sessions: planned versus completed sessions (planned from the
    configured phases), adequate sessions of the induction phase (``treatment.induction_phase``),
    the duration-weighted share of time within +/- tolerance of the prescribed current and the
    total charge.

    Planned sessions are per treated region, so the completed / adequate counts are those of
    the primary region's device (a subject with plantar involvement has a second device whose
    sessions count in ``n_sessions_mapped``, the tolerance share and the charge only)."""
    induction = study.induction_phase
    primary = pl.col("region") == study.primary_region.code
    completed = (pl.col("end_reason") == "COMPLETED") & primary
    in_first = (pl.col("phase") == induction.name) & primary
    dur = pl.col("duration_s").cast(pl.Float64)
    return (
        addev.lazy()
        .group_by("subject_id")
        .agg(
            n_sessions_mapped=pl.len().cast(pl.Int64),
            n_sessions_completed=completed.sum().cast(pl.Int64),
            n_induction_sessions_completed=(completed & in_first).sum().cast(pl.Int64),
            n_induction_sessions_adequate=(pl.col("adequate") & in_first).sum().cast(pl.Int64),
            time_within_tolerance_share=(pl.col("tolerance_share") * dur).sum()
            / dur.filter(pl.col("tolerance_share").is_not_null()).sum(),
            charge_mc_total=pl.col("charge_mc").sum(),
        )
        .with_columns(
            n_sessions_planned=pl.lit(study.planned_sessions_total, dtype=pl.Int64),
            n_induction_sessions_planned=pl.lit(induction.planned_sessions, dtype=pl.Int64),
        )
        .collect()
    )
