"""The investigator report's estimands section (SAP section 11), from the ``estimands`` and
``tipping_point`` model results: the estimands table with the number of FAS subjects with each
intercurrent event per arm, each estimand's result at its visit beside the primary analysis,
the check of the key supportive estimand's inference, and the tipping-point figure.

A blinded report shows the estimands and pooled ICE counts and withholds every result.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import matplotlib.pyplot as plt
import polars as pl

from trial.estimands.results import NAME, PRIMARY_ANALYSIS, TOTAL
from trial.models.result import ModelResult
from trial.report.figures import PALETTE, _svg
from trial.report.html import gt_html


@dataclass(frozen=True)
class EstimandsSection:
    """The frames the section shows (empty frames where a result is missing or blinded)."""

    definitions: pl.DataFrame
    ice_counts: pl.DataFrame
    primary_visit: pl.DataFrame
    check: pl.DataFrame
    tipping_curve: pl.DataFrame
    tipping: pl.DataFrame
    notes: list[str]


def section_data(
    estimands: ModelResult | None, tipping: ModelResult | None, *, blinded: bool
) -> EstimandsSection | None:
    """The section's frames; None when the run has no estimands result. Refuses an ICE count
    by arm in a blinded report (a blinding defect)."""
    if estimands is None:
        return None
    counts = estimands.tables.get("ice_counts", pl.DataFrame())
    if blinded and counts.height and set(counts["group"].to_list()) != {TOTAL}:
        raise ValueError(f"blinded report requested, but model result {NAME!r} is by arm")
    tables = {} if tipping is None else tipping.tables
    return EstimandsSection(
        definitions=estimands.tables.get("definitions", pl.DataFrame()),
        ice_counts=counts,
        primary_visit=estimands.tables.get("primary_visit", pl.DataFrame()),
        check=estimands.tables.get("check", pl.DataFrame()),
        tipping_curve=tables.get("curve", pl.DataFrame()),
        tipping=tables.get("tipping", pl.DataFrame()),
        notes=estimands.notes + ([] if tipping is None else tipping.notes),
    )


def tipping_point_svg(curve: pl.DataFrame) -> str:
    """Contrast estimate and 95 % CI against delta, one panel line per arm, the zero line and
    each arm's tipping delta marked."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for i, ((arm,), rows) in enumerate(curve.group_by("arm", maintain_order=True)):
        rows = rows.sort("delta")
        colour = PALETTE[(i + 1) % len(PALETTE)]
        x = rows["delta"].to_list()
        contrast = rows["contrast"][0]
        estimate = rows["estimate"].to_list()
        below = [e - lo for e, lo in zip(estimate, rows["lci"].to_list(), strict=True)]
        above = [hi - e for e, hi in zip(estimate, rows["uci"].to_list(), strict=True)]
        ax.errorbar(
            x,
            estimate,
            yerr=[below, above],
            color=colour,
            marker="o",
            markersize=3,
            elinewidth=0.6,
            capsize=2,
            linewidth=1.5,
            label=contrast,
        )
        ax.fill_between(
            x, rows["lci"].to_list(), rows["uci"].to_list(), color=colour, alpha=0.18, linewidth=0
        )
        tip = rows.filter(pl.col("includes_zero"))
        if tip.height:
            ax.axvline(float(tip["delta"][0]), color=colour, linestyle=":", linewidth=1)
            ax.annotate(
                f"{arm}: {float(tip['delta'][0]):g}",
                (float(tip["delta"][0]), float(tip["uci"][0])),
                fontsize=8,
                color=colour,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.axhline(0.0, color="#333333", linewidth=0.8)
    ax.set_xlabel("Delta added to the arm's imputed values (ln scale)")
    ax.set_ylabel("Difference vs reference (ln), 95 % CI")
    ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def _fixed(frame: pl.DataFrame, col: str, digits: int) -> pl.Series:
    """A column as text with exactly ``digits`` decimals (null stays empty)."""
    values = [None if v is None else f"{v:.{digits}f}" for v in frame[col].to_list()]
    return pl.Series(col, values, dtype=pl.String)


def _p(frame: pl.DataFrame) -> pl.Series:
    values = [
        None if v is None else ("<0.001" if v < 0.001 else f"{v:.3f}")
        for v in frame["pvalue"].to_list()
    ]
    return pl.Series("p", values, dtype=pl.String)


def _estimands_table(section: EstimandsSection) -> str:
    counts = section.ice_counts.with_columns(
        pl.format(
            "{} ({}%)",
            pl.col("n_subjects"),
            (100 * pl.col("n_subjects") / pl.col("n_fas")).round(1),
        ).alias("value"),
        pl.format("{} subjects with {} (FAS)", pl.col("ICE"), pl.col("ICE_NAME")).alias("row"),
    )
    wide = counts.pivot(on="group", index="row", values="value", aggregate_function="first")
    groups = counts.select("group", "n_fas").unique(maintain_order=True)
    labels = {
        g: f"{'All subjects' if g == TOTAL else g} (N={n})"
        for g, n in groups.iter_rows()
        if g in wide.columns
    }
    return gt_html(
        section.definitions,
        "estimands-definitions",
        title="Estimands (protocol amendment 1, ICH E9(R1))",
        note="Intercurrent events are derived from the data (disposition, device sessions, "
        "concomitant medication), never entered by hand.",
    ) + gt_html(
        wide.rename({"row": "Intercurrent event", **labels}),
        "estimands-ice-counts",
        title="Subjects with each intercurrent event, n (% of FAS)",
    )


def _results_table(section: EstimandsSection) -> str:
    rows = section.primary_visit.sort("contrast", maintain_order=True)
    table = pl.DataFrame(
        {
            "Contrast": rows["contrast"],
            "Estimand": [
                "Primary analysis (section 7 MMRM)" if e == PRIMARY_ANALYSIS else e
                for e in rows["estimand"].to_list()
            ],
            "Method (imputation)": [
                f"{m} ({s})" for m, s in zip(rows["method"], rows["strategy"], strict=True)
            ],
            "Visit": rows["visit"],
            "Difference (ln)": _fixed(rows, "estimate", 3),
            "95 % CI": [
                f"({lo}, {hi})"
                for lo, hi in zip(_fixed(rows, "lci", 3), _fixed(rows, "uci", 3), strict=True)
            ],
            "p": _p(rows),
        }
    )
    return gt_html(
        table,
        "estimands-results",
        title="Each estimand at its visit beside the primary analysis",
        note="Jackknife and bootstrap intervals are normal-based; MMRM intervals use "
        "Satterthwaite df.",
    )


def _check_table(section: EstimandsSection) -> str:
    if not section.check.height:
        return ""
    check = section.check.filter(pl.col("parameter").str.starts_with("trt_"))
    rows = pl.DataFrame(
        {
            "Estimand": check["estimand"],
            "Visit": check["visit"],
            "Contrast": check["contrast"],
            "Conditional mean": _fixed(check, "estimate", 4),
            "Bayesian MI": _fixed(check, "mi_estimate", 4),
            "Monte-Carlo SE": _fixed(check, "mc_se", 4),
            "z": _fixed(check, "z", 2),
            "SE (jackknife)": _fixed(check, "se", 4),
            "SE (Rubin)": _fixed(check, "mi_se", 4),
            "Agree": ["yes" if a else "NO" for a in check["agree"].to_list()],
        }
    )
    return gt_html(
        rows,
        "estimands-check",
        title="Check of the key supportive estimand's inference",
        note="Agreement: |z| <= 3, z = (MI estimate - conditional mean estimate) / Monte-Carlo SE "
        "of the MI estimate (sqrt of the between-imputation variance over the imputations).",
    )


def estimands_html(section: EstimandsSection, *, blinded: bool) -> str:
    """The section's HTML (tables, figure, notes)."""
    parts = [_estimands_table(section)]
    if blinded:
        parts.append(
            '<div class="withheld">Estimand results and the tipping-point analysis by arm: '
            "withheld in this blinded report (pooled results only until unblinding).</div>"
        )
    else:
        if section.primary_visit.height:
            parts.append(_results_table(section))
        parts.append(_check_table(section))
        if section.tipping_curve.height:
            parts.append(
                '<figure id="tipping-point">'
                + tipping_point_svg(section.tipping_curve)
                + "<figcaption>Tipping point: contrast and 95 % CI against delta</figcaption>"
                + "</figure>"
            )
    parts.append(
        '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in section.notes) + "</ul>"
    )
    return "".join(parts)
