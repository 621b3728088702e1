"""The adverse-event outputs of the report (section 14.3 of a study report) as numbered tables.

Built from the frames of :func:`trial.report.summaries.ae_hierarchy` (the safety model's
counts) and the serious-AE listing; this module only orders and formats. Rows: any TEAE first,
then each system organ class by decreasing number of subjects in the last column (the total),
its preferred terms indented below it in the same order; "Not coded" last. Only rows with at
least one subject in some column (no all-zero rows); in the by-category tables a term's
categories are the ones at least one subject has.
"""

from __future__ import annotations

import polars as pl

from study import Study
from trial.models import safety as safety_model
from trial.report.labels import arm_label, label_expr
from trial.report.summaries import TOTAL
from trial.report.tlf import Tlf

PROGRAM = "trial.models.safety, trial.report.safety_tables"
ANY_LABEL = "Any treatment-emergent adverse event"
COUNT_NOTE = (
    "n (%) = subjects with at least one event (counted once per row), % of N; [E] = number of "
    "events. Treatment-emergent: onset on or after the first treatment session."
)


def group_headers(groups: list[str], denominators: dict[str, int]) -> dict[str, str]:
    """Column header per group: ``GLY (N = 40)``, ``Total (N = 120)``."""
    return {g: f"{'Total' if g == TOTAL else g} (N = {denominators.get(g, 0)})" for g in groups}


def denominators(frame: pl.DataFrame) -> dict[str, int]:
    rows = frame.select("group", "N").unique()
    return dict(zip(rows["group"].to_list(), rows["N"].to_list(), strict=True))


def _pct(n: pl.Expr, pct: pl.Expr) -> pl.Expr:
    return pl.when(n == 0).then(pl.lit("0")).otherwise(pl.format("{} ({})", n, pct.round(1)))


def _row_order(frame: pl.DataFrame, groups: list[str]) -> pl.DataFrame:
    """``soc, pt, _order`` over the rows: any first, SOCs then PTs by decreasing subjects in
    the last group's column, ``Not coded`` last, ties alphabetical."""
    key = groups[-1]
    totals = (
        frame.filter(pl.col("group") == key)
        .group_by("soc", "pt")
        .agg(pl.col("n").max().alias("_n"))
    )
    soc_n = totals.filter(pl.col("pt") == safety_model.ANY_TERM).select(
        "soc", pl.col("_n").alias("_soc_n")
    )
    return (
        totals.join(soc_n, on="soc", how="left")
        .with_columns(
            (pl.col("soc") == safety_model.ANY_TERM).alias("_any"),
            (pl.col("soc") == safety_model.NOT_CODED).alias("_nc"),
            (pl.col("pt") == safety_model.ANY_TERM).alias("_head"),
        )
        .sort(
            ["_any", "_nc", "_soc_n", "soc", "_head", "_n", "pt"],
            descending=[True, False, True, False, True, True, False],
        )
        .with_row_index("_order")
        .select("soc", "pt", "_order")
    )


def _row_label(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.col("soc") == safety_model.ANY_TERM)
        .then(pl.lit(ANY_LABEL))
        .when(pl.col("pt") == safety_model.ANY_TERM)
        .then(pl.col("soc"))
        .otherwise(pl.col("pt"))
        .alias("_label"),
        pl.when(pl.col("pt") == safety_model.ANY_TERM)
        .then(pl.lit(0))
        .otherwise(pl.lit(1))
        .alias("_indent"),
    )


def soc_pt_table(
    frame: pl.DataFrame,
    groups: list[str],
    *,
    number: str,
    title: str,
    footnotes: tuple[str, ...] = (),
) -> Tlf:
    """Subjects n (%) and events [E] by SOC and PT, one column per group."""
    dens = denominators(frame)
    headers = group_headers(groups, dens)
    shown = frame.filter(pl.col("n").max().over("soc", "pt") > 0)
    order = _row_order(shown, groups)
    cells = shown.with_columns(
        pl.when(pl.col("n") == 0)
        .then(pl.lit("0"))
        .otherwise(pl.format("{} [{}]", _pct(pl.col("n"), pl.col("pct")), pl.col("events")))
        .alias("value")
    )
    wide = (
        _row_label(cells.join(order, on=["soc", "pt"]))
        .pivot(on="group", index=["_order", "_label", "_indent"], values="value")
        .sort("_order")
    )
    body = wide.select(
        pl.col("_label").alias("System organ class\n  Preferred term"),
        *[pl.col(g).alias(headers[g]) for g in groups if g in wide.columns],
    )
    return Tlf(
        number=number,
        title=title,
        population=f"Safety set (N = {dens.get(groups[-1], 0)})",
        frame=body,
        footnotes=(COUNT_NOTE, *footnotes),
        sources=("ADSL", "ADAE"),
        program=PROGRAM,
        indent=tuple(wide["_indent"].to_list()),
        emphasis=(),
    )


