"""The estimands section's numbered tables (SAP section 11, ICH E9(R1)), after the efficacy
tables of :mod:`trial.report.investigator_tables`: 14.2.11 the estimands, 14.2.12 the FAS
subjects with each intercurrent event, 14.2.13 each estimand at its visit beside the primary
analysis, 14.2.14 the check of the key supportive estimand's inference.

Methods and missing-data strategies print by name (``condmean-jackknife`` -> ``Conditional
mean imputation, jackknife SE``, ``JR`` -> ``Jump to reference``): from the study
configuration's ``labels`` (codelists ``estimand_method``, ``imputation``, ``population``)
where it names them, else from the maps below. A blinded run shows the estimands and the pooled
ICE counts; 14.2.13 and 14.2.14 are absent (their numbers are not reused).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import polars as pl

from study import Study
from trial.estimands.config import estimands_config
from trial.estimands.results import PRIMARY_ANALYSIS, TOTAL
from trial.report.estimands_section import EstimandsSection
from trial.report.labels import contrast_label, labels
from trial.report.summaries import TOTAL as SET_TOTAL
from trial.report.tlf import Tlf

if TYPE_CHECKING:  # data.py builds the outputs to reconcile their counts: no import cycle
    from trial.report.data import ReportData

METHODS = {
    "mmrm": "MMRM (section 7)",
    "condmean-jackknife": "Conditional mean imputation, jackknife SE",
    "condmean-bootstrap": "Conditional mean imputation, bootstrap SE",
    "bayes-approx": "Approximate Bayesian multiple imputation",
}
"""Printed names of the estimand methods of ``trial.estimands.config.METHODS``."""
IMPUTATIONS = {
    "MAR": "Missing at random",
    "JR": "Jump to reference",
    "CR": "Copy reference",
    "CIR": "Copy increments in reference",
}
"""Printed names of the imputation strategies of ``trial.estimands.config.STRATEGIES``."""
POPULATIONS = {"FAS": "Full analysis set", "PP": "Per-protocol set", "SAF": "Safety set"}
"""Printed names of the analysis sets an estimand can name."""
DDF = {"satterthwaite": "Satterthwaite", "kenward_roger": "Kenward-Roger"}
"""Printed names of the primary MMRM's denominator df methods (``models.mmrm.ddf``)."""
OBSERVED = {"use": "observed values used", "set_missing": "observed values set missing"}
"""What happens to observed post-ICE values, in words."""
SOURCES = ("ADSL", "ADSWEAT", "ADICE")
PROGRAM = "trial.estimands.results"


def _name(study: Study, codelist: str, defaults: dict[str, str], code: str) -> str:
    """A code's printed name: the study's label, else the default map, else the code."""
    return {**defaults, **labels(study, codelist)}.get(code, code)


def method_name(study: Study, code: str) -> str:
    return _name(study, "estimand_method", METHODS, code)


