"""Subgroup treatment effects at the primary visit, for the forest plot (SAP section 7).

For each subgrouping factor of ``models.subgroups`` in the study configuration (e.g. sex,
age group, screening HDSS stratum, plantar involvement, centre) and each of its levels, the
treatment effect of every arm against the reference arm is the ANCOVA contrast
``chg ~ arm + logbase + centre + stratum`` fitted within the level (factors constant within
the level, e.g. centre within a centre, drop out of that fit). The interaction p-value per
factor is the F test of ``arm x subgroup`` in

    chg ~ arm + logbase + centre + stratum + subgroup + arm:subgroup

against the model without the interaction, on all subjects with a value at the visit
(complete case, as sensitivity 4). An ``overall`` row (all subjects) heads the forest table.

Age group: ADSL's ``age_group`` when present, else derived from ``age`` with the study's
``models.age_groups``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import special

from study import Study
from trial.models.ancova import ancova_result, ancova_terms, present_factors
from trial.models.result import ModelResult
from trial.models.tidy import BLINDED_NOTE, Factor, empty_estimates, is_blinded, treatment_design

NAME = "subgroups"
ADSL_TO_MODEL = {"centre_id": "centre"}
"""ADSL columns that the model input already carries under another name."""

FOREST_SCHEMA = {
    "subgroup": pl.String,
    "level": pl.String,
    "contrast": pl.String,
    "n": pl.Int64,
    "n_arm": pl.Int64,
    "n_reference": pl.Int64,
    "estimate": pl.Float64,
    "std_error": pl.Float64,
    "df": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "p_value": pl.Float64,
    "ratio_geometric_means": pl.Float64,
    "ratio_ci_low": pl.Float64,
    "ratio_ci_high": pl.Float64,
    "interaction_p": pl.Float64,
}


def _levels(study: Study, column: str, observed: list[str]) -> list[str]:
    """Configured order of a subgroup's levels where the study defines one, else sorted."""
    configured: dict[str, list[str]] = {
        "sex": list(study.codelists.sex),
        "age_group": [a.label for a in study.models.age_groups],
        "stratum": study.stratum_codes,
        "plantar_involved": list(study.codelists.yes_no),
        "centre": study.centres,
    }
    order = configured.get(column, [])
    return [lev for lev in order if lev in observed] + sorted(set(observed) - set(order))


def _age_group(study: Study) -> pl.Expr:
    expr = pl.lit(None, dtype=pl.String)
    for group in reversed(study.models.age_groups):
        expr = (
            pl.when(pl.col("age").is_between(group.min, group.max))
            .then(pl.lit(group.label))
            .otherwise(expr)
        )
    return expr


