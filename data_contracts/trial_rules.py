"""Trial-level rules (``trial_rules.yaml``): rules across files, rows and deliveries, declared
beside the per-dataset contracts.

Each rule has a reason code, a severity (:data:`BLOCKING`: the row is quarantined and never
reaches an analysis table; :data:`FINDING`: the row is kept and the finding shown), the datasets
it applies to, the rule in words and what the data manager does to fix it. The file also holds
the physical plausibility range of every measured number (:class:`PlausibleRange`).

:func:`rule_message` writes a quarantine message or finding detail in one form everywhere:
``<file> line <n>: <what> - <rule>; fix: <what to fix>``. :data:`FINDINGS_SCHEMA` is the
columns of a findings frame (one row per finding, kept rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

RULES_PATH = Path(__file__).resolve().parent / "trial_rules.yaml"
BLOCKING = "blocking"
FINDING = "finding"

FINDINGS_SCHEMA = pl.Schema(
    {
        "dataset": pl.String(),
        "subject_id": pl.String(),
        "finding": pl.String(),
        "detail": pl.String(),
        "source_file": pl.String(),
        "source_line": pl.Int64(),
    }
)
"""One row per finding: the dataset, the subject (when known), the reason code, a sentence a
data manager can act on, and the row's lineage (null line for a whole file or a subject)."""


@dataclass(frozen=True)
class TrialRule:
    """One declared rule: ``code`` (reason code), ``severity`` (blocking/finding), ``datasets``,
    ``rule`` (what must hold, in words) and ``fix`` (what to do about a breach)."""

    code: str
    severity: str
    datasets: tuple[str, ...]
    rule: str
    fix: str


@dataclass(frozen=True)
class PlausibleRange:
    """Inclusive physical plausibility range of a measured column (``unit`` for the message);
    ``where``: only rows whose columns equal these values (e.g. ``{"unit": "g"}``)."""

    dataset: str
    column: str
    minimum: float
    maximum: float
    unit: str
    where: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TrialRules:
    rules: dict[str, TrialRule]
    ranges: tuple[PlausibleRange, ...]

    def rule(self, code: str) -> TrialRule:
        return self.rules[code]

    def ranges_of(self, dataset: str) -> list[PlausibleRange]:
        return [r for r in self.ranges if r.dataset == dataset]


def _rule(item: dict[str, Any]) -> TrialRule:
    severity = str(item["severity"])
    if severity not in (BLOCKING, FINDING):
        raise ValueError(
            f"trial rule {item['code']}: severity {severity!r} is not {BLOCKING} or {FINDING}"
        )
    return TrialRule(
        code=str(item["code"]),
        severity=severity,
        datasets=tuple(str(d) for d in item["datasets"]),
        rule=str(item["rule"]),
        fix=str(item["fix"]),
    )


def _range(item: dict[str, Any]) -> PlausibleRange:
    where = item.get("where") or {}
    return PlausibleRange(
        dataset=str(item["dataset"]),
        column=str(item["column"]),
        minimum=float(item["minimum"]),
        maximum=float(item["maximum"]),
        unit=str(item.get("unit", "")),
        where=tuple((str(k), str(v)) for k, v in where.items()),
    )


@cache
def load_trial_rules(path: Path = RULES_PATH) -> TrialRules:
    """The declared rules of ``path`` (default: ``data_contracts/trial_rules.yaml``)."""
    data = yaml.safe_load(Path(path).read_text("utf-8"))
    rules = [_rule(r) for r in data["rules"]]
    return TrialRules(
        rules={r.code: r for r in rules}, ranges=tuple(_range(r) for r in data["ranges"])
    )


def rule_message(code: str, what: pl.Expr) -> pl.Expr:
    """``<source_file> line <source_line>: <what> - <rule>; fix: <fix>`` for rule ``code``
    (``what``: the row's offending value in words; a null line names the file alone)."""
    rule = load_trial_rules().rule(code)
    where = (
        pl.when(pl.col("source_line").is_null())
        .then(pl.col("source_file"))
        .otherwise(pl.format("{} line {}", pl.col("source_file"), pl.col("source_line")))
    )
    return pl.format("{}: {} - {}; fix: {}", where, what, pl.lit(rule.rule), pl.lit(rule.fix))
