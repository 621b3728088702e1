"""The estimand and tipping-point results as :class:`~trial.models.result.ModelResult` objects.

``estimands`` (:func:`estimand_results`): tables ``definitions`` (the estimands of the study
file, one row each), ``ice_counts`` (FAS subjects with each ICE by arm; pooled when blinded),
``results`` (every estimand at every model visit, tidy), ``primary_visit`` (each estimand's
contrasts at its visit beside section 7's primary analysis), ``check`` (an estimand's primary
inference against its check method, with the Monte-Carlo error). A blinded run fits nothing
that needs arms: only ``definitions`` and pooled ``ice_counts``, and the note says so.

``tipping_point`` (:func:`tipping_point_result`): tables ``curve`` (per non-reference arm and
delta: contrast at the configured visit) and ``tipping`` (per arm: the first delta whose CI
includes 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from study import Estimand, IceHandling, Study
from trial.estimands.analysis import (
    RESULT_SCHEMA,
    contrast_label,
    estimand_data,
    estimand_rbi,
    fit_estimand,
    monte_carlo_agreement,
    rbi_spec,
)
from trial.estimands.config import EstimandsConfig, estimands_config
from trial.models.result import ModelResult
from trial.models.tidy import BLINDED_NOTE, empty_estimates, tidy_estimates
from trial.rbi import RbiFits, fit_rbi
from trial.rbi.reml_fit import ImputationModelError

NAME = "estimands"
TIPPING_NAME = "tipping_point"
TOTAL = "TOTAL"
PRIMARY_ANALYSIS = "primary analysis"
"""``estimand`` label of section 7's primary MMRM in ``primary_visit``."""


def _handling(h: IceHandling) -> str:
    observed = "observed values used" if h.observed == "use" else "post-ICE values set missing"
    return f"{h.strategy}: {observed}; missing values {h.missing}"


def definitions_table(config: EstimandsConfig) -> pl.DataFrame:
    """The estimands table of the study file: one row per estimand, one column per ICE."""
    rules = config.rules
    rows = [
        {
            "estimand": e.id,
            "role": e.role,
            "population": e.population,
            "variable": e.variable,
            "visit": e.visit,
            **{f"{ice} ({rules.names[ice]})": _handling(h) for ice, h in e.ices.items()},
            "method": e.method + ("" if e.check is None else f" (check: {e.check.method})"),
            "summary": e.summary,
        }
        for e in config.estimands
    ]
    return pl.DataFrame(rows)


def ice_counts(adsl: pl.DataFrame, adice: pl.DataFrame, config: EstimandsConfig) -> pl.DataFrame:
    """``group, ICE, ICE_NAME, n_subjects, n_fas``: FAS subjects with each ICE per arm (or
    ``TOTAL`` when ``adsl`` has no arm: blinded)."""
    group = pl.col("arm") if "arm" in adsl.columns else pl.lit(TOTAL)
    fas = adsl.filter(pl.col("FASFL") == "Y").select("subject_id", group=group)
    denominators = fas.group_by("group").agg(n_fas=pl.len().cast(pl.Int64))
    names = pl.DataFrame(
        {"ICE": list(config.rules.names), "ICE_NAME": list(config.rules.names.values())}
    )
    counts = (
        adice.select("subject_id", "ICE")
        .join(fas, on="subject_id", how="inner")
        .group_by("group", "ICE")
        .agg(n_subjects=pl.col("subject_id").n_unique().cast(pl.Int64))
    )
    return (
        denominators.join(names, how="cross")
        .join(counts, on=["group", "ICE"], how="left")
        .with_columns(pl.col("n_subjects").fill_null(0))
        .select("group", "ICE", "ICE_NAME", "n_subjects", "n_fas")
        .sort("ICE", "group")
    )


