"""Leak scan for blinded outputs: could a reader of this output infer any subject's arm?

Blinded outputs show pooled results only (study protocol section 8). The scan looks for what
would break that, in every file under the given paths and in Dagster metadata:

- ``ARM_COLUMN``: a column named like a treatment variable (``arm``, ``TRT01P``, ...) that
  holds more than one distinct value or any arm code (a column that only says ``pooled``, or
  is empty, tells nothing), or a column whose name carries an arm code (``lsmean_GLY``);
- ``ARM_TOKEN``: an arm code (whole word, case-sensitive), an arm name (any case) or a masked
  arm label (``Arm A``, ``Group 2``) in any text or string cell; the study's own title (which
  names the products) is removed before scanning;
- ``ARM_ENCODING``: in a table with subject identifiers, a column whose values split subjects
  exactly along the sealed list: every value shared by >= 2 subjects belongs to one arm only,
  there are >= 2 such values, and they cover >= half of the subjects. That is a masked code
  consistent with the true arms, whatever its labels;
- ``UNSCANNABLE``: a file type the scan cannot read (so nothing passes unseen).

The scan needs the sealed list (``subject_id, arm``); it runs in tests and in the unblinded
statistician's checks, never inside a blinded run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from study import Study

SUBJECT_COLUMNS = ("subject_id", "subject", "USUBJID", "SUBJID", "SUBJECT")
TREATMENT_COLUMNS = {
    "arm",
    "armcd",
    "actarm",
    "actarmcd",
    "trt01p",
    "trt01a",
    "trt01pn",
    "trt01an",
    "trtp",
    "trta",
    "treatment",
    "rand_arm",
    "arm_code",
    "masked_arm",
}
TEXT_SUFFIXES = {
    ".html",
    ".htm",
    ".json",
    ".md",
    ".txt",
    ".svg",
    ".yaml",
    ".yml",
    ".log",
    ".xml",
    ".rtf",
}
MASKED_LABEL = re.compile(r"\b(?:arm|group|treatment)[ _-]?(?:[A-H]|[1-9])\b", re.IGNORECASE)
MIN_SHARED = 2
MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class Leak:
    """One finding: where (file and column/line), what kind, and the evidence."""

    source: str
    kind: str
    detail: str


@dataclass(frozen=True)
class ArmKnowledge:
    """What the scan looks for: arm codes and names, and the sealed subject -> arm list."""

    codes: list[str]
    names: list[str]
    allowed_text: list[str]
    randomisation: pl.DataFrame

    @classmethod
    def from_study(cls, study: Study, randomisation: pl.DataFrame) -> ArmKnowledge:
        codes = sorted(
            {*study.arm_codes, *randomisation.get_column("arm").drop_nulls().cast(pl.String)}
        )
        return cls(
            codes=codes,
            names=[a.name for a in study.arms],
            allowed_text=[study.title],
            randomisation=randomisation.select(
                pl.col("subject_id").cast(pl.String), pl.col("arm").cast(pl.String)
            ),
        )


def scan_text(text: str, source: str, arms: ArmKnowledge) -> list[Leak]:
    """Arm codes, arm names and masked arm labels in a text (the study title removed).
    Whitespace runs count as one space, so a title or name wrapped over lines (PDF text) is
    still recognised."""
    text = " ".join(text.split())
    for allowed in arms.allowed_text:
        text = text.replace(" ".join(allowed.split()), " ")
    leaks = []
    for code in arms.codes:
        for match in re.finditer(rf"(?<![A-Za-z0-9]){re.escape(code)}(?![A-Za-z0-9])", text):
            context = text[max(0, match.start() - 40) : match.end() + 40].replace("\n", " ")
            leaks.append(Leak(source, "ARM_TOKEN", f"arm code {code!r} in ...{context}..."))
            break
    for name in arms.names:
        if name.lower() in text.lower():
            leaks.append(Leak(source, "ARM_TOKEN", f"arm name {name!r}"))
    for match in MASKED_LABEL.finditer(text):
        leaks.append(Leak(source, "ARM_TOKEN", f"masked arm label {match.group(0)!r}"))
        break
    return leaks


def _encoding_leaks(frame: pl.DataFrame, source: str, arms: ArmKnowledge) -> list[Leak]:
    subject = next((c for c in SUBJECT_COLUMNS if c in frame.columns), None)
    if subject is None:
        return []
    leaks = []
    keyed = frame.with_columns(pl.col(subject).cast(pl.String).alias("__subject"))
    keyed = keyed.join(
        arms.randomisation.rename({"subject_id": "__subject", "arm": "__arm"}),
        on="__subject",
        how="inner",
    )
    n_subjects = keyed.get_column("__subject").n_unique()
    if n_subjects < 2 * MIN_SHARED:
        return []
    for column in frame.columns:
        if column == subject or frame.schema[column] in (pl.Object,):
            continue
        dtype = frame.schema[column]
        value = pl.col(column)
        if isinstance(dtype, pl.List | pl.Struct | pl.Array):
            value = value.hash()
        pairs = keyed.select(value.alias("__value"), "__subject", "__arm").unique().drop_nulls()
        by_value = pairs.group_by("__value").agg(
            pl.col("__subject").n_unique().alias("subjects"),
            pl.col("__arm").n_unique().alias("arms"),
        )
        shared = by_value.filter(pl.col("subjects") >= MIN_SHARED)
        if shared.height < 2 or shared.height == by_value.height == 1:
            continue
        covered = int(shared.get_column("subjects").sum())
        if (shared.get_column("arms") == 1).all() and covered >= MIN_COVERAGE * n_subjects:
            leaks.append(
                Leak(
                    f"{source}:{column}",
                    "ARM_ENCODING",
                    f"{shared.height} values of {column!r} each hold subjects of one arm only "
                    f"({covered} of {n_subjects} subjects)",
                )
            )
    return leaks


def scan_frame(frame: pl.DataFrame, source: str, arms: ArmKnowledge) -> list[Leak]:
    """Column names, string cells and per-subject encodings of one table."""
    leaks = []
    code_pattern = re.compile(
        r"(?:^|[^A-Za-z0-9])(?:" + "|".join(map(re.escape, arms.codes)) + r")(?:$|[^A-Za-z0-9])"
    )
    for column in frame.columns:
        if code_pattern.search(column):
            leaks.append(Leak(f"{source}:{column}", "ARM_COLUMN", f"column {column!r}"))
        elif column.lower() in TREATMENT_COLUMNS:
            labels = frame.get_column(column).drop_nulls().cast(pl.String).unique().to_list()
            if len(labels) > 1 or set(labels) & set(arms.codes):
                leaks.append(
                    Leak(
                        f"{source}:{column}",
                        "ARM_COLUMN",
                        f"column {column!r} with values {sorted(labels)[:6]}",
                    )
                )
    strings = [
        c for c, t in frame.schema.items() if t == pl.String or t == pl.Categorical or t == pl.Enum
    ]
    if strings:
        values = (
            frame.select(pl.concat_list(pl.col(strings).cast(pl.String)).alias("v"))
            .explode("v")
            .drop_nulls()
            .unique(maintain_order=True)
            .get_column("v")
        )
        leaks += [
            Leak(f"{source}:cells", leak.kind, leak.detail)
            # cells kept apart by a separator the patterns cannot cross: "Age group" in one
            # cell and "7" in the next must not read as the masked label "group 7"
            for leak in scan_text(" | ".join(values.to_list()), source, arms)
        ]
    return leaks + _encoding_leaks(frame, source, arms)


def _read_table(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    import pyreadstat

    df, _meta = pyreadstat.read_xport(str(path))
    return pl.from_pandas(df)


def scan_file(path: Path, arms: ArmKnowledge) -> list[Leak]:
    """Scan one output file by its type (the file name itself is scanned too)."""
    leaks = scan_text(path.name, f"{path}:name", arms)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".csv", ".xpt"):
        return leaks + scan_frame(_read_table(path), str(path), arms)
    if suffix in TEXT_SUFFIXES:
        return leaks + scan_text(path.read_text("utf-8", errors="replace"), str(path), arms)
    if suffix == ".pdf" and shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
        return leaks + scan_text(text, str(path), arms)
    return [*leaks, Leak(str(path), "UNSCANNABLE", f"no scanner for {suffix or 'no suffix'}")]


def scan_for_arm_leaks(
    paths: Iterable[Path], randomisation: pl.DataFrame, study: Study
) -> list[Leak]:
    """Every leak in the files under ``paths`` (files or folders, walked recursively).

    ``randomisation``: the sealed list (``subject_id, arm``)."""
    arms = ArmKnowledge.from_study(study, randomisation)
    leaks: list[Leak] = []
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            leaks += scan_file(path, arms)
    return leaks


def scan_metadata(
    metadata: Mapping[str, Any], source: str, randomisation: pl.DataFrame, study: Study
) -> list[Leak]:
    """Leaks in Dagster asset metadata (or any mapping): a ``MetadataValue`` is unwrapped;
    frames are scanned as tables, text as text, anything else as its ``repr`` (which shows
    every nested value)."""
    arms = ArmKnowledge.from_study(study, randomisation)
    leaks: list[Leak] = []
    for key, value in metadata.items():
        leaks += scan_text(str(key), f"{source}[{key}]:key", arms)
        inner = getattr(value, "value", value)
        if isinstance(inner, pl.DataFrame):
            leaks += scan_frame(inner, f"{source}[{key}]", arms)
        else:
            text = inner if isinstance(inner, str) else repr(inner)
            leaks += scan_text(text, f"{source}[{key}]", arms)
    return leaks
