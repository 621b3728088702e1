"""ADSL: one row per subject in ``dm``, with the analysis-set flags of SAP sections 6 and 10.

- ``screen_failure``: disposition ``WITHDRAWN`` with the study's ``screen_failure_reason``.
- ``eligibility_violation``: any configured exclusion criterion answered ``Y``, an age certainly
  outside ``eligibility.age_range`` (dm has the birth year only, so the age at consent is
  ``consent year - birth year`` or one less; only a violation under both counts),
  ``hdss_screening`` outside ``eligibility.hdss_screening_allowed``, or a valid screening rate
  of either side of the primary region (palms) below ``gravimetry.entry_min_rate_mg_min``.
  ``eligibility_reasons`` lists them (``AGE``, ``HDSS_SCREENING``, ``SCR_RATE_BELOW_ENTRY``,
  the criteria's codes).
- ``RANDFL``: unblinded, the subject is in the sealed randomisation list. Blinded (no list),
  ``Y`` when the subject is not a screen failure and has a done baseline visit - the best
  blinded proxy for randomisation, since randomisation happens at the baseline visit.
- ``SAFFL``: >= 1 session started on any serial ever assigned to the subject.
- ``FASFL``: RANDFL, SAFFL, a baseline of the primary region and >= 1 primary-region value at
  ``analysis_sets.fas_post_baseline_visits``.
- ``PPFL``: FAS, adequate first-phase (induction) sessions >= ``pp.min_induction_sessions_share``
  of the planned ones, and no eligibility violation.

``arm`` (and ``rand_date``) appear only when the randomisation frame is given. A blinded ADSL
holds nothing derived from the list.
"""

from __future__ import annotations

import math

import polars as pl

from data_contracts.contracts import contract_template
from study import Study
from trial.derive.accountability import DM_READ
from trial.derive.gravimetry import RATE_VALID
from trial.derive.schedule import baseline_dates, source_record

YN = {True: "Y", False: "N"}


