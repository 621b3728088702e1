"""Safe unblinding: the sealed randomisation list is checked against the study and the data
before anything is derived from it.

:func:`sealed_list_problems` returns every way the list does not fit, first problems first:

- an arm code that is not one of the study's arms;
- a subject listed more than once;
- a subject in no centre's ``dm.csv`` (read or quarantined);
- a subject randomised by the EDC's evidence (not a screen failure, baseline visit done) or
  treated (a session started on a serial assigned to them) who is not in the list;
- a stratum that disagrees with ``dm.csv`` (``hdss_screening`` mapped by the study's strata);
- a randomisation date before the subject's consent (``RAND_BEFORE_CONSENT``) or more than
  one day after their first session (``RAND_AFTER_FIRST_SESSION``; sessions are dated in UTC,
  randomisation in local time).

:func:`check_sealed_list` raises :class:`SealedListError` with one line naming the count and
the first problems: an unblinded run stops there, and nothing unblinded is written. (The
issue's rule; the SAP's section 10 calls a stratum disagreement a finding, but a list whose
strata disagree is not this study's list until the statistician says otherwise.)
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from study import Study

SHOWN = 5
"""Problems named in the one-line error (all are counted)."""


class SealedListError(ValueError):
    """The sealed list does not fit the study or the data; the message is one line."""


def _listed(rand: pl.DataFrame) -> pl.Expr:
    return pl.format("{} (list line {})", pl.col("subject_id"), pl.col("source_line"))


def sealed_list_problems(
    rand: pl.DataFrame,
    dm: pl.DataFrame,
    dm_quarantined: pl.Series,
    visits: pl.DataFrame,
    disposition: pl.DataFrame,
    started: pl.DataFrame,
    study: Study,
) -> list[str]:
    """Every problem of the sealed list ``rand`` (``subject_id, rand_date, stratum, arm`` with
    lineage) against the study and the data, each a short phrase. ``dm_quarantined``: subject
    ids of quarantined ``dm.csv`` rows; ``started``: per subject ``n_sessions`` and
    ``trt_start_date`` (:func:`trial.derive.sessions.sessions_started`)."""
    problems: list[str] = []
    arms = list(study.arm_codes)
    bad_arm = rand.filter(~pl.col("arm").is_in(arms) | pl.col("arm").is_null())
    problems += (
        bad_arm.select(
            pl.format(
                "arm '{}' of {} is not one of " + ", ".join(arms), pl.col("arm"), _listed(rand)
            )
        )
        .to_series()
        .to_list()
    )
    twice = rand.filter(pl.col("subject_id").is_duplicated())
    problems += (
        twice.group_by("subject_id", maintain_order=True)
        .agg(lines=pl.col("source_line").cast(pl.String).str.join(", "))
        .select(pl.format("{} listed more than once (lines {})", "subject_id", "lines"))
        .to_series()
        .to_list()
    )
    known = pl.concat([dm["subject_id"], dm_quarantined.cast(pl.String)]).unique()
    problems += (
        rand.filter(~pl.col("subject_id").is_in(known.implode()))
        .select(pl.format("{} is in no dm.csv", _listed(rand)))
        .to_series()
        .to_list()
    )
    failure = str(study.screen_failure_reason)
    screen_failures = disposition.filter(
        (pl.col("status") == "WITHDRAWN") & (pl.col("reason") == failure)
    )["subject_id"]
    bl_done = visits.filter(
        (pl.col("visit") == study.baseline_visit) & (pl.col("status") == "DONE")
    ).select("subject_id", why=pl.lit("randomised (baseline visit done)"))
    treated = started.filter(pl.col("n_sessions") > 0).select(
        "subject_id", why=pl.format("treated ({} sessions)", pl.col("n_sessions"))
    )
    expected = (
        pl.concat([bl_done.filter(~pl.col("subject_id").is_in(screen_failures.implode())), treated])
        .unique("subject_id", keep="first", maintain_order=True)
        .sort("subject_id")
    )
    problems += (
        expected.join(rand.select("subject_id"), on="subject_id", how="anti")
        .select(pl.format("{} {} but not in the list", "subject_id", "why"))
        .to_series()
        .to_list()
    )
    levels = study.stratum_levels
    own = dm.select(
        "subject_id",
        "consent_date",
        dm_stratum=pl.col("hdss_screening").replace_strict(
            list(levels), list(levels.values()), default=None, return_dtype=pl.String
        ),
    )
    joined = rand.join(own, on="subject_id", how="inner").join(
        started.select("subject_id", "trt_start_date"), on="subject_id", how="left"
    )
    problems += (
        joined.filter(pl.col("stratum").ne_missing(pl.col("dm_stratum")))
        .select(
            pl.format(
                "{}: stratum {} but dm.csv says {}",
                _listed(rand),
                pl.col("stratum").fill_null("(empty)"),
                pl.col("dm_stratum").fill_null("(none)"),
            )
        )
        .to_series()
        .to_list()
    )
    problems += (
        joined.filter(pl.col("rand_date") < pl.col("consent_date"))
        .select(
            pl.format(
                "{}: randomised {} before consent {} (RAND_BEFORE_CONSENT)",
                _listed(rand),
                "rand_date",
                "consent_date",
            )
        )
        .to_series()
        .to_list()
    )
    problems += (
        joined.filter(pl.col("rand_date") > pl.col("trt_start_date") + timedelta(days=1))
        .select(
            pl.format(
                "{}: randomised {} after the first session {} (RAND_AFTER_FIRST_SESSION)",
                _listed(rand),
                "rand_date",
                "trt_start_date",
            )
        )
        .to_series()
        .to_list()
    )
    return problems


def check_sealed_list(problems: list[str], path: str) -> None:
    """Raise :class:`SealedListError` (one line) when ``problems`` is not empty."""
    if problems:
        first = "; ".join(problems[:SHOWN])
        more = f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise SealedListError(
            f"the sealed randomisation list {path} does not fit the study and its data "
            f"({len(problems)} problem{'s' if len(problems) > 1 else ''}): {first}{more}. "
            "Nothing unblinded was written; "
            "check that it is this study's final list"
        )
