"""Every N the investigator report states, checked against the analysis set it claims.

The numbered outputs (:func:`trial.report.investigator_tables.investigator_outputs`) state
counts in three places: the header (``Safety set (N = 120)``), the column headers
(``GLY (N = 40)``, ``Total (N = 120)``) and a few body columns that are a set's size by group
(the responders' ``N (FAS)``, induction adherence's ``Subjects``, the enrolment table's total
row: screened, randomised per arm, FAS). :func:`stated_counts` collects them;
:func:`expected_counts` counts the same sets from ADSL itself (the flags, per arm when
unblinded; screened = every subject of the EDC's ``dm.csv``, ADSL ``dm_status`` not
``ABSENT``), never from the CONSORT flow the outputs were built from;
:func:`count_reconciliation` sets the two side by side.

:func:`accountability_rows` condenses the result for the report's accountability table (one
row per set, group and stated N, naming the outputs that state it: an output whose N differs
gets a row of its own, marked ``N``) and :func:`count_findings` turns each disagreement into a
data-quality finding (``COUNT_NOT_RECONCILED``).
"""

from __future__ import annotations

import re

import polars as pl

from trial.derive.accountability import DM_ABSENT
from trial.derive.findings import FINDINGS_SCHEMA
from trial.report.summaries import TOTAL, subject_groups
from trial.report.tlf import Tlf

SCREENED = "All screened subjects"
SET_FLAGS: dict[str, str | None] = {
    SCREENED: None,
    "Subjects in the EDC": None,
    "Randomised set": "RANDFL",
    "Full analysis set": "FASFL",
    "Per-protocol set": "PPFL",
    "Safety set": "SAFFL",
}
"""Analysis-set name as the outputs print it -> its ADSL flag (screened, the subjects the
EDC's ``dm.csv`` names: ``dm_status``)."""

BODY_COUNTS = {"responders": ("Group", "N (FAS)"), "induction": ("Group", "Subjects")}
"""Outputs with a body column holding their set's N by group: output -> (group, N) columns."""

FINDING = "COUNT_NOT_RECONCILED"

_N = re.compile(r"^(?P<name>.+) \(N = (?P<n>\d+)\)$")
_POPULATION = re.compile(r"^(?P<name>.+?) \(N = (?P<n>\d+)\)")
"""A header states its set first, maybe followed by more (``...; 3 listed``)."""

STATED_SCHEMA = pl.Schema(
    {
        "output": pl.String(),
        "where": pl.String(),
        "set": pl.String(),
        "group": pl.String(),
        "stated": pl.Int64(),
    }
)


def _group(printed: str) -> str:
    return TOTAL if printed == "Total" else printed


def _enrolment_counts(tlf: Tlf) -> list[tuple[str, str, str, str, int]]:
    """The enrolment table's total row: screened, randomised per group, FAS."""
    total = tlf.frame.filter(pl.col("Centre") == "Total").row(0, named=True)
    rows = [(tlf.label, "total row: Screened", SCREENED, TOTAL, int(total["Screened"]))]
    for column, value in total.items():
        if column.startswith("Randomised "):
            group = _group(column.removeprefix("Randomised "))
            rows.append((tlf.label, f"total row: {column}", "Randomised set", group, int(value)))
    rows.append((tlf.label, "total row: FAS", "Full analysis set", TOTAL, int(total["FAS"])))
    return rows


def stated_counts(outputs: dict[str, Tlf]) -> pl.DataFrame:
    """Every N the outputs state about an analysis set: ``output`` (``Table 14.1.2``),
    ``where`` (header, the column, or the body cell), ``set`` (printed name), ``group`` (arm
    code or ``TOTAL``), ``stated``. Populations that are not a set's size (a listing's number
    of events) are not counts of subjects and are left out."""
    rows: list[tuple[str, str, str, str, int]] = []
    for key, tlf in outputs.items():
        header = _POPULATION.match(tlf.population)
        if header is None or header["name"] not in SET_FLAGS:
            continue
        name = header["name"]
        rows.append((tlf.label, "header", name, TOTAL, int(header["n"])))
        for column in tlf.frame.columns:
            match = _N.match(column)
            if match is not None:
                rows.append(
                    (tlf.label, f"column {column}", name, _group(match["name"]), int(match["n"]))
                )
        if key in BODY_COUNTS:
            group_col, n_col = BODY_COUNTS[key]
            for group, n in tlf.frame.select(group_col, n_col).iter_rows():
                rows.append((tlf.label, f"{n_col}, {group}", name, _group(group), int(n)))
        if key == "enrolment":
            rows += _enrolment_counts(tlf)
    return pl.DataFrame(rows, schema=STATED_SCHEMA, orient="row")