def _primary_analysis(mmrm_primary: ModelResult, visit: str) -> pl.DataFrame:
    contrasts = mmrm_primary.tables.get("contrasts")
    if contrasts is None:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    return (
        contrasts.filter(pl.col("visit") == visit)
        .select(
            pl.lit(PRIMARY_ANALYSIS).alias("estimand"),
            pl.lit("mmrm").alias("method"),
            pl.lit("MAR").alias("strategy"),
            "visit",
            pl.format("trt_{}", pl.col("contrast").str.split("-").list.first()).alias("parameter"),
            "contrast",
            "estimate",
            pl.col("std_error").alias("se"),
            pl.col("ci_low").alias("lci"),
            pl.col("ci_high").alias("uci"),
            pl.col("p_value").alias("pvalue"),
            "df",
        )
        .cast(RESULT_SCHEMA)  # type: ignore[arg-type]
    )


def _estimates(primary_visit: pl.DataFrame) -> pl.DataFrame:
    rows = primary_visit.filter(pl.col("estimand") != PRIMARY_ANALYSIS)
    terms = (rows["estimand"] + ": " + rows["contrast"] + " at " + rows["visit"]).to_list()
    table = tidy_estimates(terms, rows["estimate"].to_numpy(), rows["se"].to_numpy())
    # the engine's own CI, p and df (t for the MMRM, normal for the jackknife)
    return table.with_columns(
        df=rows["df"],
        p_value=rows["pvalue"],
        ci_low=rows["lci"],
        ci_high=rows["uci"],
    )


def _check(
    populations: Mapping[str, pl.DataFrame],
    adice: pl.DataFrame,
    estimand: Estimand,
    config: EstimandsConfig,
    study: Study,
    primary: pl.DataFrame,
    reuse: Sequence[RbiFits],
) -> pl.DataFrame | str:
    """The check's agreement table, or why it could not be run (a bootstrap draw of the
    imputation model that does not converge). The imputation model's full-data fit of an
    estimand fitted on the same rows (in ``reuse``) is taken over."""
    assert estimand.check is not None
    try:
        check = estimand_rbi(
            populations,
            adice,
            estimand,
            config,
            study,
            estimand.check.method,
            n_samples=estimand.check.n_samples,
            seed=estimand.check.seed,
            reuse=reuse,
        )
    except ImputationModelError as err:
        return f"{estimand.id} check ({estimand.check.method}) could not be run: {err}."
    return monte_carlo_agreement(primary, check).with_columns(
        check_method=pl.lit(estimand.check.method)
    )


def _post_ice_in_fit(adice: pl.DataFrame, populations: Mapping[str, pl.DataFrame]) -> int:
    """Observed FAS model rows after a discontinuation (analysed as observed, and part of the
    imputation model's fit)."""
    subjects = populations["FAS"].select(pl.col("subject").alias("subject_id")).unique()
    return int(
        adice.join(subjects, on="subject_id", how="semi")
        .filter(pl.col("basis") != "RESCUE")["n_post_ice_rows"]
        .sum()
    )


def _fit_estimands(
    populations: Mapping[str, pl.DataFrame],
    adice: pl.DataFrame,
    config: EstimandsConfig,
    study: Study,
) -> tuple[list[pl.DataFrame], list[pl.DataFrame], list[str]]:
    """Every estimand's tidy result, the agreement tables of the checks, and the checks that
    could not be run. Estimands whose imputation model is fitted on the same rows share its
    parameter draws (:func:`trial.rbi.fit_rbi`'s ``reuse``)."""
    results = []
    checks = []
    failures: list[str] = []
    fitted: list[RbiFits] = []
    for estimand in config.estimands:
        result, fits = fit_estimand(populations, adice, estimand, config, study, reuse=fitted)
        results.append(result)
        if fits is not None:
            fitted.append(fits)
        if estimand.check is not None:
            check = _check(populations, adice, estimand, config, study, result, fitted)
            if isinstance(check, str):
                failures.append(check)
            else:
                checks.append(check)
    return results, checks, failures


