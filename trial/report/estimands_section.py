"""The investigator report's estimands section (SAP section 11), from the ``estimands`` and
``tipping_point`` model results: the frames its numbered tables show
(``trial.report.estimand_tables``: the estimands, the FAS subjects with each intercurrent event
per arm, each estimand at its visit beside the primary analysis, the check of the key
supportive estimand's inference) and the tipping-point figure.

A blinded report shows the estimands and pooled ICE counts and withholds every result.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import matplotlib.pyplot as plt
import polars as pl

from trial.estimands.results import NAME, TOTAL
from trial.models.result import ModelResult
from trial.report.figures import PALETTE, _svg
from trial.report.labels import contrast_label


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


def tipping_point_svg(curve: pl.DataFrame, ci: str) -> str:
    """Contrast estimate and CI (``ci`` names it, e.g. ``90 % CI``: the study's alpha) against
    delta, one panel line per arm, the zero line and each arm's tipping delta marked (its
    label on a line of its own at the top, arms in the curve's order)."""
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
            label=contrast_label(contrast),
        )
        ax.fill_between(
            x, rows["lci"].to_list(), rows["uci"].to_list(), color=colour, alpha=0.18, linewidth=0
        )
        tip = rows.filter(pl.col("includes_zero"))
        if tip.height:
            ax.axvline(float(tip["delta"][0]), color=colour, linestyle=":", linewidth=1)
            # Each arm's label on a line of its own below the top of the axes: two arms that
            # tip at nearby deltas would otherwise print their labels over each other.
            ax.annotate(
                f"{arm}: {float(tip['delta'][0]):g}",
                (float(tip["delta"][0]), 1.0),
                xycoords=("data", "axes fraction"),
                fontsize=8,
                color=colour,
                xytext=(3, -10 - 11 * i),
                textcoords="offset points",
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"},
            )
    ax.axhline(0.0, color="#333333", linewidth=0.8)
    ax.set_xlabel("Delta added to the arm's imputed values (ln scale)")
    ax.set_ylabel(f"Difference vs reference (ln), {ci}")
    ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def estimands_html(
    section: EstimandsSection, tables_html: str, notes: list[str], *, blinded: bool, ci: str
) -> str:
    """The section's HTML: its numbered tables (``tables_html``, rendered from
    ``trial.report.estimand_tables``), the tipping-point figure (its intervals named ``ci``,
    the study's ``ci_label``) and the results' ``notes`` (methods by name); a blinded report
    says that the results are withheld."""
    parts = [tables_html]
    if blinded:
        parts.append(
            '<div class="withheld">Estimand results and the tipping-point analysis by arm: '
            "withheld in this blinded report (pooled results only until unblinding).</div>"
        )
    elif section.tipping_curve.height:
        parts.append(
            '<figure id="tipping-point">'
            + tipping_point_svg(section.tipping_curve, ci)
            + "<figcaption>Figure 14.2.3 Tipping point: difference versus the reference arm "
            f"(ln scale) with its {escape(ci)} against the delta added to the arm's imputed "
            "values; a dotted line marks the first delta whose CI includes 0. Full analysis set."
            "</figcaption></figure>"
        )
    parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    return "".join(parts)
