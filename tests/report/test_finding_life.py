"""Findings with a life: stable ids, first-seen delivery, resolution by a later delivery, and
the data-quality report's per-centre view, over two runs built by hand."""

from __future__ import annotations

import datetime as dt
import hashlib

import polars as pl

from trial.report.finding_life import (
    OPEN,
    RESOLVED,
    finding_life_html,
    open_by_centre,
    update_ledger,
    with_finding_ids,
)


def manifest(folders: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "centre_id": [f.split("/")[0] for f in folders],
            "delivery_date": [dt.date.fromisoformat(f.split("/")[1]) for f in folders],
        }
    )


def issues(rows: list[tuple[str, str, str | None, int | None, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "code": pl.String,
            "subject_id": pl.String,
            "source_file": pl.String,
            "source_line": pl.Int64,
            "detail": pl.String,
        },
        orient="row",
    ).with_columns(
        category=pl.lit("QUARANTINE"),
        dataset=pl.lit("visits"),
        field=pl.lit("visit_date"),
        item=pl.lit(None, dtype=pl.String),
    )


A = ("BAD_DATE", "C01-0001", "C01/2026-03-09/visits.csv", 5, "visit_date '2026-02-30'")
B = ("NOT_IN_CODELIST", "C02-0003", "C02/2026-03-16/dm.csv", 4, "sex 'X'")
C = ("VISIT_NOT_DONE", "C01-0002", "C01/2026-04-06/hdss.csv", 9, "W3 has status MISSED")


def test_ids_are_stable_and_ignore_the_wording() -> None:
    first = with_finding_ids(issues([A, B]))
    reworded = with_finding_ids(issues([(*A[:4], "other words"), B]))
    assert first["finding_id"].to_list() == reworded["finding_id"].to_list()
    assert first["finding_id"].n_unique() == 2 and first["finding_id"].str.len_chars().eq(12).all()


def test_two_runs_open_resolve_and_age() -> None:
    run1 = update_ledger(
        None, with_finding_ids(issues([A, B])), manifest(["C01/2026-03-09", "C02/2026-03-16"])
    )
    assert set(run1["status"]) == {OPEN}
    a1 = run1.filter(code="BAD_DATE").row(0, named=True)
    assert (a1["first_seen"], a1["age_days"]) == ("C01/2026-03-09", 7)  # data cut 2026-03-16
    later = manifest(["C01/2026-03-09", "C02/2026-03-16", "C01/2026-04-06", "C02/2026-04-13"])
    run2 = update_ledger(run1, with_finding_ids(issues([B, C])), later)
    a2 = run2.filter(code="BAD_DATE").row(0, named=True)
    assert a2["status"] == RESOLVED and a2["resolved_now"]
    assert (a2["resolved_by"], a2["finding_id"]) == ("C01/2026-04-06", a1["finding_id"])
    b2 = run2.filter(code="NOT_IN_CODELIST").row(0, named=True)
    assert (b2["status"], b2["first_seen"], b2["age_days"]) == (OPEN, "C02/2026-03-16", 28)
    c2 = run2.filter(code="VISIT_NOT_DONE").row(0, named=True)
    assert (c2["first_seen"], c2["age_days"]) == ("C01/2026-04-06", 7)
    by_centre = open_by_centre(run2)
    assert by_centre.rows() == [("C01", 1, 7.0, 7), ("C02", 1, 28.0, 28)]
    html = finding_life_html(run2)
    assert "Resolved since the previous delivery" in html and a1["finding_id"] in html
    # A third run with nothing new: A stays resolved, no longer "resolved now".
    run3 = update_ledger(run2, with_finding_ids(issues([B, C])), later)
    a3 = run3.filter(code="BAD_DATE").row(0, named=True)
    assert a3["status"] == RESOLVED and not a3["resolved_now"]
    assert "No finding was resolved" in finding_life_html(run3)


def test_a_finding_without_a_file_belongs_to_its_subjects_centre() -> None:
    """A missing visit names a subject and no file: it is counted for the subject's centre and
    resolved by that centre's delivery, not by whichever centre delivered last."""
    centres = pl.DataFrame({"subject_id": ["C02-0003", "C01-0001"], "centre_id": ["C02", "C01"]})
    missing = ("MISSING_VISIT", "C02-0003", None, None, "no palmar sweat value for W8")
    unknown = ("MISSING_VISIT", "X99-0001", None, None, "no palmar sweat value for W2")
    run1 = update_ledger(
        None,
        with_finding_ids(issues([A, missing, unknown])),
        manifest(["C01/2026-03-09", "C02/2026-03-16"]),
        centres,
    )
    m1 = run1.filter(subject_id="C02-0003").row(0, named=True)
    assert (m1["centre_id"], m1["first_seen"], m1["age_days"]) == ("C02", "C02/2026-03-16", 0)
    assert open_by_centre(run1)["centre_id"].to_list() == ["(none)", "C01", "C02"]
    later = manifest(["C01/2026-03-09", "C02/2026-03-16", "C02/2026-03-23", "C01/2026-03-30"])
    run2 = update_ledger(run1, with_finding_ids(issues([A, unknown])), later, centres)
    m2 = run2.filter(subject_id="C02-0003").row(0, named=True)
    assert (m2["status"], m2["resolved_by"]) == (RESOLVED, "C02/2026-03-23")


def test_two_visits_of_one_subject_are_two_findings() -> None:
    """Items told apart only by their visit (or device session) get ids of their own; an item
    without one keeps the id it had before items had one (the digest of its place alone)."""
    w8 = ("MISSING_VISIT", "C01-0001", None, None, "no palmar sweat value for W8")
    w12 = ("MISSING_VISIT", "C01-0001", None, None, "no palmar sweat value for W12")
    rows = issues([A, w8, w12]).with_columns(
        item=pl.when(pl.col("code") == "MISSING_VISIT")
        .then(pl.col("detail").str.extract(r"(W\d+)$"))
        .otherwise(None)
    )
    ids = with_finding_ids(rows)
    assert ids.height == 3 and ids["finding_id"].n_unique() == 3
    place = "\x1f".join(["QUARANTINE", "BAD_DATE", "visits", "C01-0001", A[2], "5", "visit_date"])
    expected = hashlib.sha256(place.encode("utf-8")).hexdigest()[:12]
    assert ids.filter(code="BAD_DATE")["finding_id"].item() == expected


def test_a_ledger_from_before_items_goes_on() -> None:
    """A ledger written when two visits of a subject were one finding (its id without the
    visit): the next run lists both visits as findings of their own, resolves nothing, and
    both keep the merged finding's first sighting."""
    w8 = ("MISSING_VISIT", "C02-0003", None, None, "no palmar sweat value for W8")
    w12 = ("MISSING_VISIT", "C02-0003", None, None, "no palmar sweat value for W12")
    centres = pl.DataFrame({"subject_id": ["C02-0003"], "centre_id": ["C02"]})
    early = manifest(["C01/2026-03-09", "C02/2026-03-16"])
    before_items = update_ledger(None, with_finding_ids(issues([w8, w12])), early, centres)
    assert before_items.height == 1  # the two visits were one finding
    with_items = issues([w8, w12]).with_columns(item=pl.col("detail").str.extract(r"(W\d+)$"))
    later = manifest(["C01/2026-03-09", "C02/2026-03-16", "C02/2026-03-23"])
    after = update_ledger(before_items, with_finding_ids(with_items), later, centres)
    assert after.height == 2 and set(after["status"]) == {OPEN}
    assert not after["resolved_now"].any()
    assert set(after["first_seen"]) == {before_items["first_seen"].item()}
