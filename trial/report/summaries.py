"""Descriptive summaries behind the investigator report.

Participant flow, baseline, sweat rates and responders are computed from the ADaM tables;
adverse events and device use are taken from the ``safety`` and ``device`` model results
(``trial.models.safety``, ``trial.models.device``), so that the report shows the numbers the
models computed and the tests check.

Every function returns a Polars frame of numbers (no formatting) with a ``group`` column:
the arm code in an unblinded run, plus ``TOTAL``; only ``TOTAL`` in a blinded run (``adsl``
without ``arm``; model results with the ``pooled`` arm). Sweat rates are in mg/min; ``AVAL``
is the natural log of the rate.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from study import Study
from trial.derive.subjects import min_adequate_induction_sessions
from trial.models import device as device_model
from trial.models import safety as safety_model
from trial.models.result import ModelResult

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


def _group_rank(order: list[str]) -> pl.Expr:
    """Position of ``group`` in ``order`` (groups not in it last)."""
    return pl.col("group").replace_strict(
        {g: i for i, g in enumerate(order)}, default=len(order), return_dtype=pl.Int64
    )


def _sort_groups(frame: pl.DataFrame, order: list[str], *by: str) -> pl.DataFrame:
    return frame.with_columns(_group_rank(order).alias("_g")).sort([*by, "_g"]).drop("_g")


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
        _categorical(groups, "sex", "Sex", list(study.codelists.sex), order),
        _categorical(
            groups,
            "stratum",
            "Screening HDSS",
            study.stratum_codes,
            order,
        ),
        _categorical(
            groups,
            "plantar_involved",
            "Plantar involvement",
            list(study.codelists.yes_no),
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
    level: float | None = None,
) -> pl.DataFrame:
    """Geometric mean sweat rate by visit and group, baseline to the last visit; CIs of coverage
    ``level`` (default the study's 1 - alpha).

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
    coverage = study.confidence_level if level is None else level
    n = summary["n"].cast(pl.Float64)
    half = t_quantile(summary["n"], coverage) * summary["_sd"] / n.sqrt()
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
    responder = study.endpoints.responder
    points = float(responder.hdss_improvement)
    pct = responder.sweat_reduction_pct
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


def result_groups(table: pl.DataFrame, pooled: str) -> pl.DataFrame:
    """A model table by ``arm`` as a report frame by ``group``: the arm code, or ``TOTAL`` for
    the ``pooled`` arm of a result computed without arms (blinded run)."""
    return table.rename({"arm": "group"}).with_columns(pl.col("group").replace(pooled, TOTAL))


def _region_rank(study: Study) -> pl.Expr:
    codes = [r.code for r in study.regions]
    return pl.col("region").replace_strict(
        {c: i for i, c in enumerate(codes)}, default=len(codes), return_dtype=pl.Int64
    )


def ae_hierarchy(
    safety: ModelResult, table: str, order: list[str], category: str | None = None
) -> pl.DataFrame:
    """One of the safety model's SOC/PT tables (``soc_pt``, ``soc_pt_severity``,
    ``soc_pt_related``, ``soc_pt_discontinuation``; ``trial.models.safety``) by report group.

    Columns ``soc, pt`` (``ANY`` = any event / the SOC's total), ``category`` (the severity or
    relatedness code when ``category`` names it, else null), ``group``, ``n`` subjects,
    ``events`` (null for a by-category table), ``N`` Safety-set subjects, ``pct``. Only rows the
    model counted (no all-zero rows); a group without events at a row has ``n = 0`` there. For
    a result by arm, ``TOTAL`` is the sum over the arms (each subject is in one arm only)."""
    source = result_groups(safety.tables[table], safety_model.POOLED)
    has_events = "n_events" in source.columns
    keys = ["soc", "pt", *([category] if category else [])]
    counted = source.select(
        *keys,
        "group",
        pl.col("n_subjects").cast(pl.Int64).alias("n"),
        (pl.col("n_events") if has_events else pl.lit(None)).cast(pl.Int64).alias("events"),
    )
    denominators = result_groups(safety.tables["denominators"], safety_model.POOLED).select(
        "group", pl.col("N").cast(pl.Int64)
    )
    if TOTAL in order and TOTAL not in denominators["group"].to_list():
        events_sum = pl.col("events").sum() if has_events else pl.lit(None, pl.Int64)
        counted = pl.concat(
            [
                counted,
                counted.group_by(keys, maintain_order=True)
                .agg(pl.col("n").sum(), events_sum.alias("events"))
                .select(*keys, pl.lit(TOTAL).alias("group"), "n", "events"),
            ]
        )
        denominators = pl.concat(
            [denominators, denominators.select(pl.lit(TOTAL).alias("group"), pl.col("N").sum())]
        )
    rows = counted.select(keys).unique(maintain_order=True)
    grid = rows.join(pl.DataFrame({"group": order}), how="cross")
    out = (
        grid.join(counted, on=[*keys, "group"], how="left", nulls_equal=True)
        .join(denominators, on="group", how="left")
        .with_columns(
            pl.col("n").fill_null(0),
            pl.col("N").fill_null(0),
            pl.col("events").fill_null(0) if has_events else pl.col("events"),
        )
        .with_columns(pct=pl.when(pl.col("N") > 0).then(100.0 * pl.col("n") / pl.col("N")))
    )
    if not category:
        out = out.with_columns(pl.lit(None, pl.String).alias("category"))
    else:
        out = out.rename({category: "category"})
    return out.select("soc", "pt", "category", "group", "n", "events", "N", "pct")


def serious_event_listing(safety: ModelResult, adsl: pl.DataFrame) -> pl.DataFrame:
    """The safety model's listing of serious treatment-emergent AEs in the Safety set, with
    each subject's centre from ADSL (and the arm when the result is by arm)."""
    listing = safety.tables["serious"]
    first = ["subject_id", "centre_id", *(["arm"] if "arm" in listing.columns else [])]
    order = [c for c in ("subject_id", "onset_date", "ae_id") if c in listing.columns]
    return (
        listing.drop("centre_id", strict=False)
        .join(adsl.select("subject_id", "centre_id"), on="subject_id", how="left")
        .select(*first, *[c for c in listing.columns if c not in first])
        .sort(order)
    )


def device_table(device: ModelResult, study: Study, order: list[str]) -> pl.DataFrame:
    """Adherence and delivered dose by group and treated region, as the device model computed
    them (``trial.models.device.device_summary``, columns of its ``by_arm`` table with
    ``group`` for ``arm``). A result by arm has no ``TOTAL`` row: the charge SD and the
    duration-weighted within-tolerance share of the pooled sessions are not sums of the arms'
    values, and the SAP asks for these by arm. A share of no sessions (0 / 0, NaN in the
    result) is null here: not defined rather than a number."""
    return (
        result_groups(device.tables["by_arm"], device_model.POOLED)
        .sort(_group_rank(order), _region_rank(study))
        .with_columns(pl.col(pl.UInt32).cast(pl.Int64), pl.col(pl.Float64).fill_nan(None))
    )


def fault_table(device: ModelResult, study: Study, order: list[str]) -> pl.DataFrame:
    """Treatment-phase sessions per fault code, by group and region, with the code's
    description, from the device model: ``group, region, fault_code, description,
    n_sessions``."""
    return (
        result_groups(device.tables["fault_codes"], device_model.POOLED)
        .sort(_group_rank(order), _region_rank(study), "fault_code")
        .with_columns(pl.col("n_sessions").cast(pl.Int64))
    )


def induction_adherence(adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Safety-set subjects whose adequate first-phase (induction) sessions on the primary
    region's device reach the per-protocol share of the planned ones (ADSL
    ``n_induction_sessions_adequate``), by group: ``group, N, n, pct``."""
    needed = min_adequate_induction_sessions(study)
    groups = subject_groups(adsl, "SAFFL").join(
        adsl.select("subject_id", "n_induction_sessions_adequate"), on="subject_id"
    )
    counts = groups.group_by("group").agg(
        pl.len().cast(pl.Int64).alias("N"),
        (pl.col("n_induction_sessions_adequate") >= needed).sum().cast(pl.Int64).alias("n"),
    )
    order = group_order(adsl, study)
    return (
        pl.DataFrame({"group": order})
        .join(counts, on="group", how="left")
        .with_columns(pl.col("N").fill_null(0), pl.col("n").fill_null(0))
        .with_columns(pct=pl.when(pl.col("N") > 0).then(100.0 * pl.col("n") / pl.col("N")))
    )


def baseline_visits(adsl: pl.DataFrame, adsweat: pl.DataFrame, study: Study) -> pl.DataFrame:
    """FAS subjects by the visit that gave their primary-region baseline (ADSWEAT
    ``BASE_VISIT``: the baseline visit, or the configured fallback, screening, when the baseline
    visit has no valid value): ``visit, n``, schedule order."""
    fas = adsl.filter(pl.col("FASFL") == "Y").select("subject_id")
    base = (
        adsweat.filter(
            (pl.col("PARAMCD") == study.primary_region.paramcd) & pl.col("BASE_VISIT").is_not_null()
        )
        .select("subject_id", pl.col("BASE_VISIT").alias("visit"))
        .unique()
        .join(fas, on="subject_id")
    )
    codes = study.visit_codes
    return (
        base.group_by("visit")
        .agg(pl.len().cast(pl.Int64).alias("n"))
        .with_columns(
            pl.col("visit")
            .replace_strict({v: i for i, v in enumerate(codes)}, default=len(codes))
            .alias("_v")
        )
        .sort("_v")
        .drop("_v")
    )
