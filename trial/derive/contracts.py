"""ODCS contracts of the analysis-ready tables, generated from the study configuration.

``python -m trial.derive.contracts`` writes ``data_contracts/<table>.odcs.yaml`` for ADSL,
ADSWEAT, ADSWEAT_SIDE, ADHDSS, ADAE, ADDEV and ``analysis_long``; ``tests/derive`` fails when a
committed file differs from what this writes, and checks derived frames against them with the
contract engine (:mod:`data_contracts.contracts`). Codelists (visits, regions, PARAMCD, arms,
strata) come from the study file; ADAE and ADDEV reuse the raw ``ae`` / ``device_sessions``
contracts' columns so they cannot drift.

Blinding: columns that only an unblinded run has (``arm``, ``rand_date``) carry the custom
property ``blinding: unblinded_only``. :func:`table_contract` returns the contract a given run
must satisfy (without those columns when blinded).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from data_contracts.contracts import (
    API_VERSION,
    CONTRACT_DIR,
    Contract,
    contract_path,
    dtype_name,
    load_contract,
)
from trial.study import Study, load_study

CONTRACT_VERSION = "1.0.0"
UNBLINDED_ONLY = "unblinded_only"
YN = ("Y", "N")


@dataclass(frozen=True)
class Column:
    """One column of an analysis-ready table; ``label`` <= 40 characters (SAS label)."""

    name: str
    logical: str
    dtype: str
    label: str
    description: str = ""
    required: bool = False
    key: int | None = None
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[Any, ...] | None = None
    unblinded_only: bool = False


def _s(name: str, label: str, description: str = "", **kw: Any) -> Column:
    return Column(name, "string", "String", label, description, **kw)


def _i(name: str, label: str, description: str = "", **kw: Any) -> Column:
    return Column(name, "integer", "Int64", label, description, **kw)


def _f(name: str, label: str, description: str = "", **kw: Any) -> Column:
    return Column(name, "number", "Float64", label, description, **kw)


def _d(name: str, label: str, description: str = "", **kw: Any) -> Column:
    return Column(name, "date", "Date", label, description, **kw)


def _b(name: str, label: str, description: str = "", **kw: Any) -> Column:
    return Column(name, "boolean", "Boolean", label, description, **kw)


def _yn(name: str, label: str, description: str = "", **kw: Any) -> Column:
    return _s(name, label, description, values=YN, **kw)


def _from_raw(dataset: str) -> tuple[Column, ...]:
    """The columns of a raw contract, as analysis-table columns (same names, types, labels)."""
    contract = load_contract(dataset)
    logical = {p.name: p.logical_type for p in contract.properties}
    return tuple(
        Column(
            name=p.name,
            logical=logical[p.name],
            dtype=dtype_name(p.dtype),
            label=p.label or p.name,
            description=p.description,
            required=p.required,
            unit=p.unit,
            minimum=p.minimum,
            maximum=p.maximum,
            values=None if p.valid_values is None else tuple(p.valid_values),
        )
        for p in contract.properties
    )


def adam_tables(study: Study) -> dict[str, tuple[str, tuple[Column, ...]]]:
    """Table name -> (description, columns), in the column order the derivations produce."""
    visits = tuple(study.visit_codes)
    regions = tuple(r.code for r in study.regions)
    paramcds = tuple(r.paramcd for r in study.regions)
    arms = tuple(study.arm_codes)
    strata = tuple(study.stratum_levels.values())
    ages = tuple(str(g["label"]) for g in study.section("models")["age_groups"])
    phases = (
        "pre_baseline",
        *(str(p["name"]) for p in study.raw["treatment"]["phases"]),
        "post_schedule",
    )
    ln_unit = "ln(mg/min)"
    studyid = _s("STUDYID", "Study identifier", required=True, values=(study.study_id,))

    def subject(key: int | None = 1) -> Column:
        return _s("subject_id", "Subject identifier", required=True, key=key)

    def avisit(key: int | None = None) -> Column:
        return _s("AVISIT", "Analysis visit", required=True, values=visits, key=key)

    avisitn = _i("AVISITN", "Analysis visit (N)", "Schedule order, 1-based.", required=True)
    week = _i("week", "Nominal week", "Nominal week of the visit (null at screening).", unit="week")
    out_of_window = _b(
        "out_of_window",
        "Visit outside its window",
        "|study day - target day| > window_days; kept, excluded only from PP analyses.",
    )
    source = _s(
        "source_records",
        "Raw source records (file:line)",
        "Where the row came from: raw file paths relative to the raw root with 1-based line "
        "numbers, joined with '; '.",
        required=True,
    )
    adsl = (
        studyid,
        subject(),
        _s("centre_id", "Centre", required=True, values=tuple(study.centres)),
        _s("sex", "Sex", values=tuple(study.codelists["sex"])),
        _i("birth_year", "Birth year"),
        _i("age", "Age at consent", "Consent year minus birth year.", unit="years"),
        _s("age_group", "Age group", values=ages),
        _yn("plantar_involved", "Plantar involvement"),
        _i("hdss_screening", "HDSS at screening", minimum=1, maximum=4),
        _s("stratum", "Stratum (screening HDSS)", "From dm.hdss_screening.", values=strata),
        _d("consent_date", "Consent date"),
        _d("bl_date", "Baseline visit date (day 1)"),
        _b("screen_failure", "Screen failure", required=True),
        _b("eligibility_violation", "Eligibility violation", required=True),
        _s("eligibility_reasons", "Eligibility violations", "Comma-separated, sorted."),
        _yn(
            "RANDFL", "Randomised flag", "Blinded: not a screen failure and BL done.", required=True
        ),
        _yn("SAFFL", "Safety population flag", required=True),
        _yn("FASFL", "Full analysis set flag", required=True),
        _yn("PPFL", "Per-protocol set flag", required=True),
        _s("disposition_status", "Disposition status"),
        _s("disposition_reason", "Disposition reason"),
        _d("disposition_date", "Disposition date"),
        _d("trt_start_date", "First session date (UTC)"),
        _d("trt_end_date", "Last session date (UTC)"),
        _i("n_sessions", "Sessions started", "On any serial ever assigned.", required=True),
        _i("n_sessions_mapped", "Sessions mapped by assignment dates", required=True),
        _i("n_sessions_planned", "Sessions planned", required=True),
        _i("n_sessions_completed", "Sessions completed (primary region)", required=True),
        _i("n_induction_sessions_planned", "Induction sessions planned", required=True),
        _i("n_induction_sessions_completed", "Induction sessions completed", required=True),
        _i(
            "n_induction_sessions_adequate",
            "Adequate induction sessions",
            "Primary region's device; see ADDEV adequate.",
            required=True,
        ),
        _f(
            "time_within_tolerance_share",
            "Share of time within current tolerance",
            "Duration-weighted; vendor A approximated from mean_ma.",
            minimum=0,
            maximum=1,
        ),
        _f("charge_mc_total", "Total delivered charge", unit="mC", minimum=0),
        source,
        _d("rand_date", "Randomisation date", unblinded_only=True),
        _s("arm", "Randomised arm", values=arms, unblinded_only=True),
    )
    adsweat = (
        studyid,
        subject(),
        _s("PARAMCD", "Parameter code", required=True, values=paramcds, key=2),
        _s("PARAM", "Parameter", required=True),
        _s("region", "Body region", required=True, values=regions),
        avisit(key=3),
        avisitn,
        week,
        _d("ADT", "Analysis date"),
        _i("ADY", "Analysis study day", "No day 0.", unit="day"),
        _f("AVAL", "Log sweat rate (mean of sides)", unit=ln_unit),
        _f("rate_mg_min", "Sweat rate, geometric mean of sides", unit="mg/min", minimum=0),
        _i("n_sides", "Number of valid sides", required=True, minimum=0, maximum=2),
        _f("BASE", "Baseline log sweat rate", unit=ln_unit),
        _s("BASE_VISIT", "Visit giving the baseline", values=visits),
        _f("CHG", "Change from baseline (log)", unit=ln_unit),
        _f("PCHG", "Percent change of the rate", "100 * (exp(CHG) - 1).", unit="%"),
        _yn("ABLFL", "Baseline record flag", required=True),
        _yn("ANL01FL", "Analysis record flag", required=True),
        out_of_window,
        source,
    )
    adsweat_side = (
        studyid,
        subject(),
        _s("PARAMCD", "Parameter code", required=True, values=paramcds, key=2),
        _s("region", "Body region", required=True, values=regions),
        avisit(key=3),
        avisitn,
        week,
        _s("side", "Side", required=True, values=tuple(study.sides), key=4),
        _f("AVAL", "Log sweat rate of the side", required=True, unit=ln_unit),
        _f("sweat_rate_mg_min", "Sweat rate of the side", required=True, unit="mg/min"),
        _f("BASE", "Baseline log sweat rate (region)", unit=ln_unit),
        _s("BASE_VISIT", "Visit giving the baseline", values=visits),
        _f("CHG", "Change from baseline (log)", unit=ln_unit),
        out_of_window,
        _yn("ANL01FL", "Analysis record flag", required=True),
        source,
    )
    adhdss = (
        studyid,
        subject(),
        _s("PARAMCD", "Parameter code", required=True, values=("HDSS",)),
        avisit(key=2),
        avisitn,
        week,
        _d("ADT", "Analysis date"),
        _i("ADY", "Analysis study day", unit="day"),
        _i("AVAL", "HDSS score", required=True, minimum=1, maximum=4),
        _i("BASE", "Baseline HDSS", minimum=1, maximum=4),
        _s("BASE_VISIT", "Visit giving the baseline", values=visits),
        _i("CHG", "Change from baseline in HDSS"),
        _yn("ABLFL", "Baseline record flag", required=True),
        _yn("RESPFL", "HDSS responder flag", "Improvement >= configured points."),
        out_of_window,
        source,
    )
    ae_cols = tuple(replace(c, key=1) if c.name == "ae_id" else c for c in _from_raw("ae"))
    adae = (
        studyid,
        *ae_cols,
        _yn("TRTEMFL", "Treatment-emergent flag", required=True),
        _i("ASTDY", "Onset study day", unit="day"),
        _i("AENDY", "End study day", unit="day"),
        _s("arm", "Randomised arm", values=arms, unblinded_only=True),
    )
    session_cols = tuple(
        replace(c, key=1) if c.name == "session_key" else c for c in _from_raw("device_sessions")
    )
    addev = (
        studyid,
        _s("subject_id", "Subject identifier", required=True),
        _s("region", "Treated region", values=regions),
        *session_cols,
        _f(
            "time_at_min_current_s",
            "Time at >= PP current threshold",
            "Threshold: min_current_share x programmed_ma. Vendor B from samples; vendor A: "
            "duration when mean_ma reaches it, else 0.",
            unit="s",
            minimum=0,
        ),
        _f(
            "tolerance_share",
            "Share of time within current tolerance",
            "Vs programmed_ma: vendor B the reader's share; vendor A 1 or 0 from mean_ma.",
            minimum=0,
            maximum=1,
        ),
        _d("session_date", "Session date (UTC, placed)"),
        _b("adequate", "Adequate session (PP rule)", required=True),
        _i("study_day", "Study day of the session", unit="day"),
        _s("phase", "Treatment phase", values=phases),
    )
    analysis_long = (
        _s("subject", "Subject identifier", required=True, key=1),
        _s("arm", "Randomised arm", values=arms, unblinded_only=True),
        _s("centre", "Centre", required=True, values=tuple(study.centres)),
        _s("stratum", "Stratum (screening HDSS)", required=True, values=strata),
        _s("visit", "Analysis visit", required=True, values=tuple(study.model_visits), key=2),
        _i("visit_index", "Visit index (1-based)", required=True, minimum=1),
        _i("week", "Nominal week", required=True, unit="week"),
        _f("logbase", "Baseline log palmar sweat rate", required=True, unit=ln_unit),
        _f("chg", "Change from baseline (log)", required=True, unit=ln_unit),
        _f("aval_log", "Log palmar sweat rate", required=True, unit=ln_unit),
        _i("n_sides", "Number of valid sides", required=True, minimum=1, maximum=2),
        _s("base_visit", "Visit giving the baseline", required=True, values=visits),
    )
    return {
        "adsl": ("ADSL: one row per subject in dm, analysis-set flags.", adsl),
        "adsweat": ("ADSWEAT (BDS): log sweat rate per subject, region and visit.", adsweat),
        "adsweat_side": ("ADSWEAT_SIDE: log sweat rate per valid paper side.", adsweat_side),
        "adhdss": ("ADHDSS: HDSS per subject and visit, change and responder.", adhdss),
        "adae": ("ADAE: one row per adverse event, treatment emergence.", adae),
        "addev": ("ADDEV: one row per device session mapped to a subject.", addev),
        "analysis_long": (
            "Model input: one row per analysed subject and model visit.",
            analysis_long,
        ),
    }


def _property(col: Column) -> dict[str, Any]:
    prop: dict[str, Any] = {
        "name": col.name,
        "businessName": col.label,
        "logicalType": col.logical,
        "physicalType": col.dtype,
        "required": col.required,
    }
    if col.description:
        prop["description"] = col.description
    if col.key is not None:
        prop["primaryKey"] = True
        prop["primaryKeyPosition"] = col.key
    options = {
        k: v for k, v in (("minimum", col.minimum), ("maximum", col.maximum)) if v is not None
    }
    if options:
        prop["logicalTypeOptions"] = options
    custom = []
    if col.unit:
        custom.append({"property": "unit", "value": col.unit})
    if col.unblinded_only:
        custom.append({"property": "blinding", "value": UNBLINDED_ONLY})
    if custom:
        prop["customProperties"] = custom
    if col.values is not None:
        prop["quality"] = [
            {
                "metric": "invalidValues",
                "arguments": {"validValues": list(col.values)},
                "mustBe": 0,
                "dimension": "conformity",
            }
        ]
    return prop


def contract_mapping(table: str, description: str, cols: tuple[Column, ...]) -> dict[str, Any]:
    """The ODCS v3.1 mapping of one analysis-ready table."""
    return {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": f"ionto-{table.replace('_', '-')}",
        "version": CONTRACT_VERSION,
        "status": "active",
        "name": table,
        "description": {"purpose": description},
        "schema": [
            {
                "name": table,
                "physicalType": "table",
                "description": description,
                "properties": [_property(c) for c in cols],
            }
        ],
    }


def rendered_contracts(study: Study) -> dict[str, str]:
    """Table name -> YAML text of its contract."""
    header = "# Generated by trial/derive/contracts.py from the study configuration.\n"
    return {
        name: header
        + yaml.safe_dump(
            contract_mapping(name, desc, cols), sort_keys=False, allow_unicode=True, width=100
        )
        for name, (desc, cols) in adam_tables(study).items()
    }


def write_contracts(study: Study, directory: Path = CONTRACT_DIR) -> list[Path]:
    written = []
    for name, text in rendered_contracts(study).items():
        path = contract_path(name, directory)
        path.write_text(text, "utf-8")
        written.append(path)
    return written


def table_contract(table: str, blinded: bool) -> Contract:
    """The contract a run's table must satisfy: a blinded run's tables lack the columns marked
    ``blinding: unblinded_only`` (:meth:`Contract.blinded_view`)."""
    contract = load_contract(table)
    return contract.blinded_view() if blinded else contract


if __name__ == "__main__":
    for written in write_contracts(load_study(sys.argv[1] if len(sys.argv) > 1 else None)):
        print(written)
