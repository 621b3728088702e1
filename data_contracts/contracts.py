"""ODCS v3.1 data contracts: load a contract, type raw text, run its checks on a Polars frame.

One YAML file per dataset, ``data_contracts/<dataset>.odcs.yaml`` (Open Data Contract Standard
v3.1.0). The engine reads the subset of ODCS this project uses:

- top level: ``apiVersion`` (``v3.1.0``), ``kind`` (``DataContract``), ``id``, ``version``,
  ``status``, ``name``, optional ``description``;
- ``schema``: one object per table, ``{name, physicalType: table, description, properties}``;
  the first object is the dataset's table;
- per property: ``name``, ``logicalType`` (``string``, ``integer``, ``number``, ``boolean``,
  ``date``, ``timestamp``, ``array``), ``physicalType`` (a Polars dtype name: ``String``,
  ``Int64``, ``Float64``, ``Boolean``, ``Date``, ``Datetime(us, UTC)``, ``Datetime(us)``,
  ``Duration(us)``, ``List(String)``), ``required`` (no nulls), ``unique``, ``primaryKey`` /
  ``primaryKeyPosition`` (composite key), ``businessName`` (short label, at most 40 characters),
  ``description``, ``logicalTypeOptions`` (``minimum``, ``maximum``, ``pattern``, and for
  ``date``/``timestamp`` the text ``format`` as a Polars/chrono format string),
  ``customProperties`` (``unit``; ``severity`` of the property's constraints), and ``quality``
  rules (library metrics ``invalidValues`` with ``arguments.validValues``, ``nullValues``,
  ``missingValues``, ``duplicateValues``; schema level ``rowCount`` and ``duplicateValues`` with
  ``arguments.properties``; operators ``mustBe``, ``mustNotBe``, ``mustBeGreaterThan``,
  ``mustBeGreaterOrEqualTo``, ``mustBeLessThan``, ``mustBeLessOrEqualTo``, ``mustBeBetween``;
  optional ``severity``: ``warning``/``info`` make a failure non-blocking).

Study-dependent values are never written in a contract: a property whose codelist depends on
the study (arms, visits, centres, regions, strata, AE terms, the study id, ...) names it with the
custom property ``studyCodelist`` (one of :data:`study.config.CODELIST_NAMES`), and
:func:`load_contract` resolves it from the study the run uses (:func:`use_study`, or the
``study`` argument) into an ``invalidValues`` rule; values the file itself lists in such a rule
(e.g. a bench unit's ``INTERRUPTED`` end reason) are kept after the study's. A run writes the
contracts it used, resolved, to ``OUT/contracts/`` (:func:`write_resolved_contracts`).

Two uses:

- :func:`check_frame` runs every rule of a contract on a frame and returns one
  :class:`CheckResult` per rule (the Dagster asset checks are generated from these);
- :func:`type_text_frame` turns a frame of raw text cells into typed columns and splits off the
  rows that break a value rule as quarantine rows (file, line, field, value, rule).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from study import CODELIST_NAMES, Study
from study.config import YAML_LOADER

CONTRACT_DIR = Path(__file__).resolve().parent
CONTRACT_SUFFIX = ".odcs.yaml"
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's safe dumper where PyYAML was built with it, else PyYAML's."""
API_VERSION = "v3.1.0"

STUDY_CODELIST = "studyCodelist"
"""Custom property naming the study codelist a column's values must come from."""
RESOLVED_FROM = "resolvedFromStudyCodelist"
"""What ``studyCodelist`` becomes once resolved (the values are then in the quality rule)."""

BLOCKING = "blocking"
WARNING = "warning"

LOGICAL_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp", "array", "object")

QUARANTINE_SCHEMA = pl.Schema(
    {
        "dataset": pl.String(),
        "source_file": pl.String(),
        "source_line": pl.Int64(),
        "field": pl.String(),
        "reason_code": pl.String(),
        "message": pl.String(),
        "raw_text": pl.String(),
    }
)
"""Columns of the quarantine table (``docs/architecture.md``); ``quarantine.odcs.yaml`` agrees."""

_SIMPLE_DTYPES: dict[str, pl.DataType] = {
    "String": pl.String(),
    "Int8": pl.Int8(),
    "Int16": pl.Int16(),
    "Int32": pl.Int32(),
    "Int64": pl.Int64(),
    "UInt32": pl.UInt32(),
    "UInt64": pl.UInt64(),
    "Float32": pl.Float32(),
    "Float64": pl.Float64(),
    "Boolean": pl.Boolean(),
    "Date": pl.Date(),
}
_DATETIME_RE = re.compile(r"^Datetime\((ms|us|ns)(?:,\s*(\S+))?\)$")
_DURATION_RE = re.compile(r"^Duration\((ms|us|ns)\)$")
_LIST_RE = re.compile(r"^List\((.+)\)$")