def _yn(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null(False).replace_strict(YN, return_dtype=pl.String)


def _age_group(study: Study) -> pl.Expr:
    groups = [
        pl.when(pl.col("age").is_between(g.min, g.max)).then(pl.lit(g.label))
        for g in study.models.age_groups
    ]
    return pl.coalesce(*groups, pl.lit(None, dtype=pl.String))


SCR_RATE_BELOW_ENTRY = "SCR_RATE_BELOW_ENTRY"
"""Eligibility reason: a screening sweat rate of either palm below the entry minimum."""


def screening_rate_findings(papers: pl.DataFrame, study: Study) -> pl.LazyFrame:
    """``subject_id, reason`` (:data:`SCR_RATE_BELOW_ENTRY`) for each subject with a valid
    paper of the primary region at a screening visit (scheduled before the baseline visit)
    whose rate is below ``gravimetry.entry_min_rate_mg_min`` (mg/min; the SAP's entry
    criterion is that rate on each hand). ``papers``: per-paper rates
    (:func:`trial.derive.gravimetry.paper_rates`, latest versions). A missing or invalid
    paper is no evidence of a low rate and is not a finding here."""
    codes = study.visit_codes
    screening = codes[: codes.index(study.baseline_visit)]
    entry_min = study.gravimetry.entry_min_rate_mg_min
    return (
        papers.lazy()
        .filter(
            pl.col("visit").is_in(screening)
            & (pl.col("region") == study.primary_region.code)
            & (pl.col("rate_status") == RATE_VALID)
            & (pl.col("sweat_rate_mg_min") < entry_min)
        )
        .select("subject_id", reason=pl.lit(SCR_RATE_BELOW_ENTRY))
        .unique()
    )


def eligibility_findings(
    dm: pl.DataFrame, eligibility: pl.DataFrame, papers: pl.DataFrame, study: Study
) -> pl.DataFrame:
    """Per subject in ``dm``: ``eligibility_violation`` (Boolean) and ``eligibility_reasons``
    (criteria answered Y, ``AGE``, ``HDSS_SCREENING``, ``SCR_RATE_BELOW_ENTRY`` from the
    screening papers in ``papers``; comma-separated, sorted)."""
    rules = study.eligibility
    low, high = rules.age_range
    allowed = list(rules.hdss_screening_allowed)
    criteria = list(rules.criteria)
    answered_yes = (
        eligibility.lazy()
        .filter(pl.col("criterion").is_in(criteria) & (pl.col("answer") == "Y"))
        .select("subject_id", reason=pl.col("criterion"))
    )
    age = pl.col("consent_date").dt.year() - pl.col("birth_year")
    own = (
        dm.lazy()
        .select(
            "subject_id",
            age_bad=(age < low) | (age - 1 > high),
            hdss_bad=~pl.col("hdss_screening").is_in(allowed),
        )
        .unpivot(index="subject_id", variable_name="reason", value_name="bad")
        .filter(pl.col("bad").fill_null(False))
        .with_columns(
            reason=pl.col("reason").replace_strict(
                {"age_bad": "AGE", "hdss_bad": "HDSS_SCREENING"}, return_dtype=pl.String
            )
        )
        .select("subject_id", "reason")
    )
    reasons = (
        pl.concat([answered_yes, own, screening_rate_findings(papers, study)])
        .unique()
        .group_by("subject_id")
        .agg(eligibility_reasons=pl.col("reason").sort().str.join(","))
    )
    return (
        dm.lazy()
        .select("subject_id")
        .join(reasons, on="subject_id", how="left")
        .with_columns(eligibility_violation=pl.col("eligibility_reasons").is_not_null())
        .collect()
    )


def min_adequate_induction_sessions(study: Study) -> int:
    """Adequate induction sessions (``treatment.induction_phase``) a per-protocol subject
    needs: ``analysis_sets.pp.min_induction_sessions_share`` of the planned ones, rounded up."""
    share = study.analysis_sets.pp.min_induction_sessions_share
    return math.ceil(share * study.induction_phase.planned_sessions - 1e-9)


def _people(dm: pl.DataFrame, seen: pl.DataFrame | None) -> pl.DataFrame:
    """``dm`` rows with ``source_records``, ``dm_status`` and ``data_issues``, plus a row (only
    ``subject_id``, ``centre_id`` and those three) for each subject of ``seen`` not in ``dm``."""
    own = dm.with_columns(source_records=source_record()).drop("source_file", "source_line")
    if seen is None:
        return own.with_columns(
            dm_status=pl.lit(DM_READ), data_issues=pl.lit(None, dtype=pl.String)
        )
    issues = seen.select("subject_id", "dm_status", "data_issues")
    extra = seen.join(dm.select("subject_id"), on="subject_id", how="anti").select(
        "subject_id", "centre_id", "source_records"
    )
    both = pl.concat([own, extra], how="diagonal_relaxed")
    return both.join(issues, on="subject_id", how="left").with_columns(
        pl.col("dm_status").fill_null(DM_READ)
    )


def derive_adsl(
    dm: pl.DataFrame,
    eligibility: pl.DataFrame,
    visits: pl.DataFrame,
    disposition: pl.DataFrame,
    adsweat: pl.DataFrame,
    papers: pl.DataFrame,
    started: pl.DataFrame,
    adherence: pl.DataFrame,
    study: Study,
    randomisation: pl.DataFrame | None = None,
    seen: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """ADSL from the EDC frames, ADSWEAT, the per-paper rates (``sweat_papers``, for the
    screening entry criterion), sessions started per subject
    (:func:`trial.derive.sessions.sessions_started`) and adherence
    (:func:`trial.derive.sessions.adherence`). ``randomisation`` only in an unblinded run.

    ``seen``: every subject seen anywhere (:func:`trial.derive.accountability.subjects_seen`);
    a subject seen but not in ``dm`` gets a row too, demographics null, flags from the
    evidence there is, and never FAS or PP (the models need centre and stratum). Without it,
    ADSL holds the subjects of ``dm`` (``dm_status`` READ)."""
    min_adequate = min_adequate_induction_sessions(study)
    primary = study.primary_region.paramcd
    fas_visits = list(study.analysis_sets.fas_post_baseline_visits)
    levels = study.stratum_levels
    sweat = adsweat.lazy().filter(pl.col("PARAMCD") == primary)
    has_base = sweat.filter(pl.col("BASE").is_not_null()).select("subject_id").unique()
    has_post = (
        sweat.filter(pl.col("AVISIT").is_in(fas_visits) & pl.col("AVAL").is_not_null())
        .select("subject_id")
        .unique()
        .with_columns(_post=pl.lit(True))
    )
    disp = disposition.lazy().select(
        "subject_id",
        disposition_status=pl.col("status"),
        disposition_reason=pl.col("reason"),
        disposition_date=pl.col("date"),
    )
    people = _people(dm, seen)
    frame = (
        people.lazy()
        .with_columns(
            STUDYID=pl.lit(study.study_id),
            age=(pl.col("consent_date").dt.year() - pl.col("birth_year")).cast(pl.Int64),
            stratum=pl.col("hdss_screening").replace_strict(
                list(levels), list(levels.values()), default=None, return_dtype=pl.String
            ),
        )
        .with_columns(age_group=_age_group(study))
        .join(baseline_dates(visits, study).lazy(), on="subject_id", how="left")
        .join(disp, on="subject_id", how="left")
        .join(
            eligibility_findings(people, eligibility, papers, study).lazy(),
            on="subject_id",
            how="left",
        )
        .join(started.lazy(), on="subject_id", how="left")
        .join(adherence.lazy(), on="subject_id", how="left")
        .join(has_base.with_columns(_base=pl.lit(True)), on="subject_id", how="left")
        .join(has_post, on="subject_id", how="left")
        .with_columns(
            pl.col(
                "n_sessions",
                "n_sessions_mapped",
                "n_sessions_completed",
                "n_induction_sessions_completed",
                "n_induction_sessions_adequate",
            ).fill_null(0),
            n_sessions_planned=pl.lit(study.planned_sessions_total, dtype=pl.Int64),
            n_induction_sessions_planned=pl.lit(
                study.induction_phase.planned_sessions, dtype=pl.Int64
            ),
            screen_failure=(
                (pl.col("disposition_status") == "WITHDRAWN")
                & (pl.col("disposition_reason") == study.screen_failure_reason)
            ).fill_null(False),
        )
    )
    if randomisation is None:
        randomised = ~pl.col("screen_failure") & pl.col("bl_date").is_not_null()
    else:
        rand = randomisation.lazy().select("subject_id", "arm", "rand_date").unique("subject_id")
        frame = frame.join(rand, on="subject_id", how="left")
        randomised = pl.col("arm").is_not_null()
    frame = (
        frame.with_columns(
            _rand=randomised,
            _saf=pl.col("n_sessions") >= 1,
        )
        .with_columns(
            _fas=pl.col("_rand")
            & (pl.col("dm_status") == DM_READ)
            & pl.col("_saf")
            & pl.col("_base").fill_null(False)
            & pl.col("_post").fill_null(False)
        )
        .with_columns(
            _pp=pl.col("_fas")
            & (pl.col("n_induction_sessions_adequate") >= min_adequate)
            & ~pl.col("eligibility_violation")
        )
        .with_columns(
            RANDFL=_yn(pl.col("_rand")),
            SAFFL=_yn(pl.col("_saf")),
            FASFL=_yn(pl.col("_fas")),
            PPFL=_yn(pl.col("_pp")),
        )
    )
    contract = contract_template("adsl")  # its columns, in order; the arm only when unblinded
    columns = (contract if randomisation is not None else contract.blinded_view()).columns
    return frame.select(columns).sort("subject_id").collect()
