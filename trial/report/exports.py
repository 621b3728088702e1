"""SAS transport (XPT version 5) exports of the analysis-ready tables, and their define-like
metadata, both driven by the data contracts (``data_contracts/<dataset>.odcs.yaml``), and
``export_notes.txt``, what the v5 limits changed.

FDA's v5 limits are enforced before writing: dataset and variable names of at most 8
characters (upper-case letters, digits, underscore; not starting with a digit), labels of at
most 40 characters, character values of at most 200 bytes in ASCII. Nothing is changed
silently: a dataset's label is chosen by hand (:data:`DATASET_LABELS`), a contract's
``businessName`` is a variable's label (the contract engine keeps it within 40
characters), its ``xptName`` the variable name and its ``origin`` the define origin (both chosen
by hand in ``trial/derive/export_names.py``; a column without them is an error, never an
abbreviation made up here), a longer label or an out-of-limit value is reported in the export
notes, and the define table maps every XPT name back to its column.

Type mapping: String -> Char; integers, floats -> Num; Boolean -> Char ``Y``/``N``; Date -> Num
(days since 1960-01-01) with ``DATE9.``; Datetime -> Num (UTC, naive) with ``E8601DT19.``;
List(String) -> Char joined by ``;``; Duration -> Num seconds.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyreadstat

from data_contracts.contracts import Contract, load_contract

XPT_DATASETS = ("adsl", "adsweat", "adsweat_side", "adhdss", "adae", "addev")
"""The analysis-ready tables exported as XPT, in define order."""

SAS_EPOCH = dt.date(1960, 1, 1)
"""SAS dates count days from this date."""
MAX_NAME = 8
MAX_LABEL = 40
MAX_CHAR_BYTES = 200
NOTES_NAME = "export_notes.txt"
"""Beside the XPT files: one line for each label or value the v5 limits changed."""
NO_NOTES = "No value or label was changed for SAS v5."

_VALID_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,7}$")
DATASET_NAMES = {"adsweat_side": "ADSWEATS"}
"""XPT member names of datasets whose own name is longer than 8 characters."""
DATASET_LABELS = {
    "adsl": "Subject-Level Analysis Dataset",
    "adsweat": "Sweat Rate Analysis Dataset",
    "adsweat_side": "Sweat Rate by Side Analysis Dataset",
    "adhdss": "HDSS Analysis Dataset",
    "adae": "Adverse Events Analysis Dataset",
    "addev": "Device Session Analysis Dataset",
}
"""XPT dataset labels (at most 40 characters), chosen by hand as the variables' names are; a
dataset without one is labelled by its contract's description, cut at a word and noted."""


@dataclass(frozen=True)
class ExportResult:
    """Paths written, the define table, and notes on anything the v5 limits changed."""

    paths: list[Path]
    define: pl.DataFrame
    notes: list[str]


def _custom(contract: Contract, column: str, key: str) -> str | None:
    """A property's ``customProperties`` value (e.g. ``xptName``, ``origin``), or None."""
    table = contract.raw.get("schema", [{}])[0] if contract.raw else {}
    for prop in table.get("properties", []):
        if prop.get("name") == column:
            for custom in prop.get("customProperties") or []:
                if custom.get("property") == key:
                    return str(custom.get("value"))
    return None


def dataset_label(dataset: str, contract: Contract) -> tuple[str, str | None]:
    """The XPT label of ``dataset`` (:data:`DATASET_LABELS`, else its contract's description
    within :data:`MAX_LABEL` characters, cut at the last space that fits) and a note when the
    description had to be cut."""
    if dataset in DATASET_LABELS:
        return DATASET_LABELS[dataset], None
    text = contract.description
    if len(text) <= MAX_LABEL:
        return text, None
    cut = text[: MAX_LABEL + 1].rsplit(" ", 1)[0].rstrip(" ,;:") or text[:MAX_LABEL]
    return cut, f"{dataset}: dataset label cut to {len(cut)} characters: {text!r}"


def dataset_xpt_name(dataset: str) -> str:
    """XPT member name of a dataset: its name in upper case (``adsl`` -> ``ADSL``), or
    :data:`DATASET_NAMES` where that is longer than 8 characters."""
    name = DATASET_NAMES.get(dataset, dataset.upper())
    if not _VALID_NAME.match(name):
        raise ValueError(f"{dataset}: no valid XPT member name; add one to DATASET_NAMES")
    return name