def imputation_name(study: Study, code: str) -> str:
    return _name(study, "imputation", IMPUTATIONS, code)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower(text: str) -> str:
    """A name inside a sentence: its first letter in lower case (``Approximate Bayesian`` ->
    ``approximate Bayesian``), an acronym (``MMRM``) as it is."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def _fas(data: ReportData) -> str:
    consort = data.consort
    rows = consort.filter(
        (pl.col("stage") == "analysed_fas")
        & pl.col("reason").is_null()
        & (pl.col("group") == SET_TOTAL)
    )
    return f"Full analysis set (N = {int(rows['n'].sum())})"


def _fixed(values: list[float | None], digits: int) -> list[str]:
    return ["" if v is None else f"{v:.{digits}f}" for v in values]


def _p(values: list[float | None]) -> list[str]:
    return ["" if v is None else ("<0.001" if v < 0.001 else f"{v:.3f}") for v in values]


def definitions(data: ReportData) -> Tlf:
    """One row per estimand of the study configuration, one column per intercurrent event."""
    study = data.study
    config = estimands_config(study)
    names = config.rules.names
    rows = []
    for e in config.estimands:
        method = method_name(study, e.method)
        if e.check is not None:
            method += f"; checked by {_lower(method_name(study, e.check.method))}"
        ices = {
            f"{_sentence(names[ice])} ({ice})": f"{_sentence(h.strategy)}: "
            f"{OBSERVED.get(h.observed, h.observed)}; missing values: "
            f"{_lower(imputation_name(study, h.missing))}"
            for ice, h in e.ices.items()
        }
        rows.append(
            {
                "Estimand": e.id,
                "Role": _sentence(e.role),
                "Population": _name(study, "population", POPULATIONS, e.population),
                "Variable": _sentence(e.variable),
                **ices,
                "Method": method,
                "Summary measure": _sentence(e.summary),
            }
        )
    frame = pl.DataFrame(rows).with_columns(pl.all().cast(pl.String))
    return Tlf(
        number="14.2.11",
        title="Estimands (protocol amendment 1, ICH E9(R1))",
        population=_fas(data),
        frame=frame,
        footnotes=(
            "Intercurrent events are derived from the data (disposition, device sessions, "
            "concomitant medication), never entered by hand. Treatment policy: values observed "
            "after the event are used; hypothetical: they are set missing. Missing values are "
            "imputed under the strategy named (reference-based imputation: Carpenter, Roger and "
            "Kenward 2013).",
        ),
        sources=SOURCES,
        program="trial.estimands.config",
        landscape=True,
        col_widths=(9, 12, 12, 16, *([28] * (frame.width - 6)), 26, 20),
        wrap_columns=tuple(range(1, frame.width)),
    )


def ice_counts(data: ReportData, section: EstimandsSection) -> Tlf:
    """FAS subjects with each intercurrent event, n (% of the arm's FAS), by arm (pooled when
    blinded)."""
    counts = section.ice_counts.with_columns(
        value=pl.format(
            "{} ({})",
            pl.col("n_subjects"),
            (100 * pl.col("n_subjects") / pl.col("n_fas")).round(1).cast(pl.String),
        ),
        row=pl.format("{} ({})", pl.col("ICE_NAME"), pl.col("ICE")),
    )
    wide = counts.pivot(on="group", index="row", values="value", aggregate_function="first")
    n = dict(counts.select("group", "n_fas").unique().iter_rows())
    order = list(dict.fromkeys(g for g in [*data.groups, TOTAL] if g in wide.columns))
    body = wide.select(
        pl.col("row").map_elements(_sentence, return_dtype=pl.String).alias("Intercurrent event"),
        *[pl.col(g).alias(f"{'Total' if g == TOTAL else g} (N = {n[g]})") for g in order],
    )
    return Tlf(
        number="14.2.12",
        title="Subjects with each intercurrent event",
        population=_fas(data),
        frame=body,
        footnotes=(
            "n (%): FAS subjects with at least one such event; % of the column's N.",
            *(
                ("Blinded run: all subjects pooled; counts by arm are withheld until unblinding.",)
                if data.blinded
                else ()
            ),
        ),
        sources=("ADSL", "ADICE"),
        program=PROGRAM,
    )


def results(data: ReportData, section: EstimandsSection) -> Tlf:
    """Each estimand's contrasts at its visit, the primary analysis first for each contrast;
    the primary estimand's rows in bold."""
    study = data.study
    config = estimands_config(study)
    roles = {e.id: e.role for e in config.estimands}
    rows = section.primary_visit.sort("contrast", maintain_order=True)
    estimands = rows["estimand"].to_list()
    frame = pl.DataFrame(
        {
            "Contrast": [contrast_label(c) for c in rows["contrast"].to_list()],
            "Estimand": [
                "Primary analysis" if e == PRIMARY_ANALYSIS else f"{e} ({roles.get(e, '')})"
                for e in estimands
            ],
            "Method": [method_name(study, m) for m in rows["method"].to_list()],
            "Missing values": [imputation_name(study, s) for s in rows["strategy"].to_list()],
            "Visit": rows["visit"].to_list(),
            "Difference (ln)": _fixed(rows["estimate"].to_list(), 3),
            "SE": _fixed(rows["se"].to_list(), 3),
            study.ci_label: [
                f"({lo}, {hi})"
                for lo, hi in zip(
                    _fixed(rows["lci"].to_list(), 3), _fixed(rows["uci"].to_list(), 3), strict=True
                )
            ],
            "p": _p(rows["pvalue"].to_list()),
        }
    )
    primary = {e.id for e in config.estimands if e.role == "primary"}
    return Tlf(
        number="14.2.13",
        title="Each estimand at its visit beside the primary analysis",
        population=_fas(data),
        frame=frame,
        footnotes=(
            "Difference in mean change of the ln sweat rate versus the reference arm; below 0 "
            "favours the treatment. Primary analysis: the section 7 MMRM (missing at random). "
            "Rows of the primary estimand in bold.",
            "Jackknife and bootstrap intervals are normal-based; MMRM intervals use "
            f"{_name(study, 'ddf', DDF, study.models.mmrm.ddf)} df.",
        ),
        sources=SOURCES,
        program=PROGRAM,
        landscape=True,
        emphasis=tuple(i for i, e in enumerate(estimands) if e in primary),
    )