def estimand_results(
    populations: Mapping[str, pl.DataFrame],
    adsl: pl.DataFrame,
    adice: pl.DataFrame,
    mmrm_primary: ModelResult,
    study: Study,
) -> ModelResult:
    """Every estimand of the study file, its check, and the tables of the report's estimands
    section. ``populations``: analysis set -> ``analysis_long`` of that set."""
    config = estimands_config(study)
    tables = {
        "definitions": definitions_table(config),
        "ice_counts": ice_counts(adsl, adice, config),
    }
    if "arm" not in adsl.columns:
        return ModelResult(
            name=NAME,
            estimates=empty_estimates(),
            fit={"converged": False, "blinded": True, "n_ice_rows": adice.height},
            tables=tables,
            notes=[
                BLINDED_NOTE,
                "The estimands and the intercurrent events are shown pooled; their results "
                "need arms and wait for unblinding.",
            ],
        )
    results, checks, failures = _fit_estimands(populations, adice, config, study)
    everything = pl.concat(results)
    at_visit = everything.filter(pl.col("parameter").str.starts_with("trt_")).join(
        pl.DataFrame({"estimand": [e.id for e in config.estimands]}).with_columns(
            visit=pl.Series([e.visit for e in config.estimands])
        ),
        on=["estimand", "visit"],
        how="semi",
    )
    visits = sorted({e.visit for e in config.estimands})
    primary_visit = pl.concat(
        [pl.concat([_primary_analysis(mmrm_primary, v) for v in visits]), at_visit]
    )
    tables["results"] = everything
    tables["primary_visit"] = primary_visit
    notes = [
        f"{e.id}: {e.method}"
        + ("" if e.method == "mmrm" else f", missing post-ICE values imputed {e.imputation}")
        for e in config.estimands
    ]
    if checks:
        check = pl.concat(checks)
        tables["check"] = check
        for (eid, method), rows in check.group_by("estimand", "check_method", maintain_order=True):
            n = int(rows.select(pl.col("n_imputations").max()).item())
            largest = rows.select(pl.col("difference", "z").abs().max()).row(0)
            notes.append(
                f"{eid} check ({method}, {n} imputations, Rubin's rules): "
                f"{'agrees' if bool(rows['agree'].all()) else 'DOES NOT agree'} with the "
                f"primary inference within Monte-Carlo error at every visit and parameter "
                f"(largest |difference| {largest[0]:.5f}, "
                f"largest |z| {largest[1]:.2f}; z = difference / "
                "Monte-Carlo SE of the imputation mean)."
            )
    notes += failures
    n_post = _post_ice_in_fit(adice, populations)
    notes.append(
        f"{n_post} observed FAS values after a discontinuation are analysed as observed "
        "(treatment policy) and are part of the imputation model's fit (SAP section 11)."
    )
    return ModelResult(
        name=NAME,
        estimates=_estimates(primary_visit),
        fit={
            "converged": True,
            "blinded": False,
            "n_estimands": len(config.estimands),
            "n_ice_rows": adice.height,
        },
        tables=tables,
        notes=notes,
    )


