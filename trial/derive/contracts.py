"""ODCS contracts of the analysis-ready tables: schema only, study codelists named.

``python -m trial.derive.contracts`` writes ``data_contracts/<table>.odcs.yaml`` for ADSL,
ADSWEAT, ADSWEAT_SIDE, ADHDSS, ADAE, ADDEV and ``analysis_long``; ``tests/derive`` fails when a
committed file differs from what this writes, and checks derived frames against them with the
contract engine (:mod:`data_contracts.contracts`). Codelists that depend on the study (visits,
regions, PARAMCD, arms, strata, age groups, phases, the study id) are named, never listed: they
are resolved from the run's study when a contract is loaded. ADAE and ADDEV reuse the raw
``ae`` / ``device_sessions`` contracts' columns so they cannot drift.

Blinding: columns that only an unblinded run has (``arm``, ``rand_date``) carry the custom
property ``blinding: unblinded_only``. :func:`table_contract` returns the contract a given run
must satisfy (without those columns when blinded).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from data_contracts.authoring import (
    Col,
    bool_col,
    contract_mapping,
    date_col,
    float_col,
    int_col,
    render,
    string_col,
    write_rendered,
)
from data_contracts.contracts import (
    CONTRACT_DIR,
    Contract,
    contract_template,
    dtype_name,
    load_contract,
)
from trial.derive.adice import BASES
from trial.derive.export_names import EXPORT_NAMES

GENERATOR = "trial/derive/contracts.py"
YN = ("Y", "N")


def _yn(name: str, label: str, description: str = "", **kw: Any) -> Col:
    return string_col(name, label, description, values=YN, **kw)


def _from_raw(dataset: str) -> tuple[Col, ...]:
    """The columns of a raw contract, as analysis-table columns (same names, types, labels)."""
    contract = contract_template(dataset)
    logical = {p.name: p.logical_type for p in contract.properties}
    return tuple(
        Col(
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
            codelist=p.codelist,
        )
        for p in contract.properties
    )


def adam_tables() -> dict[str, tuple[str, tuple[Col, ...]]]:
    """Table name -> (description, columns), in the column order the derivations produce."""
    visits = "visits"
    regions = "regions"
    arms = "arms"
    strata = "strata"
    ln_unit = "ln(mg/min)"
    studyid = string_col("STUDYID", "Study identifier", required=True, codelist="study_id")

    def subject(key: int | None = 1) -> Col:
        return string_col("subject_id", "Subject identifier", required=True, key=key)

    def avisit(key: int | None = None) -> Col:
        return string_col("AVISIT", "Analysis visit", required=True, codelist=visits, key=key)

    avisitn = int_col("AVISITN", "Analysis visit (N)", "Schedule order, 1-based.", required=True)
    week = int_col(
        "week", "Nominal week", "Nominal week of the visit (null at screening).", unit="week"
    )
    out_of_window = bool_col(
        "out_of_window",
        "Visit outside its window",
        "|study day - target day| > window_days; kept, excluded only from PP analyses.",
    )
    source = string_col(
        "source_records",
        "Raw source records (file:line)",
        "Where the row came from: raw file paths relative to the raw root with 1-based line "
        "numbers, joined with '; '.",
        required=True,
    )
    adsl = (
        studyid,
        subject(),
        string_col("centre_id", "Centre", required=True, codelist="centres"),
        string_col("sex", "Sex", codelist="sex"),
        int_col("birth_year", "Birth year"),
        int_col("age", "Age at consent", "Consent year minus birth year.", unit="years"),
        string_col("age_group", "Age group", codelist="age_groups"),
        _yn("plantar_involved", "Plantar involvement"),
        int_col("hdss_screening", "HDSS at screening", minimum=1, maximum=4),
        string_col(
            "stratum", "Stratum (screening HDSS)", "From dm.hdss_screening.", codelist=strata
        ),
        date_col("consent_date", "Consent date"),
        date_col("bl_date", "Baseline visit date (day 1)"),
        bool_col("screen_failure", "Screen failure", required=True),
        bool_col("eligibility_violation", "Eligibility violation", required=True),
        string_col("eligibility_reasons", "Eligibility violations", "Comma-separated, sorted."),
        _yn(
            "RANDFL",
            "Randomised flag",
            "Blinded: not a screen failure, baseline visit done.",
            required=True,
        ),
        _yn("SAFFL", "Safety population flag", required=True),
        _yn("FASFL", "Full analysis set flag", required=True),
        _yn("PPFL", "Per-protocol set flag", required=True),
        string_col("disposition_status", "Disposition status"),
        string_col("disposition_reason", "Disposition reason"),
        date_col("disposition_date", "Disposition date"),
        date_col("trt_start_date", "First session date (UTC)"),
        date_col("trt_end_date", "Last session date (UTC)"),
        int_col("n_sessions", "Sessions started", "On any serial ever assigned.", required=True),
        int_col("n_sessions_mapped", "Sessions mapped by assignment dates", required=True),
        int_col("n_sessions_planned", "Sessions planned", required=True),
        int_col("n_sessions_completed", "Sessions completed (primary region)", required=True),
        int_col("n_induction_sessions_planned", "Induction sessions planned", required=True),
        int_col("n_induction_sessions_completed", "Induction sessions completed", required=True),
        int_col(
            "n_induction_sessions_adequate",
            "Adequate induction sessions",
            "Primary region's device; see ADDEV adequate.",
            required=True,
        ),
        float_col(
            "time_within_tolerance_share",
            "Share of time within current tolerance",
            "Duration-weighted; vendor A approximated from mean_ma.",
            minimum=0,
            maximum=1,
        ),
        float_col("charge_mc_total", "Total delivered charge", unit="mC", minimum=0),
        string_col(
            "dm_status",
            "Demographics row status",
            "READ; QUARANTINED (the subject's dm.csv row was quarantined: demographics and "
            "stratum unknown, never FAS or PP); ABSENT (in no dm.csv: seen only in other "
            "files, whose rows were quarantined).",
            required=True,
            values=("READ", "QUARANTINED", "ABSENT"),
        ),
        string_col(
            "data_issues",
            "Data issues",
            "What is missing or quarantined for the subject and why, with file and line; "
            "null when nothing is.",
        ),
        source,
        date_col("rand_date", "Randomisation date", unblinded_only=True),
        string_col("arm", "Randomised arm", codelist=arms, unblinded_only=True),
    )
    adsweat = (
        studyid,
        subject(),
        string_col("PARAMCD", "Parameter code", required=True, codelist="paramcds", key=2),
        string_col("PARAM", "Parameter", required=True),
        string_col("region", "Body region", required=True, codelist=regions),
        avisit(key=3),
        avisitn,
        week,
        date_col("ADT", "Analysis date"),
        int_col("ADY", "Analysis study day", "No day 0.", unit="day"),
        float_col("AVAL", "Log sweat rate (mean of sides)", unit=ln_unit),
        float_col("rate_mg_min", "Sweat rate, geometric mean of sides", unit="mg/min", minimum=0),
        int_col("n_sides", "Number of valid sides", required=True, minimum=0, maximum=2),
        float_col("BASE", "Baseline log sweat rate", unit=ln_unit),
        string_col("BASE_VISIT", "Visit giving the baseline", codelist=visits),
        float_col("CHG", "Change from baseline (log)", unit=ln_unit),
        float_col("PCHG", "Percent change of the rate", "100 * (exp(CHG) - 1).", unit="%"),
        _yn("ABLFL", "Baseline record flag", required=True),
        _yn("ANL01FL", "Analysis record flag", required=True),
        out_of_window,
        source,
    )
    adsweat_side = (
        studyid,
        subject(),
        string_col("PARAMCD", "Parameter code", required=True, codelist="paramcds", key=2),
        string_col("region", "Body region", required=True, codelist=regions),
        avisit(key=3),
        avisitn,
        week,
        string_col("side", "Side", required=True, codelist="sides", key=4),
        float_col("AVAL", "Log sweat rate of the side", required=True, unit=ln_unit),
        float_col("sweat_rate_mg_min", "Sweat rate of the side", required=True, unit="mg/min"),
        float_col("BASE", "Baseline log sweat rate (region)", unit=ln_unit),
        string_col("BASE_VISIT", "Visit giving the baseline", codelist=visits),
        float_col("CHG", "Change from baseline (log)", unit=ln_unit),
        out_of_window,
        _yn("ANL01FL", "Analysis record flag", required=True),
        source,
    )
    adhdss = (
        studyid,
        subject(),
        string_col("PARAMCD", "Parameter code", required=True, values=("HDSS",)),
        avisit(key=2),
        avisitn,
        week,
        date_col("ADT", "Analysis date"),
        int_col("ADY", "Analysis study day", unit="day"),
        int_col("AVAL", "HDSS score", required=True, minimum=1, maximum=4),
        int_col("BASE", "Baseline HDSS", minimum=1, maximum=4),
        string_col("BASE_VISIT", "Visit giving the baseline", codelist=visits),
        int_col("CHG", "Change from baseline in HDSS"),
        _yn("ABLFL", "Baseline record flag", required=True),
        _yn("RESPFL", "HDSS responder flag", "Improvement >= configured points."),
        out_of_window,
        source,
    )
    ae_cols = tuple(replace(c, key=1) if c.name == "ae_id" else c for c in _from_raw("ae"))
    adae = (
        studyid,
        *ae_cols,
        string_col(
            "AEDECOD",
            "Dictionary-derived term",
            "Preferred term from the study AE dictionary (ae_coding); null: not coded.",
        ),
        string_col(
            "AEBODSYS",
            "Body system or organ class",
            "System organ class from the study AE dictionary; null: not coded.",
        ),
        _yn("TRTEMFL", "Treatment-emergent flag", required=True),
        int_col("ASTDY", "Onset study day", unit="day"),
        int_col("AENDY", "End study day", unit="day"),
        string_col("arm", "Randomised arm", codelist=arms, unblinded_only=True),
    )
    session_cols = tuple(
        replace(c, key=1) if c.name == "session_key" else c for c in _from_raw("device_sessions")
    )
    addev = (
        studyid,
        string_col("subject_id", "Subject identifier", required=True),
        string_col("region", "Treated region", codelist=regions),
        *session_cols,
        float_col(
            "time_at_min_current_s",
            "Time at >= PP current threshold",
            "Threshold: min_current_share x programmed_ma. Vendor B from samples; vendor A: "
            "duration when mean_ma reaches it, else 0.",
            unit="s",
            minimum=0,
        ),
        float_col(
            "tolerance_share",
            "Share of time within current tolerance",
            "Vs programmed_ma: vendor B the reader's share; vendor A 1 or 0 from mean_ma.",
            minimum=0,
            maximum=1,
        ),
        date_col("session_date", "Session date (UTC, placed)"),
        bool_col("adequate", "Adequate session (PP rule)", required=True),
        int_col("study_day", "Study day of the session", unit="day"),
        string_col(
            "phase",
            "Treatment phase",
            "pre_baseline, a configured treatment phase, or post_schedule.",
            values=("pre_baseline", "post_schedule"),
            codelist="treatment_phases",
        ),
    )
    analysis_long = (
        string_col("subject", "Subject identifier", required=True, key=1),
        string_col("arm", "Randomised arm", codelist=arms, unblinded_only=True),
        string_col("centre", "Centre", required=True, codelist="centres"),
        string_col("stratum", "Stratum (screening HDSS)", required=True, codelist=strata),
        string_col("visit", "Analysis visit", required=True, codelist="model_visits", key=2),
        int_col("visit_index", "Visit index (1-based)", required=True, minimum=1),
        int_col("week", "Nominal week", required=True, unit="week"),
        float_col("logbase", "Baseline log rate, primary region", required=True, unit=ln_unit),
        float_col("chg", "Change from baseline (log)", required=True, unit=ln_unit),
        float_col("aval_log", "Log sweat rate, primary region", required=True, unit=ln_unit),
        int_col("n_sides", "Number of valid sides", required=True, minimum=1, maximum=2),
        string_col("base_visit", "Visit giving the baseline", required=True, codelist=visits),
    )
    adice = (
        studyid,
        subject(),
        _yn("FASFL", "Full analysis set flag", required=True),
        string_col(
            "ICE", "Intercurrent event", required=True, key=2, codelist="intercurrent_events"
        ),
        string_col("ICE_NAME", "Intercurrent event name", required=True),
        string_col(
            "basis",
            "What the ICE was derived from",
            "WITHDRAWAL (disposition), SESSION_GAP (device sessions), RESCUE (cm).",
            required=True,
            values=BASES,
        ),
        date_col(
            "ICEDT",
            "ICE date",
            "Discontinuation: the day after the last session started before the withdrawal or "
            "gap; rescue: the medication's start date.",
            required=True,
        ),
        int_col("ICEDY", "ICE study day", unit="day"),
        string_col(
            "first_visit",
            "First model visit affected",
            "First model visit dated on or after the ICE date (target date when not done); "
            "empty when none is.",
            codelist="model_visits",
        ),
        int_col("first_visit_index", "Index of the first visit affected", minimum=1),
        int_col(
            "n_post_ice_rows",
            "Observed post-ICE model rows",
            "Observed primary-region model-visit values dated on or after the ICE date.",
            required=True,
            minimum=0,
        ),
        string_col("post_ice_visits", "Post-ICE observed visits", "Comma-separated."),
        string_col("detail", "How the ICE was derived", required=True),
        string_col(
            "source_records",
            "Raw source records (file:line)",
            "The disposition, treatment-end visit or cm row behind the ICE.",
        ),
        string_col("arm", "Randomised arm", codelist=arms, unblinded_only=True),
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
        "adice": (
            "ADICE: one row per randomised subject and intercurrent event (SAP section 11).",
            adice,
        ),
    }


def with_export_names(table: str, cols: tuple[Col, ...]) -> tuple[Col, ...]:
    """The columns of an exported table with their XPT name and define origin
    (:data:`trial.derive.export_names.EXPORT_NAMES`); a column without an entry is an error."""
    names = EXPORT_NAMES.get(table)
    if names is None:
        return cols
    missing = [c.name for c in cols if c.name not in names]
    if missing:
        raise KeyError(f"{table}: no XPT name and origin for {missing} in export_names.py")
    return tuple(replace(c, xpt_name=names[c.name][0], origin=names[c.name][1]) for c in cols)


def rendered_contracts() -> dict[str, str]:
    """Table name -> YAML text of its contract."""
    return {
        name: render(contract_mapping(name, desc, with_export_names(name, cols)), GENERATOR)
        for name, (desc, cols) in adam_tables().items()
    }


def write_contracts(directory: Path = CONTRACT_DIR) -> list[Path]:
    return write_rendered(rendered_contracts(), directory)


def table_contract(table: str, blinded: bool) -> Contract:
    """The contract a run's table must satisfy: a blinded run's tables lack the columns marked
    ``blinding: unblinded_only`` (:meth:`Contract.blinded_view`)."""
    contract = load_contract(table)
    return contract.blinded_view() if blinded else contract


if __name__ == "__main__":
    for written in write_contracts():
        print(written)
