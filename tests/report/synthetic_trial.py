"""A small synthetic trial shaped as ``docs/architecture.md`` says, for the report tests.

Deterministic (fixed seed). Numbers are chosen so that tests can hand-compute summaries:
the exact content is fixed by ``make_tables``; tests recompute what they check from these
frames, never from the report.

Built from the study it is given (arms and reference, centres, visits and windows, primary
visit, regions, strata, age groups, phases, vendors, AE terms): the same trial for ION-301
and ION-302. Its planted events are named by position in the design (:class:`Design`), so a
test states them for either study.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from study import Study
from trial.derive.ae import code_events
from trial.estimands.config import estimands_config
from trial.estimands.results import NAME, PRIMARY_ANALYSIS, TOTAL, definitions_table
from trial.models.device import device_summary
from trial.models.multiplicity import fixed_sequence_from_results
from trial.models.result import ModelResult, write_result
from trial.models.safety import safety_summary
from trial.models.secondary import NOT_APPLICABLE_NOTE, PLANTAR_NAME
from trial.models.tidy import empty_estimates

DEVICE_A = "vendor_a_sessions"
N_PER_CENTRE = 9
N_SCREEN_FAIL = 4
NO_SESSION = 5
"""Randomised subject index (in centre order) with no treatment session."""
WITHDRAWN_AE = 7
"""Randomised subject index that withdrew for an adverse event after the early visits."""
LOST = 11
"""Randomised subject index lost to follow-up after baseline (no post-baseline value)."""
LATE = 4
"""Randomised subject index whose :attr:`Design.late_visit` is out of window."""
LATE_BY = 3
"""Days beyond the window of that late visit."""
SKIPS_EVERY = 6
"""Randomised subjects with ``index % SKIPS_EVERY == 1`` missed :attr:`Design.skipped_visit`."""


@dataclass(frozen=True)
class Design:
    """Where the synthetic trial plants its events in a study's schedule.

    ``skipped_visit``: the last model visit before the primary one (missed by every sixth
    subject, so the primary visit stays observed); ``withdrawn_visits``: the visits the
    subject withdrawn for an AE attended (those before the skipped visit); ``late_visit``:
    the second post-baseline visit, out of its window for subject :data:`LATE`;
    ``hdss_improved_visits``: the model visits from the primary on, where every other subject
    improves by two HDSS points (elsewhere by one)."""

    screening_visit: str
    baseline_visit: str
    skipped_visit: str
    withdrawn_visits: tuple[str, ...]
    late_visit: str
    hdss_improved_visits: tuple[str, ...]


def design(study: Study) -> Design:
    """The :class:`Design` of ``study``'s schedule."""
    codes = study.visit_codes
    model = study.model_visits
    primary = model.index(study.primary_visit)
    skipped = model[primary - 1]
    post = codes[codes.index(study.baseline_visit) + 1 :]
    return Design(
        screening_visit=study.screening_visit.code,
        baseline_visit=study.baseline_visit,
        skipped_visit=skipped,
        withdrawn_visits=tuple(codes[: codes.index(skipped)]),
        late_visit=post[1],
        hdss_improved_visits=tuple(model[primary:]),
    )