def parse_dtype(name: str) -> pl.DataType:
    """The Polars dtype a contract's ``physicalType`` names, e.g. ``Datetime(us, UTC)``."""
    text = name.strip()
    if text in _SIMPLE_DTYPES:
        return _SIMPLE_DTYPES[text]
    if m := _DATETIME_RE.match(text):
        unit = m.group(1)
        return pl.Datetime(unit, m.group(2))  # type: ignore[arg-type]
    if m := _DURATION_RE.match(text):
        return pl.Duration(m.group(1))  # type: ignore[arg-type]
    if m := _LIST_RE.match(text):
        return pl.List(parse_dtype(m.group(1)))
    raise ValueError(f"physicalType {name!r} is not a Polars dtype name this engine knows")


def dtype_name(dtype: pl.DataType) -> str:
    """Inverse of :func:`parse_dtype` (used to write contracts and error messages)."""
    if isinstance(dtype, pl.Datetime):
        tz = f", {dtype.time_zone}" if dtype.time_zone else ""
        return f"Datetime({dtype.time_unit}{tz})"
    if isinstance(dtype, pl.Duration):
        return f"Duration({dtype.time_unit})"
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        return f"List({dtype_name(inner if isinstance(inner, pl.DataType) else inner())})"
    for name, simple in _SIMPLE_DTYPES.items():
        if dtype == simple:
            return name
    raise ValueError(f"dtype {dtype} has no contract name")


@dataclass(frozen=True)
class QualityRule:
    """One ODCS quality rule (library metric) on a property or on the whole table."""

    metric: str
    arguments: dict[str, Any]
    operator: str
    threshold: Any
    severity: str
    description: str

    @staticmethod
    def from_mapping(raw: dict[str, Any]) -> QualityRule:
        metric = str(raw.get("metric") or raw.get("rule") or "")
        if not metric:
            raise ValueError(f"quality rule without a metric: {raw}")
        operators = [k for k in _OPERATORS if k in raw]
        if len(operators) != 1:
            raise ValueError(f"quality rule {metric} needs exactly one operator: {raw}")
        return QualityRule(
            metric=metric,
            arguments=dict(raw.get("arguments") or {}),
            operator=operators[0],
            threshold=raw[operators[0]],
            severity=_severity(raw.get("severity")),
            description=str(raw.get("description", "")),
        )

    def holds(self, n: int) -> bool:
        """Whether the measured count ``n`` satisfies the operator."""
        return _OPERATORS[self.operator](n, self.threshold)


_OPERATORS: dict[str, Any] = {
    "mustBe": lambda n, t: n == t,
    "mustNotBe": lambda n, t: n != t,
    "mustBeGreaterThan": lambda n, t: n > t,
    "mustBeGreaterOrEqualTo": lambda n, t: n >= t,
    "mustBeLessThan": lambda n, t: n < t,
    "mustBeLessOrEqualTo": lambda n, t: n <= t,
    "mustBeBetween": lambda n, t: t[0] <= n <= t[1],
    "mustNotBeBetween": lambda n, t: not (t[0] <= n <= t[1]),
}


def _severity(value: Any) -> str:
    return WARNING if str(value or "").lower() in {"warning", "warn", "info"} else BLOCKING


@dataclass(frozen=True)
class Property:
    """One column of a contract."""

    name: str
    logical_type: str
    dtype: pl.DataType
    required: bool = False
    unique: bool = False
    primary_key: bool = False
    primary_key_position: int | None = None
    label: str | None = None
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    text_format: str | None = None
    unit: str | None = None
    severity: str = BLOCKING
    quality: tuple[QualityRule, ...] = ()
    unblinded_only: bool = False
    codelist: str | None = None
    """Name of the study codelist the values must come from (resolved at run time)."""

    @property
    def valid_values(self) -> list[Any] | None:
        """The codelist (``invalidValues`` rule's ``validValues``), or None."""
        for rule in self.quality:
            if rule.metric == "invalidValues" and "validValues" in rule.arguments:
                return list(rule.arguments["validValues"])
        return None

    @staticmethod
    def from_mapping(raw: dict[str, Any]) -> Property:
        options = dict(raw.get("logicalTypeOptions") or {})
        custom = {str(c["property"]): c.get("value") for c in (raw.get("customProperties") or [])}
        logical = str(raw["logicalType"])
        if logical not in LOGICAL_TYPES:
            raise ValueError(f"property {raw['name']}: logicalType {logical!r} is not ODCS")
        pk_pos = raw.get("primaryKeyPosition")
        return Property(
            name=str(raw["name"]),
            logical_type=logical,
            dtype=parse_dtype(str(raw["physicalType"])),
            required=bool(raw.get("required", False)),
            unique=bool(raw.get("unique", False)),
            primary_key=bool(raw.get("primaryKey", False)),
            primary_key_position=None if pk_pos is None else int(pk_pos),
            label=None if raw.get("businessName") is None else str(raw["businessName"]),
            description=str(raw.get("description", "")),
            minimum=None if options.get("minimum") is None else float(options["minimum"]),
            maximum=None if options.get("maximum") is None else float(options["maximum"]),
            pattern=None if options.get("pattern") is None else str(options["pattern"]),
            text_format=None if options.get("format") is None else str(options["format"]),
            unit=None if custom.get("unit") is None else str(custom["unit"]),
            severity=_severity(custom.get("severity")),
            quality=tuple(QualityRule.from_mapping(q) for q in (raw.get("quality") or [])),
            unblinded_only=custom.get("blinding") == "unblinded_only",
            codelist=None if custom.get(STUDY_CODELIST) is None else str(custom[STUDY_CODELIST]),
        )