def expected_counts(adsl: pl.DataFrame) -> pl.DataFrame:
    """``set, group, expected``: each analysis set's subjects in ADSL, by arm (unblinded) and
    in total; screened = subjects of the EDC's ``dm.csv`` (``dm_status`` not ``ABSENT``)."""
    parts = []
    for name, flag in SET_FLAGS.items():
        if flag is None:
            subjects = (
                adsl.filter(pl.col("dm_status") != DM_ABSENT)
                if "dm_status" in adsl.columns
                else adsl
            )
            groups = subject_groups(subjects)
        elif flag in adsl.columns:
            groups = subject_groups(adsl, flag)
        else:
            continue
        parts.append(
            groups.group_by("group")
            .agg(pl.len().cast(pl.Int64).alias("expected"))
            .select(pl.lit(name).alias("set"), "group", "expected")
        )
    return pl.concat(parts)


def count_reconciliation(outputs: dict[str, Tlf], adsl: pl.DataFrame) -> pl.DataFrame:
    """``output, where, set, group, stated, expected, agrees`` (Y/N), one row per N the
    report states; ``expected`` 0 for a group with no subject in the set."""
    return (
        stated_counts(outputs)
        .join(expected_counts(adsl), on=["set", "group"], how="left")
        .with_columns(pl.col("expected").fill_null(0))
        .with_columns(
            pl.when(pl.col("stated") == pl.col("expected"))
            .then(pl.lit("Y"))
            .otherwise(pl.lit("N"))
            .alias("agrees")
        )
    )


def accountability_rows(reconciled: pl.DataFrame) -> pl.DataFrame:
    """Rows for the accountability table (``count, edc, report, reconciles``): one per set,
    group and stated N, naming the outputs that state it, in report order."""
    if reconciled.height == 0:
        return pl.DataFrame(
            schema={
                "count": pl.String,
                "edc": pl.Int64,
                "report": pl.Int64,
                "reconciles": pl.String,
            }
        )
    grouped = (
        reconciled.with_row_index("_i")
        .group_by("set", "group", "stated", "expected", "agrees", maintain_order=True)
        .agg(pl.col("output").unique(maintain_order=True), pl.col("_i").min())
        .sort("_i")
    )
    return grouped.select(
        pl.format(
            "{}, {}: N stated in {}",
            pl.col("set"),
            pl.col("group").replace(TOTAL, "Total"),
            pl.col("output").list.join(", "),
        ).alias("count"),
        pl.col("expected").alias("edc"),
        pl.col("stated").alias("report"),
        pl.col("agrees").alias("reconciles"),
    )


def count_findings(reconciled: pl.DataFrame) -> pl.DataFrame:
    """A data-quality finding (``FINDINGS_SCHEMA``, dataset ``report``) per stated N that
    disagrees with its analysis set in ADSL. The data-quality report goes to blinded data
    managers: a total's finding gives both numbers, an arm's says only which output and set
    (one finding per output and set; the arm and its numbers are in the unblinded report's
    accountability table)."""
    broken = reconciled.filter(pl.col("agrees") == "N")
    total = broken.filter(pl.col("group") == TOTAL).select(
        "output",
        "set",
        pl.format(
            "{} ({}) states {} N = {}, but ADSL has {} subjects in that set",
            pl.col("output"),
            pl.col("where"),
            pl.col("set"),
            pl.col("stated"),
            pl.col("expected"),
        ).alias("what"),
    )
    by_arm = (
        broken.filter(pl.col("group") != TOTAL)
        .select("output", "set")
        .unique(maintain_order=True)
        .with_columns(
            pl.format(
                "{} states a {} N for an arm that ADSL does not have (arm and numbers: the "
                "unblinded report's accountability table)",
                pl.col("output"),
                pl.col("set"),
            ).alias("what")
        )
    )
    return (
        pl.concat([total, by_arm])
        .select(
            pl.lit("report").alias("dataset"),
            pl.lit(None, pl.String).alias("subject_id"),
            pl.lit(FINDING).alias("finding"),
            pl.format(
                "{}: the output is built on other subjects than its set; do not file the "
                "report until it is corrected",
                pl.col("what"),
            ).alias("detail"),
            pl.lit(None, pl.String).alias("source_file"),
            pl.lit(None, pl.Int64).alias("source_line"),
        )
        .cast(FINDINGS_SCHEMA)
    )