def arm_of(k: int, study: Study) -> str:
    """The arm of randomised subject ``k`` (index in centre order): the arms in turn, shifted
    by one every second round, so that no other pattern of the trial (every second or fourth
    subject: sex, strata, session days) lines up with the arm when there are two arms."""
    codes = study.arm_codes
    n = len(codes)
    return codes[(k + k // (2 * n)) % n]


def screening_hdss(k: int, study: Study) -> int:
    """Screening HDSS of subject ``k``: the highest score of the top stratum every fourth
    subject, else the highest score of the stratum below (both strata occur)."""
    top: dict[str, int] = {}
    for score, code in sorted(study.stratum_levels.items()):
        top[code] = score
    highest = [top[c] for c in study.stratum_codes]
    return highest[-1] if k % 4 == 0 else highest[-2]


def age_group(age: int, study: Study) -> str:
    """The configured age group (``models.age_groups``) holding ``age``."""
    return next(g.label for g in study.models.age_groups if g.min <= age <= g.max)


def vendor_of(k: int, study: Study) -> str:
    """Device vendor of subject ``k``: B every fifth subject where the study has vendor B
    devices (``simulation.vendor_b_share``), else A."""
    return "B" if study.simulation.vendor_b_share > 0 and k % 5 == 0 else "A"


def phase_of(session: int, study: Study) -> str:
    """Treatment phase of a subject's ``session``-th session (from 0): the treated phases in
    turn, each for its planned sessions; any later session in the last treated phase."""
    treated = [p for p in study.treatment.phases if p.sessions_per_week > 0]
    end = 0
    for phase in treated:
        end += phase.planned_sessions
        if session < end:
            return phase.name
    return treated[-1].name


def make_tables(study: Study, *, blinded: bool, seed: int = 7) -> dict[str, pl.DataFrame]:
    """Every table the report reads, for ``4 x N_PER_CENTRE`` randomised subjects plus
    ``N_SCREEN_FAIL`` screen failures. ``blinded`` drops ``arm`` from ``adsl``."""
    rng = np.random.default_rng(seed)
    centres = study.centres
    subjects: list[dict[str, object]] = []
    for c in centres:
        for i in range(N_PER_CENTRE):
            subjects.append({"subject_id": f"{c}-{i + 1:04d}", "centre_id": c})
    for k, s in enumerate(subjects):
        s["arm"] = arm_of(k, study)
    fails = [
        {"subject_id": f"{centres[k % len(centres)]}-{90 + k:04d}", "centre_id": centres[0]}
        for k in range(N_SCREEN_FAIL)
    ]
    for k, f in enumerate(fails):
        f["centre_id"] = centres[k % len(centres)]
        f["arm"] = None

    criteria = study.eligibility.criteria
    age_low, age_high = study.eligibility.age_range
    every_subject_plantar = study.simulation.plantar_share >= 1.0
    induction_sessions = study.induction_phase.planned_sessions
    rows = []
    start = dt.date(2026, 1, 12)
    for k, s in enumerate(subjects + fails):
        is_fail = s["arm"] is None
        age = age_low + (k * 7) % (age_high - age_low + 1)
        hdss = screening_hdss(k, study)
        consent = start + dt.timedelta(days=k)
        bl = consent + dt.timedelta(days=10)
        n_sessions = 0 if k == NO_SESSION else 18 + (k // 3) % 3
        withdrawn = k in (WITHDRAWN_AE, LOST)
        rows.append(
            {
                "STUDYID": study.study_id,
                "subject_id": s["subject_id"],
                "centre_id": s["centre_id"],
                "sex": "F" if k % 2 == 0 else "M",
                "age": age,
                "age_group": age_group(age, study),
                "plantar_involved": "Y" if every_subject_plantar or (k // 3) % 2 == 0 else "N",
                "hdss_screening": hdss,
                "stratum": study.stratum_levels[hdss],
                "consent_date": consent,
                "bl_date": None if is_fail else bl,
                "screen_failure": is_fail,
                "eligibility_violation": k == 3,
                "eligibility_reasons": criteria[k % 3] if is_fail else ("AGE" if k == 3 else None),
                "RANDFL": "N" if is_fail else "Y",
                "SAFFL": "N" if is_fail or n_sessions == 0 else "Y",
                "FASFL": "N" if is_fail or n_sessions == 0 or k == LOST else "Y",
                "PPFL": "N" if is_fail or n_sessions == 0 or k in (3, WITHDRAWN_AE, LOST) else "Y",
                "disposition_status": "WITHDRAWN"
                if is_fail or withdrawn
                else ("COMPLETED" if k % 5 else "ONGOING"),
                "disposition_reason": "SCREEN_FAILURE"
                if is_fail
                else (
                    "ADVERSE_EVENT"
                    if k == WITHDRAWN_AE
                    else ("LOST_TO_FOLLOW_UP" if k == LOST else None)
                ),
                "disposition_date": consent + dt.timedelta(days=1)
                if is_fail
                else (
                    bl + dt.timedelta(days=16 if k == WITHDRAWN_AE else 2) if withdrawn else None
                ),
                "n_sessions": 0 if is_fail else n_sessions,
                "n_sessions_completed": 0 if is_fail else max(n_sessions - 1, 0),
                "n_induction_sessions_adequate": 0
                if is_fail
                else min(n_sessions, induction_sessions)
                - (k % 2)
                - (induction_sessions // 2 if k % 7 == 3 else 0),  # not adherent
                "arm": s["arm"],
            }
        )
    adsl = pl.DataFrame(rows).with_columns(
        pl.col("consent_date").cast(pl.Date),
        pl.col("bl_date").cast(pl.Date),
        pl.col("disposition_date").cast(pl.Date),
    )

    effect = {code: -1.0 - 0.3 * i for i, code in enumerate(study.arm_codes)}
    frac = study.simulation.effect_fraction_by_visit
    plan = design(study)
    sweat_rows = []
    hdss_rows = []
    randomised = adsl.filter(pl.col("RANDFL") == "Y").to_dicts()
    for k, s in enumerate(randomised):
        if k == LOST:
            visits_done = [plan.screening_visit, plan.baseline_visit]
        elif k == WITHDRAWN_AE:
            visits_done = list(plan.withdrawn_visits)
        else:
            visits_done = [
                v
                for v in study.visit_codes
                if not (k % SKIPS_EVERY == 1 and v == plan.skipped_visit)
            ]
        for region in study.regions:
            if region.requires_involvement and s["plantar_involved"] != "Y":
                continue
            base = float(rng.normal(4.1 if region.primary else 3.6, 0.5))
            for vi, visit in enumerate(study.visits):
                if visit.code not in visits_done:
                    continue
                week = visit.week
                f = float(frac.get(visit.code, 0.0))
                aval = base + effect[str(s["arm"])] * f + float(rng.normal(0, 0.3))
                if visit.code == plan.screening_visit:
                    aval = base + float(rng.normal(0, 0.1))
                if visit.code == plan.baseline_visit:
                    aval = base
                late = k == LATE and visit.code == plan.late_visit
                ady = visit.target_day + (int(visit.window_days or 0) + LATE_BY if late else 0)
                oow = visit.window_days is not None and abs(ady - visit.target_day) > (
                    visit.window_days
                )
                sweat_rows.append(
                    {
                        "subject_id": s["subject_id"],
                        "PARAMCD": region.paramcd,
                        "PARAM": region.param,
                        "region": region.code,
                        "AVISIT": visit.code,
                        "AVISITN": vi,
                        "week": week,
                        "ADT": s["bl_date"] + dt.timedelta(days=ady - 1),
                        "ADY": ady,
                        "AVAL": aval,
                        "rate_mg_min": math.exp(aval),
                        "n_sides": 2,
                        "BASE": base,
                        "BASE_VISIT": study.baseline_visit,
                        "CHG": None if visit.code == plan.screening_visit else aval - base,
                        "PCHG": None
                        if visit.code == plan.screening_visit
                        else 100 * (math.exp(aval - base) - 1),
                        "ABLFL": "Y" if visit.code == study.baseline_visit else None,
                        "ANL01FL": None if visit.code == plan.screening_visit else "Y",
                        "out_of_window": oow,
                    }
                )
        hbase = int(s["hdss_screening"])
        for vi, visit in enumerate(study.visits):
            if visit.code not in visits_done:
                continue
            drop = 2 if (visit.code in plan.hdss_improved_visits and k % 2 == 0) else 1
            unchanged = visit.code in (plan.screening_visit, plan.baseline_visit)
            aval_h = hbase if unchanged else max(1, hbase - drop)
            hdss_rows.append(
                {
                    "subject_id": s["subject_id"],
                    "AVISIT": visit.code,
                    "AVISITN": vi,
                    "AVAL": aval_h,
                    "BASE": hbase,
                    "CHG": None if visit.code == plan.screening_visit else aval_h - hbase,
                    "ABLFL": "Y" if visit.code == study.baseline_visit else None,
                    "out_of_window": False,
                }
            )
    adsweat = pl.DataFrame(sweat_rows)
    adhdss = pl.DataFrame(hdss_rows)

    terms = ae_terms(study)
    severities = ["MILD", "MODERATE", "SEVERE"]
    related = ["Y", "N", "POSSIBLE"]
    ae_rows = []
    for k, s in enumerate(randomised):
        if s["SAFFL"] != "Y":
            continue
        for j in range((k // 2) % 3):
            term = terms[(k + j) % len(terms)]
            ae_rows.append(
                {
                    "subject_id": s["subject_id"],
                    "ae_id": f"AE{j + 1}",
                    "term": term,
                    "verbatim": term.lower().replace("_", " "),
                    "onset_date": s["bl_date"] + dt.timedelta(days=3 + j),
                    "end_date": None,
                    "severity": severities[(k // 3 + j) % 3],
                    "serious": "Y" if (k, j) == (4, 1) else "N",
                    "related": related[(k // 3 + 2 * j) % 3],
                    "TRTEMFL": "Y",
                    "ASTDY": 4 + j,
                }
            )
    adae = code_events(
        pl.DataFrame(ae_rows).with_columns(pl.col("end_date").cast(pl.Date)).lazy(),
        study.ae_coding,
    ).collect()

    dev_rows = []
    for k, s in enumerate(randomised):
        vendor = vendor_of(k, study)
        serial = f"{vendor}-{k:05d}"
        for n in range(int(s["n_sessions"])):
            aborted = n == 0 and k % 4 == 0
            fault = "E03" if aborted and k % 8 == 0 else None
            start_utc = dt.datetime(2026, 1, 25, 18, 0, tzinfo=dt.UTC) + dt.timedelta(
                days=k + 2 * n
            )
            duration = 600 if aborted else 1200
            dev_rows.append(
                {
                    "device_serial": serial,
                    "vendor": vendor,
                    "session_key": f"{serial}#{n + 1}",
                    "start_utc": start_utc,
                    "end_utc": start_utc + dt.timedelta(seconds=duration),
                    "duration_s": float(duration),
                    "programmed_ma": 15.0,
                    "mean_ma": 14.5 if n % 2 else 15.0,
                    "charge_mc": 15.0 * duration if n % 2 == 0 else 14.5 * duration,
                    "polarity_switches": 1,
                    "end_reason": ("FAULT" if fault else "STOPPED_BY_USER")
                    if aborted
                    else "COMPLETED",
                    "fault_code": fault,
                    "within_tolerance_share": None if k % 5 else 0.95,
                    "clock_reset": k == 2 and n == 0,
                    "n_duplicate_events": 0,
                    "source_files": [device_file(str(s["centre_id"]), vendor, serial)],
                    "subject_id": s["subject_id"],
                    "region": study.primary_region.code,
                    "study_day": 1 + 2 * n,
                    "phase": phase_of(n, study),
                    "adequate": not aborted,
                }
            )
    addev = pl.DataFrame(dev_rows).with_columns(
        pl.col("fault_code").cast(pl.String), pl.col("within_tolerance_share").cast(pl.Float64)
    )
    unmatched = (
        addev.head(2)
        .drop("subject_id", "region", "study_day", "phase", "adequate")
        .with_columns(
            pl.lit("A-99999").alias("device_serial"),
            pl.format("A-99999#{}", pl.int_range(1, 3)).alias("session_key"),
        )
    )
    device_sessions = pl.concat(
        [addev.drop("subject_id", "region", "study_day", "phase", "adequate"), unmatched]
    )

    first, second, third = centres[0], centres[1], centres[2]
    # A device file that is not UTF-8, of vendor B where the study has such devices.
    vendor = vendor_of(0, study)
    quarantine = pl.DataFrame(
        {
            "dataset": ["gravimetry", "dm", "vendor_b_events" if vendor == "B" else DEVICE_A],
            "source_file": [
                gravimetry_file(first),
                f"{second}/2026-03-09/dm.csv",
                device_file(third, vendor, f"{vendor}-00001", "2026-03-09"),
            ],
            "source_line": [14, 3, None],
            "field": ["wet_weight", "sex", None],
            "reason_code": ["OUT_OF_RANGE", "NOT_IN_CODELIST", "NOT_UTF8"],
            "message": [
                "wet_weight -3.0 is below dry_weight",
                "sex 'X' is not in codelist sex [F, M]",
                "file is not valid UTF-8",
            ],
            "raw_text": [
                f"{first}-0001,{plan.late_visit},{study.primary_region.code},{study.sides[0]},...",
                f"{second}-0009,{second},...",
                "",
            ],
        },
        schema_overrides={"source_line": pl.Int64},
    )

    elig_rows = []
    for k, s in enumerate(subjects + fails):
        for j, crit in enumerate(criteria):
            yes = s["arm"] is None and j == k % 3
            elig_rows.append(
                {"subject_id": s["subject_id"], "criterion": crit, "answer": "Y" if yes else "N"}
            )
    eligibility = pl.DataFrame(elig_rows)

    tables = {
        "adsl": adsl.drop("arm") if blinded else adsl,
        "adsweat": adsweat,
        "adhdss": adhdss,
        "adae": adae,
        "addev": addev,
        "device_sessions": device_sessions,
        "quarantine": quarantine,
        "eligibility": eligibility,
    }
    return tables


def ae_terms(study: Study) -> list[str]:
    """The five AE terms the synthetic events carry: the study's first coded terms."""
    other = study.ae_coding.other_term if study.ae_coding is not None else None
    return [t for t in study.codelist("ae_term") if t != other][:5]


def gravimetry_file(centre: str) -> str:
    """The gravimetry file of ``centre``'s first delivery (a quarantined row's source)."""
    return f"{centre}/2026-02-09/gravimetry_{centre}_20260209.csv"


def device_file(centre: str, vendor: str, serial: str, delivery: str = "2026-02-09") -> str:
    """A device log file name as the vendor writes it, in ``centre``'s ``delivery``."""
    if vendor == "B":
        return f"{centre}/{delivery}/ionto-b_{serial}_20260201120000.jsonl"
    return f"{centre}/{delivery}/ionto-a_{serial}_20260201.csv"


def randomisation(study: Study) -> pl.DataFrame:
    """The sealed list of the synthetic trial (what an unblinded run would read)."""
    adsl = make_tables(study, blinded=False)["adsl"]
    return adsl.filter(pl.col("RANDFL") == "Y").select("subject_id", "arm")


def _t(study: Study) -> float:
    """The t quantile of the synthetic models' intervals (df 80) at the study's alpha."""
    return float(stats.t.ppf(1 - study.alpha / 2, 80))


def _contrast_rows(study: Study, visits: list[str], shift: float) -> list[dict[str, object]]:
    rows = []
    for i, arm in enumerate(study.arm_codes[1:], start=1):
        for j, v in enumerate(visits):
            est = -0.3 * i - 0.01 * j + shift
            se = 0.12
            rows.append(
                {
                    "contrast": f"{arm}-{study.reference_arm}",
                    "visit": v,
                    "estimate": est,
                    "std_error": se,
                    "df": 80.0,
                    "statistic": est / se,
                    "p_value": 0.02 * i,
                    "ci_low": est - _t(study) * se,
                    "ci_high": est + _t(study) * se,
                }
            )
    return rows


def _estimates(rows: list[dict[str, object]], term: str) -> pl.DataFrame:
    """A tidy estimates table from rows that carry ``term`` plus some estimate columns."""
    frame = pl.DataFrame(rows).rename({term: "term"})
    return frame.select(
        "term",
        *[
            pl.col(c).cast(pl.Float64) if c in frame.columns else pl.lit(None, pl.Float64).alias(c)
            for c in ("estimate", "std_error", "df", "statistic", "p_value", "ci_low", "ci_high")
        ],
    )


def make_models(study: Study) -> dict[str, ModelResult]:
    """Model results shaped as the report expects (see ``trial.report.model_tables``)."""
    visits = study.model_visits
    lsm = []
    for i, arm in enumerate(study.arm_codes):
        for j, v in enumerate(visits):
            est = -0.8 - 0.3 * i - 0.05 * j
            lsm.append(
                {
                    "arm": arm,
                    "visit": v,
                    "estimate": est,
                    "std_error": 0.09,
                    "df": 80.0,
                    "ci_low": est - _t(study) * 0.09,
                    "ci_high": est + _t(study) * 0.09,
                }
            )
    contrasts = _contrast_rows(study, visits, 0.0)
    mmrm = study.models.mmrm
    fallback = mmrm.fallback[0]  # the synthetic fit took the first fallback structure
    models: dict[str, ModelResult] = {
        "mmrm_primary": ModelResult(
            name="mmrm_primary",
            estimates=_estimates(contrasts, "contrast"),
            fit={
                "n_subjects": 33,
                "n_observations": 180,
                "reml_loglik": -120.5,
                "covariance_structure": fallback,
                "converged": True,
            },
            tables={"lsmeans": pl.DataFrame(lsm), "contrasts": pl.DataFrame(contrasts)},
            notes=[f"{mmrm.covariance} covariance did not converge; {fallback} used."],
        )
    }
    for k, name in enumerate(
        ["lmm_sensitivity1", "mmrm_pp", "sides_sensitivity3", "ancova_sensitivity4"], start=1
    ):
        rows = _contrast_rows(study, [study.primary_visit], 0.02 * k)
        models[name] = ModelResult(
            name=name,
            estimates=_estimates(rows, "contrast"),
            fit={"n_subjects": 33 - k, "n_observations": 150, "converged": True},
            tables={"contrasts": pl.DataFrame(rows)},
        )
    sub_rows = []
    for g in study.models.subgroups:
        for level in ("a", "b"):
            for i, arm in enumerate(study.arm_codes[1:], start=1):
                est = -0.3 * i + (0.1 if level == "b" else -0.1)
                sub_rows.append(
                    {
                        "subgroup": g.name,
                        "level": level,
                        "contrast": f"{arm}-{study.reference_arm}",
                        "n": 15,
                        "estimate": est,
                        "ci_low": est - 0.4,
                        "ci_high": est + 0.4,
                        "interaction_p": 0.2 + 0.1 * i,
                    }
                )
    models["subgroups"] = ModelResult(
        name="subgroups",
        estimates=_estimates(
            [dict(r, key=f"{r['subgroup']}={r['level']}") for r in sub_rows], "key"
        ),
        fit={"converged": True},
        tables={"forest": pl.DataFrame(sub_rows)},
    )
    for name in (PLANTAR_NAME, "durability"):
        if name == PLANTAR_NAME and study.involvement_region is None:
            models[name] = ModelResult(
                name=name,
                estimates=empty_estimates(),
                fit={"n_subjects": 0, "converged": False},
                notes=[NOT_APPLICABLE_NOTE],
            )
            continue
        rows = _contrast_rows(study, [study.primary_visit], 0.1)
        models[name] = ModelResult(
            name=name,
            estimates=_estimates(rows, "contrast"),
            fit={"converged": True},
            tables={"contrasts": pl.DataFrame(rows)},
        )
    resp = []
    for endpoint in ("hdss_responder", "sweat_responder"):
        for i, arm in enumerate(study.arm_codes[1:], start=1):
            resp.append(
                {
                    "endpoint": endpoint,
                    "contrast": f"{arm}-{study.reference_arm}",
                    "odds_ratio": 1.5 * i,
                    "ci_low": 0.7 * i,
                    "ci_high": 3.0 * i,
                    "p_value": 0.04 * i,
                }
            )
    models["responders"] = ModelResult(
        name="responders",
        estimates=_estimates(
            [{"key": f"{r['endpoint']}:{r['contrast']}", "p_value": r["p_value"]} for r in resp],
            "key",
        ),
        fit={"converged": True},
        tables={
            "odds_ratios": pl.DataFrame(resp),
            "cmh": pl.DataFrame(resp).select(
                "endpoint", "contrast", (pl.col("p_value") * 1.25).alias("p_value")
            ),
        },
    )
    models["fixed_sequence"] = fixed_sequence_from_results(
        study, models["mmrm_primary"], models["responders"]
    )
    return models


def safety_and_device(study: Study, tables: dict[str, pl.DataFrame]) -> dict[str, ModelResult]:
    """The ``safety`` and ``device`` results the models group computes from these tables (by
    arm, or pooled when ``adsl`` has no ``arm``)."""
    adsl = tables["adsl"]
    return {
        "safety": safety_summary(tables["adae"], adsl, study),
        "device": device_summary(tables["addev"], adsl, study),
    }


def write_outputs(study: Study, out_dir: Path, *, blinded: bool) -> dict[str, pl.DataFrame]:
    """Materialise the synthetic trial as a run would: ``OUT/tables`` and ``OUT/models``."""
    tables = make_tables(study, blinded=blinded)
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.write_parquet(out_dir / "tables" / f"{name}.parquet")
    results = safety_and_device(study, tables)
    if not blinded:
        results |= make_models(study)
    for result in results.values():
        write_result(result, out_dir / "models")
    return tables


def estimand_models(study: Study, adsl: pl.DataFrame, *, blinded: bool) -> dict[str, ModelResult]:
    """The ``estimands`` and ``tipping_point`` results shaped as ``trial.estimands.results``
    writes them: ICE counts by arm (pooled when ``blinded``: then no other table, as a blinded
    run fits nothing by arm), each estimand of the study file at its visit beside the primary
    analysis, and the check of the estimand that has one. ICE1 in the first two and ICE2 in
    the first FAS subject of each group (counts a test can state by hand)."""
    config = estimands_config(study)
    fas = adsl.filter(pl.col("FASFL") == "Y")
    group = pl.lit(TOTAL) if blinded else pl.col("arm")
    n_fas = fas.group_by(group.alias("group")).agg(n_fas=pl.len().cast(pl.Int64)).sort("group")
    names = config.rules.names
    counts = n_fas.join(
        pl.DataFrame({"ICE": list(names), "ICE_NAME": list(names.values())}), how="cross"
    ).with_columns(
        n_subjects=pl.when(pl.col("ICE") == config.rules.discontinuation)
        .then(pl.lit(2, pl.Int64))
        .otherwise(pl.lit(1, pl.Int64))
    )
    tables = {
        "definitions": definitions_table(config),
        "ice_counts": counts.select("group", "ICE", "ICE_NAME", "n_subjects", "n_fas"),
    }
    empty = ModelResult(NAME, _estimates([{"t": "x"}], "t").clear(), {}, tables)
    if blinded:
        return {NAME: empty}
    rows = []
    z = float(stats.norm.ppf(1 - study.alpha / 2))  # normal-based intervals at the study's alpha
    for i, arm in enumerate(study.arm_codes[1:], start=1):
        entries = [(PRIMARY_ANALYSIS, "mmrm", "MAR")] + [
            (e.id, e.method, e.imputation) for e in config.estimands
        ]
        for k, (estimand, method, strategy) in enumerate(entries):
            est = -0.3 * i + 0.01 * k
            rows.append(
                {
                    "estimand": estimand,
                    "method": method,
                    "strategy": strategy,
                    "visit": study.primary_visit,
                    "parameter": f"trt_{arm}",
                    "contrast": f"{arm}-{study.reference_arm}",
                    "estimate": est,
                    "se": 0.12,
                    "lci": est - z * 0.12,
                    "uci": est + z * 0.12,
                    "pvalue": 0.0004 * i,
                    "df": None,
                }
            )
    primary_visit = pl.DataFrame(rows)
    checked = [e.id for e in config.estimands if e.check is not None]
    check = primary_visit.filter(pl.col("estimand").is_in(checked)).select(
        "estimand",
        "visit",
        "parameter",
        "contrast",
        "estimate",
        "se",
        mi_estimate=pl.col("estimate") + 0.001,
        mc_se=pl.lit(0.002),
        mi_se=pl.lit(0.125),
        z=pl.lit(0.5),
        agree=pl.lit(True),
    )
    result = ModelResult(
        NAME,
        empty.estimates,
        {},
        tables | {"primary_visit": primary_visit, "check": check},
    )
    return {NAME: result}
