"""Subject accountability in the investigator report: the counts reconcile, and a box lists
the subjects whose data issues change an analysis set.

:func:`reconciliation` sets the report's CONSORT counts beside the EDC's: subjects screened
(every subject a ``dm.csv`` names, read or quarantined: ADSL ``dm_status`` not ``ABSENT``),
randomised (ADSL ``RANDFL``), and the FAS split (analysed + excluded = randomised); each row
says whether the two agree. :func:`data_issue_subjects` lists every subject with a data issue
(ADSL ``data_issues``) who is seen only outside ``dm.csv``, whose demographics are quarantined,
or who is randomised but not in the FAS: the subjects whose analysis set a correction of the
data could change. Neither names an arm.
"""

from __future__ import annotations

from html import escape

import polars as pl

from trial.derive.accountability import DM_ABSENT, DM_QUARANTINED, DM_READ
from trial.report.html import gt_html
from trial.report.summaries import TOTAL

BOX_COLUMNS = ("subject_id", "centre_id", "dm_status", "RANDFL", "SAFFL", "FASFL", "PPFL")


def _consort_total(consort: pl.DataFrame, stage: str) -> int:
    rows = consort.filter(
        (pl.col("stage") == stage) & pl.col("reason").is_null() & (pl.col("group") == TOTAL)
    )
    if rows.height == 0:
        rows = consort.filter((pl.col("stage") == stage) & pl.col("reason").is_null())
    return int(rows["n"].sum())


SETS = (
    ("Full analysis set", "FASFL", "analysed_fas"),
    ("Per-protocol set", "PPFL", "analysed_pp"),
    ("Safety set", "SAFFL", "analysed_safety"),
)
"""Analysis sets whose ADSL count the report's CONSORT flow must show."""


def _flagged(adsl: pl.DataFrame, flag: str) -> int:
    return int(adsl.filter(pl.col(flag) == "Y").height) if flag in adsl.columns else 0


def reconciliation(adsl: pl.DataFrame, consort: pl.DataFrame) -> pl.DataFrame:
    """``count, edc, report, reconciles`` (Y/N): screened, randomised, the FAS split and each
    analysis set of the CONSORT flow against ADSL's subjects of the EDC, plus the subjects no
    analysis can hold
    (demographics quarantined, seen only outside ``dm.csv``) for the record."""
    status = (
        adsl["dm_status"] if "dm_status" in adsl.columns else pl.Series([DM_READ] * adsl.height)
    )
    in_edc = int((status != DM_ABSENT).sum())
    randomised = int(adsl.filter(pl.col("RANDFL") == "Y").height)
    fas_split = _consort_total(consort, "analysed_fas") + _consort_total(consort, "excluded_fas")
    rows = [
        ("Screened: subjects in the EDC's dm.csv", in_edc, _consort_total(consort, "screened")),
        ("Randomised", randomised, _consort_total(consort, "randomised")),
        ("Randomised = analysed in the FAS + excluded from it", randomised, fas_split),
        *(
            (f"{label} ({flag} = Y)", _flagged(adsl, flag), _consort_total(consort, stage))
            for label, flag, stage in SETS
        ),
        (
            "Demographics row quarantined (in ADSL, never FAS)",
            int((status == DM_QUARANTINED).sum()),
            None,
        ),
        ("Seen only outside dm.csv (rows quarantined)", int((status == DM_ABSENT).sum()), None),
    ]
    return pl.DataFrame(
        {
            "count": [r[0] for r in rows],
            "edc": [r[1] for r in rows],
            "report": [r[2] for r in rows],
            "reconciles": ["-" if r[2] is None else ("Y" if r[1] == r[2] else "N") for r in rows],
        },
        schema={"count": pl.String, "edc": pl.Int64, "report": pl.Int64, "reconciles": pl.String},
    )


def data_issue_subjects(adsl: pl.DataFrame) -> pl.DataFrame:
    """Subjects with a data issue whose analysis set it may change (see the module docstring),
    with their flags and ``data_issues``, by subject."""
    if "data_issues" not in adsl.columns:
        return pl.DataFrame(schema={c: pl.String for c in (*BOX_COLUMNS, "data_issues")})
    return (
        adsl.filter(
            pl.col("data_issues").is_not_null()
            & (
                (pl.col("dm_status") != DM_READ)
                | ((pl.col("RANDFL") == "Y") & (pl.col("FASFL") == "N"))
            )
        )
        .select(*BOX_COLUMNS, "data_issues")
        .sort("subject_id")
    )


def accountability_html(reconciled: pl.DataFrame, box: pl.DataFrame) -> str:
    """The reconciliation table and the box of subjects whose data issues change an analysis
    set (a plain sentence when there are none); a count that does not reconcile is said first.
    Nothing when there is no reconciliation (report data built without ADSL)."""
    if reconciled.height == 0:
        return ""
    broken = reconciled.filter(pl.col("reconciles") == "N")
    alarm = (
        '<p class="alarm"><strong>Counts do not reconcile:</strong> '
        + escape("; ".join(broken["count"].to_list()))
        + ". A subject is missing from the report: see the data-quality report.</p>"
        if broken.height
        else ""
    )
    table = gt_html(
        reconciled,
        "accountability",
        title="Subject accountability: report counts against the EDC",
        labels={"count": "Count", "edc": "EDC / ADSL", "report": "Report", "reconciles": "Agree"},
    )
    if box.height == 0:
        listing = "<p>No subject's analysis set depends on a data issue.</p>"
    else:
        listing = gt_html(
            box,
            "data-issue-subjects",
            title="Subjects whose data issues change an analysis set",
            labels={"subject_id": "Subject", "centre_id": "Centre", "data_issues": "Issues"},
            note="Correcting these rows (data-quality report) may change the subject's sets.",
        )
    return alarm + table + f'<div class="box" id="data-issue-box">{listing}</div>'
