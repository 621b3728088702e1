"""ADICE: one row per subject and intercurrent event (SAP section 11), derived from the data.

- ICE1 (discontinuation), the earlier of:
  a withdrawal (disposition status ``withdrawal_status``, reason not the screen-failure reason)
  dated on or before the treatment-end visit (``gap_until_visit``: its date, or its target date
  when not done) - dated the day after the last started session before the withdrawal (the BL
  date when no session was started); and the first stretch of more than
  ``max_session_gap_days`` days without a session start (days strictly between two session
  dates, or between the last session and the horizon) before the horizon: the treatment-end
  visit's date when done, else the earlier of its target date and the subject's last done
  visit (the data cannot show sessions beyond that) - dated the day after the session before
  the gap. A withdrawal after the treatment-end visit is not a discontinuation of treatment.
- ICE2 (rescue): the start date of the subject's first ``cm`` row with the configured
  indication and rescue flag.

``first_visit`` is the first model visit (schedule order) dated on or after the ICE date (its
visit date when done, else its target date); ``n_post_ice_rows`` / ``post_ice_visits`` are the
observed model-visit rows (primary region, value and change present) dated on or after it.
Sessions: ``addev`` (any region, any device mapped to the subject), by ``session_date``.
Rows: randomised subjects (``RANDFL``) only; ``arm`` only in an unblinded run.
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.derive.schedule import source_record, study_day
from trial.estimands.config import IceRules, ice_rules

WITHDRAWAL = "WITHDRAWAL"
SESSION_GAP = "SESSION_GAP"
RESCUE = "RESCUE"
BASES = (WITHDRAWAL, SESSION_GAP, RESCUE)

ADICE_COLUMNS = [
    "STUDYID",
    "subject_id",
    "FASFL",
    "ICE",
    "ICE_NAME",
    "basis",
    "ICEDT",
    "ICEDY",
    "first_visit",
    "first_visit_index",
    "n_post_ice_rows",
    "post_ice_visits",
    "detail",
    "source_records",
]


def _target_date(bl: pl.Expr, target_day: int) -> pl.Expr:
    """Calendar date of a study day (day 1 = BL date, no day 0)."""
    offset = target_day - 1 if target_day >= 1 else target_day
    return bl + pl.duration(days=offset)


def model_visit_dates(adsl: pl.DataFrame, visits: pl.DataFrame, study: Study) -> pl.DataFrame:
    """``subject_id, visit, visit_index, vdate, done``: every randomised subject's model visits
    with the visit date when done, else the target date."""
    order = pl.DataFrame(
        {
            "visit": study.model_visits,
            "visit_index": list(range(1, len(study.model_visits) + 1)),
            "target_day": [study.visit(v).target_day for v in study.model_visits],
        },
        schema={"visit": pl.String, "visit_index": pl.Int64, "target_day": pl.Int64},
    )
    done = visits.filter(pl.col("visit_date").is_not_null()).select(
        "subject_id", "visit", "visit_date"
    )
    return (
        adsl.select("subject_id", "bl_date")
        .join(order, how="cross")
        .join(done, on=["subject_id", "visit"], how="left")
        .with_columns(
            vdate=pl.coalesce(
                pl.col("visit_date"),
                pl.col("bl_date") + pl.duration(days=pl.col("target_day") - 1),
            ),
            done=pl.col("visit_date").is_not_null(),
        )
        .select("subject_id", "visit", "visit_index", "vdate", "done")
    )


def _horizons(
    subjects: pl.DataFrame, visits: pl.DataFrame, rules: IceRules, study: Study
) -> pl.DataFrame:
    """``subject_id, end_date`` (the treatment-end visit's date, or its target) and
    ``horizon`` (end of the window in which session gaps are judged), ``end_source``."""
    target_day = study.visit(rules.gap_until_visit).target_day
    done = visits.filter(pl.col("visit_date").is_not_null())
    end = done.filter(pl.col("visit") == rules.gap_until_visit).select(
        "subject_id", end_done=pl.col("visit_date"), end_source=source_record()
    )
    last = done.group_by("subject_id").agg(last_done=pl.col("visit_date").max())
    return (
        subjects.select("subject_id", "bl_date")
        .join(end, on="subject_id", how="left")
        .join(last, on="subject_id", how="left")
        .with_columns(target=_target_date(pl.col("bl_date"), target_day))
        .with_columns(
            end_date=pl.coalesce("end_done", "target"),
            horizon=pl.coalesce(
                "end_done",
                pl.min_horizontal("target", pl.col("last_done").fill_null(pl.col("target"))),
            ),
        )
        .select("subject_id", "end_date", "horizon", "end_done", "end_source")
    )


def _withdrawals(
    subjects: pl.DataFrame,
    disposition: pl.DataFrame,
    sessions: pl.DataFrame,
    horizons: pl.DataFrame,
    rules: IceRules,
    study: Study,
) -> pl.DataFrame:
    screen_failure = study.screen_failure_reason
    withdrawn = (
        disposition.filter(
            (pl.col("status") == rules.withdrawal_status)
            & (pl.col("reason").is_null() | (pl.col("reason") != screen_failure))
        )
        .select("subject_id", "reason", wd_date=pl.col("date"), source_records=source_record())
        .join(subjects.select("subject_id", "bl_date"), on="subject_id", how="inner")
        .join(horizons, on="subject_id", how="left")
        .filter(pl.col("wd_date").is_null() | (pl.col("wd_date") <= pl.col("end_date")))
    )
    last = (
        withdrawn.select("subject_id", "wd_date")
        .join(sessions, on="subject_id", how="inner")
        .filter(pl.col("wd_date").is_null() | (pl.col("session_date") < pl.col("wd_date")))
        .group_by("subject_id")
        .agg(last_session=pl.col("session_date").max())
    )
    return (
        withdrawn.join(last, on="subject_id", how="left")
        .with_columns(
            ICEDT=pl.coalesce(pl.col("last_session") + pl.duration(days=1), pl.col("bl_date")),
            basis=pl.lit(WITHDRAWAL),
            detail=pl.format(
                "withdrawn {} ({}); {}",
                pl.col("wd_date").cast(pl.String).fill_null("<no date>"),
                pl.col("reason").fill_null("no reason given"),
                pl.when(pl.col("last_session").is_null())
                .then(pl.lit("no session started before it: the baseline date"))
                .otherwise(
                    pl.format("last session started {}", pl.col("last_session").cast(pl.String))
                ),
            ),
        )
        .select("subject_id", "ICEDT", "basis", "detail", "source_records")
    )


def _gaps(
    subjects: pl.DataFrame, sessions: pl.DataFrame, horizons: pl.DataFrame, rules: IceRules
) -> pl.DataFrame:
    """The first gap of more than ``max_session_gap_days`` days without a session start."""
    stops = (
        sessions.join(horizons.select("subject_id", "horizon"), on="subject_id", how="inner")
        .filter(pl.col("session_date") < pl.col("horizon"))
        .select("subject_id", "session_date", is_horizon=pl.lit(False))
    )
    ends = horizons.join(stops.select("subject_id").unique(), on="subject_id", how="semi").select(
        "subject_id", session_date=pl.col("horizon"), is_horizon=pl.lit(True)
    )
    stretch = (
        pl.concat([stops, ends])
        .join(subjects.select("subject_id"), on="subject_id", how="semi")
        .sort("subject_id", "session_date")
        .with_columns(
            previous=pl.col("session_date").shift(1).over("subject_id"),
        )
        .filter(pl.col("previous").is_not_null())
        .with_columns(days=(pl.col("session_date") - pl.col("previous")).dt.total_days() - 1)
        .filter(pl.col("days") > rules.max_session_gap_days)
        .group_by("subject_id")
        .agg(pl.all().sort_by("previous").first())
    )
    return stretch.join(
        horizons.select("subject_id", "end_done", "end_source"), on="subject_id", how="left"
    ).select(
        "subject_id",
        ICEDT=pl.col("previous") + pl.duration(days=1),
        basis=pl.lit(SESSION_GAP),
        detail=pl.format(
            "no session started on the {} days from {} to {} ({}; more than {} days)",
            pl.col("days"),
            (pl.col("previous") + pl.duration(days=1)).cast(pl.String),
            (pl.col("session_date") - pl.duration(days=1)).cast(pl.String),
            pl.when(pl.col("is_horizon"))
            .then(
                pl.when(pl.col("end_done").is_not_null())
                .then(pl.lit(f"until the {rules.gap_until_visit} visit"))
                .otherwise(pl.lit(f"until the {rules.gap_until_visit} target or last visit"))
            )
            .otherwise(pl.lit("between two sessions")),
            pl.lit(rules.max_session_gap_days),
        ),
        source_records=pl.col("end_source").fill_null(""),
    )


def _rescues(subjects: pl.DataFrame, cm: pl.DataFrame, rules: IceRules) -> pl.DataFrame:
    return (
        cm.filter(
            (pl.col("indication") == rules.cm_indication)
            & (pl.col("rescue") == rules.cm_rescue)
            & pl.col("start_date").is_not_null()
        )
        .join(subjects.select("subject_id"), on="subject_id", how="semi")
        .sort("subject_id", "start_date", "source_file", "source_line")
        .group_by("subject_id", maintain_order=True)
        .first()
        .select(
            "subject_id",
            ICEDT=pl.col("start_date"),
            basis=pl.lit(RESCUE),
            detail=pl.format(
                "{}: {} '{}' started {}",
                pl.col("cm_id"),
                pl.col("drug").fill_null("<no drug>"),
                pl.col("verbatim").fill_null(""),
                pl.col("start_date").cast(pl.String),
            ),
            source_records=source_record(),
        )
    )


def derive_adice(
    adsl: pl.DataFrame,
    disposition: pl.DataFrame,
    visits: pl.DataFrame,
    addev: pl.DataFrame,
    cm: pl.DataFrame,
    adsweat: pl.DataFrame,
    study: Study,
) -> pl.DataFrame:
    """ADICE from ADSL, the raw disposition, visits and cm tables, ADDEV and ADSWEAT."""
    rules = ice_rules(study)
    keep = ["subject_id", "bl_date", "FASFL"] + (["arm"] if "arm" in adsl.columns else [])
    subjects = adsl.filter(pl.col("RANDFL") == "Y").select(keep)
    sessions = (
        addev.filter(pl.col("session_date").is_not_null())
        .select("subject_id", "session_date")
        .unique()
    )
    horizons = _horizons(subjects, visits, rules, study)
    ice1 = (
        pl.concat(
            [
                _withdrawals(subjects, disposition, sessions, horizons, rules, study),
                _gaps(subjects, sessions, horizons, rules),
            ]
        )
        .sort("subject_id", "ICEDT", "basis")
        .group_by("subject_id", maintain_order=True)
        .first()
        .with_columns(ICE=pl.lit(rules.discontinuation))
    )
    ice2 = _rescues(subjects, cm, rules).with_columns(ICE=pl.lit(rules.rescue))
    ices = pl.concat([ice1, ice2], how="diagonal").join(subjects, on="subject_id", how="inner")
    schedule = model_visit_dates(subjects, visits, study)
    first = (
        ices.select("subject_id", "ICE", "ICEDT")
        .join(schedule, on="subject_id", how="inner")
        .filter(pl.col("vdate") >= pl.col("ICEDT"))
        .group_by("subject_id", "ICE")
        .agg(
            first_visit=pl.col("visit").sort_by("visit_index").first(),
            first_visit_index=pl.col("visit_index").min(),
        )
    )
    observed = adsweat.filter(
        (pl.col("PARAMCD") == study.primary_region.paramcd)
        & pl.col("AVISIT").is_in(study.model_visits)
        & pl.col("AVAL").is_not_null()
        & pl.col("CHG").is_not_null()
    ).select("subject_id", "AVISIT", "AVISITN", "ADT")
    post = (
        ices.select("subject_id", "ICE", "ICEDT")
        .join(observed, on="subject_id", how="inner")
        .filter(pl.col("ADT") >= pl.col("ICEDT"))
        .group_by("subject_id", "ICE")
        .agg(
            n_post_ice_rows=pl.len().cast(pl.Int64),
            post_ice_visits=pl.col("AVISIT").sort_by("AVISITN").str.join(","),
        )
    )
    names = pl.DataFrame(
        {"ICE": list(rules.names), "ICE_NAME": list(rules.names.values())},
        schema={"ICE": pl.String, "ICE_NAME": pl.String},
    )
    columns = ADICE_COLUMNS + (["arm"] if "arm" in subjects.columns else [])
    return (
        ices.join(first, on=["subject_id", "ICE"], how="left")
        .join(post, on=["subject_id", "ICE"], how="left")
        .join(names, on="ICE", how="left")
        .with_columns(
            STUDYID=pl.lit(study.study_id),
            ICEDY=study_day(pl.col("ICEDT"), pl.col("bl_date")),
            n_post_ice_rows=pl.col("n_post_ice_rows").fill_null(0),
            post_ice_visits=pl.col("post_ice_visits").fill_null(""),
        )
        .select(columns)
        .sort("subject_id", "ICE")
    )
