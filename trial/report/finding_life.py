"""Findings with a life: a stable id, the delivery that first showed it, and the delivery that
resolved it.

Every item of the data-quality report (:func:`trial.report.quality.data_quality_issues`) gets a
``finding_id``: 12 hex digits of a SHA-256 over what it is and where (section, code, dataset,
subject, file, line, field, and the visit or device session it is about; not the wording of its
message), so the same problem keeps its id from run to run, and two problems of one subject or
file have two ids. :func:`update_ledger` keeps a ledger across runs (the previous one is stored
beside the report, ``findings_ledger.parquet``):

- ``centre_id``: the centre of the finding's file when it names a delivered one, else the
  centre of its subject (``adsl``: a missing or out-of-window visit names a subject, no file),
  else null;
- ``first_seen``: the delivery folder (``<centre>/<date>``) of the finding's file when it names
  one, else the latest delivery of the run that first listed it; kept from run to run;
- ``status``: ``OPEN`` while a run lists it; ``RESOLVED`` once a later run does not, with
  ``resolved_by`` the latest delivery of the finding's centre in that run (the delivery whose
  correction removed it) and ``resolved_now`` true in that run only; a resolved finding that
  comes back is open again, with its first sighting kept;
- ``age_days``: days from ``first_seen`` to the run's latest delivery (its data cut), for open
  findings.

:func:`finding_life_html` shows the open findings per centre with their ages and what was
resolved since the previous delivery.
"""

from __future__ import annotations

import hashlib

import polars as pl

from trial.report.html import gt_html

LEDGER_NAME = "findings_ledger.parquet"
ID_FIELDS = ("category", "code", "dataset", "subject_id", "source_file", "source_line", "field")
ITEM = "item"
"""The visit or device session an item is about: part of its id only when set, so that the
items without one keep the ids they had before it was (a ledger of an earlier version goes on
matching them)."""
OPEN = "OPEN"
RESOLVED = "RESOLVED"

LEDGER_SCHEMA = pl.Schema(
    {
        "finding_id": pl.String(),
        "category": pl.String(),
        "code": pl.String(),
        "dataset": pl.String(),
        "centre_id": pl.String(),
        "subject_id": pl.String(),
        "source_file": pl.String(),
        "source_line": pl.Int64(),
        "detail": pl.String(),
        "first_seen": pl.String(),
        "first_seen_date": pl.Date(),
        "status": pl.String(),
        "resolved_by": pl.String(),
        "resolved_date": pl.Date(),
        "resolved_now": pl.Boolean(),
        "age_days": pl.Int64(),
    }
)


