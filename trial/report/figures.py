"""Figures of the investigator report, as inline SVG text.

matplotlib with the Agg backend, text drawn as paths and a fixed SVG hash salt and no date
metadata, so the same numbers give byte-identical SVG on any headless machine. Each function
takes the Polars frame that a test checks (``trial.report.summaries`` / ``model_tables``).
"""

from __future__ import annotations

import io
from html import escape

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
FOREST_TICKS = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]


def _svg(fig: Figure) -> str:
    with matplotlib.rc_context({"svg.hashsalt": "ionto-report", "svg.fonttype": "path"}):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def time_course_svg(course: pl.DataFrame, groups: list[str], primary_visit: str) -> str:
    """Geometric mean rate (mg/min, log axis) with 95 % CI by nominal week and group.

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
    ax.set_ylabel("Palmar sweat rate, geometric mean (mg/min)")
    ticks = sorted(set(course["week"].drop_nulls().to_list()))
    ax.set_xticks(ticks)
    ax.grid(True, which="major", axis="y", color="#dddddd", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    return _svg(fig)


def forest_svg(effects: pl.DataFrame) -> str:
    """Forest plot: ratio of geometric means (treatment / reference, log axis) with 95 % CI per
    subgroup level and contrast. ``effects``: :func:`trial.report.model_tables.subgroup_effects`.
    The axis spans ``FOREST_RANGE``; a CI (or estimate) beyond it is drawn to the edge with an
    arrow head, so one tiny subgroup cannot squash the others."""
    rows = effects
    contrasts = rows["contrast"].unique(maintain_order=True).to_list()
    labels = [
        f"{s.replace('_', ' ')}: {lv}  [{c}]"
        for s, lv, c in rows.select("subgroup", "level", "contrast").iter_rows()
    ]
    fig, ax = plt.subplots(figsize=(7.5, 0.28 * max(len(labels), 4) + 1.0))
    y = list(range(len(labels)))[::-1]
    for i, c in enumerate(contrasts):
        colour = PALETTE[(i + 1) % len(PALETTE)]
        mask = [cc == c for cc in rows["contrast"].to_list()]
        ys = [yy for yy, m in zip(y, mask, strict=True) if m]
        sub = rows.filter(pl.col("contrast") == c).with_columns(
            pl.col("ratio").clip(FOREST_RANGE[0], FOREST_RANGE[1]).alias("_r"),
            pl.col("ratio_ci_low").clip(FOREST_RANGE[0], FOREST_RANGE[1]).alias("_lo"),
            pl.col("ratio_ci_high").clip(FOREST_RANGE[0], FOREST_RANGE[1]).alias("_hi"),
        )
        r = sub["_r"].to_list()
        ax.errorbar(
            r,
            ys,
            xerr=[
                [a - b for a, b in zip(r, sub["_lo"].to_list(), strict=True)],
                [b - a for a, b in zip(r, sub["_hi"].to_list(), strict=True)],
            ],
            fmt="s",
            markersize=4,
            capsize=2,
            color=colour,
            label=c,
        )
        for yy, low, high in zip(
            ys, sub["ratio_ci_low"].to_list(), sub["ratio_ci_high"].to_list(), strict=True
        ):
            if low is not None and low < FOREST_RANGE[0]:
                ax.plot(FOREST_RANGE[0], yy, marker="<", color=colour, markersize=6)
            if high is not None and high > FOREST_RANGE[1]:
                ax.plot(FOREST_RANGE[1], yy, marker=">", color=colour, markersize=6)
    ax.axvline(1.0, color="#555555", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(FOREST_RANGE[0] / 1.15, FOREST_RANGE[1] * 1.15)
    ax.set_xticks(FOREST_TICKS)
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("Ratio of geometric mean palmar sweat rates (treatment / reference), 95 % CI")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(fig)


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
