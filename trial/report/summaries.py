"""Descriptive summaries behind the investigator report, computed from the ADaM tables.

Every function returns a Polars frame of numbers (no formatting) with a ``group`` column:
the arm code in an unblinded run, plus ``TOTAL``; only ``TOTAL`` in a blinded run (``adsl``
without ``arm``). Sweat rates are in mg/min; ``AVAL`` is the natural log of the rate.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from trial.study import Study

TOTAL = "TOTAL"
"""Group label of the pooled column (every subject of the population)."""


def is_unblinded(adsl: pl.DataFrame) -> bool:
    """An unblinded ADSL carries ``arm``; a blinded one has no such column."""
    return "arm" in adsl.columns


def group_order(adsl: pl.DataFrame, study: Study) -> list[str]:
    """Column order of every by-group table: the study's arms, then ``TOTAL``."""
    return [*study.arm_codes, TOTAL] if is_unblinded(adsl) else [TOTAL]


def subject_groups(adsl: pl.DataFrame, flag: str | None = None) -> pl.DataFrame:
    """``subject_id, group`` with every subject twice in an unblinded run (arm and TOTAL).

    ``flag``: keep only subjects with ``flag == "Y"`` (e.g. ``FASFL``)."""
    subjects = adsl if flag is None else adsl.filter(pl.col(flag) == "Y")
    pooled = subjects.select("subject_id", pl.lit(TOTAL).alias("group"))
    if not is_unblinded(adsl):
        return pooled
    by_arm = subjects.filter(pl.col("arm").is_not_null()).select(
        "subject_id", pl.col("arm").alias("group")
    )
    return pl.concat([by_arm, pooled])


def _sort_groups(frame: pl.DataFrame, order: list[str], *by: str) -> pl.DataFrame:
    rank = {g: i for i, g in enumerate(order)}
    return (
        frame.with_columns(pl.col("group").replace_strict(rank, default=len(rank)).alias("_g"))
        .sort([*by, "_g"])
        .drop("_g")
    )