def check(data: ReportData, section: EstimandsSection) -> Tlf:
    """The key supportive estimand's inference against its check method (treatment rows)."""
    study = data.study
    config = estimands_config(study)
    rows = section.check.filter(pl.col("parameter").str.starts_with("trt_"))
    ids = rows["estimand"].to_list()
    methods = [
        f"{e.id}: {method_name(study, e.method)}, checked by "
        f"{_lower(method_name(study, e.check.method))} ({e.check.n_samples} imputations)"
        for e in config.estimands
        if e.check is not None and e.id in ids
    ]
    frame = pl.DataFrame(
        {
            "Estimand": ids,
            "Visit": rows["visit"].to_list(),
            "Contrast": [contrast_label(c) for c in rows["contrast"].to_list()],
            "Estimate (primary method)": _fixed(rows["estimate"].to_list(), 4),
            "Estimate (check method)": _fixed(rows["mi_estimate"].to_list(), 4),
            "Monte-Carlo SE": _fixed(rows["mc_se"].to_list(), 4),
            "z": _fixed(rows["z"].to_list(), 2),
            "SE (primary method)": _fixed(rows["se"].to_list(), 4),
            "SE (check, Rubin)": _fixed(rows["mi_se"].to_list(), 4),
            "Agree": ["Yes" if a else "No" for a in rows["agree"].to_list()],
        }
    )
    return Tlf(
        number="14.2.14",
        title="Check of the key supportive estimand's inference",
        population=_fas(data),
        frame=frame,
        footnotes=(
            "Methods: " + "; ".join(methods) + ".",
            "Agree: |z| <= 3, z = (check estimate - primary estimate) / Monte-Carlo SE of the "
            "check estimate (square root of the between-imputation variance over the number "
            "of imputations).",
        ),
        sources=SOURCES,
        program="trial.estimands.analysis.monte_carlo_agreement",
        landscape=True,
    )


def named_notes(data: ReportData) -> list[str]:
    """The estimand results' notes with method and strategy codes as their printed names
    (``E2: condmean-jackknife, missing post-ICE values imputed JR`` -> ``E2: conditional mean
    imputation, jackknife SE, missing post-ICE values imputed jump to reference``)."""
    if data.estimands is None:
        return []
    study = data.study
    names = {c: method_name(study, c) for c in METHODS} | {
        c: imputation_name(study, c) for c in IMPUTATIONS
    }
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")

    def name(match: re.Match[str]) -> str:
        start = match.start() == 0 or match.string[: match.start()].endswith(": ")
        text = names[match.group(1)]
        return text if start else _lower(text)

    return [pattern.sub(name, note) for note in data.estimands.notes]


def estimand_outputs(data: ReportData) -> dict[str, Tlf]:
    """The section's outputs by name, in report order (none without an estimands result)."""
    section = data.estimands
    if section is None:
        return {}
    out = {"estimands": definitions(data)}
    if section.ice_counts.height:
        out["ice_counts"] = ice_counts(data, section)
    if not data.blinded:
        if section.primary_visit.height:
            out["estimand_results"] = results(data, section)
        if section.check.height:
            out["estimand_check"] = check(data, section)
    return out