def _type(dtype: pl.DataType) -> tuple[str, str | None]:
    """(XPT type, SAS display format) of a Polars dtype."""
    if isinstance(dtype, pl.Date):
        return "Num", "DATE9."
    if isinstance(dtype, pl.Datetime):
        return "Num", "E8601DT19."
    if dtype.is_numeric() or isinstance(dtype, pl.Duration):
        return "Num", None
    return "Char", None


def _chosen(contract: Contract, column: str, key: str) -> str:
    """The contract's ``xptName`` or ``origin`` of an exported column: chosen there
    (``trial/derive/export_names.py``), never made up here."""
    value = _custom(contract, column, key)
    if value is None:
        raise ValueError(
            f"{contract.dataset}.{column}: the contract names no {key}; add it to "
            "trial/derive/export_names.py and regenerate the contracts"
        )
    return value


def define_metadata(
    contracts: Iterable[Contract], tables: Mapping[str, pl.DataFrame] | None = None
) -> pl.DataFrame:
    """The define-like table: one row per exported variable.

    Columns ``dataset, xpt_dataset, variable, xpt_name, label, type, format, unit, origin,
    description, order``. With ``tables``, only columns present in the table are listed (a
    blinded ADSL has no ``arm``) and the table's own dtype decides the type."""
    rows = []
    for contract in contracts:
        frame = None if tables is None else tables.get(contract.dataset)
        for order, prop in enumerate(contract.properties, start=1):
            if frame is not None and prop.name not in frame.columns:
                continue
            dtype = prop.dtype if frame is None else frame.schema[prop.name]
            xtype, fmt = _type(dtype)
            rows.append(
                {
                    "dataset": contract.dataset,
                    "xpt_dataset": dataset_xpt_name(contract.dataset),
                    "variable": prop.name,
                    "xpt_name": _chosen(contract, prop.name, "xptName"),
                    "label": prop.label or prop.description.split(". ")[0],
                    "type": xtype,
                    "format": fmt,
                    "unit": prop.unit,
                    "origin": _chosen(contract, prop.name, "origin"),
                    "description": prop.description,
                    "order": order,
                }
            )
    schema = {
        "dataset": pl.String,
        "xpt_dataset": pl.String,
        "variable": pl.String,
        "xpt_name": pl.String,
        "label": pl.String,
        "type": pl.String,
        "format": pl.String,
        "unit": pl.String,
        "origin": pl.String,
        "description": pl.String,
        "order": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded


def join_whole_items(items: list[str], limit: int) -> str:
    """``items`` joined by ``;`` within ``limit`` bytes: the first items that fit whole, then
    ``;+N more`` for the rest (a path is never cut in the middle)."""
    text = ";".join(items)
    if len(text.encode("utf-8")) <= limit:
        return text
    kept: list[str] = []
    for item in items:
        more = len(items) - len(kept) - 1
        candidate = ";".join([*kept, item]) + (f";+{more} more" if more else "")
        if len(candidate.encode("utf-8")) > limit:
            break
        kept.append(item)
    if not kept:  # not even the first item fits: the generic cut below takes over
        return text
    return ";".join(kept) + f";+{len(items) - len(kept)} more"


def _prepare(frame: pl.DataFrame, define: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """The frame with XPT names and v5-compatible values; notes on anything changed. A list
    (``source_files``) too long for a v5 value keeps its first items whole and counts the
    rest."""
    notes: list[str] = []
    columns = []
    lists: dict[str, str] = {}
    for variable, name, xtype in define.select("variable", "xpt_name", "type").iter_rows():
        dtype = frame.schema[variable]
        col = pl.col(variable)
        if isinstance(dtype, pl.Date):
            col = (col - pl.lit(SAS_EPOCH)).dt.total_days().cast(pl.Float64)
        elif isinstance(dtype, pl.Boolean):
            col = pl.when(col).then(pl.lit("Y")).when(~col).then(pl.lit("N"))
        elif isinstance(dtype, pl.List):
            col = col.cast(pl.List(pl.String)).list.join(";")
            lists[name] = variable
        elif isinstance(dtype, pl.Datetime):
            col = (
                col.dt.convert_time_zone("UTC") if dtype.time_zone else col
            ).dt.replace_time_zone(None)
        elif isinstance(dtype, pl.Duration):
            col = col.dt.total_milliseconds() / 1000.0
        elif xtype == "Char" and not isinstance(dtype, pl.String):
            col = col.cast(pl.String)
        columns.append(col.alias(name))
    out = frame.select(columns)
    for name, variable in lists.items():
        long = out[name].str.len_bytes() > MAX_CHAR_BYTES
        if long.any():
            notes.append(
                f"{name}: {int(long.sum())} lists longer than {MAX_CHAR_BYTES} bytes keep their "
                "first items whole, then ';+N more' (the whole lists are in the Parquet tables)"
            )
            items = frame[variable].cast(pl.List(pl.String)).to_list()
            values = [None if v is None else join_whole_items(v, MAX_CHAR_BYTES) for v in items]
            out = out.with_columns(pl.Series(name, values, dtype=pl.String))
    for name in define.filter(pl.col("type") == "Char")["xpt_name"]:
        values = out[name]
        non_ascii = values.str.contains(r"[^\x00-\x7F]").fill_null(False)
        if non_ascii.any():
            notes.append(
                f"{name}: {int(non_ascii.sum())} values with non-ASCII characters transliterated "
                "to ASCII"
            )
            out = out.with_columns(
                pl.Series(name, [None if v is None else _ascii(v) for v in values.to_list()])
            )
        long = out[name].str.len_bytes() > MAX_CHAR_BYTES
        if long.any():
            notes.append(f"{name}: {int(long.sum())} values longer than {MAX_CHAR_BYTES} bytes cut")
            out = out.with_columns(pl.col(name).str.slice(0, MAX_CHAR_BYTES))
    return out, notes


def read_export_notes(out_dir: Path) -> list[str]:
    """The notes :func:`write_xpt_exports` left in ``out_dir`` (none when it wrote none)."""
    path = Path(out_dir) / NOTES_NAME
    if not path.is_file():
        return []
    return [n for n in path.read_text("utf-8").splitlines() if n and n != NO_NOTES]


def write_xpt_exports(
    tables: Mapping[str, pl.DataFrame],
    out_dir: Path,
    contracts: Mapping[str, Contract] | None = None,
    datasets: Iterable[str] = XPT_DATASETS,
) -> ExportResult:
    """Write ``out_dir/<name>.xpt`` (v5) for each dataset present in ``tables``, and
    ``out_dir/define.csv`` (the define table). ``contracts``: by dataset; default the project's
    contracts. A column not in the contract is an error (the contract is the source of truth)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [d for d in datasets if d in tables]
    contracts = contracts or {d: load_contract(d) for d in chosen}
    define = define_metadata([contracts[d] for d in chosen], tables)
    paths: list[Path] = []
    notes: list[str] = []
    for dataset in chosen:
        frame = tables[dataset]
        unknown = sorted(set(frame.columns) - set(contracts[dataset].columns))
        if unknown:
            raise ValueError(f"{dataset}: columns {unknown} are not in its data contract")
        meta = define.filter(pl.col("dataset") == dataset).sort("order")
        member = meta["xpt_dataset"][0]
        for name, label in meta.select("xpt_name", "label").iter_rows():
            if not _VALID_NAME.match(name):
                raise ValueError(f"{dataset}: XPT name {name!r} breaks the v5 naming rule")
            if len(label) > MAX_LABEL:
                notes.append(f"{member}.{name}: label cut to {MAX_LABEL} characters: {label!r}")
        data, changed = _prepare(frame, meta)
        notes += [f"{member}.{n}" for n in changed]
        labels = [label[:MAX_LABEL] for label in meta["label"].to_list()]
        formats = {n: f for n, f in meta.select("xpt_name", "format").iter_rows() if f}
        path = out_dir / f"{dataset_xpt_name(dataset).lower()}.xpt"
        file_label, cut = dataset_label(dataset, contracts[dataset])
        notes += [cut] if cut else []
        pyreadstat.write_xport(
            data,
            str(path),
            file_label=file_label,
            column_labels=labels,
            table_name=member,
            file_format_version=5,
            variable_format=formats,
        )
        paths.append(path)
    define_path = out_dir / "define.csv"
    define.write_csv(define_path)
    notes_path = out_dir / NOTES_NAME
    notes_path.write_text(
        "\n".join(notes or [NO_NOTES]) + "\n",
        encoding="utf-8",
    )
    return ExportResult(paths=[*paths, define_path, notes_path], define=define, notes=notes)
