"""Every numbered table and listing of the investigator report, built once from
:class:`trial.report.data.ReportData`: :func:`investigator_outputs`.

Numbering follows section 14 of an ICH E3 study report: 14.1 participants (14.1.3-4 subject
accountability, ``trial.report.accountability``), 14.2 efficacy (14.2.11-14 estimands,
``trial.report.estimand_tables``), 14.3 safety (14.3.4 device). The HTML report shows these
objects (``trial.report.tlf``) and the RTF files are written from the same objects
(``trial.report.rtf``). An output whose numbers are
withheld (blinded run) or not available is absent, and its number is not reused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from trial.report import accountability as acc
from trial.report import safety_tables as st
from trial.report.estimand_tables import estimand_outputs
from trial.report.labels import contrast_label, label, label_expr
from trial.report.summaries import TOTAL
from trial.report.tlf import Tlf

if TYPE_CHECKING:  # data.py builds the outputs to reconcile their counts: no import cycle
    from trial.report.data import ReportData

SUBGROUP_CODELISTS = {"sex": "sex", "screening_hdss": "stratum", "plantar_involvement": "yes_no"}
"""Subgroup name -> codelist whose labels print its levels (others print as they are)."""


def fixed(expr: pl.Expr, digits: int) -> pl.Expr:
    """A number as text with exactly ``digits`` decimals (``-0.8`` -> ``-0.800``); null stays
    null."""
    scale = 10**digits
    scaled = (expr * scale).round(0).cast(pl.Int64)
    sign = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    whole = scaled.abs() // scale
    if digits == 0:
        return pl.format("{}{}", sign, whole)
    frac = (scaled.abs() % scale).cast(pl.String).str.zfill(digits)
    return pl.format("{}{}.{}", sign, whole, frac)


def _ci(low: str, high: str, digits: int) -> pl.Expr:
    return pl.format("({}, {})", fixed(pl.col(low), digits), fixed(pl.col(high), digits))


def _p(col: str) -> pl.Expr:
    return pl.when(pl.col(col) < 0.001).then(pl.lit("<0.001")).otherwise(fixed(pl.col(col), 3))


def _text(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.all().cast(pl.String).fill_null(""))


def _denominators(data: ReportData, stage: str) -> dict[str, int]:
    rows = data.consort.filter((pl.col("stage") == stage) & pl.col("reason").is_null())
    return dict(zip(rows["group"].to_list(), rows["n"].to_list(), strict=True))


def _header(group: str, n: dict[str, int] | None = None) -> str:
    name = "Total" if group == TOTAL else group
    return name if n is None else f"{name} (N = {n.get(group, 0)})"


def _wide(
    frame: pl.DataFrame, index: list[str], value: str, groups: list[str], n: dict[str, int] | None
) -> pl.DataFrame:
    wide = frame.pivot(on="group", index=index, values=value, aggregate_function="first")
    cols = [g for g in groups if g in wide.columns]
    return wide.select(*index, *[pl.col(g).alias(_header(g, n)) for g in cols])


def _set(name: str, n: int) -> str:
    return f"{name} (N = {n})"


def _arms_note(data: ReportData) -> tuple[str, ...]:
    if data.blinded:
        return ("Blinded run: all subjects pooled; results by arm are withheld until unblinding.",)
    return ("Arms: " + st.arm_footnote(data.study, data.groups) + ".",)


def enrolment(data: ReportData) -> Tlf:
    e = data.enrolment
    total = e.filter(pl.col("group") == TOTAL)
    randomised = _wide(e, ["centre_id"], "randomised", data.groups, None)
    randomised = randomised.rename({c: f"Randomised {c}" for c in randomised.columns[1:]})
    table = (
        total.select(
            "centre_id",
            "screened",
            pl.col("first_consent").cast(pl.String),
            pl.col("last_consent").cast(pl.String),
        )
        .join(randomised, on="centre_id")
        .join(total.select("centre_id", pl.col("fas").alias("FAS")), on="centre_id")
    )
    counts = [c for c in table.columns if c not in ("centre_id", "first_consent", "last_consent")]
    total_row = table.select(
        pl.lit("Total").alias("centre_id"),
        *[pl.col(c).sum() for c in counts],
        pl.col("first_consent").min(),
        pl.col("last_consent").max(),
    ).select(table.columns)
    body = _text(pl.concat([table, total_row], how="vertical_relaxed")).rename(
        {
            "centre_id": "Centre",
            "screened": "Screened",
            "first_consent": "First consent",
            "last_consent": "Last consent",
        }
    )
    return Tlf(
        number="14.1.1",
        title="Enrolment by centre",
        population=_set("All screened subjects", int(total["screened"].sum())),
        frame=body,
        footnotes=(
            "Screened = subjects in the demography form; randomised = randomised set; FAS = "
            "full analysis set. First and last consent: the centre's recruitment period.",
            *_arms_note(data),
        ),
        sources=("ADSL",),
        program="trial.report.summaries.enrolment_by_centre",
        emphasis=(body.height - 1,),
    )


def baseline(data: ReportData) -> Tlf:
    study = data.study
    codelist = {"Sex": "sex", "Screening HDSS": "stratum", "Plantar involvement": "yes_no"}
    b = data.baseline.with_columns(
        pl.when(pl.col("statistic") == "n (%)")
        .then(pl.format("{} ({})", pl.col("n"), fixed(pl.col("estimate"), 1)))
        .when(pl.col("statistic").str.starts_with("Geometric"))
        .then(
            pl.format(
                "{} ({} - {}); n = {}",
                fixed(pl.col("estimate"), 1),
                fixed(pl.col("low"), 1),
                fixed(pl.col("high"), 1),
                pl.col("n"),
            )
        )
        .otherwise(
            pl.format(
                "{} ({}); {} - {}",
                fixed(pl.col("estimate"), 1),
                fixed(pl.col("spread"), 1),
                fixed(pl.col("low"), 0),
                fixed(pl.col("high"), 0),
            )
        )
        .alias("value"),
    )
    labelled = []
    for (characteristic,), part in b.group_by("characteristic", maintain_order=True):
        cl = codelist.get(str(characteristic))
        row = label_expr(study, cl, "row") if cl else pl.col("row")
        labelled.append(
            part.with_columns(
                pl.when(pl.col("row").is_not_null())
                .then(row)
                .otherwise(pl.col("statistic"))
                .alias("_label")
            )
        )
    b = pl.concat(labelled)
    n = _denominators(data, "allocated")
    rows: list[pl.DataFrame] = []
    indent: list[int] = []
    for (characteristic,), part in b.group_by("characteristic", maintain_order=True):
        wide = _wide(part, ["_label"], "value", data.groups, n)
        rows.append(pl.DataFrame({"_label": [str(characteristic)]}))
        rows.append(wide)
        indent += [0] + [1] * wide.height
    body = _text(pl.concat(rows, how="diagonal_relaxed")).rename({"_label": "Characteristic"})
    involvement = data.study.involvement_region  # a region measured in involved subjects only
    among = (
        ""
        if involvement is None
        else f"; the {data.study.region_label(involvement.code).lower()} rate among subjects "
        "with plantar involvement"
    )
    return Tlf(
        number="14.1.2",
        title="Demographic and baseline characteristics",
        population=_set("Randomised set", n.get(TOTAL, 0)),
        frame=body,
        footnotes=(
            "n (%) for categories; age: mean (SD); range. Sweat rates: geometric mean (range), "
            f"mg/min at the baseline visit, n = subjects with a value{among}.",
            *_arms_note(data),
        ),
        sources=("ADSL", "ADSWEAT"),
        program="trial.report.summaries.baseline_characteristics",
        indent=tuple(indent),
    )


def responders(data: ReportData) -> Tlf:
    visit = data.study.primary_visit
    resp = data.responders.with_columns(
        pl.col("group").replace(TOTAL, "Total").alias("Group"),
        fixed(pl.col("pct_reduction"), 1).alias("Observed % reduction"),
        pl.format(
            "{} ({})", pl.col("hdss_responders"), fixed(pl.col("hdss_responder_pct"), 1)
        ).alias("HDSS responders, n (%)"),
        pl.format(
            "{} ({})", pl.col("sweat_responders"), fixed(pl.col("sweat_responder_pct"), 1)
        ).alias("Sweat responders, n (%)"),
    )
    if data.primary_lsmeans.height:
        lsm = data.primary_lsmeans.filter(pl.col("visit") == visit).select(
            pl.col("arm").alias("group"),
            pl.format(
                "{} ({}, {})",
                fixed(pl.col("percent_reduction"), 1),
                fixed(pl.col("percent_reduction_ci_low"), 1),
                fixed(pl.col("percent_reduction_ci_high"), 1),
            ).alias(f"LS mean % reduction ({data.study.ci_label})"),
        )
        resp = resp.join(lsm, on="group", how="left")
    body = resp.select(
        "Group",
        pl.col("N").alias("N (FAS)"),
        *([f"LS mean % reduction ({data.study.ci_label})"] if data.primary_lsmeans.height else []),
        "Observed % reduction",
        pl.col("n_observed").alias(f"n observed at {visit}"),
        "HDSS responders, n (%)",
        "Sweat responders, n (%)",
    )
    responder = data.study.endpoints.responder
    n = _denominators(data, "analysed_fas")
    return Tlf(
        number="14.2.1",
        title=f"Percent reduction from baseline and responders at {visit}",
        population=_set("Full analysis set", n.get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            f"Percent reduction = 100 x (1 - exp(mean change in ln {_region(data)} rate)); LS mean "
            "from the primary MMRM.",
            f"Responders: HDSS improved by >= {responder.hdss_improvement} points; "
            f"{_region(data)} rate reduced by >= {responder.sweat_reduction_pct:g} %; a missing "
            "value counts as non-response.",
            *_arms_note(data),
        ),
        sources=("ADSL", "ADSWEAT", "ADHDSS"),
        program="trial.report.summaries.responder_shares, trial.models.mmrm",
    )


def lsmeans(data: ReportData) -> Tlf:
    visit, ci = data.study.primary_visit, data.study.ci_label
    lsm = data.primary_lsmeans
    body = lsm.select(
        pl.col("visit").alias("Visit"),
        pl.col("arm").alias("Arm"),
        fixed(pl.col("estimate"), 3).alias("LS mean change (ln)"),
        fixed(pl.col("std_error"), 3).alias("SE"),
        *([fixed(pl.col("df"), 1).alias("df")] if "df" in lsm.columns else []),
        _ci("ci_low", "ci_high", 3).alias(ci),
        fixed(pl.col("percent_reduction"), 1).alias("% reduction"),
    )
    primary = [i for i, v in enumerate(lsm["visit"].to_list()) if v == visit]
    n = _denominators(data, "analysed_fas")
    return Tlf(
        number="14.2.2",
        title=f"Primary endpoint: LS mean change from baseline in ln {_region(data)} sweat rate "
        "by visit (MMRM)",
        population=_set("Full analysis set", n.get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            f"Covariance structure used: {data.covariance_structure}; df: denominator degrees of "
            "freedom of the configured method. % reduction = 100 x (1 - exp(LS mean)).",
            f"Rows in bold: the primary visit {visit}.",
            *_arms_note(data),
        ),
        sources=("ADSL", "ADSWEAT"),
        program="trial.models.mmrm",
        emphasis=tuple(primary),
    )


def contrasts(data: ReportData) -> Tlf:
    visit, ci = data.study.primary_visit, data.study.ci_label
    ct = data.primary_contrasts
    body = ct.select(
        pl.col("visit").alias("Visit"),
        pl.col("contrast").map_elements(contrast_label, return_dtype=pl.String).alias("Contrast"),
        fixed(pl.col("estimate"), 3).alias("Difference (ln)"),
        fixed(pl.col("std_error"), 3).alias("SE"),
        *([fixed(pl.col("df"), 1).alias("df")] if "df" in ct.columns else []),
        _ci("ci_low", "ci_high", 3).alias(ci),
        fixed(pl.col("ratio"), 3).alias("Ratio of geometric means"),
        _ci("ratio_ci_low", "ratio_ci_high", 3).alias(f"Ratio {ci}"),
        _p("p_value").alias("p"),
    )
    primary = [i for i, v in enumerate(ct["visit"].to_list()) if v == visit]
    n = _denominators(data, "analysed_fas")
    return Tlf(
        number="14.2.3",
        title="Treatment contrasts versus the reference arm by visit (MMRM)",
        population=_set("Full analysis set", n.get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            f"Primary contrasts: visit {visit}, rows in bold. Difference in LS mean change of "
            f"ln {_region(data)} rate; ratio of geometric means = exp(difference), below 1 favours "
            f"the treatment. Covariance structure used: {data.covariance_structure}.",
            *_arms_note(data),
        ),
        sources=("ADSL", "ADSWEAT"),
        program="trial.models.mmrm",
        emphasis=tuple(primary),
        landscape=True,
    )


def multiplicity(data: ReportData) -> Tlf:
    study = data.study
    m = data.multiplicity
    body = m.select(
        pl.col("step").alias("Order"),
        pl.col("id").alias("Hypothesis"),
        label_expr(study, "endpoint", "endpoint").alias("Endpoint"),
        pl.col("contrast").map_elements(contrast_label, return_dtype=pl.String).alias("Contrast"),
        _p("p_value").alias("p"),
        pl.col("alpha").cast(pl.String).alias("Alpha"),
        pl.col("decision").str.to_titlecase().alias("Decision"),
        pl.col("reason").alias("Reason"),
    )
    alpha = study.alpha
    return Tlf(
        number="14.2.4",
        title="Multiplicity: fixed-sequence testing of the key secondary hypotheses",
        population=_set("Full analysis set", _denominators(data, "analysed_fas").get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            f"Each hypothesis is tested at the full two-sided alpha {alpha:g} in the order shown, "
            "only if every earlier one was rejected; the first failure stops the sequence.",
        ),
        sources=("ADSL", "ADSWEAT", "ADHDSS"),
        program="trial.models.multiplicity",
        col_widths=(6, 9, 24, 10, 7, 6, 12, 16),
    )


def time_course(data: ReportData, plantar: bool = False) -> Tlf:
    course = data.plantar_time_course if plantar else data.time_course
    table = course.with_columns(
        pl.format(
            "{} ({}, {}); n = {}",
            fixed(pl.col("geo_mean"), 1),
            fixed(pl.col("ci_low"), 1),
            fixed(pl.col("ci_high"), 1),
            pl.col("n"),
        ).alias("value")
    )
    body = _wide(table, ["visit"], "value", data.groups, None).rename({"visit": "Visit"})
    region = "plantar" if plantar else _region(data)
    return Tlf(
        number="14.2.6" if plantar else "14.2.5",
        title=f"Geometric mean {region} sweat rate ({data.study.ci_label}) by visit"
        + (", subjects with plantar involvement" if plantar else ""),
        population=_set("Full analysis set", _denominators(data, "analysed_fas").get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            f"mg/min; t-based {data.study.ci_label} on the log scale, back-transformed; n = "
            "subjects with a value at the visit (observed values).",
            *_arms_note(data),
        ),
        sources=("ADSL", "ADSWEAT"),
        program="trial.report.summaries.sweat_time_course",
        landscape=not data.blinded,
    )


def subgroup_frame(data: ReportData) -> pl.DataFrame:
    """The subgroup effects with printed ``subgroup_label`` and ``level_label``."""
    study = data.study
    frames = []
    for (subgroup,), part in data.subgroups.group_by("subgroup", maintain_order=True):
        name = str(subgroup)
        codelist = SUBGROUP_CODELISTS.get(name)
        level = label_expr(study, codelist, "level") if codelist else pl.col("level")
        if name == "overall":
            level = pl.lit("")
        frames.append(
            part.with_columns(
                pl.lit(label(study, "subgroup", name)).alias("subgroup_label"),
                level.alias("level_label"),
                pl.col("contrast")
                .map_elements(contrast_label, return_dtype=pl.String)
                .alias("contrast"),
            )
        )
    return pl.concat(frames)


def subgroups(data: ReportData) -> Tlf:
    s, ci = subgroup_frame(data), data.study.ci_label
    ratio = "ratio_geometric_means" if "ratio_geometric_means" in s.columns else "ratio"
    body = s.select(
        pl.col("subgroup_label").alias("Subgroup"),
        pl.col("level_label").alias("Level"),
        pl.col("contrast").alias("Contrast"),
        pl.col("n").alias("n"),
        fixed(pl.col(ratio), 2).alias("Ratio"),
        _ci("ratio_ci_low", "ratio_ci_high", 2).alias(ci),
        _p("interaction_p").alias("Interaction p"),
    )
    return Tlf(
        number="14.2.7",
        title=f"Treatment effect at {data.study.primary_visit} by subgroup",
        population=_set("Full analysis set", _denominators(data, "analysed_fas").get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            f"Ratio of geometric mean {_region(data)} sweat rates (treatment / reference) within "
            "the level; n = subjects of the two arms with a value at the visit. Interaction p: F "
            "test of arm x subgroup on all subjects.",
        ),
        sources=("ADSL", "ADSWEAT"),
        program="trial.models.subgroups",
        landscape=True,
    )


def responder_models(data: ReportData) -> Tlf:
    rm = data.responder_models
    study = data.study
    ci = study.ci_label
    body = rm.select(
        *(
            [label_expr(study, "endpoint", "endpoint").alias("Endpoint")]
            if "endpoint" in rm.columns
            else []
        ),
        *(
            [
                pl.col("contrast")
                .map_elements(contrast_label, return_dtype=pl.String)
                .alias("Contrast")
            ]
            if "contrast" in rm.columns
            else []
        ),
        fixed(pl.col("odds_ratio"), 2).alias("Odds ratio"),
        _ci("ci_low", "ci_high", 2).alias(ci),
        _p("p_value").alias("p"),
        *([_p("cmh_p_value").alias("CMH p")] if "cmh_p_value" in rm.columns else []),
    )
    return Tlf(
        number="14.2.8",
        title=f"Responder analyses at {study.primary_visit} (logistic regression)",
        population=_set("Full analysis set", _denominators(data, "analysed_fas").get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            "Odds ratio versus the reference arm, adjusted for centre and stratum; CMH: "
            "Cochran-Mantel-Haenszel test stratified by centre.",
        ),
        sources=("ADSL", "ADSWEAT", "ADHDSS"),
        program="trial.models.responders",
    )


def _contrast_body(frame: pl.DataFrame, first: list[pl.Expr], ci: str) -> pl.DataFrame:
    return frame.select(
        *first,
        pl.col("contrast").map_elements(contrast_label, return_dtype=pl.String).alias("Contrast"),
        fixed(pl.col("estimate"), 3).alias("Difference (ln)"),
        _ci("ci_low", "ci_high", 3).alias(ci),
        fixed(pl.col("ratio"), 3).alias("Ratio"),
        _ci("ratio_ci_low", "ratio_ci_high", 3).alias(f"Ratio {ci}"),
        _p("p_value").alias("p"),
    )


def secondary(data: ReportData) -> Tlf:
    body = _contrast_body(
        data.secondary,
        [pl.col("endpoint").alias("Endpoint"), pl.col("visit").alias("Visit")],
        data.study.ci_label,
    )
    return Tlf(
        number="14.2.9",
        title="Other secondary endpoints",
        population=_set("Full analysis set", _denominators(data, "analysed_fas").get(TOTAL, 0)),
        frame=_text(body),
        footnotes=("Ratio = exp(difference): ratio of geometric means versus the reference arm.",),
        sources=("ADSL", "ADSWEAT"),
        program="trial.models.secondary",
        landscape=True,
    )


def sensitivity(data: ReportData) -> Tlf:
    s = data.sensitivity
    body = _contrast_body(
        s,
        [pl.col("analysis").alias("Analysis"), pl.col("n_subjects").alias("Subjects")],
        data.study.ci_label,
    )
    return Tlf(
        number="14.2.10",
        title=f"Primary and sensitivity analyses at {data.study.primary_visit}",
        population=_set("Full analysis set", _denominators(data, "analysed_fas").get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            "Subjects = subjects in the analysis; the per-protocol analysis uses the PP set.",
        ),
        sources=("ADSL", "ADSWEAT", "ADSWEAT_SIDE"),
        program="trial.models (lmm, mmrm, sides, ancova)",
        landscape=True,
    )


def device(data: ReportData) -> Tlf:
    study = data.study
    d = data.device.select(
        pl.col("group").replace(TOTAL, "Total").alias("Group"),
        label_expr(study, "region", "region").alias("Region"),
        pl.col("n_subjects").alias("Subjects"),
        pl.col("sessions_planned").alias("Planned"),
        pl.col("n_sessions").alias("Sessions"),
        pl.col("sessions_completed").alias("Completed"),
        fixed(100.0 * pl.col("completed_share"), 1).alias("Completed / planned %"),
        pl.format(
            "{} ({})", fixed(pl.col("charge_mean_mc"), 0), fixed(pl.col("charge_sd_mc"), 0)
        ).alias("Charge mC, mean (SD)"),
        pl.when(pl.col("within_tolerance_share").is_not_null())
        .then(
            pl.format(
                "{}; n = {}",
                fixed(100.0 * pl.col("within_tolerance_share"), 1),
                pl.col("n_sessions_with_samples"),
            )
        )
        .otherwise(pl.lit("no samples"))
        .alias("Within tolerance %"),
        pl.format("{} ({})", pl.col("aborted"), fixed(pl.col("aborted_pct"), 1)).alias(
            "Aborted, n (%)"
        ),
    )
    tolerance = study.current_tolerance_pct
    return Tlf(
        number="14.3.4.1",
        title="Device adherence and delivered dose, treatment phases",
        population=_set("Safety set", _denominators(data, "analysed_safety").get(TOTAL, 0)),
        frame=_text(d),
        footnotes=(
            "Per treated region (each has its own device and schedule). Planned = subjects x the "
            "full schedule; completed = sessions ending COMPLETED; within tolerance = "
            f"duration-weighted share of time within +/-{tolerance:g} % of the programmed "
            "current over the n sessions with current samples; aborted = sessions not completed.",
        ),
        sources=("ADSL", "ADDEV"),
        program="trial.models.device",
        landscape=True,
    )


def induction(data: ReportData) -> Tlf:
    body = data.induction_adherence.select(
        pl.col("group").replace(TOTAL, "Total").alias("Group"),
        pl.col("N").alias("Subjects"),
        pl.format("{} ({})", pl.col("n"), fixed(pl.col("pct"), 1)).alias(
            "Induction adherent, n (%)"
        ),
    )
    return Tlf(
        number="14.3.4.2",
        title="Induction adherence",
        population=_set("Safety set", _denominators(data, "analysed_safety").get(TOTAL, 0)),
        frame=_text(body),
        footnotes=(
            "Induction adherent = adequate induction sessions on the primary region's device "
            ">= the per-protocol share of the planned ones.",
        ),
        sources=("ADSL", "ADDEV"),
        program="trial.report.summaries.induction_adherence",
    )


def faults(data: ReportData) -> Tlf:
    study = data.study
    body = data.faults.select(
        pl.col("group").replace(TOTAL, "Total").alias("Group"),
        label_expr(study, "region", "region").alias("Region"),
        pl.format("{} ({})", pl.col("fault_code"), pl.col("description")).alias("Fault"),
        pl.col("n_sessions").alias("Sessions"),
    )
    return Tlf(
        number="14.3.4.3",
        title="Sessions with a fault code, treatment phases",
        population=_set("Safety set", _denominators(data, "analysed_safety").get(TOTAL, 0)),
        frame=_text(body),
        footnotes=("Fault codes and descriptions as the study configuration lists them.",),
        sources=("ADDEV",),
        program="trial.models.device",
    )


def investigator_outputs(data: ReportData) -> dict[str, Tlf]:
    """Every numbered output the report shows, by name, in the order of their numbers (the
    combined RTF file's order; the HTML report places each where its section is)."""
    groups = data.groups
    out: dict[str, Tlf] = {"enrolment": enrolment(data), "baseline": baseline(data)}
    if data.accountability.height:
        out["accountability"] = acc.reconciliation_table(data.accountability, "14.1.3")
        if data.data_issue_subjects.height:
            n_edc = int(data.accountability["edc"][0])
            out["data_issue_subjects"] = acc.data_issue_listing(
                data.data_issue_subjects, "14.1.4", n_edc
            )
    out["responders"] = responders(data)
    if not data.blinded and data.primary_lsmeans.height:
        out["lsmeans"] = lsmeans(data)
        if data.primary_contrasts.height:
            out["contrasts"] = contrasts(data)
    if not data.blinded and data.multiplicity.height:
        out["multiplicity"] = multiplicity(data)
    out["time_course"] = time_course(data)
    if data.plantar_time_course.height:
        out["plantar"] = time_course(data, plantar=True)
    if not data.blinded:
        if data.subgroups.height:
            out["subgroups"] = subgroups(data)
        if data.responder_models.height:
            out["responder_models"] = responder_models(data)
        if data.secondary.height:
            out["secondary"] = secondary(data)
        if data.sensitivity.height:
            out["sensitivity"] = sensitivity(data)
    out |= estimand_outputs(data)
    if data.ae_soc_pt.height:
        out["ae_soc_pt"] = st.soc_pt_table(
            data.ae_soc_pt,
            groups,
            number="14.3.1.1",
            title="Treatment-emergent adverse events by system organ class and preferred term",
            footnotes=_arms_note(data),
        )
        out["ae_severity"] = st.category_table(
            data.ae_severity,
            groups,
            data.study,
            "ae_severity",
            number="14.3.1.2",
            title="Treatment-emergent adverse events by maximum severity",
            rule="Severity: worst severity of the subject's events at that row.",
        )
        out["ae_related"] = st.category_table(
            data.ae_related,
            groups,
            data.study,
            "ae_related",
            number="14.3.1.3",
            title="Treatment-emergent adverse events by relationship to treatment",
            rule="Relationship: strongest relationship of the subject's events at that row.",
        )
        if data.ae_discontinuation.height:
            out["ae_discontinuation"] = st.soc_pt_table(
                data.ae_discontinuation,
                groups,
                number="14.3.1.4",
                title="Treatment-emergent adverse events leading to withdrawal from the study",
                footnotes=(
                    "Events of subjects withdrawn because of an adverse event with onset on or "
                    "before the withdrawal date (the AE form records no action taken).",
                ),
            )
    if data.serious_events.width:
        out["serious"] = st.serious_listing(data.serious_events, data.study, "14.3.2.1")
    if data.device.width:
        out["device"] = device(data)
    out["induction"] = induction(data)
    if data.faults.width and data.faults.height:
        out["faults"] = faults(data)
    return out


def _region(data: ReportData) -> str:
    """The primary region's printed name in a sentence (``palmar``, ``plantar``)."""
    study = data.study
    return study.region_label(study.primary_region.code).lower()