def subgroup_frame(analysis_long: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """One row per subject with a value at the primary visit, with its subgroup columns.

    Reads ``analysis_long``: ``subject, [arm,] centre, stratum, visit, logbase, chg`` and
    ``adsl``: ``subject_id`` and the configured subgroup columns (``age`` if no ``age_group``).
    """
    visit = study.primary_visit
    base = analysis_long.filter((pl.col("visit") == visit) & pl.col("chg").is_not_null())
    wanted = [
        s.column
        for s in study.models.subgroups
        if ADSL_TO_MODEL.get(s.column, s.column) not in base.columns
    ]
    extra = adsl
    if "age_group" in wanted and "age_group" not in adsl.columns:
        extra = adsl.with_columns(_age_group(study).alias("age_group"))
    extra = extra.select("subject_id", *wanted).with_columns(
        [pl.col(c).cast(pl.String) for c in wanted]
    )
    return base.join(extra, left_on="subject", right_on="subject_id", how="left")


def _interaction_p(data: pl.DataFrame, column: str, study: Study) -> tuple[float, int, int, float]:
    """F, df1, df2, p of arm x subgroup (NaN when not estimable).

    Degrees of freedom come from the ranks of the two designs, so an empty arm x level cell
    (an aliased interaction column) costs a df instead of failing the test.
    """
    main = present_factors(data, ancova_terms(study))
    factor_names = [t.column for t in main if isinstance(t, Factor)]
    if column not in factor_names:
        levels = _levels(study, column, data.get_column(column).unique().to_list())
        if len(levels) < 2:
            return float("nan"), 0, 0, float("nan")
        main = [*main, Factor(column, levels)]
    y = data.get_column("chg").to_numpy()
    rss, rank = [], []
    for inter in ([], [("arm", column)]):
        x = treatment_design(data, main, inter).matrix
        beta, _, r, _ = np.linalg.lstsq(x, y, rcond=None)
        rss.append(float(np.sum((y - x @ beta) ** 2)))
        rank.append(int(r))
    df1 = rank[1] - rank[0]
    df2 = data.height - rank[1]
    if df1 <= 0 or df2 <= 0:
        return float("nan"), df1, df2, float("nan")
    f = ((rss[0] - rss[1]) / df1) / (rss[1] / df2)
    return float(f), df1, df2, float(special.fdtrc(df1, df2, f))


def _contrast_rows(
    data: pl.DataFrame, study: Study, subgroup: str, level: str, interaction_p: float
) -> tuple[list[dict[str, object]], list[str]]:
    ref = study.reference_arm
    counts = dict(data.group_by("arm").len().iter_rows())
    notes: list[str] = []
    try:
        result = ancova_result(data, study, NAME)
    except np.linalg.LinAlgError as err:
        return [], [f"{subgroup}={level}: not estimable ({err})"]
    if "contrasts" not in result.tables:
        return [], [f"{subgroup}={level}: {'; '.join(result.notes)}"]
    rows = []
    for r in result.tables["contrasts"].iter_rows(named=True):
        arm = str(r["contrast"]).split("-")[0]
        rows.append(
            {
                "subgroup": subgroup,
                "level": level,
                "contrast": r["contrast"],
                "n": data.height,
                "n_arm": counts.get(arm, 0),
                "n_reference": counts.get(ref, 0),
                **{k: r[k] for k in ("estimate", "std_error", "df", "ci_low", "ci_high")},
                "p_value": r["p_value"],
                "ratio_geometric_means": r["ratio_geometric_means"],
                "ratio_ci_low": r["ratio_ci_low"],
                "ratio_ci_high": r["ratio_ci_high"],
                "interaction_p": interaction_p,
            }
        )
    return rows, notes


def subgroup_counts(frame: pl.DataFrame, study: Study) -> pl.DataFrame:
    """Subjects per subgroup level (and arm when unblinded): ``subgroup, level, [arm,] n``."""
    parts = []
    by = ["level"] + (["arm"] if "arm" in frame.columns else [])
    for spec in study.models.subgroups:
        column = ADSL_TO_MODEL.get(spec.column, spec.column)
        parts.append(
            frame.with_columns(pl.col(column).cast(pl.String).alias("level"))
            .group_by(by)
            .agg(n=pl.len())
            .with_columns(subgroup=pl.lit(spec.name))
        )
    return pl.concat(parts).select("subgroup", *by, "n").sort("subgroup", *by)


def subgroup_effects(analysis_long: pl.DataFrame, adsl: pl.DataFrame, study: Study) -> ModelResult:
    """Forest-plot table of treatment effects per subgroup level at the primary visit.

    Tables: ``forest`` (:data:`FOREST_SCHEMA`: subgroup, level, contrast, n, n per arm, effect
    with t CI and p, ratio of geometric means, interaction p of the factor), ``interactions``
    (subgroup, F, df1, df2, p_value) and ``counts``. Estimates: one row per
    ``<subgroup>=<level>:<contrast>``. Blinded: counts (pooled) only.
    """
    frame = subgroup_frame(analysis_long, adsl, study)
    counts = subgroup_counts(frame, study)
    if is_blinded(frame):
        return ModelResult(
            name=NAME,
            estimates=empty_estimates(),
            fit={"n_subjects": frame.height, "converged": False, "blinded": True},
            tables={"counts": counts},
            notes=[BLINDED_NOTE, "subgroup counts are pooled over arms"],
        )
    notes: list[str] = []
    rows, overall_notes = _contrast_rows(frame, study, "overall", "all", float("nan"))
    notes.extend(overall_notes)
    interactions = []
    for spec in study.models.subgroups:
        name = spec.name
        column = ADSL_TO_MODEL.get(spec.column, spec.column)
        n_missing = frame.get_column(column).null_count()
        data = frame.filter(pl.col(column).is_not_null())
        if n_missing:
            notes.append(f"{name}: {n_missing} subjects without a value left out")
        f, df1, df2, p = _interaction_p(data, column, study)
        interactions.append({"subgroup": name, "F": f, "df1": df1, "df2": df2, "p_value": p})
        for level in _levels(study, column, data.get_column(column).unique().to_list()):
            level_rows, level_notes = _contrast_rows(
                data.filter(pl.col(column) == level), study, name, level, p
            )
            rows.extend(level_rows)
            notes.extend(level_notes)
    forest = pl.DataFrame(rows, schema=FOREST_SCHEMA).with_columns(
        pl.col("interaction_p").fill_nan(None)
    )
    estimates = forest.select(
        pl.format("{}={}:{}", "subgroup", "level", "contrast").alias("term"),
        "estimate",
        "std_error",
        "df",
        (pl.col("estimate") / pl.col("std_error")).alias("statistic"),
        "p_value",
        "ci_low",
        "ci_high",
    )
    notes.append(
        f"effects at {study.primary_visit}: ANCOVA within each level (complete case); "
        "interaction p: F test of arm x subgroup on all subjects"
    )
    return ModelResult(
        name=NAME,
        estimates=estimates,
        fit={"n_subjects": frame.height, "n_observations": frame.height, "converged": True},
        tables={
            "forest": forest,
            "interactions": pl.DataFrame(
                interactions,
                schema={
                    "subgroup": pl.String,
                    "F": pl.Float64,
                    "df1": pl.Int64,
                    "df2": pl.Int64,
                    "p_value": pl.Float64,
                },
            ).with_columns(pl.col("F", "p_value").fill_nan(None)),
            "counts": counts,
        },
        notes=notes,
    )
