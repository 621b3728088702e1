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
from trial.report.summaries import TOTAL
from trial.report.tlf import Tlf

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


DM_STATUS = {
    DM_READ: "Read",
    DM_QUARANTINED: "Quarantined",
    DM_ABSENT: "Not in dm.csv",
}
"""Printed ``dm_status`` of a subject's demography row."""
FLAGS = {"Y": "Yes", "N": "No"}


def reconciliation_table(reconciled: pl.DataFrame, number: str) -> Tlf:
    """Table ``number``: the reconciliation as a numbered output (population: the subjects the
    EDC names, its first row)."""
    in_edc = int(reconciled["edc"][0])
    body = reconciled.select(
        pl.col("count").alias("Count"),
        pl.col("edc").cast(pl.String).alias("EDC / ADSL"),
        pl.col("report").cast(pl.String).fill_null("").alias("Report"),
        pl.col("reconciles")
        .replace_strict({**FLAGS, "-": "Not compared"}, return_dtype=pl.String)
        .alias("Agree"),
    )
    return Tlf(
        number=number,
        title="Subject accountability: report counts against the EDC",
        population=f"Subjects in the EDC (N = {in_edc})",
        frame=body,
        footnotes=(
            "EDC / ADSL: subjects counted in ADSL from the site deliveries; Report: the same "
            "count in this report's participant flow, or, in a row 'N stated in', the N the "
            "named numbered outputs state for that set and arm. Agree = Yes when the two are "
            "equal; rows Not compared are for the record (no analysis can hold these "
            "subjects).",
        ),
        sources=("ADSL",),
        program="trial.report.accountability.reconciliation",
    )


def data_issue_listing(box: pl.DataFrame, number: str, n_edc: int) -> Tlf:
    """Listing ``number``: the subjects whose data issues may change an analysis set."""
    flags = [c for c in ("RANDFL", "SAFFL", "FASFL", "PPFL") if c in box.columns]
    headers = {"RANDFL": "Randomised", "SAFFL": "Safety", "FASFL": "FAS", "PPFL": "PP"}
    body = box.select(
        pl.col("subject_id").alias("Subject"),
        pl.col("centre_id").cast(pl.String).fill_null("").alias("Centre"),
        pl.col("dm_status").replace_strict(DM_STATUS, return_dtype=pl.String).alias("Demography"),
        *[
            pl.col(f).replace_strict(FLAGS, default="", return_dtype=pl.String).alias(headers[f])
            for f in flags
        ],
        pl.col("data_issues").cast(pl.String).fill_null("").alias("Data issues"),
    )
    return Tlf(
        number=number,
        kind="Listing",
        title="Subjects whose data issues change an analysis set",
        population=f"Subjects in the EDC (N = {n_edc}); {box.height} listed",
        frame=body,
        footnotes=(
            "Demography: the subject's dm.csv row read, quarantined, or absent (seen only in "
            "other files). Correcting these rows (data-quality report) may change the "
            "subject's sets.",
        ),
        sources=("ADSL",),
        program="trial.report.accountability.data_issue_subjects",
        wrap_columns=(body.width - 1,),
    )


def accountability_html(reconciled: pl.DataFrame, tables_html: str, box_html: str) -> str:
    """The reconciliation table and the box of subjects whose data issues change an analysis
    set (``tables_html`` and ``box_html``: the rendered outputs; a plain sentence when the box
    is empty); a count that does not reconcile is said first. Nothing when there is no
    reconciliation (report data built without ADSL)."""
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
    listing = box_html or "<p>No subject's analysis set depends on a data issue.</p>"
    return alarm + tables_html + f'<div class="box" id="data-issue-box">{listing}</div>'
