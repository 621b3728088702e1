"""Figures of the investigator report, as inline SVG text.

matplotlib with the Agg backend, text drawn as paths and a fixed SVG hash salt and no date
metadata, so the same numbers give byte-identical SVG on any headless machine. Each function
takes the Polars frame that a test checks (``trial.report.summaries`` / ``model_tables``).
"""

from __future__ import annotations

import io
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import polars as pl
from matplotlib.figure import Figure

from trial.report.summaries import TOTAL

PALETTE = ["#1b6ca8", "#d1495b", "#2e933c", "#8d6a9f", "#edae49", "#00798c"]
"""Arm colours in study order (colour-blind distinguishable, print legible)."""
LOG_TICKS = [0.5, 1, 2, 3, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000]
"""Tick marks of the log-scale rate axis (mg/min)."""
FOREST_RANGE = (0.1, 10.0)
"""Ratio axis of the forest plot; a CI beyond it is cut and marked with an arrow head."""
FOREST_TICKS_ALL = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0]
"""Candidate ticks of the ratio axis; those inside the axis are drawn."""


def _svg(fig: Figure) -> str:
    with matplotlib.rc_context({"svg.hashsalt": "ionto-report", "svg.fonttype": "path"}):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def time_course_svg(
    course: pl.DataFrame, groups: list[str], primary_visit: str, *, region: str, ci: str
) -> str:
    """Geometric mean rate (mg/min, log axis) with its CI (``ci`` names it, e.g. ``95 % CI``)
    by nominal week and group; ``region`` is the printed region name (``Palmar``).

    ``course``: :func:`trial.report.summaries.sweat_time_course`. The pooled ``TOTAL`` line is
    drawn only when it is the sole group (blinded run)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    shown = [g for g in groups if g != TOTAL] or [TOTAL]
    offsets = {g: (i - (len(shown) - 1) / 2) * 0.12 for i, g in enumerate(shown)}
    for i, g in enumerate(shown):
        rows = course.filter(pl.col("group") == g).sort("week")
        x = [w + offsets[g] for w in rows["week"].to_list()]
        y = rows["geo_mean"].to_list()
        low = [m - lo for m, lo in zip(y, rows["ci_low"].to_list(), strict=True)]
        high = [hi - m for m, hi in zip(y, rows["ci_high"].to_list(), strict=True)]
        ax.errorbar(
            x,
            y,
            yerr=[low, high],
            marker="o",
            markersize=4,
            capsize=3,
            linewidth=1.5,
            color=PALETTE[i % len(PALETTE)] if g != TOTAL else "#333333",
            label="All subjects (pooled)" if g == TOTAL else g,
        )
    weeks = course.filter(pl.col("visit") == primary_visit)["week"].to_list()
    if weeks:
        ax.axvline(weeks[0], color="#999999", linestyle=":", linewidth=1)
        ax.annotate(
            "primary visit",
            (weeks[0], ax.get_ylim()[1]),
            fontsize=8,
            color="#666666",
            ha="left",
            va="top",
            xytext=(3, -3),
            textcoords="offset points",
        )
    ax.set_yscale("log")
    y_low, y_high = ax.get_ylim()
    ax.set_yticks([t for t in LOG_TICKS if y_low <= t <= y_high])
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel("Week")
    ax.set_ylabel(f"{region} sweat rate, geometric mean (mg/min)")
    ticks = sorted(set(course["week"].drop_nulls().to_list()))
    ax.set_xticks(ticks)
    ax.grid(True, which="major", axis="y", color="#dddddd", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def forest_axis(effects: pl.DataFrame) -> tuple[float, float]:
    """The forest plot's ratio axis: the smallest CI bound to the largest, widened by 10 % on
    the log scale and always holding 1, within ``FOREST_RANGE`` (a CI beyond it is cut there
    and marked with an arrow head, so one tiny subgroup cannot squash the others)."""
    low = min(v for v in [*effects["ratio_ci_low"].drop_nulls().to_list(), 1.0])
    high = max(v for v in [*effects["ratio_ci_high"].drop_nulls().to_list(), 1.0])
    low, high = max(low, FOREST_RANGE[0]), min(high, FOREST_RANGE[1])
    pad = (high / low) ** 0.1
    return low / pad, high * pad


def forest_svg(effects: pl.DataFrame, *, region: str, ci: str) -> str:
    """Forest plot: ratio of geometric means (treatment / reference, log axis sized to the data,
    :func:`forest_axis`) with its CI (``ci``, e.g. ``95 % CI``) per subgroup level and
    contrast, the level's n at the left and the estimate and CI as text at the right; each
    subgroup's heading carries its
    interaction p. ``effects``: :func:`trial.report.model_tables.subgroup_effects` with the
    printed ``subgroup_label`` and ``level_label`` columns the report adds."""
    rows = effects
    contrasts = rows["contrast"].unique(maintain_order=True).to_list()
    lines: list[tuple[str, dict[str, Any] | None]] = []
    for (subgroup,), part in rows.group_by("subgroup_label", maintain_order=True):
        p = part["interaction_p"].drop_nulls()
        p_text = "" if p.is_empty() else f"   interaction p = {_p_text(float(p[0]))}"
        if part.height > len(contrasts):
            lines.append((f"{subgroup}{p_text}", None))
        for level in part.iter_rows(named=True):
            lead = "    " if part.height > len(contrasts) else ""
            name = level["level_label"] if part.height > len(contrasts) else subgroup
            lines.append((f"{lead}{name} (n = {level['n']})  {level['contrast']}", level))
    low, high = forest_axis(rows)
    fig, ax = plt.subplots(figsize=(7.6, 0.24 * max(len(lines), 4) + 1.0))
    y = list(range(len(lines)))[::-1]
    for yy, (_text, point) in zip(y, lines, strict=True):
        if point is None:
            continue
        row = point
        colour = PALETTE[(contrasts.index(row["contrast"]) + 1) % len(PALETTE)]
        r, lo, hi = row["ratio"], row["ratio_ci_low"], row["ratio_ci_high"]
        if r is None or lo is None or hi is None:
            continue
        rc, loc, hic = (min(max(v, low), high) for v in (r, lo, hi))
        ax.errorbar(
            [rc],
            [yy],
            xerr=[[rc - loc], [hic - rc]],
            fmt="s",
            markersize=4,
            capsize=2,
            color=colour,
        )
        if lo < low:
            ax.plot(low, yy, marker="<", color=colour, markersize=6)
        if hi > high:
            ax.plot(high, yy, marker=">", color=colour, markersize=6)
        ax.annotate(
            f"{r:.2f} ({lo:.2f}, {hi:.2f})",
            xy=(1.0, yy),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.axvline(1.0, color="#555555", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ticks = [t for t in FOREST_TICKS_ALL if low <= t <= high]
    ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_yticks(y)
    ax.set_yticklabels([t for t, _ in lines], fontsize=8)
    for label_text, (_t, heading) in zip(ax.get_yticklabels(), lines, strict=True):
        if heading is None:
            label_text.set_fontweight("bold")
    ax.set_ylim(-0.7, len(lines) - 0.3)
    ax.set_xlabel(
        f"Ratio of geometric mean {region.lower()} sweat rates (treatment / reference), {ci}"
    )
    ax.text(
        1.0,
        1.0,
        f"  Ratio ({ci})",
        transform=ax.transAxes,
        fontsize=8,
        va="bottom",
        fontweight="bold",
    )
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def consort_svg(flow: pl.DataFrame, groups: list[str]) -> str:
    """CONSORT 2010 flow diagram drawn as SVG boxes from :func:`summaries.consort_flow`.

    One column of boxes per group below allocation (arms when unblinded, pooled when blinded);
    reasons are listed inside their box."""

    def n(stage: str, group: str = TOTAL, reason: str | None = None) -> int:
        rows = flow.filter(
            (pl.col("stage") == stage)
            & (pl.col("group") == group)
            & (pl.col("reason").is_null() if reason is None else pl.col("reason") == reason)
        )
        return int(rows["n"].sum())

    def reasons(stage: str, group: str = TOTAL) -> list[str]:
        rows = flow.filter(
            (pl.col("stage") == stage) & (pl.col("group") == group) & pl.col("reason").is_not_null()
        ).filter(pl.col("n") > 0)
        return [
            f"{r.replace('_', ' ').lower()}: {k}" for r, k in rows.select("reason", "n").iter_rows()
        ]

    columns = [g for g in groups if g != TOTAL] or [TOTAL]
    width = max(760, 250 * len(columns) + 20)
    box_w = (width - 20) // len(columns) - 16
    parts: list[str] = []
    y = 10

    def box(x: int, top: int, w: int, lines: list[str]) -> int:
        h = 18 * len(lines) + 12
        parts.append(
            f'<rect x="{x}" y="{top}" width="{w}" height="{h}" rx="4" fill="#ffffff" '
            'stroke="#333333" stroke-width="1"/>'
        )
        for i, line in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            parts.append(
                f'<text x="{x + 8}" y="{top + 20 + 18 * i}" font-size="12"{weight}>'
                f"{escape(line)}</text>"
            )
        return h

    def arrow(x: int, y1: int, y2: int) -> None:
        parts.append(
            f'<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2 - 2}" stroke="#333333" '
            'stroke-width="1.2" marker-end="url(#arrow)"/>'
        )

    centre = width // 2
    h = box(centre - 170, y, 340, ["Enrolment", f"Assessed for eligibility (n = {n('screened')})"])
    excluded = [f"Excluded (n = {n('excluded')})", *reasons("excluded")]
    eh = box(centre + 190, y, width - centre - 200, excluded)
    y += max(h, eh) + 24
    arrow(centre, y - 24, y)
    h = box(centre - 170, y, 340, ["Randomised", f"n = {n('randomised')}"])
    y += h + 24
    col_x = [10 + i * ((width - 20) // len(columns)) + 8 for i in range(len(columns))]
    stages = [
        (
            "Allocation",
            lambda g: [
                f"Allocated (n = {n('allocated', g)})",
                f"received >= 1 session (n = {n('received_sessions', g)})",
                f"no session (n = {n('no_session', g)})",
            ],
        ),
        ("Follow-up", lambda g: [f"Withdrawn (n = {n('withdrawn', g)})", *reasons("withdrawn", g)]),
        (
            "Analysis",
            lambda g: [
                f"Full analysis set (n = {n('analysed_fas', g)})",
                f"excluded from FAS (n = {n('excluded_fas', g)})",
                *["  " + r for r in reasons("excluded_fas", g)],
                f"Per-protocol set (n = {n('analysed_pp', g)})",
                f"Safety set (n = {n('analysed_safety', g)})",
            ],
        ),
    ]
    for title, lines_of in stages:
        heights = []
        for x, g in zip(col_x, columns, strict=True):
            label = "All subjects (pooled, blinded)" if g == TOTAL else g
            arrow(x + box_w // 2, y - 24, y)
            heights.append(box(x, y, box_w, [f"{title}: {label}", *lines_of(g)]))
        y += max(heights) + 24
    defs = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333333"/>'
        "</marker></defs>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y - 14}" '
        f'viewBox="0 0 {width} {y - 14}" font-family="DejaVu Sans, Arial, sans-serif" '
        f'role="img" aria-label="CONSORT flow diagram">{defs}{"".join(parts)}</svg>'
    )