@dataclass(frozen=True)
class Contract:
    """A loaded ODCS contract for one dataset (its first ``schema`` object)."""

    id: str
    version: str
    status: str
    name: str
    dataset: str
    description: str
    properties: tuple[Property, ...]
    table_quality: tuple[QualityRule, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def columns(self) -> list[str]:
        return [p.name for p in self.properties]

    @property
    def study_codelists(self) -> dict[str, str]:
        """Column -> name of the study codelist its values come from (unresolved references)."""
        return {p.name: p.codelist for p in self.properties if p.codelist is not None}

    @property
    def unblinded_only(self) -> list[str]:
        """Columns (customProperties ``blinding: unblinded_only``) a blinded run must not have."""
        return [p.name for p in self.properties if p.unblinded_only]

    def blinded_view(self) -> Contract:
        """The contract of the blinded frame: the unblinded-only columns left out."""
        kept = tuple(p for p in self.properties if not p.unblinded_only)
        return replace(self, properties=kept)

    @property
    def schema(self) -> pl.Schema:
        """Column names and dtypes as a Polars schema, in contract order."""
        return pl.Schema({p.name: p.dtype for p in self.properties})

    def prop(self, name: str) -> Property:
        for p in self.properties:
            if p.name == name:
                return p
        raise KeyError(f"column {name!r} is not in contract {self.dataset}")

    @property
    def primary_key(self) -> list[str]:
        keyed = [p for p in self.properties if p.primary_key]
        keyed.sort(key=lambda p: p.primary_key_position or 0)
        return [p.name for p in keyed]

    @property
    def units(self) -> dict[str, str]:
        return {p.name: p.unit for p in self.properties if p.unit is not None}

    @property
    def allowed_values(self) -> dict[str, list[Any]]:
        return {p.name: vv for p in self.properties if (vv := p.valid_values) is not None}

    @property
    def ranges(self) -> dict[str, tuple[float | None, float | None]]:
        return {
            p.name: (p.minimum, p.maximum)
            for p in self.properties
            if p.minimum is not None or p.maximum is not None
        }

    @property
    def labels(self) -> dict[str, str]:
        """Short label per column: ``businessName``, else the description's first sentence."""
        return {p.name: p.label or p.description.split(". ")[0] for p in self.properties}

    @property
    def descriptions(self) -> dict[str, str]:
        return {p.name: p.description for p in self.properties}


def contract_path(dataset: str, directory: Path = CONTRACT_DIR) -> Path:
    return directory / f"{dataset}{CONTRACT_SUFFIX}"


def list_contracts(directory: Path = CONTRACT_DIR) -> list[str]:
    """Dataset names of every contract file in ``directory``, sorted."""
    return sorted(
        p.name.removesuffix(CONTRACT_SUFFIX) for p in directory.glob(f"*{CONTRACT_SUFFIX}")
    )


def parse_contract(data: dict[str, Any], source: str = "<mapping>") -> Contract:
    """Build a :class:`Contract` from an ODCS mapping (structure errors name ``source``)."""
    problems = structural_problems(data)
    if problems:
        raise ValueError(f"{source}: not a valid ODCS v3.1 contract: " + "; ".join(problems))
    table = data["schema"][0]
    return Contract(
        id=str(data["id"]),
        version=str(data["version"]),
        status=str(data["status"]),
        name=str(data.get("name", table["name"])),
        dataset=str(table["name"]),
        description=str(table.get("description", data.get("description", ""))),
        properties=tuple(Property.from_mapping(p) for p in table["properties"]),
        table_quality=tuple(QualityRule.from_mapping(q) for q in (table.get("quality") or [])),
        raw=data,
    )


@cache
def _load_cached(path: Path) -> Contract:
    data = yaml.load(path.read_text("utf-8"), Loader=YAML_LOADER)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a contract must be a YAML mapping")
    return parse_contract(data, str(path))


def _path_of(dataset_or_path: str | Path) -> Path:
    path = Path(dataset_or_path)
    if not str(dataset_or_path).endswith(CONTRACT_SUFFIX):
        path = contract_path(str(dataset_or_path))
    return path.resolve()


def contract_template(dataset_or_path: str | Path) -> Contract:
    """A contract as its file states it: schema only, study codelists named, not resolved."""
    return _load_cached(_path_of(dataset_or_path))


_bound: list[Study] = []
_resolved: dict[tuple[Path, str], Contract] = {}


def use_study(study: Study) -> None:
    """Make ``study`` the one whose codelists resolve contracts in this process (the run's
    study; the Dagster definitions and the CLI call this once, before any file is read)."""
    _bound[:] = [study]


def bound_study() -> Study | None:
    """The study :func:`use_study` bound, or None."""
    return _bound[0] if _bound else None


def resolve_contract(contract: Contract, study: Study) -> Contract:
    """``contract`` with every ``studyCodelist`` reference replaced by an ``invalidValues``
    rule listing the study's values (then any values the file lists itself)."""
    if not contract.study_codelists:
        return contract
    data = copy.deepcopy(contract.raw)
    for prop in data["schema"][0]["properties"]:
        custom = {c["property"]: c["value"] for c in prop.get("customProperties") or []}
        name = custom.get(STUDY_CODELIST)
        if name is None:
            continue
        prop["customProperties"] = [
            {"property": RESOLVED_FROM, "value": c["value"]}
            if c["property"] == STUDY_CODELIST
            else c
            for c in prop["customProperties"]
        ]
        values = list(study.codelist(str(name)))
        rules = prop.setdefault("quality", [])
        rule = next((q for q in rules if q.get("metric") == "invalidValues"), None)
        if rule is None:
            rules.append(
                {
                    "metric": "invalidValues",
                    "arguments": {"validValues": values},
                    "mustBe": 0,
                    "dimension": "conformity",
                }
            )
        else:
            own = list(rule.setdefault("arguments", {}).get("validValues") or [])
            rule["arguments"]["validValues"] = values + [v for v in own if v not in values]
    return parse_contract(data, f"{contract.dataset} resolved for {study.study_id}")


def load_contract(dataset_or_path: str | Path, study: Study | None = None) -> Contract:
    """Load ``data_contracts/<dataset>.odcs.yaml`` (by dataset name) or a contract file path,
    its study codelists resolved from ``study`` (default: the study bound by
    :func:`use_study`). A contract that names study codelists cannot be used without a study."""
    path = _path_of(dataset_or_path)
    template = _load_cached(path)
    if not template.study_codelists:
        return template
    chosen = study if study is not None else bound_study()
    if chosen is None:
        raise RuntimeError(
            f"contract {template.dataset} takes codelists from the study "
            f"({', '.join(sorted(set(template.study_codelists.values())))}): load the study and "
            "call data_contracts.contracts.use_study(study) first, or pass study="
        )
    key = (path, chosen.digest)
    if key not in _resolved:
        _resolved[key] = resolve_contract(template, chosen)
    return _resolved[key]


def write_resolved_contracts(
    study: Study, directory: Path, extra: Iterable[Path] = ()
) -> list[Path]:
    """Write every contract of ``data_contracts/`` and each contract file of ``extra`` (a raw
    format's own contract kept elsewhere, e.g. a new vendor's beside its module), resolved for
    ``study``, to ``directory`` (a run's ``OUT/contracts/``: what the run checked its tables
    against); returns the paths. Raises ValueError when an extra contract's file name is one of
    ``data_contracts/`` (its copy would hide which contract the run used)."""
    sources = [contract_path(name) for name in list_contracts()]
    own = {path.name for path in sources}
    for file in dict.fromkeys(Path(p).resolve() for p in extra):
        if file.parent == CONTRACT_DIR.resolve():
            continue
        if file.name in own:
            raise ValueError(
                f"contract {file} has the name of data_contracts/{file.name}: rename it, so "
                "that OUT/contracts/ shows which of the two a run used"
            )
        sources.append(file)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        contract = load_contract(source, study)
        origin = source.name if source.parent == CONTRACT_DIR else str(source)
        header = (
            f"# {origin} resolved for study {study.study_id} "
            f"({study.source}, sha256 {study.digest[:12]}).\n"
        )
        path = directory / source.name
        text = yaml.dump(
            contract.raw, Dumper=YAML_DUMPER, sort_keys=False, allow_unicode=True, width=100
        )
        path.write_text(header + text, "utf-8")
        written.append(path)
    return written


_STATUSES = {"proposed", "draft", "active", "deprecated", "retired"}


def structural_problems(data: Any) -> list[str]:
    """JSON-schema-like structural validation of an ODCS v3.1 mapping; empty when valid."""
    if not isinstance(data, dict):
        return ["top level is not a mapping"]
    problems = [
        f"missing top-level key {k!r}"
        for k in ("apiVersion", "kind", "id", "version", "status", "schema")
        if k not in data
    ]
    if data.get("apiVersion") not in (None, API_VERSION):
        problems.append(f"apiVersion must be {API_VERSION}, not {data.get('apiVersion')!r}")
    if "kind" in data and data["kind"] != "DataContract":
        problems.append("kind must be DataContract")
    if "status" in data and data["status"] not in _STATUSES:
        problems.append(f"status {data['status']!r} is not one of {sorted(_STATUSES)}")
    schema = data.get("schema")
    if not isinstance(schema, list) or not schema:
        return [*problems, "schema must be a non-empty list"]
    for table in schema:
        if not isinstance(table, dict) or "name" not in table:
            problems.append("every schema object needs a name")
            continue
        tname = table["name"]
        if table.get("physicalType") != "table":
            problems.append(f"schema {tname}: physicalType must be 'table'")
        props = table.get("properties")
        if not isinstance(props, list) or not props:
            problems.append(f"schema {tname}: properties must be a non-empty list")
            continue
        names = [p.get("name") for p in props if isinstance(p, dict)]
        if len(names) != len(set(names)):
            problems.append(f"schema {tname}: duplicate property names")
        for prop in props:
            problems.extend(_property_problems(tname, prop))
    return problems


def _property_problems(table: str, prop: Any) -> list[str]:
    if not isinstance(prop, dict):
        return [f"schema {table}: a property is not a mapping"]
    where = f"schema {table}, property {prop.get('name')!r}"
    problems = [
        f"{where}: missing {k}" for k in ("name", "logicalType", "physicalType") if k not in prop
    ]
    if prop.get("logicalType") not in (None, *LOGICAL_TYPES):
        problems.append(f"{where}: logicalType {prop.get('logicalType')!r} is not ODCS")
    if "physicalType" in prop:
        try:
            parse_dtype(str(prop["physicalType"]))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    for key in ("required", "unique", "primaryKey"):
        if key in prop and not isinstance(prop[key], bool):
            problems.append(f"{where}: {key} must be a boolean")
    label = prop.get("businessName")
    if label is not None and len(str(label)) > 40:
        problems.append(f"{where}: businessName longer than 40 characters")
    for custom in prop.get("customProperties") or []:
        if not isinstance(custom, dict) or "property" not in custom or "value" not in custom:
            problems.append(f"{where}: customProperties items need property and value")
        elif custom["property"] == STUDY_CODELIST and custom["value"] not in CODELIST_NAMES:
            problems.append(
                f"{where}: studyCodelist {custom['value']!r} is not a study codelist "
                f"({', '.join(CODELIST_NAMES)})"
            )
    for rule in prop.get("quality") or []:
        try:
            QualityRule.from_mapping(rule)
        except (ValueError, TypeError, AttributeError) as exc:
            problems.append(f"{where}: {exc}")
    return problems


# --------------------------------------------------------------------------------------------
# Checks on a frame


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one contract rule on one frame.

    ``name`` is ``<rule>:<column>`` (or ``<rule>`` for table rules), e.g. ``required:subject_id``,
    ``validValues:sex``, ``range:hdss``, ``primaryKey``. ``sample`` holds up to
    ``SAMPLE_SIZE`` failing values as text."""

    name: str
    column: str | None
    rule: str
    passed: bool
    n_failing: int
    sample: tuple[str, ...]
    severity: str
    description: str

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING


SAMPLE_SIZE = 5


def _sample(values: pl.Series) -> tuple[str, ...]:
    return tuple(str(v) for v in values.head(SAMPLE_SIZE).to_list())


def _result(
    rule: str, column: str | None, failing: pl.Series, severity: str, description: str
) -> CheckResult:
    n = failing.len()
    return CheckResult(
        name=f"{rule}:{column}" if column else rule,
        column=column,
        rule=rule,
        passed=n == 0,
        n_failing=n,
        sample=_sample(failing),
        severity=severity,
        description=description,
    )


def _key_duplicates(df: pl.DataFrame, columns: list[str]) -> pl.Series:
    dup = df.select(columns).filter(pl.struct(columns).is_duplicated())
    return dup.select(
        pl.concat_str(
            [pl.col(c).cast(pl.String) for c in columns], separator="|", ignore_nulls=False
        ).fill_null("<null in key>")
    ).to_series()


def check_frame(df: pl.DataFrame, contract: Contract) -> list[CheckResult]:
    """Run every rule of ``contract`` on ``df``; one :class:`CheckResult` per rule.

    Rules: presence and dtype of each column (``schema``), ``required`` (no nulls), ``unique``,
    ``primaryKey`` (composite key unique, no nulls), ``range`` (logicalTypeOptions
    minimum/maximum), ``pattern``, and every quality rule. Extra columns in ``df`` that the
    contract does not name fail the table rule ``columns``. Checks on a missing or mistyped
    column are reported as failing schema checks only."""
    results: list[CheckResult] = []
    extra = [c for c in df.columns if c not in contract.columns]
    results.append(
        _result(
            "columns",
            None,
            pl.Series(extra, dtype=pl.String),
            BLOCKING,
            "every column is named in the contract",
        )
    )
    usable: list[Property] = []
    for prop in contract.properties:
        if prop.name not in df.columns:
            failing = pl.Series(["<column missing>"])
        elif df.schema[prop.name] != prop.dtype:
            failing = pl.Series([f"{df.schema[prop.name]} != {dtype_name(prop.dtype)}"])
        else:
            failing = pl.Series([], dtype=pl.String)
            usable.append(prop)
        results.append(
            _result(
                "schema",
                prop.name,
                failing,
                BLOCKING,
                f"column present with dtype {dtype_name(prop.dtype)}",
            )
        )
    for prop in usable:
        col = df.get_column(prop.name)
        if prop.required:
            results.append(
                _result(
                    "required",
                    prop.name,
                    pl.Series(["<null>"] * col.null_count()),
                    prop.severity,
                    "no missing values",
                )
            )
        if prop.unique:
            dup = col.drop_nulls().filter(col.drop_nulls().is_duplicated()).cast(pl.String)
            results.append(_result("unique", prop.name, dup, prop.severity, "values unique"))
        if prop.minimum is not None or prop.maximum is not None:
            expr = pl.lit(False)
            if prop.minimum is not None:
                expr = expr | (pl.col(prop.name) < prop.minimum)
            if prop.maximum is not None:
                expr = expr | (pl.col(prop.name) > prop.maximum)
            bad = df.filter(expr).get_column(prop.name).cast(pl.String)
            results.append(
                _result(
                    "range",
                    prop.name,
                    bad,
                    prop.severity,
                    f"within [{prop.minimum}, {prop.maximum}]",
                )
            )
        if prop.pattern is not None and prop.dtype == pl.String():
            bad = col.drop_nulls().filter(~col.drop_nulls().str.contains(prop.pattern))
            results.append(
                _result("pattern", prop.name, bad, prop.severity, f"matches {prop.pattern}")
            )
        for rule in prop.quality:
            results.append(_quality_result(df, prop.name, rule))
    key = contract.primary_key
    if key and all(
        p.name in [u.name for u in usable] for p in contract.properties if p.name in key
    ):
        dup = _key_duplicates(df, key)
        nulls = df.filter(pl.any_horizontal(pl.col(key).is_null())).height
        failing = pl.concat([dup, pl.Series(["<null in key>"] * nulls, dtype=pl.String)])
        results.append(
            _result(
                "primaryKey", None, failing, BLOCKING, f"({', '.join(key)}) unique and complete"
            )
        )
    for rule in contract.table_quality:
        results.append(_quality_result(df, None, rule))
    return results


STRUCTURAL_RULES = ("columns", "schema")
"""Rules on the frame's columns and dtypes: the same for every batch of one table."""
_ROW_COUNT_METRICS = ("invalidValues", "nullValues", "missingValues")


def is_row_local(contract: Contract) -> bool:
    """Whether every rule of ``contract`` judges rows one at a time and tolerates no failing
    row, so that checking a table batch by batch and adding up the failing rows gives the
    whole table's result: no primary key, no unique column, no table-level rule, and every
    quality rule a count of failing rows that must be 0."""
    if contract.primary_key or contract.table_quality:
        return False
    for prop in contract.properties:
        if prop.unique:
            return False
        for rule in prop.quality:
            if not (
                rule.metric in _ROW_COUNT_METRICS
                and rule.operator == "mustBe"
                and rule.threshold == 0
            ):
                return False
    return True


def check_lazy(frame: pl.LazyFrame, contract: Contract, batch_rows: int) -> list[CheckResult]:
    """:func:`check_frame` on a table too large to hold, ``batch_rows`` rows at a time, for a
    contract whose rules are row-local (:func:`is_row_local`; otherwise ``ValueError``).

    Each rule's result is the batches' results added up: failing rows summed, the first
    failing values as the sample, passed only if it passed on every batch (exact, because no
    rule tolerates a failing row). The structural rules (columns, dtypes) come from the
    first batch."""
    if not is_row_local(contract):
        raise ValueError(
            f"contract {contract.name} has rules that look across rows; check it whole"
        )
    n_rows = frame.select(pl.len()).collect().item()
    return merged_results(
        check_frame(frame.slice(offset, batch_rows).collect(), contract)
        for offset in range(0, max(n_rows, 1), batch_rows)
    )


def merged_results(batches: Iterable[list[CheckResult]]) -> list[CheckResult]:
    """The results of a row-local contract (:func:`is_row_local`) on consecutive batches of
    one table -> its results on the whole table: failing rows summed, the first failing
    values as the sample, passed only if it passed on every batch; the structural rules
    (columns, dtypes) from the first batch."""
    merged: dict[str, CheckResult] = {}
    for results in batches:
        for result in results:
            earlier = merged.get(result.name)
            if earlier is None:
                merged[result.name] = result
            elif result.rule not in STRUCTURAL_RULES:
                merged[result.name] = replace(
                    earlier,
                    passed=earlier.passed and result.passed,
                    n_failing=earlier.n_failing + result.n_failing,
                    sample=(earlier.sample + result.sample)[:SAMPLE_SIZE],
                )
    return list(merged.values())


def _quality_result(df: pl.DataFrame, column: str | None, rule: QualityRule) -> CheckResult:
    failing: pl.Series
    if rule.metric == "invalidValues" and column is not None:
        valid = rule.arguments.get("validValues")
        col = df.get_column(column).drop_nulls()
        if valid is not None:
            bad = col.filter(~col.is_in(pl.Series(valid).cast(col.dtype, strict=False).implode()))
        else:
            bad = col.filter(~col.cast(pl.String).str.contains(str(rule.arguments["pattern"])))
        failing = bad.cast(pl.String)
        name = "validValues"
    elif rule.metric in ("nullValues", "missingValues") and column is not None:
        failing = pl.Series(["<null>"] * df.get_column(column).null_count(), dtype=pl.String)
        name = rule.metric
    elif rule.metric == "duplicateValues":
        cols = [column] if column else list(rule.arguments.get("properties", df.columns))
        failing = _key_duplicates(df.filter(pl.all_horizontal(pl.col(cols).is_not_null())), cols)
        name = rule.metric
    elif rule.metric == "rowCount" and column is None:
        n = df.height
        ok = rule.holds(n)
        return CheckResult(
            name="rowCount",
            column=None,
            rule="rowCount",
            passed=ok,
            n_failing=0 if ok else n,
            sample=() if ok else (str(n),),
            severity=rule.severity,
            description=rule.description or f"row count {rule.operator} {rule.threshold}",
        )
    else:
        raise ValueError(f"quality metric {rule.metric!r} is not supported on {column or 'table'}")
    n = failing.len()
    passed = rule.holds(n)
    return CheckResult(
        name=f"{name}:{column}" if column else name,
        column=column,
        rule=name,
        passed=passed,
        n_failing=0 if passed else n,
        sample=() if passed else _sample(failing),
        severity=rule.severity,
        description=rule.description or f"{rule.metric} {rule.operator} {rule.threshold}",
    )


def blocking_failures(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed and r.blocking]


# --------------------------------------------------------------------------------------------
# Frames


def empty_frame(contract: Contract) -> pl.DataFrame:
    """A zero-row frame with the contract's columns and dtypes."""
    return pl.DataFrame(schema=contract.schema)


def cast_frame(df: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """Select the contract's columns in contract order, cast strictly to its dtypes.

    Raises if a column is missing or a value cannot be cast (never coerces silently)."""
    missing = [c for c in contract.columns if c not in df.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing} of contract {contract.dataset}")
    return df.select(pl.col(p.name).cast(p.dtype, strict=True) for p in contract.properties)


_EMPTY_QUARANTINE = pl.DataFrame(schema=QUARANTINE_SCHEMA)


def empty_quarantine() -> pl.DataFrame:
    """A zero-row quarantine frame (shared: Polars frames are not changed in place)."""
    return _EMPTY_QUARANTINE


# --------------------------------------------------------------------------------------------
# Typing raw text columns (readers)

LINEAGE_COLUMNS = ("source_file", "source_line")

EDC_TABLES = ("dm", "eligibility", "visits", "hdss", "ae", "cm", "disposition", "devices")
"""The EDC exports a centre delivers (``<table>.csv``, each checked against the contract of
its name), in the raw registry's order: the one list the readers' registry
(``ingest.registry``) and the simulator (``trial.simulate.render``) both use. The sealed
``randomisation`` list is not one of them."""


def file_columns(contract: Contract) -> list[str]:
    """The columns a raw file carries, in file order: the contract's columns without the
    lineage columns readers add (``source_file``, ``source_line``)."""
    return [c for c in contract.columns if c not in LINEAGE_COLUMNS]


TYPE_REASON = {
    "integer": "BAD_NUMBER",
    "number": "BAD_NUMBER",
    "date": "BAD_DATE",
    "timestamp": "BAD_DATE",
    "boolean": "BAD_VALUE",
}
"""Reason code when a non-empty cell does not parse as the property's logical type."""

_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


def typed_expr(prop: Property, text: pl.Expr) -> pl.Expr:
    """Expression turning a String cell into the property's dtype (null when unparsable)."""
    lt = prop.logical_type
    if lt == "date":
        fmt = prop.text_format or "%Y-%m-%d"
        parsed = text.str.to_date(fmt, strict=False)
        if prop.text_format is None:
            parsed = pl.when(text.str.contains(_ISO_DATE)).then(parsed)
        return parsed
    if lt == "timestamp":
        assert isinstance(prop.dtype, pl.Datetime)
        fmt = prop.text_format or "%Y-%m-%dT%H:%M:%S%.f%:z"
        return text.str.to_datetime(
            fmt, strict=False, time_unit=prop.dtype.time_unit, time_zone=prop.dtype.time_zone
        ).cast(prop.dtype)
    if lt == "boolean":
        lower = text.str.to_lowercase()
        return pl.when(lower == "true").then(True).when(lower == "false").then(False)
    if lt in ("integer", "number"):
        # Polars' float parser accepts "inf"/"nan"; a raw cell with them is not a number here.
        ok = text.str.contains(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
        return pl.when(ok).then(text.cast(prop.dtype, strict=False))
    return text.cast(prop.dtype)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _violation(prop: Property, text: pl.Expr, typed: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(reason code, rule text) expressions for one cell; both null when the cell is fine."""
    cases: list[tuple[pl.Expr, str, str]] = []
    if prop.required:
        cases.append((text.is_null(), "MISSING_REQUIRED", "a value is required"))
    if prop.logical_type in TYPE_REASON:
        rule = f"must be {_article(prop.logical_type)} {prop.logical_type}" + (
            f" ({prop.text_format})" if prop.text_format else ""
        )
        cases.append((text.is_not_null() & typed.is_null(), TYPE_REASON[prop.logical_type], rule))
    valid = prop.valid_values
    if valid is not None:
        cases.append(
            (
                typed.is_not_null()
                & ~typed.is_in(pl.Series(valid).cast(prop.dtype, strict=False).implode()),
                "NOT_IN_CODELIST",
                "must be one of " + ", ".join(str(v) for v in valid),
            )
        )
    if prop.minimum is not None:
        cases.append((typed < prop.minimum, "OUT_OF_RANGE", f"must be >= {prop.minimum:g}"))
    if prop.maximum is not None:
        cases.append((typed > prop.maximum, "OUT_OF_RANGE", f"must be <= {prop.maximum:g}"))
    if prop.pattern is not None and prop.logical_type == "string":
        cases.append(
            (
                text.is_not_null() & ~text.str.contains(prop.pattern),
                "BAD_FORMAT",
                f"must match {prop.pattern}",
            )
        )
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    rule_text: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, code, rule in reversed(cases):
        reason = pl.when(cond.fill_null(False)).then(pl.lit(code)).otherwise(reason)
        rule_text = pl.when(cond.fill_null(False)).then(pl.lit(rule)).otherwise(rule_text)
    return reason, rule_text


def type_text_frame(
    text: pl.DataFrame,
    contract: Contract,
    dataset: str | None = None,
    columns: Sequence[str] | None = None,
    derived: Mapping[str, str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Type raw text cells by the contract; split off rows that break a value rule.

    ``text`` holds String columns named as the contract's properties (``columns``, default: every
    contract column present in ``text``) plus ``source_file``, ``source_line`` and ``raw_text``.
    Empty strings are missing values. A row breaks a rule when a required cell is empty
    (``MISSING_REQUIRED``), a cell does not parse (``BAD_NUMBER``/``BAD_DATE``/``BAD_VALUE``), a
    value is outside the codelist (``NOT_IN_CODELIST``) or range (``OUT_OF_RANGE``), or a string
    does not match its pattern (``BAD_FORMAT``).

    Returns ``(typed, quarantine)``: ``typed`` keeps the passing rows with the typed columns, the
    other columns of ``text`` except ``raw_text`` unchanged; ``quarantine`` has one row per failing
    line (the first failing field in contract order names ``field``/``reason_code``; the message
    lists every failing field with its value and rule).

    ``derived`` maps a typed output column to the text column it is parsed from (e.g.
    ``{"collected_at_utc": "collected_at"}``); the text column itself stays as delivered, and a
    failure is reported against the text column's name."""
    dataset = dataset or contract.dataset
    derived = dict(derived or {})
    names = (
        list(columns)
        if columns is not None
        else [
            c
            for c in contract.columns
            if c not in LINEAGE_COLUMNS and (c in text.columns or c in derived)
        ]
    )
    props = [contract.prop(n) for n in names]
    source = {n: derived.get(n, n) for n in names}
    text_cols = sorted(set(source.values()))
    cells = text.with_columns(
        pl.when(pl.col(n).str.len_bytes() == 0).then(None).otherwise(pl.col(n)).alias(n)
        for n in text_cols
    )
    reason_cols: list[pl.Expr] = []
    detail_cols: list[pl.Expr] = []
    for prop in props:
        t = pl.col(source[prop.name])
        reason, rule = _violation(prop, t, typed_expr(prop, t))
        reason_cols.append(reason.alias(f"__reason_{prop.name}"))
        detail_cols.append(
            pl.when(reason.is_not_null())
            .then(
                pl.format(
                    "{}={} ({}: {})",
                    pl.lit(source[prop.name]),
                    pl.when(t.is_null()).then(pl.lit("<empty>")).otherwise(pl.format("'{}'", t)),
                    reason,
                    rule,
                )
            )
            .alias(f"__detail_{prop.name}")
        )
    judged = cells.with_columns(reason_cols + detail_cols)
    rcols = [f"__reason_{n}" for n in names]
    dcols = [f"__detail_{n}" for n in names]
    bad_mask = pl.any_horizontal(pl.col(rcols).is_not_null()) if rcols else pl.lit(False)
    field_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for n in reversed(names):
        field_expr = (
            pl.when(pl.col(f"__reason_{n}").is_not_null())
            .then(pl.lit(source[n]))
            .otherwise(field_expr)
        )
    bad = judged.filter(bad_mask)
    quarantine = bad.select(
        pl.lit(dataset).alias("dataset"),
        pl.col("source_file"),
        pl.col("source_line").cast(pl.Int64),
        field_expr.alias("field"),
        (pl.coalesce(rcols) if rcols else pl.lit(None, dtype=pl.String)).alias("reason_code"),
        pl.format(
            "{} line {}: {}",
            pl.col("source_file"),
            pl.col("source_line"),
            pl.concat_str(dcols, separator="; ", ignore_nulls=True),
        ).alias("message"),
        pl.col("raw_text"),
    )
    good = judged.filter(~bad_mask).select(
        [pl.col(c) for c in text.columns if c not in names and c != "raw_text"]
        + [typed_expr(p, pl.col(source[p.name])).alias(p.name) for p in props]
    )
    return good, quarantine.cast(dict(QUARANTINE_SCHEMA))  # type: ignore[arg-type]


def quarantine_rows(
    dataset: str,
    source_file: str,
    source_line: int | None,
    field: str | None,
    reason_code: str,
    message: str,
    raw_text: str,
) -> pl.DataFrame:
    """One quarantine row, for a reader's whole-file or structural rejections.

    ``message`` should say what is wrong; the file and line are prefixed here."""
    where = source_file if source_line is None else f"{source_file} line {source_line}"
    return pl.DataFrame(
        {
            "dataset": [dataset],
            "source_file": [source_file],
            "source_line": [source_line],
            "field": [field],
            "reason_code": [reason_code],
            "message": [f"{where}: {message}"],
            "raw_text": [raw_text],
        },
        schema=QUARANTINE_SCHEMA,
    )
