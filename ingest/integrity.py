"""Trial-level rules on the resolved raw datasets (``data_contracts/trial_rules.yaml``).

The readers judge each file alone; these rules span files and rows. A row that breaks a
blocking rule leaves its dataset for the quarantine (reason code, file, line, field, value,
rule, what to fix), so it never reaches an analysis table; a row that breaks a finding rule is
kept and named in the findings frame (:data:`~data_contracts.trial_rules.FINDINGS_SCHEMA`).

- :func:`plausibility`: every measured number finite (``NON_FINITE``) and within its physical
  range (``IMPLAUSIBLE_VALUE``); row-local, so applied before repeats across exports are
  resolved (a bad repeat must not make the good one look like the conflict).
- :func:`apply_trial_rules`: the subject rules (``SUBJECT_IN_TWO_CENTRES``,
  ``UNKNOWN_SUBJECT``, ``WRONG_CENTRE``), dates against consent and withdrawal
  (``VISIT_BEFORE_CONSENT``, ``VISIT_AFTER_WITHDRAWAL``, ``AE_BEFORE_CONSENT``), serial
  assignments (``SERIAL_DOUBLE_ASSIGNED``) and measurements only at done visits
  (``VISIT_NOT_DONE``, ``VISIT_ROW_QUARANTINED``).

A subject is known to a centre when that centre's ``dm.csv`` holds a row for them, read or
quarantined (a quarantined demographics row still says the subject exists: their other rows are
kept, and ADSL says the demographics are quarantined).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from data_contracts.contracts import QUARANTINE_SCHEMA
from data_contracts.trial_rules import FINDINGS_SCHEMA, load_trial_rules, rule_message
from ingest.quarantine import combine, empty_quarantine

MEASURED_AT_VISIT = ("gravimetry", "hdss")


def file_centre() -> pl.Expr:
    """The delivering centre of a row: the first folder of ``source_file``."""
    return pl.col("source_file").str.split("/").list.first()


def raw_lines(raw_root: Path, rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (``source_file``, ``source_line``) with ``raw_text``: the physical line as
    delivered (undecodable bytes escaped), read from ``raw_root``. Only the files named are
    opened, each once."""
    texts: list[str | None] = []
    cache: dict[str, list[str]] = {}
    for file, line in rows.select("source_file", "source_line").iter_rows():
        if file not in cache:
            path = Path(raw_root) / file
            data = path.read_bytes() if path.is_file() else b""
            text = data.decode("utf-8", errors="backslashreplace").removeprefix("\ufeff")
            cache[file] = text.replace("\r\n", "\n").split("\n")
        lines = cache[file]
        texts.append(lines[line - 1] if line is not None and 0 < line <= len(lines) else None)
    return rows.with_columns(raw_text=pl.Series(texts, dtype=pl.String))


def quarantine_of(
    rows: pl.DataFrame, dataset: str, field: str | None, code: str, what: pl.Expr
) -> pl.DataFrame:
    """Quarantine rows for ``rows`` (lineage and ``raw_text`` columns) breaking rule ``code``."""
    return rows.select(
        dataset=pl.lit(dataset),
        source_file=pl.col("source_file"),
        source_line=pl.col("source_line").cast(pl.Int64),
        field=pl.lit(field, dtype=pl.String),
        reason_code=pl.lit(code),
        message=rule_message(code, what),
        raw_text=pl.col("raw_text").cast(pl.String),
    ).cast(dict(QUARANTINE_SCHEMA))  # type: ignore[arg-type]


def findings_of(rows: pl.DataFrame, dataset: str, code: str, what: pl.Expr) -> pl.DataFrame:
    """Finding rows for kept ``rows`` (``subject_id`` when present, lineage) under ``code``."""
    subject = pl.col("subject_id") if "subject_id" in rows.columns else pl.lit(None)
    return rows.select(
        dataset=pl.lit(dataset),
        subject_id=subject.cast(pl.String),
        finding=pl.lit(code),
        detail=rule_message(code, what),
        source_file=pl.col("source_file"),
        source_line=pl.col("source_line").cast(pl.Int64),
    ).cast(dict(FINDINGS_SCHEMA))  # type: ignore[arg-type]


def empty_findings() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDINGS_SCHEMA)


# -- row-local: plausibility ----------------------------------------------------------------