def tipping_curve(
    populations: Mapping[str, pl.DataFrame], adice: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """``arm, contrast, visit, delta, estimate, se, lci, uci, pvalue, includes_zero``: each
    non-reference arm's contrast at the tipping-point visit for deltas of the configured grid,
    up to and including the first whose CI includes 0 (or the whole grid). Arms without data
    are left out.

    The imputation model is fitted (and its parameters drawn) once for the curve; the grid's
    deltas of one arm come from two analyses of the samples (the estimates are linear in delta
    under conditional mean imputation: :meth:`trial.rbi.RbiFits.scaled_delta_curves`, whose
    analysis without a shift is shared by the arms)."""
    config = estimands_config(study)
    tp = config.tipping_point
    estimand = next(e for e in config.estimands if e.id == tp.estimand)
    data, ice = estimand_data(populations[estimand.population], adice, estimand)
    ice = ice.with_columns(strategy=pl.lit(tp.missing))
    spec = rbi_spec(config, study, tp.method)
    curves = []
    present = set(data["arm"].unique().to_list())
    arms = [a for a in study.arm_codes[1:] if a in present]
    fits = fit_rbi(data, ice, spec)
    units = [pl.DataFrame({"arm": [arm], "delta": [1.0]}) for arm in arms]
    for arm, arm_curve in zip(arms, fits.scaled_delta_curves(units, tp.grid), strict=True):
        curve = arm_curve.filter(
            pl.col("visit") == tp.visit, pl.col("parameter") == f"trt_{arm}"
        ).with_columns(includes_zero=(pl.col("lci") <= 0) & (pl.col("uci") >= 0))
        first = curve["includes_zero"].arg_true()
        curves.append(curve.head(int(first[0]) + 1) if first.len() else curve)
    return pl.concat(curves).select(
        pl.col("parameter").str.strip_prefix("trt_").alias("arm"),
        contrast_label(pl.col("parameter"), study.reference_arm).alias("contrast"),
        "visit",
        pl.col("scale").alias("delta"),
        "estimate",
        "se",
        "lci",
        "uci",
        "pvalue",
        "includes_zero",
    )


def tipping_points(curve: pl.DataFrame) -> pl.DataFrame:
    """``arm, contrast, visit, tipping_delta, reached, estimate_at_0, lci_at_0, uci_at_0``:
    per arm the first delta whose CI includes 0 (null and ``reached`` false when none on the
    grid does)."""
    return (
        curve.group_by("arm", "contrast", "visit", maintain_order=True)
        .agg(
            tipping_delta=pl.col("delta").filter(pl.col("includes_zero")).first(),
            reached=pl.col("includes_zero").any(),
            max_delta=pl.col("delta").max(),
            estimate_at_0=pl.col("estimate").sort_by("delta").first(),
            lci_at_0=pl.col("lci").sort_by("delta").first(),
            uci_at_0=pl.col("uci").sort_by("delta").first(),
        )
        .sort("arm")
    )


def tipping_point_result(
    populations: Mapping[str, pl.DataFrame], adsl: pl.DataFrame, adice: pl.DataFrame, study: Study
) -> ModelResult:
    """The tipping-point analysis of the study file (nothing fitted when blinded)."""
    tp = estimands_config(study).tipping_point
    if "arm" not in adsl.columns:
        return ModelResult(
            name=TIPPING_NAME,
            estimates=empty_estimates(),
            fit={"converged": False, "blinded": True},
            notes=[BLINDED_NOTE],
        )
    curve = tipping_curve(populations, adice, study)
    points = tipping_points(curve)
    notes = [
        f"Delta (log scale) added to the imputed values of one arm at a time ({tp.missing} "
        f"imputation on the data of {tp.estimand}, {tp.method}), from {tp.delta_start} in "
        f"steps of {tp.delta_step}, until the {study.ci_label} at {tp.visit} first includes 0 "
        f"(at most {tp.delta_max})."
    ]
    for arm, contrast, tipping, reached in points.select(
        "arm", "contrast", "tipping_delta", "reached"
    ).iter_rows():
        notes.append(
            f"{contrast}: tipping point delta = {tipping:g}"
            if reached
            else f"{contrast}: the CI excludes 0 up to delta {tp.delta_max:g} ({arm})"
        )
    at_tip = curve.join(
        points.select("arm", delta=pl.col("tipping_delta")), on=["arm", "delta"], how="semi"
    )
    terms = (at_tip["contrast"] + " at delta " + at_tip["delta"].cast(pl.String)).to_list()
    # the curve's own interval and p (the engine's, at the study's alpha), as in _estimates
    estimates = tidy_estimates(
        terms, at_tip["estimate"].to_numpy(), at_tip["se"].to_numpy()
    ).with_columns(p_value=at_tip["pvalue"], ci_low=at_tip["lci"], ci_high=at_tip["uci"])
    return ModelResult(
        name=TIPPING_NAME,
        estimates=estimates,
        fit={"converged": True, "blinded": False, "n_deltas": curve.height},
        tables={"curve": curve, "tipping": points},
        notes=notes,
    )