def consort_flow(
    adsl: pl.DataFrame, adsweat: pl.DataFrame, study: Study, eligibility: pl.DataFrame | None
) -> pl.DataFrame:
    """CONSORT 2010 participant flow: ``stage, group, reason, n`` (``reason`` null = box total).

    Stages: ``screened``, ``excluded`` (screen failures; reasons = ADSL ``eligibility_reasons``
    when present, else the raw eligibility criteria answered ``Y``; a subject counted once per
    reason; ``OTHER_ENTRY_CRITERION`` when none is recorded), ``randomised``, ``allocated``,
    ``received_sessions`` / ``no_session``, ``withdrawn`` (reasons from disposition),
    ``analysed_fas`` / ``excluded_fas`` (reasons: no session, no baseline, no post-baseline
    palmar value), ``analysed_pp``, ``analysed_safety``."""
    order = group_order(adsl, study)
    parts: list[pl.DataFrame] = []

    def count(stage: str, frame: pl.DataFrame, groups: pl.DataFrame, reason: str | None = None):
        joined = groups.join(
            frame.select("subject_id", *([reason] if reason else [])), on="subject_id"
        )
        keys = ["group", reason] if reason else ["group"]
        out = joined.group_by(keys).agg(pl.len().cast(pl.Int64).alias("n"))
        out = (
            out.rename({reason: "reason"})
            if reason
            else out.with_columns(pl.lit(None, pl.String).alias("reason"))
        )
        parts.append(out.select(pl.lit(stage).alias("stage"), "group", "reason", "n"))

    pooled = adsl.select("subject_id", pl.lit(TOTAL).alias("group"))
    count("screened", adsl, pooled)
    failures = adsl.filter(pl.col("screen_failure"))
    count("excluded", failures, pooled)
    if "eligibility_reasons" in adsl.columns:
        ticked = (
            failures.select(
                "subject_id", pl.col("eligibility_reasons").str.split(",").alias("reason")
            )
            .explode("reason")
            .with_columns(pl.col("reason").str.strip_chars())
            .filter(pl.col("reason").is_not_null() & (pl.col("reason") != ""))
        )
    elif eligibility is not None:
        ticked = eligibility.filter(pl.col("answer") == "Y").select(
            "subject_id", pl.col("criterion").alias("reason")
        )
    else:
        ticked = pl.DataFrame(schema={"subject_id": pl.String, "reason": pl.String})
    recorded = "eligibility_reasons" in adsl.columns or eligibility is not None
    reasons = pl.concat(
        [
            failures.select("subject_id").join(ticked, on="subject_id"),
            failures.select("subject_id")
            .join(ticked, on="subject_id", how="anti")
            .with_columns(
                pl.lit("OTHER_ENTRY_CRITERION" if recorded else "NOT_RECORDED").alias("reason")
            ),
        ]
    )
    count("excluded", reasons, pooled, "reason")

    randomised = adsl.filter(pl.col("RANDFL") == "Y")
    groups = subject_groups(randomised)
    count("randomised", randomised, pooled)
    count("allocated", randomised, groups)
    count("received_sessions", randomised.filter(pl.col("n_sessions") > 0), groups)
    count("no_session", randomised.filter(pl.col("n_sessions") == 0), groups)
    withdrawn = randomised.filter(pl.col("disposition_status") == "WITHDRAWN").with_columns(
        pl.col("disposition_reason").fill_null("NOT_RECORDED")
    )
    count("withdrawn", withdrawn, groups)
    count("withdrawn", withdrawn, groups, "disposition_reason")

    palm = adsweat.filter(pl.col("PARAMCD") == study.primary_region.paramcd)
    with_base = palm.filter(pl.col("ABLFL") == "Y").select("subject_id").unique()
    baseline_visits = {study.baseline_visit, study.baseline_fallback_visit}
    post = (
        palm.filter(~pl.col("AVISIT").is_in([v for v in baseline_visits if v is not None]))
        .filter(pl.col("AVAL").is_not_null())
        .select("subject_id")
        .unique()
    )
    not_fas = randomised.filter(pl.col("FASFL") != "Y").with_columns(
        pl.when(pl.col("n_sessions") == 0)
        .then(pl.lit("NO_TREATMENT_SESSION"))
        .when(~pl.col("subject_id").is_in(with_base["subject_id"].implode()))
        .then(pl.lit("NO_BASELINE_VALUE"))
        .when(~pl.col("subject_id").is_in(post["subject_id"].implode()))
        .then(pl.lit("NO_POST_BASELINE_VALUE"))
        .otherwise(pl.lit("OTHER"))
        .alias("fas_reason")
    )
    count("analysed_fas", randomised.filter(pl.col("FASFL") == "Y"), groups)
    count("excluded_fas", not_fas, groups)
    count("excluded_fas", not_fas, groups, "fas_reason")
    count("analysed_pp", randomised.filter(pl.col("PPFL") == "Y"), groups)
    count("analysed_safety", adsl.filter(pl.col("SAFFL") == "Y"), subject_groups(adsl, "SAFFL"))

    flow = pl.concat(parts)
    # Boxes with no subject still show 0 for every group.
    stages = flow.select("stage", "reason").unique()
    grid = stages.join(pl.DataFrame({"group": order}), how="cross")
    flow = grid.join(flow, on=["stage", "reason", "group"], how="left", nulls_equal=True)
    flow = flow.with_columns(pl.col("n").fill_null(0))
    stage_order = {
        s: i
        for i, s in enumerate(
            [
                "screened",
                "excluded",
                "randomised",
                "allocated",
                "received_sessions",
                "no_session",
                "withdrawn",
                "analysed_fas",
                "excluded_fas",
                "analysed_pp",
                "analysed_safety",
            ]
        )
    }
    flow = flow.filter(
        ~(
            pl.col("stage").is_in(["screened", "excluded", "randomised"])
            & (pl.col("group") != TOTAL)
        )
    )
    return (
        _sort_groups(
            flow.with_columns(pl.col("stage").replace_strict(stage_order).alias("_s")),
            order,
            "_s",
            "reason",
        )
        .drop("_s")
        .select("stage", "group", "reason", "n")
    )