def with_finding_ids(issues: pl.DataFrame) -> pl.DataFrame:
    """``issues`` (with :data:`ITEM`) with ``finding_id`` (see the module docstring) and
    ``place_id``, the id without the item (what a ledger written before items had one knows
    it by); the first of rows with the same id is kept (a problem listed twice is one
    finding)."""
    where = pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("") for c in ID_FIELDS], separator="\x1f"
    )
    item = pl.col(ITEM).cast(pl.String)
    key = (
        pl.when(item.is_null())
        .then(where)
        .otherwise(pl.concat_str([where, item], separator="\x1f"))
    )
    keys = issues.select(key.alias("k"), where.alias("w"))
    ids = [_digest(text) for text in keys["k"].to_list()]
    places = [_digest(text) for text in keys["w"].to_list()]
    return issues.with_columns(
        finding_id=pl.Series(ids, dtype=pl.String), place_id=pl.Series(places, dtype=pl.String)
    ).unique("finding_id", keep="first", maintain_order=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _folder(path: pl.Expr) -> pl.Expr:
    """``<centre>/<date>`` of a raw path, null when it has no such folder."""
    parts = path.str.split("/")
    date = parts.list.get(1, null_on_oob=True)
    return (
        pl.when(date.str.contains(r"^\d{4}-\d{2}-\d{2}$").fill_null(False))
        .then(pl.format("{}/{}", parts.list.first(), date))
        .otherwise(None)
    )


def update_ledger(
    previous: pl.DataFrame | None,
    issues: pl.DataFrame,
    manifest: pl.DataFrame,
    subject_centres: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The ledger after a run whose data-quality items are ``issues`` (with ``finding_id``) and
    whose landing manifest is ``manifest``; ``previous`` is the last run's ledger, or None;
    ``subject_centres``: ``subject_id`` and ``centre_id`` of the trial's subjects, for the
    findings that name a subject and no delivered file."""
    placed = manifest.filter(pl.col("delivery_date").is_not_null())
    as_of = placed["delivery_date"].max() if placed.height else None
    latest = (
        placed.group_by("centre_id")
        .agg(_latest_date=pl.col("delivery_date").max())
        .with_columns(_latest=pl.format("{}/{}", "centre_id", "_latest_date"))
    )
    overall = (
        placed.sort("delivery_date", "centre_id")
        .select(pl.format("{}/{}", "centre_id", "delivery_date"))
        .to_series()
        .tail(1)
        .to_list()
    )
    last_folder = overall[0] if overall else None
    now = issues.select(
        "finding_id",
        "place_id",
        "category",
        "code",
        "dataset",
        "subject_id",
        "source_file",
        pl.col("source_line").cast(pl.Int64),
        "detail",
        _file_folder=_folder(pl.col("source_file")),
    )
    centres = (
        subject_centres.select("subject_id", _subject_centre="centre_id").unique("subject_id")
        if subject_centres is not None
        else pl.DataFrame(schema={"subject_id": pl.String, "_subject_centre": pl.String})
    )
    now = (
        now.join(centres, on="subject_id", how="left", maintain_order="left")
        .with_columns(
            centre_id=pl.when(pl.col("_file_folder").is_not_null())
            .then(pl.col("source_file").str.split("/").list.first())
            .otherwise(pl.col("_subject_centre"))
        )
        .drop("_subject_centre")
    )
    prior = previous if previous is not None else pl.DataFrame(schema=LEDGER_SCHEMA)
    kept_first = prior.select("finding_id", "first_seen", "first_seen_date")
    # A finding a ledger of an earlier version knew without its item (two visits of a
    # subject as one finding) keeps that finding's first sighting.
    merged_first = prior.select(
        place_id="finding_id", _merged_seen="first_seen", _merged_date="first_seen_date"
    )
    current = (
        now.join(kept_first, on="finding_id", how="left")
        .join(merged_first, on="place_id", how="left")
        .with_columns(
            first_seen=pl.coalesce(
                "first_seen", "_merged_seen", "_file_folder", pl.lit(last_folder)
            ),
        )
        .with_columns(
            first_seen_date=pl.coalesce(
                "first_seen_date",
                "_merged_date",
                pl.col("first_seen")
                .str.split("/")
                .list.get(1, null_on_oob=True)
                .str.to_date(strict=False),
            ),
            status=pl.lit(OPEN),
            resolved_by=pl.lit(None, dtype=pl.String),
            resolved_date=pl.lit(None, dtype=pl.Date),
            resolved_now=pl.lit(False),
        )
        .with_columns(age_days=(pl.lit(as_of) - pl.col("first_seen_date")).dt.total_days())
    )
    listed = pl.concat([now["finding_id"], now["place_id"]]).unique()
    gone = prior.filter(~pl.col("finding_id").is_in(listed.implode()))
    newly = (
        gone.filter(pl.col("status") == OPEN)
        .drop("resolved_by", "resolved_date")
        .join(latest.select("centre_id", "_latest", "_latest_date"), on="centre_id", how="left")
        .with_columns(
            status=pl.lit(RESOLVED),
            resolved_by=pl.coalesce("_latest", pl.lit(last_folder)),
            resolved_date=pl.coalesce("_latest_date", pl.lit(as_of)),
            resolved_now=pl.lit(True),
            age_days=pl.lit(None, dtype=pl.Int64),
        )
    )
    earlier = gone.filter(pl.col("status") == RESOLVED).with_columns(resolved_now=pl.lit(False))
    return pl.concat(
        [
            current.select(LEDGER_SCHEMA.names()).cast(dict(LEDGER_SCHEMA)),  # type: ignore[arg-type]
            newly.select(LEDGER_SCHEMA.names()).cast(dict(LEDGER_SCHEMA)),  # type: ignore[arg-type]
            earlier.select(LEDGER_SCHEMA.names()).cast(dict(LEDGER_SCHEMA)),  # type: ignore[arg-type]
        ]
    ).sort("status", "centre_id", "first_seen_date", "finding_id", nulls_last=True)


def open_by_centre(ledger: pl.DataFrame) -> pl.DataFrame:
    """Per centre (``(none)`` for findings naming neither a delivered file nor a subject of a
    known centre): open findings, their median and largest age in days."""
    return (
        ledger.filter(pl.col("status") == OPEN)
        .group_by(pl.col("centre_id").fill_null("(none)"))
        .agg(
            open=pl.len().cast(pl.Int64),
            median_age_days=pl.col("age_days").median(),
            oldest_age_days=pl.col("age_days").max(),
        )
        .sort("centre_id")
    )


def finding_life_html(ledger: pl.DataFrame) -> str:
    """Open findings per centre with their ages, then the findings resolved since the previous
    delivery (run)."""
    resolved = ledger.filter(pl.col("resolved_now")).select(
        "finding_id", "centre_id", "code", "subject_id", "first_seen", "resolved_by", "detail"
    )
    table = gt_html(
        open_by_centre(ledger),
        "dq-open-by-centre",
        title="Open findings per centre (age in days at the latest delivery)",
        labels={
            "centre_id": "Centre",
            "open": "Open",
            "median_age_days": "Median age (days)",
            "oldest_age_days": "Oldest (days)",
        },
    )
    gone = (
        gt_html(resolved, "dq-resolved", title="Resolved since the previous delivery")
        if resolved.height
        else '<p class="note">No finding was resolved since the previous delivery.</p>'
    )
    return table + gone
