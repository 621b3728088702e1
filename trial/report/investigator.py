"""The investigator report: one self-contained HTML file (and a PDF when Chromium is present).

:func:`render_investigator_report` formats a :class:`trial.report.data.ReportData`; it computes
no statistic itself. A blinded report shows pooled results only and states where arm-level
results are withheld.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import polars as pl

from trial.report import figures
from trial.report.data import ReportData
from trial.report.html import banner, document, gt_html, page_css
from trial.report.pdf import print_to_pdf
from trial.report.summaries import TOTAL

REPORT_NAME = "investigator_report"
TITLE = "Investigator report"


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


def _num(col: str, digits: int) -> pl.Expr:
    return fixed(pl.col(col), digits)


def _fmt(expr: pl.Expr, digits: int) -> pl.Expr:
    return fixed(expr, digits)


def _ci(low: str, high: str, digits: int) -> pl.Expr:
    return pl.format("({}, {})", fixed(pl.col(low), digits), fixed(pl.col(high), digits))


def _p(col: str) -> pl.Expr:
    return pl.when(pl.col(col) < 0.001).then(pl.lit("<0.001")).otherwise(fixed(pl.col(col), 3))


def _group_label(group: str) -> str:
    return "All subjects" if group == TOTAL else group


def _wide(frame: pl.DataFrame, index: list[str], value: str, groups: list[str]) -> pl.DataFrame:
    """One column per group (arm order, then TOTAL), headed with the group label."""
    wide = frame.pivot(on="group", index=index, values=value, aggregate_function="first")
    cols = [g for g in groups if g in wide.columns]
    return wide.select(*index, *cols).rename({g: _group_label(g) for g in cols})


def _denominators(data: ReportData, stage: str) -> dict[str, int]:
    rows = data.consort.filter((pl.col("stage") == stage) & pl.col("reason").is_null())
    return dict(zip(rows["group"].to_list(), rows["n"].to_list(), strict=True))


def _title_block(data: ReportData) -> str:
    study, run = data.study, data.run
    rows = [
        ("Study", f"{study.study_id}: {study.title}"),
        ("Data cut", run.data_cut),
        ("Blinding", run.blinding_label),
        ("Data version (raw manifest)", run.data_version),
        ("Code version", run.code_version),
    ]
    cells = "".join(f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<h1>{escape(study.study_id)} - {TITLE}</h1><table class="titleblock">{cells}</table>'


def _withheld(what: str) -> str:
    return (
        f'<div class="withheld">{escape(what)} by arm: withheld in this blinded report '
        "(pooled results only until unblinding).</div>"
    )


def _enrolment(data: ReportData) -> str:
    e = data.enrolment
    screened = e.filter(pl.col("group") == TOTAL).select(
        "centre_id",
        "screened",
        pl.col("first_consent").cast(pl.String),
        pl.col("last_consent").cast(pl.String),
    )
    randomised = _wide(e, ["centre_id"], "randomised", data.groups)
    randomised = randomised.rename({c: f"Randomised: {c}" for c in randomised.columns[1:]})
    fas = e.filter(pl.col("group") == TOTAL).select("centre_id", pl.col("fas").alias("FAS"))
    table = screened.join(randomised, on="centre_id").join(fas, on="centre_id")
    return gt_html(
        table,
        "enrolment",
        title="Enrolment by centre",
        labels={
            "centre_id": "Centre",
            "screened": "Screened",
            "first_consent": "First consent",
            "last_consent": "Last consent",
        },
    )


def _baseline(data: ReportData) -> str:
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
        pl.format(
            "{}{}",
            pl.col("characteristic"),
            pl.when(pl.col("row").is_not_null())
            .then(pl.format(": {}", pl.col("row")))
            .otherwise(pl.format(", {}", pl.col("statistic"))),
        ).alias("Characteristic"),
    )
    table = _wide(b, ["Characteristic"], "value", data.groups)
    n = _denominators(data, "allocated")
    table = table.rename(
        {_group_label(g): f"{_group_label(g)} (N = {n.get(g, 0)})" for g in data.groups}
    )
    return gt_html(
        table,
        "baseline",
        title="Baseline characteristics, randomised set",
        note="n (%) for categories; age mean (SD) and range; sweat rates geometric mean (range), "
        "mg/min at the baseline visit; plantar rate among subjects with plantar involvement.",
    )


def _primary(data: ReportData) -> str:
    parts = []
    resp = data.responders.with_columns(
        pl.col("group").replace(TOTAL, _group_label(TOTAL)).alias("Group"),
        _fmt(pl.col("pct_reduction"), 1).alias("Observed % reduction"),
        pl.format(
            "{} ({})", pl.col("hdss_responders"), fixed(pl.col("hdss_responder_pct"), 1)
        ).alias("HDSS responders, n (%)"),
        pl.format(
            "{} ({})", pl.col("sweat_responders"), fixed(pl.col("sweat_responder_pct"), 1)
        ).alias("Sweat responders, n (%)"),
    )
    visit = data.study.primary_visit
    if data.primary_lsmeans.height:
        lsm = data.primary_lsmeans.filter(pl.col("visit") == visit).select(
            pl.col("arm").alias("group"),
            pl.format(
                "{} ({}, {})",
                fixed(pl.col("percent_reduction"), 1),
                fixed(pl.col("percent_reduction_ci_low"), 1),
                fixed(pl.col("percent_reduction_ci_high"), 1),
            ).alias("LS mean % reduction (95 % CI)"),
        )
        resp = resp.join(lsm, on="group", how="left")
    table = resp.select(
        "Group",
        pl.col("N").alias("N (FAS)"),
        *(["LS mean % reduction (95 % CI)"] if data.primary_lsmeans.height else []),
        "Observed % reduction",
        pl.col("n_observed").alias(f"n observed at {visit}"),
        "HDSS responders, n (%)",
        "Sweat responders, n (%)",
    )
    responder = data.study.endpoints.responder
    parts.append(
        gt_html(
            table,
            "reduction-responders",
            title=f"Percent reduction from baseline and responders at {visit}",
            note=f"Percent reduction = 100 x (1 - exp(mean change in ln palmar rate)). Responders: "
            f"HDSS improved >= {responder.hdss_improvement} points; palmar rate reduced "
            f">= {responder.sweat_reduction_pct:g} %; missing = non-responder.",
        )
    )
    if data.blinded:
        parts.append(_withheld("LS means, contrasts and p-values"))
        return "".join(parts)
    if not data.primary_lsmeans.height:
        parts.append('<div class="withheld">The primary model result is not available.</div>')
        return "".join(parts)
    lsm = data.primary_lsmeans.select(
        pl.col("visit").alias("Visit"),
        pl.col("arm").alias("Arm"),
        _num("estimate", 3).alias("LS mean change (ln)"),
        _num("std_error", 3).alias("SE"),
        _ci("ci_low", "ci_high", 3).alias("95 % CI"),
        _num("percent_reduction", 1).alias("% reduction"),
    )
    parts.append(
        gt_html(
            lsm,
            "primary-lsmeans",
            title="Primary endpoint: LS mean change from baseline in ln palmar sweat rate "
            "(MMRM, FAS)",
            note=f"Covariance structure used: {data.covariance_structure}.",
        )
    )
    ct = data.primary_contrasts.select(
        pl.col("visit").alias("Visit"),
        pl.col("contrast").alias("Contrast"),
        _num("estimate", 3).alias("Difference (ln)"),
        _ci("ci_low", "ci_high", 3).alias("95 % CI"),
        _num("ratio", 3).alias("Ratio of geometric means"),
        _ci("ratio_ci_low", "ratio_ci_high", 3).alias("Ratio 95 % CI"),
        _p("p_value").alias("p"),
    )
    parts.append(
        gt_html(
            ct,
            "primary-contrasts",
            title="Treatment contrasts versus the reference arm",
            note=f"Primary visit {visit}. Covariance structure used: {data.covariance_structure}.",
        )
    )
    return "".join(parts)


def _time_course(data: ReportData) -> str:
    svg = figures.time_course_svg(data.time_course, data.groups, data.study.primary_visit)
    table = data.time_course.with_columns(
        pl.format(
            "{} ({}, {}); n = {}",
            fixed(pl.col("geo_mean"), 1),
            fixed(pl.col("ci_low"), 1),
            fixed(pl.col("ci_high"), 1),
            pl.col("n"),
        ).alias("value")
    )
    wide = _wide(table, ["visit"], "value", data.groups).rename({"visit": "Visit"})
    return (
        '<figure id="time-course">'
        + svg
        + "<figcaption>Geometric mean palmar sweat rate (mg/min, log scale) with 95 % CI by "
        "visit, baseline to the end of follow-up (treatment stops after the maintenance phase: "
        "relapse shows at the last visit). FAS, observed values.</figcaption></figure>"
        + gt_html(wide, "time-course-table", title="Geometric mean palmar sweat rate (95 % CI)")
        + _plantar(data)
    )


def _plantar(data: ReportData) -> str:
    """Secondary endpoint: plantar sweat rate over time, subjects with plantar involvement."""
    course = data.plantar_time_course
    if not course.height:
        return ""
    table = course.with_columns(
        pl.format(
            "{} ({}, {}); n = {}",
            fixed(pl.col("geo_mean"), 1),
            fixed(pl.col("ci_low"), 1),
            fixed(pl.col("ci_high"), 1),
            pl.col("n"),
        ).alias("value")
    )
    wide = _wide(table, ["visit"], "value", data.groups).rename({"visit": "Visit"})
    return gt_html(
        wide,
        "plantar-time-course",
        title="Geometric mean plantar sweat rate (95 % CI), subjects with plantar involvement",
        note="FAS subjects with a plantar value (plantar involvement); mg/min.",
    )


def _subgroups_responders_sensitivity(data: ReportData) -> str:
    if data.blinded:
        return _withheld("Subgroup effects, responder odds ratios and sensitivity analyses")
    parts = []
    if data.subgroups.height:
        parts.append(
            '<figure id="forest">'
            + figures.forest_svg(data.subgroups)
            + f"<figcaption>Treatment effect at {data.study.primary_visit} by subgroup: ratio of "
            "geometric mean palmar sweat rates with 95 % CI (below 1 favours the treatment); an "
            "arrow head marks a CI cut at the axis limit."
            "</figcaption></figure>"
        )
    else:
        parts.append('<div class="withheld">Subgroup analysis result not available.</div>')
    if data.responder_models.height:
        rm = data.responder_models
        cols = [c for c in ("model", "endpoint", "term", "contrast") if c in rm.columns]
        table = rm.select(
            *cols,
            _num("odds_ratio", 2).alias("Odds ratio"),
            _ci("ci_low", "ci_high", 2).alias("95 % CI"),
            _p("p_value").alias("p"),
            *([_p("cmh_p_value").alias("CMH p")] if "cmh_p_value" in rm.columns else []),
        )
        parts.append(
            gt_html(table, "responder-models", title="Responder analyses (logistic regression)")
        )
    else:
        parts.append('<div class="withheld">Responder model result not available.</div>')
    if data.secondary.height:
        sec = data.secondary.select(
            pl.col("endpoint").alias("Endpoint"),
            pl.col("visit").alias("Visit"),
            pl.col("contrast").alias("Contrast"),
            _num("estimate", 3).alias("Difference (ln)"),
            _ci("ci_low", "ci_high", 3).alias("95 % CI"),
            _num("ratio", 3).alias("Ratio"),
            _ci("ratio_ci_low", "ratio_ci_high", 3).alias("Ratio 95 % CI"),
            _p("p_value").alias("p"),
        )
        parts.append(gt_html(sec, "secondary", title="Other secondary endpoints"))
    if data.sensitivity.height:
        s = data.sensitivity.select(
            pl.col("analysis").alias("Analysis"),
            pl.col("contrast").alias("Contrast"),
            pl.col("n_subjects").alias("Subjects"),
            _num("estimate", 3).alias("Difference (ln)"),
            _ci("ci_low", "ci_high", 3).alias("95 % CI"),
            _num("ratio", 3).alias("Ratio"),
            _ci("ratio_ci_low", "ratio_ci_high", 3).alias("Ratio 95 % CI"),
            _p("p_value").alias("p"),
        )
        parts.append(
            gt_html(
                s,
                "sensitivity",
                title=f"Primary and sensitivity analyses at {data.study.primary_visit}",
            )
        )
    return "".join(parts)


def _not_available(what: str, result: str) -> str:
    return (
        f'<div class="withheld">{escape(what)}: the {escape(result)} model result is not '
        "available.</div>"
    )


def _safety(data: ReportData) -> str:
    if not data.adverse_events.width:
        return _not_available("Adverse events", "safety")
    ae = data.adverse_events.with_columns(
        pl.format("{} ({})", pl.col("n"), fixed(pl.col("pct"), 1)).alias("value"),
        pl.when(pl.col("dimension") == "any")
        .then(pl.col("term"))
        .otherwise(pl.format("{}   {}: {}", pl.col("term"), pl.col("dimension"), pl.col("level")))
        .alias("Term"),
    )
    table = _wide(ae, ["Term"], "value", data.groups)
    n = _denominators(data, "analysed_safety")
    table = table.rename(
        {_group_label(g): f"{_group_label(g)} (N = {n.get(g, 0)})" for g in data.groups}
    )
    sae = data.serious_events.with_columns(pl.col(pl.Date).cast(pl.String))
    return gt_html(
        table,
        "adverse-events",
        title="Subjects with treatment-emergent adverse events, safety set: n (%)",
        note="Subjects counted once per term and level (worst severity, strongest relatedness); "
        "severity and relatedness as recorded.",
    ) + gt_html(
        sae,
        "serious-events",
        title="Serious treatment-emergent adverse events, safety set (listing)",
    )


def _device(data: ReportData) -> str:
    induction = data.induction_adherence.select(
        pl.col("group").replace(TOTAL, _group_label(TOTAL)).alias("Group"),
        pl.col("N").alias("Subjects"),
        pl.format("{} ({})", pl.col("n"), fixed(pl.col("pct"), 1)).alias(
            "Induction adherent, n (%)"
        ),
    )
    induction_html = gt_html(
        induction,
        "induction-adherence",
        title="Induction adherence, safety set",
        note="Induction adherent = adequate induction sessions on the primary region's device "
        ">= the per-protocol share of the planned ones.",
    )
    if not data.device.width:
        return _not_available("Device adherence and delivered dose", "device") + induction_html
    d = data.device.select(
        pl.col("group").replace(TOTAL, _group_label(TOTAL)).alias("Group"),
        pl.col("region").alias("Region"),
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
    f = data.faults.select(
        pl.col("group").replace(TOTAL, _group_label(TOTAL)).alias("Group"),
        pl.col("region").alias("Region"),
        pl.col("fault_code").alias("Fault code"),
        pl.col("description").alias("Fault"),
        pl.col("n_sessions").alias("Sessions"),
    )
    tolerance = data.study.current_tolerance_pct
    return (
        gt_html(
            d,
            "device",
            title="Device adherence and delivered dose, safety set, treatment phases",
            note="Per treated region (each has its own device and schedule). Planned = subjects "
            "x the full schedule; completed = sessions ending COMPLETED; within tolerance = "
            f"duration-weighted share of time within ±{tolerance:g} % of the programmed current "
            "over the n sessions with current samples; aborted = sessions not COMPLETED.",
        )
        + induction_html
        + gt_html(f, "faults", title="Sessions with a fault code, treatment phases")
    )


def _methods(data: ReportData) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in data.methods)
    notes = ""
    if data.model_notes.height:
        notes = "<dt>Model notes</dt>" + "".join(
            f"<dd>{escape(m)}: {escape(n)}</dd>" for m, n in data.model_notes.iter_rows()
        )
    return f'<dl class="methods">{items}{notes}</dl>'


def investigator_html(data: ReportData) -> str:
    """The report as one HTML string (inline CSS and SVG; no scripts, no external resources)."""
    sid = data.study.study_id
    top = banner(data.run, sid, TITLE)
    sections = [
        (
            "title",
            "",
            _title_block(data)
            + "<h2>Participant flow (CONSORT 2010)</h2>"
            + '<figure id="consort">'
            + figures.consort_svg(data.consort, data.groups)
            + "</figure>"
            + _enrolment(data),
        ),
        ("baseline", "Baseline characteristics", _baseline(data)),
        ("primary", "Primary endpoint", _primary(data)),
        ("time-course", "Time course", _time_course(data)),
        (
            "subgroups",
            "Subgroups, responders, secondary and sensitivity analyses",
            _subgroups_responders_sensitivity(data),
        ),
        ("safety", "Adverse events", _safety(data)),
        ("device", "Device adherence and delivered dose", _device(data)),
        ("methods", "Methods and populations", _methods(data)),
    ]
    body = "\n".join(
        f'<section class="page" id="{sid_}">{top}'
        + (f"<h2>{escape(h)}</h2>" if h else "")
        + content
        + "</section>"
        for sid_, h, content in sections
    )
    return document(f"{sid} {TITLE} ({data.run.blinding_label})", page_css(data.run, sid), body)


def render_investigator_report(data: ReportData, out_dir: Path, *, pdf: bool = False) -> Path:
    """Write ``out_dir/investigator_report.html`` (and ``.pdf`` with ``pdf=True`` when Chromium
    is installed); returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{REPORT_NAME}.html"
    path.write_text(investigator_html(data), encoding="utf-8")
    if pdf:
        print_to_pdf(path, path.with_suffix(".pdf"))
    return path