def plausibility(
    frame: pl.DataFrame, dataset: str, raw_text: str = "raw_text", raw_root: Path | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` (with lineage) -> (rows whose every Float64 column is finite or null and
    every declared range of ``dataset`` holds; quarantine of the rest: ``NON_FINITE`` first,
    else ``IMPLAUSIBLE_VALUE``, one row per rejected row naming the first column at fault).

    The rejected rows' text comes from the column ``raw_text`` when the frame has it, else from
    the files under ``raw_root``."""
    if frame.height == 0:
        return frame, empty_quarantine()
    checks: list[tuple[str, str, pl.Expr, pl.Expr]] = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Float64 and not name.startswith("_"):
            col = pl.col(name)
            checks.append((name, "NON_FINITE", ~col.is_finite(), pl.format(f"{name} '{{}}'", col)))
    for r in load_trial_rules().ranges_of(dataset):
        if r.column not in frame.columns:
            continue
        col = pl.col(r.column).cast(pl.Float64)
        applies = pl.lit(True)
        for key, value in r.where:
            applies = applies & (pl.col(key) == value)
        bad = applies & col.is_finite() & ((col < r.minimum) | (col > r.maximum))
        unit = f" {r.unit}" if r.unit else ""
        what = pl.format(
            f"{r.column} {{}}{unit} outside the plausible {r.minimum:g} to {r.maximum:g}{unit}",
            pl.col(r.column),
        )
        checks.append((r.column, "IMPLAUSIBLE_VALUE", bad, what))
    if not checks:
        return frame, empty_quarantine()
    first = pl.coalesce(
        *(pl.when(bad.fill_null(False)).then(pl.lit(i)) for i, (_, _, bad, _) in enumerate(checks))
    )
    flagged = frame.with_columns(_check=first)
    kept = flagged.filter(pl.col("_check").is_null()).drop("_check")
    rejected = flagged.filter(pl.col("_check").is_not_null())
    if rejected.height == 0:
        return kept, empty_quarantine()
    if raw_text in rejected.columns:
        rejected = rejected.with_columns(raw_text=pl.col(raw_text))
    elif raw_root is not None:
        rejected = raw_lines(raw_root, rejected)
    else:
        rejected = rejected.with_columns(raw_text=pl.lit(None, dtype=pl.String))
    parts = [
        quarantine_of(rejected.filter(pl.col("_check") == i), dataset, column, code, what)
        for i, (column, code, _, what) in enumerate(checks)
    ]
    return kept, combine(parts)


# -- across files: the subject register and the rules on it --------------------------------


def quarantined_keys(quarantine: pl.DataFrame, dataset: str, fields: Sequence[str]) -> pl.DataFrame:
    """Rows of ``dataset`` that a reader quarantined, with their first CSV fields named
    ``fields`` (the spec's leading columns, e.g. ``subject_id``, ``visit``) taken from the raw
    text, and the delivering centre. Whole-file rejections have no key and are left out."""
    rows = quarantine.filter(
        (pl.col("dataset") == dataset)
        & pl.col("source_line").is_not_null()
        & pl.col("raw_text").is_not_null()
    )
    cells = pl.col("raw_text").str.strip_prefix("\ufeff").str.split(",")
    return rows.select(
        "source_file",
        "source_line",
        "reason_code",
        "message",
        centre=file_centre(),
        **{
            name: cells.list.get(i, null_on_oob=True).str.strip_chars(' "')
            for i, name in enumerate(fields)
        },
    ).filter(pl.col(fields[0]).is_not_null() & (pl.col(fields[0]) != ""))


def subject_register(dm: pl.DataFrame, quarantine: pl.DataFrame) -> pl.DataFrame:
    """Every subject a centre's ``dm.csv`` names: ``subject_id``, ``centre`` (the delivering
    centre), ``dm_status`` (``READ`` or ``QUARANTINED``), lineage and, for a quarantined row,
    ``dm_reason`` (the quarantine's reason code) and ``dm_message``."""
    read = dm.select(
        "subject_id",
        centre=file_centre(),
        dm_status=pl.lit("READ"),
        source_file="source_file",
        source_line=pl.col("source_line").cast(pl.Int64),
        dm_reason=pl.lit(None, dtype=pl.String),
        dm_message=pl.lit(None, dtype=pl.String),
    )
    bad = quarantined_keys(quarantine, "dm", ["subject_id"]).select(
        "subject_id",
        "centre",
        dm_status=pl.lit("QUARANTINED"),
        source_file="source_file",
        source_line="source_line",
        dm_reason="reason_code",
        dm_message="message",
    )
    return pl.concat([read, bad.join(read, on="subject_id", how="anti")]).unique(
        ["subject_id", "centre"], keep="first", maintain_order=True
    )


@dataclass(frozen=True)
class Checked:
    """Datasets after the trial-level rules, with the quarantine and findings they added."""

    datasets: dict[str, pl.DataFrame]
    quarantine: pl.DataFrame
    findings: pl.DataFrame


def _split(frame: pl.DataFrame, bad: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    flagged = frame.with_columns(_bad=bad.fill_null(False))
    return flagged.filter(~pl.col("_bad")).drop("_bad"), flagged.filter("_bad").drop("_bad")


class _Apply:
    """Accumulates the datasets, quarantine and findings while the rules run in order."""

    def __init__(self, datasets: dict[str, pl.DataFrame], raw_root: Path) -> None:
        self.data = dict(datasets)
        self.raw_root = raw_root
        self.quarantine: list[pl.DataFrame] = [empty_quarantine()]
        self.findings: list[pl.DataFrame] = [empty_findings()]

    def block(
        self, dataset: str, bad: pl.Expr, code: str, field: str | None, what: pl.Expr
    ) -> None:
        """Quarantine the rows of ``dataset`` where ``bad`` holds (columns of the dataset,
        plus any joined before: the caller's frame is replaced with the kept rows)."""
        frame = self.data[dataset]
        kept, rejected = _split(frame, bad)
        if rejected.height:
            rejected = raw_lines(self.raw_root, rejected)
            self.quarantine.append(quarantine_of(rejected, dataset, field, code, what))
        self.data[dataset] = kept

    def find(self, dataset: str, rows: pl.DataFrame, code: str, what: pl.Expr) -> None:
        if rows.height:
            self.findings.append(findings_of(rows, dataset, code, what))


def _two_centres() -> pl.Expr:
    """dm rows whose subject id is in dm.csv of another centre too, or whose ``centre_id`` is
    not the delivering centre."""
    return (pl.col("centre_id") != file_centre()) | (
        file_centre().n_unique().over("subject_id") > 1
    )


def apply_trial_rules(
    datasets: dict[str, pl.DataFrame],
    quarantine: pl.DataFrame,
    raw_root: Path,
    subject_datasets: Sequence[str],
) -> Checked:
    """The cross-file rules of ``trial_rules.yaml`` on resolved raw datasets (the EDC tables,
    ``gravimetry``; ``cm`` when present) -> kept datasets, the quarantine rows the rules added
    and the findings on kept rows. ``quarantine``: the readers' quarantine so far (quarantined
    ``dm`` rows still register their subject; quarantined ``visits`` rows turn the rule on a
    visit's measurements into a finding). ``raw_root``: for the raw text of rejected rows.
    ``subject_datasets``: the datasets whose rows name a subject, judged by the subject rules
    (``UNKNOWN_SUBJECT``, ``WRONG_CENTRE``): the registry's
    (:func:`ingest.registry.subject_datasets`)."""
    run = _Apply(datasets, raw_root)
    dm = run.data["dm"]
    if dm.height:
        run.block(
            "dm",
            _two_centres(),
            "SUBJECT_IN_TWO_CENTRES",
            "subject_id",
            pl.format(
                "subject {} (centre_id {}, delivered by {})",
                pl.col("subject_id"),
                pl.col("centre_id"),
                file_centre(),
            ),
        )
    moved = [run.quarantine[-1]] if len(run.quarantine) > 1 else []
    register = subject_register(run.data["dm"], combine([quarantine, *moved]))
    pairs = register.select("subject_id", "centre").unique()
    known = register.select("subject_id").unique()
    for name in subject_datasets:
        frame = run.data.get(name)
        if frame is None or frame.height == 0:
            continue
        marked = frame.with_columns(_centre=file_centre()).join(
            known.with_columns(_known=pl.lit(True)), on="subject_id", how="left"
        )
        marked = marked.join(
            pairs.rename({"centre": "_centre"}).with_columns(_here=pl.lit(True)),
            on=["subject_id", "_centre"],
            how="left",
        )
        run.data[name] = marked
        run.block(
            name,
            pl.col("_known").is_null(),
            "UNKNOWN_SUBJECT",
            "subject_id",
            pl.format("subject {}", pl.col("subject_id")),
        )
        run.block(
            name,
            pl.col("_here").is_null(),
            "WRONG_CENTRE",
            "subject_id",
            pl.format("subject {} delivered by centre {}", pl.col("subject_id"), pl.col("_centre")),
        )
        run.data[name] = run.data[name].drop("_centre", "_known", "_here")
    consent = run.data["dm"].select("subject_id", _consent="consent_date")
    _dates(run, consent)
    _serials(run)
    _measured_at_done_visits(run, quarantine)
    return Checked(run.data, combine(run.quarantine), pl.concat(run.findings))


def _dates(run: _Apply, consent: pl.DataFrame) -> None:
    visits = run.data["visits"].join(consent, on="subject_id", how="left")
    run.data["visits"] = visits
    run.block(
        "visits",
        pl.col("visit_date") < pl.col("_consent"),
        "VISIT_BEFORE_CONSENT",
        "visit_date",
        pl.format(
            "{} {} dated {}, consent {}",
            pl.col("subject_id"),
            pl.col("visit"),
            pl.col("visit_date"),
            pl.col("_consent"),
        ),
    )
    run.data["visits"] = run.data["visits"].drop("_consent")
    withdrawn = run.data["disposition"].filter(pl.col("status") == "WITHDRAWN")
    late = (
        run.data["visits"]
        .join(withdrawn.select("subject_id", _withdrawn="date"), on="subject_id")
        .filter((pl.col("status") == "DONE") & (pl.col("visit_date") > pl.col("_withdrawn")))
    )
    run.find(
        "visits",
        late,
        "VISIT_AFTER_WITHDRAWAL",
        pl.format(
            "{} {} dated {}, withdrawn {}",
            pl.col("subject_id"),
            pl.col("visit"),
            pl.col("visit_date"),
            pl.col("_withdrawn"),
        ),
    )
    ae = run.data["ae"].join(consent, on="subject_id", how="left")
    run.data["ae"] = ae
    run.block(
        "ae",
        pl.col("onset_date") < pl.col("_consent"),
        "AE_BEFORE_CONSENT",
        "onset_date",
        pl.format(
            "{} AE {} onset {}, consent {}",
            pl.col("subject_id"),
            pl.col("ae_id"),
            pl.col("onset_date"),
            pl.col("_consent"),
        ),
    )
    run.data["ae"] = run.data["ae"].drop("_consent")


def _serials(run: _Apply) -> None:
    """Assignments of one serial to two subjects whose date ranges overlap (an open
    ``to_date`` runs on): both rows are quarantined, since neither can be preferred."""
    devices = run.data["devices"].with_row_index("_row")
    if devices.height == 0:
        return
    far = pl.date(9999, 12, 31)
    a = devices.select("_row", "device_serial", "subject_id", "from_date", "to_date")
    pairs = a.join(a, on="device_serial", suffix="_o").filter(
        (pl.col("subject_id") != pl.col("subject_id_o"))
        & (pl.col("from_date") <= pl.col("to_date_o").fill_null(far))
        & (pl.col("from_date_o") <= pl.col("to_date").fill_null(far))
    )
    other = pairs.group_by("_row").agg(_other=pl.col("subject_id_o").unique().sort().str.join(", "))
    run.data["devices"] = devices.join(other, on="_row", how="left").drop("_row")
    run.block(
        "devices",
        pl.col("_other").is_not_null(),
        "SERIAL_DOUBLE_ASSIGNED",
        "device_serial",
        pl.format(
            "serial {} assigned to {} from {} to {} and to {} over overlapping dates",
            pl.col("device_serial"),
            pl.col("subject_id"),
            pl.col("from_date"),
            pl.col("to_date").cast(pl.String).fill_null("open"),
            pl.col("_other"),
        ),
    )
    run.data["devices"] = run.data["devices"].drop("_other")


def _measured_at_done_visits(run: _Apply, reader_quarantine: pl.DataFrame) -> None:
    """Gravimetry papers and HDSS scores only at visits ``visits.csv`` records as DONE; a
    measurement whose visit row a reader quarantined is kept with a finding."""
    visits = run.data["visits"]
    done = visits.filter(pl.col("status") == "DONE").select(
        "subject_id", "visit", _done=pl.lit(True)
    )
    status = visits.select("subject_id", "visit", _status="status").unique(["subject_id", "visit"])
    held = (
        quarantined_keys(reader_quarantine, "visits", ["subject_id", "visit"])
        .select("subject_id", "visit", _held=pl.format("{} line {}", "source_file", "source_line"))
        .unique(["subject_id", "visit"])
    )
    for name in MEASURED_AT_VISIT:
        frame = run.data.get(name)
        if frame is None or frame.height == 0:
            continue
        marked = (
            frame.join(done, on=["subject_id", "visit"], how="left")
            .join(status, on=["subject_id", "visit"], how="left")
            .join(held, on=["subject_id", "visit"], how="left")
        )
        run.find(
            name,
            marked.filter(pl.col("_done").is_null() & pl.col("_held").is_not_null()),
            "VISIT_ROW_QUARANTINED",
            pl.format(
                "{} {}: its visit row {} is quarantined",
                pl.col("subject_id"),
                pl.col("visit"),
                pl.col("_held"),
            ),
        )
        run.data[name] = marked
        run.block(
            name,
            pl.col("_done").is_null() & pl.col("_held").is_null(),
            "VISIT_NOT_DONE",
            "visit",
            pl.format(
                "{} {} has visit status {}",
                pl.col("subject_id"),
                pl.col("visit"),
                pl.col("_status").fill_null("none (no visits.csv row)"),
            ),
        )
        run.data[name] = run.data[name].drop("_done", "_status", "_held")