def category_table(
    frame: pl.DataFrame,
    groups: list[str],
    study: Study,
    codelist: str,
    *,
    number: str,
    title: str,
    rule: str,
) -> Tlf:
    """Subjects n (%) by SOC and PT and by the category of ``codelist`` (worst severity,
    strongest relatedness): a heading row per term, then the categories with subjects."""
    dens = denominators(frame)
    headers = group_headers(groups, dens)
    shown = frame.filter(pl.col("n").max().over("soc", "pt", "category") > 0)
    order = _row_order(shown.group_by("soc", "pt", "group").agg(pl.col("n").sum()), groups)
    ranks = {str(c): i for i, c in enumerate(study.codelist(codelist))}
    cells = shown.with_columns(
        _pct(pl.col("n"), pl.col("pct")).alias("value"),
        pl.col("category")
        .replace_strict(ranks, default=len(ranks), return_dtype=pl.Int64)
        .alias("_c"),
        label_expr(study, codelist, "category").alias("_cat"),
    )
    values = (
        _row_label(cells.join(order, on=["soc", "pt"]))
        .pivot(on="group", index=["_order", "_label", "_indent", "_c", "_cat"], values="value")
        .with_columns((pl.col("_indent") + 1).alias("_indent"))
        .with_columns(pl.col("_cat").alias("_label"))
    )
    heads = (
        _row_label(order.with_columns(pl.lit(-1).alias("_c")))
        .with_columns(pl.lit(None, pl.String).alias("_cat"))
        .select("_order", "_label", "_indent", "_c", "_cat")
    )
    wide = pl.concat([heads, values], how="diagonal_relaxed").sort("_order", "_c")
    headings = [i for i, c in enumerate(wide["_c"].to_list()) if c == -1]
    body = wide.select(
        pl.col("_label").alias("System organ class\n  Preferred term\n    " + rule.split(":")[0]),
        *[pl.col(g).fill_null("").alias(headers[g]) for g in groups if g in wide.columns],
    )
    return Tlf(
        number=number,
        title=title,
        population=f"Safety set (N = {dens.get(groups[-1], 0)})",
        frame=body,
        footnotes=(
            "n (%) = subjects, % of N; each subject is counted once per row, in its " + rule,
            "Treatment-emergent: onset on or after the first treatment session.",
        ),
        sources=("ADSL", "ADAE"),
        program=PROGRAM,
        indent=tuple(wide["_indent"].to_list()),
        headings=tuple(headings),
    )


def serious_listing(listing: pl.DataFrame, study: Study, number: str) -> Tlf:
    """Serious treatment-emergent AEs, one row per event, with labelled columns."""
    arm = [pl.col("arm").alias("Arm")] if "arm" in listing.columns else []
    date = pl.col("onset_date").cast(pl.String)
    end = pl.col("end_date").cast(pl.String) if "end_date" in listing.columns else pl.lit("")
    body = listing.select(
        pl.col("subject_id").alias("Subject"),
        pl.col("centre_id").alias("Centre"),
        *arm,
        pl.format("{} /\n{}", pl.col("soc"), pl.col("pt")).alias(
            "System organ class\nPreferred term"
        ),
        pl.col("verbatim").alias("Reported term (verbatim)"),
        pl.format("{} (day {})", date, pl.col("ASTDY")).alias("Onset (study day)")
        if "ASTDY" in listing.columns
        else date.alias("Onset"),
        end.fill_null("ongoing").alias("End"),
        label_expr(study, "ae_severity", "severity").alias("Severity"),
        label_expr(study, "ae_related", "related").alias("Relationship to treatment"),
    )
    return Tlf(
        number=number,
        kind="Listing",
        title="Serious treatment-emergent adverse events",
        population=f"Safety set: {listing.height} serious events",
        frame=body.with_columns(pl.all().cast(pl.String).fill_null("")),
        footnotes=(
            "Study day 1 = baseline visit; no day 0. Severity and relationship as the "
            "investigator recorded them; coding: "
            + (study.ae_coding.dictionary if study.ae_coding else "none configured")
            + ".",
        ),
        sources=("ADSL", "ADAE"),
        program=PROGRAM,
        wrap_columns=(3, 4) if arm else (2, 3),
        col_widths=(8, 5, *([5] if arm else []), 30, 24, 14, 10, 9, 14),
    )


def arm_footnote(study: Study, groups: list[str]) -> str:
    """``TAP: Tap water iontophoresis; GLY: ...`` for the groups shown."""
    return "; ".join(arm_label(study, g) for g in groups if g != TOTAL)