def enrolment_by_centre(adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Per centre and group: ``screened`` (TOTAL only), ``randomised``, ``fas`` counts, and the
    first and last consent dates (recruitment period, CONSORT item 14a)."""
    order = group_order(adsl, study)
    screened = adsl.group_by("centre_id").agg(
        pl.len().cast(pl.Int64).alias("screened"),
        pl.col("consent_date").min().alias("first_consent"),
        pl.col("consent_date").max().alias("last_consent"),
    )
    groups = subject_groups(adsl.filter(pl.col("RANDFL") == "Y"))
    randomised = (
        groups.join(adsl.select("subject_id", "centre_id", "FASFL"), on="subject_id")
        .group_by("centre_id", "group")
        .agg(
            pl.len().cast(pl.Int64).alias("randomised"),
            (pl.col("FASFL") == "Y").sum().cast(pl.Int64).alias("fas"),
        )
    )
    grid = pl.DataFrame({"centre_id": study.centres}).join(
        pl.DataFrame({"group": order}), how="cross"
    )
    out = (
        grid.join(randomised, on=["centre_id", "group"], how="left")
        .join(screened, on="centre_id", how="left")
        .with_columns(
            pl.col("randomised").fill_null(0),
            pl.col("fas").fill_null(0),
            pl.when(pl.col("group") == TOTAL).then(pl.col("screened").fill_null(0)),
        )
    )
    return _sort_groups(out, order, "centre_id").select(
        "centre_id", "group", "screened", "randomised", "fas", "first_consent", "last_consent"
    )


def _categorical(
    frame: pl.DataFrame, column: str, label: str, levels: list[str], order: list[str]
) -> pl.DataFrame:
    denominators = frame.group_by("group").agg(pl.len().alias("N"))
    counts = frame.group_by("group", pl.col(column).cast(pl.String).alias("row")).agg(
        pl.len().alias("n")
    )
    grid = pl.DataFrame({"row": levels}).join(pl.DataFrame({"group": order}), how="cross")
    return (
        grid.join(counts, on=["group", "row"], how="left")
        .join(denominators, on="group", how="left")
        .with_columns(
            pl.col("n").fill_null(0).cast(pl.Int64),
            pl.col("N").fill_null(0).cast(pl.Int64),
        )
        .with_columns(
            pl.lit(label).alias("characteristic"),
            pl.lit("n (%)").alias("statistic"),
            pl.col("row").replace_strict({v: i for i, v in enumerate(levels)}).alias("_lvl"),
            pl.when(pl.col("N") > 0).then(100.0 * pl.col("n") / pl.col("N")).alias("estimate"),
            pl.lit(None, pl.Float64).alias("spread"),
            pl.lit(None, pl.Float64).alias("low"),
            pl.lit(None, pl.Float64).alias("high"),
        )
    )


def _continuous(frame: pl.DataFrame, column: str, label: str, *, geometric: bool) -> pl.DataFrame:
    value = pl.col(column).cast(pl.Float64)
    if geometric:
        agg = [
            value.log().mean().exp().alias("estimate"),
            value.log().std().alias("spread"),
        ]
        statistic = "Geometric mean (range)"
    else:
        agg = [value.mean().alias("estimate"), value.std().alias("spread")]
        statistic = "Mean (SD); range"
    return (
        frame.filter(value.is_not_null())
        .group_by("group")
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            *agg,
            value.min().alias("low"),
            value.max().alias("high"),
        )
        .with_columns(
            pl.lit(label).alias("characteristic"),
            pl.lit(statistic).alias("statistic"),
            pl.lit(None, pl.String).alias("row"),
            pl.col("n").alias("N"),
            pl.lit(0).alias("_lvl"),
        )
    )


def baseline_characteristics(
    adsl: pl.DataFrame, adsweat: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """Baseline table of the randomised set (CONSORT item 15).

    Long frame ``characteristic, statistic, row, group, n, N, estimate, spread, low, high``:
    categorical rows give n and percent (``estimate``) of ``N``; age gives mean, SD (``spread``)
    and range; sweat rates (mg/min, baseline visit value) give the geometric mean, the SD of the
    log rate (``spread``) and the range; the plantar rate only over plantar-involved subjects."""
    order = group_order(adsl, study)
    randomised = adsl.filter(pl.col("RANDFL") == "Y")
    groups = subject_groups(randomised).join(randomised, on="subject_id")
    parts = [
        _continuous(groups, "age", "Age (years)", geometric=False),
        _categorical(groups, "sex", "Sex", list(study.codelists["sex"]), order),
        _categorical(
            groups,
            "stratum",
            "Screening HDSS",
            list(study.stratum_levels.values()),
            order,
        ),
        _categorical(
            groups,
            "plantar_involved",
            "Plantar involvement",
            list(study.codelists["yes_no"]),
            order,
        ),
    ]
    base = adsweat.filter(pl.col("ABLFL") == "Y").select("subject_id", "PARAMCD", "rate_mg_min")
    for region in study.regions:
        values = groups.join(
            base.filter(pl.col("PARAMCD") == region.paramcd), on="subject_id", how="inner"
        )
        if region.requires_involvement:
            values = values.filter(pl.col("plantar_involved") == "Y")
        label = f"Baseline {region.code.lower()} sweat rate (mg/min)"
        parts.append(_continuous(values, "rate_mg_min", label, geometric=True))
    columns = [
        "_lvl",
        "characteristic",
        "statistic",
        "row",
        "group",
        "n",
        "N",
        "estimate",
        "spread",
        "low",
        "high",
    ]
    out = pl.concat([p.select(columns) for p in parts], how="vertical_relaxed")
    char_order = {c: i for i, c in enumerate(out["characteristic"].unique(maintain_order=True))}
    out = out.with_columns(pl.col("characteristic").replace_strict(char_order).alias("_c"))
    return _sort_groups(out, order, "_c", "_lvl").drop("_c", "_lvl")


def t_quantile(n: pl.Series, level: float) -> pl.Series:
    """Two-sided Student-t quantile for ``n - 1`` degrees of freedom (NaN where n < 2)."""
    df = n.cast(pl.Float64).to_numpy() - 1.0
    q = stats.t.ppf(0.5 + level / 2.0, np.where(df >= 1.0, df, np.nan))
    return pl.Series("q", q, dtype=pl.Float64)


def sweat_time_course(
    adsl: pl.DataFrame,
    adsweat: pl.DataFrame,
    study: Study,
    *,
    paramcd: str | None = None,
    population: str = "FASFL",
    level: float = 0.95,
) -> pl.DataFrame:
    """Geometric mean sweat rate by visit and group, baseline to the last visit.

    Columns ``visit, week, group, n, geo_mean, ci_low, ci_high`` (mg/min; t interval on the
    log scale, back-transformed) and ``mean_chg`` (mean change in ln rate),
    ``pct_reduction`` = 100 * (1 - exp(mean_chg)) (null at baseline)."""
    paramcd = paramcd or study.primary_region.paramcd
    order = group_order(adsl, study)
    codes = study.visit_codes
    visits = codes[codes.index(study.baseline_visit) :]
    groups = subject_groups(adsl, population)
    rows = groups.join(
        adsweat.filter(
            (pl.col("PARAMCD") == paramcd)
            & pl.col("AVISIT").is_in(visits)
            & pl.col("AVAL").is_not_null()
        ),
        on="subject_id",
    )
    summary = rows.group_by("group", pl.col("AVISIT").alias("visit")).agg(
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("AVAL").mean().alias("_m"),
        pl.col("AVAL").std().alias("_sd"),
        pl.col("CHG").mean().alias("mean_chg"),
    )
    half = t_quantile(summary["n"], level) * summary["_sd"] / summary["n"].cast(pl.Float64).sqrt()
    summary = summary.with_columns(half.alias("_h")).with_columns(
        pl.col("_m").exp().alias("geo_mean"),
        (pl.col("_m") - pl.col("_h")).exp().alias("ci_low"),
        (pl.col("_m") + pl.col("_h")).exp().alias("ci_high"),
        pl.when(pl.col("visit") != study.baseline_visit)
        .then(100.0 * (1.0 - pl.col("mean_chg").exp()))
        .alias("pct_reduction"),
        pl.col("visit")
        .replace_strict({v.code: v.week for v in study.visits}, return_dtype=pl.Int64)
        .alias("week"),
        pl.col("visit").replace_strict({v: i for i, v in enumerate(visits)}).alias("_v"),
    )
    return _sort_groups(summary, order, "_v").select(
        "visit", "week", "group", "n", "geo_mean", "ci_low", "ci_high", "mean_chg", "pct_reduction"
    )


def responder_shares(
    adsl: pl.DataFrame, adsweat: pl.DataFrame, adhdss: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """Responders at the primary visit in the FAS, by group.

    ``N`` FAS subjects; ``hdss_responders`` (HDSS improved by >= the configured points),
    ``sweat_responders`` (palmar rate reduced by >= the configured percent); a subject with no
    value at the primary visit counts as a non-responder. ``n_observed`` palmar values at the
    primary visit and ``pct_reduction`` = 100 * (1 - exp(mean change in ln rate)) over them."""
    responder = study.section("endpoints")["responder"]
    points = float(responder["hdss_improvement_points"])
    pct = float(responder["sweat_reduction_pct"])
    visit = study.primary_visit
    groups = subject_groups(adsl, "FASFL")
    hdss = adhdss.filter((pl.col("AVISIT") == visit) & pl.col("CHG").is_not_null()).select(
        "subject_id", (pl.col("CHG") <= -points).alias("hdss_resp")
    )
    palm = adsweat.filter(
        (pl.col("AVISIT") == visit)
        & (pl.col("PARAMCD") == study.primary_region.paramcd)
        & pl.col("CHG").is_not_null()
    ).select("subject_id", "CHG", (pl.col("PCHG") <= -pct).alias("sweat_resp"))
    joined = groups.join(hdss, on="subject_id", how="left").join(palm, on="subject_id", how="left")
    out = joined.group_by("group").agg(
        pl.len().cast(pl.Int64).alias("N"),
        pl.col("hdss_resp").fill_null(False).sum().cast(pl.Int64).alias("hdss_responders"),
        pl.col("sweat_resp").fill_null(False).sum().cast(pl.Int64).alias("sweat_responders"),
        pl.col("CHG").is_not_null().sum().cast(pl.Int64).alias("n_observed"),
        (100.0 * (1.0 - pl.col("CHG").mean().exp())).alias("pct_reduction"),
    )
    out = out.with_columns(
        (100.0 * pl.col("hdss_responders") / pl.col("N")).alias("hdss_responder_pct"),
        (100.0 * pl.col("sweat_responders") / pl.col("N")).alias("sweat_responder_pct"),
    )
    return _sort_groups(out, group_order(adsl, study))


def adverse_event_summary(adae: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Subjects with treatment-emergent AEs, safety set, by term and group.

    Columns ``term`` (``ANY`` = any term), ``dimension`` (``any``, ``severity``, ``related``),
    ``level``, ``group``, ``n`` subjects, ``N`` safety-set subjects, ``pct``. Per subject and
    term: counted once under ``any``, once under its worst severity and once under its strongest
    relatedness (Y > POSSIBLE > N), so severity and relatedness rows add up to the term row."""
    order = group_order(adsl, study)
    groups = subject_groups(adsl, "SAFFL")
    events = groups.join(
        adae.filter(pl.col("TRTEMFL") == "Y").drop("arm", strict=False), on="subject_id"
    )
    events = pl.concat([events, events.with_columns(pl.lit("ANY").alias("term"))])
    codelists = study.codelists
    severities = list(codelists["ae_severity"])
    strength = {"N": 0, "POSSIBLE": 1, "Y": 2}
    keys = ["subject_id", "group", "term"]
    worst = (
        events.with_columns(
            pl.col("severity")
            .replace_strict(severities, list(range(len(severities))), default=-1)
            .alias("_r")
        )
        .sort("_r")
        .group_by(keys)
        .agg(pl.col("severity").last().alias("level"))
    )
    strongest = (
        events.with_columns(pl.col("related").replace_strict(strength, default=-1).alias("_r"))
        .sort("_r")
        .group_by(keys)
        .agg(pl.col("related").last().alias("level"))
    )
    parts = [
        events.select(*keys, pl.lit("any").alias("dimension"), pl.lit("ANY").alias("level")),
        worst.select(*keys, pl.lit("severity").alias("dimension"), "level"),
        strongest.select(*keys, pl.lit("related").alias("dimension"), "level"),
    ]
    counted = (
        pl.concat(parts)
        .unique()
        .group_by("term", "dimension", "level", "group")
        .agg(pl.len().cast(pl.Int64).alias("n"))
    )
    terms = ["ANY", *codelists["ae_term"]]
    levels = pl.DataFrame(
        {
            "dimension": ["any"]
            + ["severity"] * len(codelists["ae_severity"])
            + ["related"] * len(codelists["ae_related"]),
            "level": ["ANY", *codelists["ae_severity"], *codelists["ae_related"]],
        }
    )
    present = counted.select("term").unique()
    grid = (
        pl.DataFrame({"term": terms})
        .join(present, on="term", how="semi")
        .join(levels, how="cross")
        .join(pl.DataFrame({"group": order}), how="cross")
    )
    denominators = groups.group_by("group").agg(pl.len().cast(pl.Int64).alias("N"))
    out = (
        grid.join(counted, on=["term", "dimension", "level", "group"], how="left")
        .join(denominators, on="group", how="left")
        .with_columns(pl.col("n").fill_null(0), pl.col("N").fill_null(0))
        .with_columns(pl.when(pl.col("N") > 0).then(100.0 * pl.col("n") / pl.col("N")).alias("pct"))
    )
    term_rank = {t: i for i, t in enumerate(terms)}
    out = out.with_columns(pl.col("term").replace_strict(term_rank).alias("_t")).with_row_index(
        "_r"
    )
    return _sort_groups(out, order, "_t", "_r").drop("_t", "_r")


def serious_events(adae: pl.DataFrame, adsl: pl.DataFrame) -> pl.DataFrame:
    """Listing of serious adverse events (``serious == "Y"``), with the arm when unblinded."""
    keep = ["subject_id", "centre_id", *(["arm"] if is_unblinded(adsl) else [])]
    columns = ["ae_id", "term", "verbatim", "onset_date", "end_date", "severity", "related"]
    return (
        adae.filter(pl.col("serious") == "Y")
        .drop("arm", "centre_id", strict=False)
        .join(adsl.select(keep), on="subject_id", how="left")
        .select(*keep, *[c for c in columns if c in adae.columns])
        .sort("subject_id", "onset_date")
    )


def device_summary(addev: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Device adherence and delivered dose by group, safety set (study protocol section 7).

    ``n_subjects``; ``sessions`` logged; ``sessions_completed`` (end reason COMPLETED);
    ``planned_per_subject`` (induction + maintenance); ``adherence_pct`` = mean over subjects of
    100 * completed / planned; ``induction_adherent_pct`` = percent of subjects with adequate
    induction sessions >= the PP share of planned induction sessions; ``charge_mc_mean`` and
    ``charge_mc_sd`` per session (mC); ``within_tolerance_pct`` mean per-session share of time
    within the current tolerance (``prescribed_tolerance_share`` when ADDEV has it, else
    ``within_tolerance_share``, vendors with samples only); ``aborted`` sessions not COMPLETED and
    ``aborted_pct`` of sessions."""
    order = group_order(adsl, study)
    planned = study.planned_sessions_total
    induction = study.planned_sessions("induction")
    pp_share = float(study.section("analysis_sets")["pp"]["min_induction_sessions_share"])
    groups = subject_groups(adsl, "SAFFL")
    treated = addev.filter(pl.col("phase").is_in(["induction", "maintenance"]))
    tolerance = (
        "prescribed_tolerance_share"
        if "prescribed_tolerance_share" in addev.columns
        else "within_tolerance_share"
    )
    per_subject = treated.group_by("subject_id").agg(
        (pl.col("end_reason") == "COMPLETED").sum().alias("completed")
    )
    subjects = (
        groups.join(adsl.select("subject_id", "n_induction_sessions_adequate"), on="subject_id")
        .join(per_subject, on="subject_id", how="left")
        .with_columns(pl.col("completed").fill_null(0))
        .group_by("group")
        .agg(
            pl.len().cast(pl.Int64).alias("n_subjects"),
            (100.0 * pl.col("completed") / planned).mean().alias("adherence_pct"),
            (
                100.0 * (pl.col("n_induction_sessions_adequate") >= pp_share * induction).mean()
            ).alias("induction_adherent_pct"),
        )
    )
    sessions = (
        groups.join(treated, on="subject_id")
        .group_by("group")
        .agg(
            pl.len().cast(pl.Int64).alias("sessions"),
            (pl.col("end_reason") == "COMPLETED").sum().cast(pl.Int64).alias("sessions_completed"),
            pl.col("charge_mc").mean().alias("charge_mc_mean"),
            pl.col("charge_mc").std().alias("charge_mc_sd"),
            (100.0 * pl.col(tolerance).mean()).alias("within_tolerance_pct"),
            (pl.col("end_reason") != "COMPLETED").sum().cast(pl.Int64).alias("aborted"),
        )
    )
    out = (
        pl.DataFrame({"group": order})
        .join(subjects, on="group", how="left")
        .join(sessions, on="group", how="left")
        .with_columns(
            pl.col("sessions").fill_null(0),
            pl.col("sessions_completed").fill_null(0),
            pl.col("aborted").fill_null(0),
            pl.lit(planned, pl.Int64).alias("planned_per_subject"),
        )
        .with_columns(
            pl.when(pl.col("sessions") > 0)
            .then(100.0 * pl.col("aborted") / pl.col("sessions"))
            .alias("aborted_pct")
        )
    )
    return out.select(
        "group",
        "n_subjects",
        "sessions",
        "sessions_completed",
        "planned_per_subject",
        "adherence_pct",
        "induction_adherent_pct",
        "charge_mc_mean",
        "charge_mc_sd",
        "within_tolerance_pct",
        "aborted",
        "aborted_pct",
    )


def fault_summary(addev: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Aborted sessions (end reason not COMPLETED) by group, end reason and fault code, with the
    fault's description from the study codelist. Columns ``group, end_reason, fault_code,
    fault, sessions``."""
    faults = {str(k): str(v) for k, v in study.codelists["fault_code"].items()}
    groups = subject_groups(adsl, "SAFFL")
    out = (
        groups.join(addev.filter(pl.col("end_reason") != "COMPLETED"), on="subject_id")
        .group_by("group", "end_reason", "fault_code")
        .agg(pl.len().cast(pl.Int64).alias("sessions"))
        .with_columns(
            pl.col("fault_code")
            .replace_strict(faults, default=None, return_dtype=pl.String)
            .alias("fault")
        )
    )
    return _sort_groups(out, group_order(adsl, study), "end_reason", "fault_code").select(
        "group", "end_reason", "fault_code", "fault", "sessions"
    )
