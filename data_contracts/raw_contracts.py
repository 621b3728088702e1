"""Writes the raw datasets' ODCS contracts from one compact table and the study configuration.

The YAML files are the source of truth that readers and checks load; this module is how they
are made, so that their codelists always agree with ``trial/studies/<study>.yaml``. Run
``python -m data_contracts.raw_contracts`` after changing either; ``tests/contracts`` fails
when a committed file differs from what this writes.

Column names are exactly those of ``specs/site-exports.md``; readers add the lineage columns
``source_file``/``source_line`` and the derived columns ``docs/architecture.md`` lists.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from data_contracts.contracts import API_VERSION, CONTRACT_DIR, contract_path
from trial.study import Study, load_study

CONTRACT_VERSION = "1.0.0"
SUBJECT_PATTERN = r"^[A-Z0-9]+-[0-9]+$"
UTC = "Datetime(us, UTC)"
BENCH_INTERRUPTED = "INTERRUPTED"
"""End reason of a bench-unit session with no END frame (specs/bench-protocols.md)."""


@dataclass(frozen=True)
class Col:
    """Compact column definition (see :func:`_property`)."""

    name: str
    logical: str
    dtype: str
    label: str
    description: str = ""
    required: bool = False
    unique: bool = False
    key: int | None = None
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    values: tuple[Any, ...] | None = None
    fmt: str | None = None


def _s(name: str, label: str, description: str = "", **kw: Any) -> Col:
    return Col(name, "string", "String", label, description, **kw)


def _i(name: str, label: str, description: str = "", **kw: Any) -> Col:
    return Col(name, "integer", "Int64", label, description, **kw)


def _f(name: str, label: str, description: str = "", **kw: Any) -> Col:
    return Col(name, "number", "Float64", label, description, **kw)


def _d(name: str, label: str, description: str = "", **kw: Any) -> Col:
    return Col(name, "date", "Date", label, description, **kw)


def _b(name: str, label: str, description: str = "", **kw: Any) -> Col:
    return Col(name, "boolean", "Boolean", label, description, **kw)


LINEAGE = (
    _s(
        "source_file",
        "Source file",
        "Path of the raw file relative to the raw root.",
        required=True,
    ),
    _i(
        "source_line",
        "Source line",
        "1-based physical line in the source file (the header, or a vendor-A file's first "
        "'#' line, is line 1).",
        required=True,
        minimum=1,
    ),
)


def _subject(key: int | None = 1) -> Col:
    return _s(
        "subject_id",
        "Subject identifier",
        "Subject identifier, e.g. C02-0117.",
        required=True,
        key=key,
        pattern=SUBJECT_PATTERN,
    )


def raw_tables(study: Study) -> dict[str, tuple[str, tuple[Col, ...]]]:
    """Dataset name -> (description, columns) for every dataset the ingest layer produces."""
    cl = study.codelists
    yes_no = tuple(cl["yes_no"])
    visits = tuple(study.visit_codes)
    regions = tuple(r.code for r in study.regions)
    fault_codes = tuple(cl["fault_code"])
    end_reasons = tuple(cl["end_reason"])
    visit = _s("visit", "Visit", "Scheduled visit code.", required=True, key=2, values=visits)
    return {
        "dm": (
            "EDC demographics: one row per subject (latest snapshot of each centre).",
            (
                _subject(),
                _s(
                    "centre_id",
                    "Centre",
                    "Centre identifier.",
                    required=True,
                    values=tuple(study.centres),
                ),
                _d("consent_date", "Informed consent date"),
                _s("sex", "Sex", values=tuple(cl["sex"])),
                _i("birth_year", "Year of birth", minimum=1900, maximum=2100),
                _s(
                    "plantar_involved",
                    "Plantar involvement",
                    "Plantar hyperhidrosis present.",
                    values=yes_no,
                ),
                _i(
                    "hdss_screening",
                    "HDSS at screening",
                    "Hyperhidrosis Disease Severity Scale at screening (1-4).",
                    minimum=1,
                    maximum=4,
                ),
            ),
        ),
        "eligibility": (
            "EDC eligibility answers: one row per subject and criterion.",
            (
                _subject(),
                _s(
                    "criterion",
                    "Eligibility criterion",
                    required=True,
                    key=2,
                    values=tuple(study.section("eligibility")["criteria"]),
                ),
                _s("answer", "Answer", values=yes_no),
            ),
        ),
        "visits": (
            "EDC visits: one row per subject and visit; a MISSED visit has no date.",
            (
                _subject(),
                visit,
                _d("visit_date", "Visit date", "Empty when the visit was MISSED."),
                _s("status", "Visit status", required=True, values=tuple(cl["visit_status"])),
            ),
        ),
        "hdss": (
            "EDC HDSS assessments: one row per subject and visit.",
            (
                _subject(),
                visit,
                _i(
                    "hdss",
                    "HDSS score",
                    "Hyperhidrosis Disease Severity Scale (1-4).",
                    minimum=1,
                    maximum=4,
                ),
            ),
        ),
        "ae": (
            "EDC adverse events: one row per event (latest snapshot).",
            (
                _subject(None),
                _s("ae_id", "AE identifier", required=True, key=1),
                _s("term", "AE term", "Coded adverse event term.", values=tuple(cl["ae_term"])),
                _s("verbatim", "Verbatim term"),
                _d("onset_date", "Onset date"),
                _d("end_date", "End date", "Empty while the event is ongoing."),
                _s("severity", "Severity", values=tuple(cl["ae_severity"])),
                _s("serious", "Serious", values=yes_no),
                _s("related", "Related to treatment", values=tuple(cl["ae_related"])),
            ),
        ),
        "disposition": (
            "EDC disposition: one row per subject.",
            (
                _subject(),
                _s(
                    "status",
                    "Disposition status",
                    required=True,
                    values=tuple(cl["disposition_status"]),
                ),
                _s(
                    "reason", "Reason", "Reason for withdrawal; SCREEN_FAILURE for screen failures."
                ),
                _d("date", "Disposition date"),
            ),
        ),
        "devices": (
            "EDC device assignments: one row per assignment.",
            (
                _subject(),
                _s("device_serial", "Device serial", required=True, key=2),
                _s("region", "Treated region", values=regions),
                _d("from_date", "Assigned from", required=True, key=3),
                _d("to_date", "Assigned until", "Empty while still assigned."),
            ),
        ),
        "randomisation": (
            "Sealed randomisation list: one row per randomised subject.",
            (
                _subject(),
                _d("rand_date", "Randomisation date"),
                _s("stratum", "Stratum", values=tuple(study.stratum_levels.values())),
                _s("arm", "Randomised arm", values=tuple(study.arm_codes)),
            ),
        ),
        "gravimetry": (
            "Gravimetry worksheets: one row per filter paper (current file versions, duplicate "
            "papers resolved: later delivery, then later line wins).",
            (
                _subject(),
                visit,
                _s("region", "Region", required=True, key=3, values=regions),
                _s("side", "Side", required=True, key=4, values=tuple(study.sides)),
                _s("paper_id", "Paper identifier"),
                _f(
                    "dry_weight",
                    "Dry paper weight",
                    "Weight before collection, in `unit`.",
                    minimum=0,
                    unit="unit column (mg or g)",
                ),
                _f(
                    "wet_weight",
                    "Wet paper weight",
                    "Weight after collection, in `unit`; empty when the paper was lost.",
                    minimum=0,
                    unit="unit column (mg or g)",
                ),
                _s("unit", "Weight unit", values=tuple(study.unit_to_mg)),
                _i("collection_s", "Collection time", minimum=1, unit="s"),
                _s(
                    "collected_at",
                    "Collected at (local)",
                    "Local date-time with UTC offset, as written on the worksheet.",
                ),
                _f("room_temp_c", "Room temperature", unit="degC"),
                _f("humidity_pct", "Relative humidity", minimum=0, maximum=100, unit="%"),
                _i("acclimatisation_min", "Acclimatisation time", minimum=0, unit="min"),
                _s("operator", "Operator"),
                _s("balance_serial", "Balance serial"),
                Col(
                    "collected_at_utc",
                    "timestamp",
                    UTC,
                    "Collected at (UTC)",
                    "collected_at converted to UTC.",
                    fmt="%Y-%m-%dT%H:%M:%S%:z",
                ),
                *LINEAGE,
            ),
        ),
        "vendor_a_sessions": (
            "Vendor-A session summaries: one row per distinct session (serial, session_no, "
            "start) over all current exports; the row kept is from the latest export.",
            (
                _s(
                    "serial",
                    "Device serial",
                    "From the export's '#serial=' line.",
                    required=True,
                    key=1,
                ),
                _s("firmware", "Firmware"),
                Col(
                    "exported_at",
                    "timestamp",
                    "Datetime(us)",
                    "Exported at (device clock)",
                    "From '#exported_at=', device local clock, no offset.",
                    fmt="%Y-%m-%dT%H:%M:%S",
                ),
                _s(
                    "utc_offset",
                    "Device UTC offset",
                    "From '#utc_offset=', e.g. +01:00.",
                    required=True,
                    pattern=r"^[+-]\d{2}:\d{2}$",
                ),
                _i(
                    "session_no",
                    "Session counter",
                    "Device session counter; restarts at 1 after a factory reset.",
                    required=True,
                    key=2,
                    minimum=1,
                ),
                _s(
                    "start",
                    "Start (as printed)",
                    "Session start, device local time, as printed.",
                    required=True,
                    key=3,
                ),
                _i("duration_s", "Duration", minimum=0, unit="s"),
                _f("programmed_ma", "Programmed current", minimum=0, unit="mA"),
                _f("mean_ma", "Mean current", minimum=0, unit="mA"),
                _f("max_v", "Maximum voltage", minimum=0, unit="V"),
                _f("charge_mc", "Delivered charge", minimum=0, unit="mC"),
                _i("polarity_switches", "Polarity switches", minimum=0),
                _s("end_reason", "End reason", values=end_reasons),
                _s("fault_code", "Fault code", values=fault_codes),
                Col(
                    "start_local",
                    "timestamp",
                    "Datetime(us)",
                    "Start (device local)",
                    "start parsed, naive device local time.",
                    required=True,
                    fmt="%Y-%m-%dT%H:%M:%S",
                ),
                Col(
                    "start_utc",
                    "timestamp",
                    UTC,
                    "Start (UTC, as recorded)",
                    "start_local - utc_offset; wrong when clock_reset.",
                ),
                _b(
                    "clock_reset",
                    "Clock reset",
                    "Device clock had restarted: start before 2001 or after the export time.",
                    required=True,
                ),
                Col(
                    "start_utc_placed",
                    "timestamp",
                    UTC,
                    "Start (UTC, placed)",
                    "start_utc, or for a clock-reset session its estimate placed by the "
                    "counter between the export's correctly dated sessions; null when the "
                    "export holds no correctly dated session to place it by.",
                ),
                _s(
                    "start_placement",
                    "Start placement",
                    required=True,
                    values=("recorded", "interpolated", "extrapolated", "unplaced"),
                ),
                _i(
                    "n_exports",
                    "Exports holding it",
                    "Number of current exports holding this session.",
                    required=True,
                    minimum=1,
                ),
                Col(
                    "source_files",
                    "array",
                    "List(String)",
                    "Source files",
                    "Every current export holding this session.",
                    required=True,
                ),
                *LINEAGE,
            ),
        ),
        "vendor_b_events": (
            "Vendor-B events: one row per distinct event line over all current files (exact "
            "duplicate lines dropped once and counted in device_sessions).",
            (
                Col(
                    "ts",
                    "timestamp",
                    UTC,
                    "Event time (UTC)",
                    required=True,
                    fmt="%Y-%m-%dT%H:%M:%S%.fZ",
                ),
                _s("dev", "Device serial", required=True),
                _s(
                    "ev",
                    "Event type",
                    required=True,
                    values=("start", "sample", "polarity", "fault", "end"),
                ),
                _s("sid", "Session identifier", required=True),
                _f(
                    "ma_set",
                    "Set current",
                    "Programmed current (start events).",
                    minimum=0,
                    unit="mA",
                ),
                _f(
                    "ma",
                    "Current magnitude",
                    "Measured current magnitude (sample events).",
                    minimum=0,
                    unit="mA",
                ),
                _f("v", "Voltage", unit="V"),
                _s("code", "Fault code", values=fault_codes),
                _s("reason", "End reason", values=end_reasons),
                _i(
                    "n_duplicates",
                    "Duplicate copies dropped",
                    "Copies of this exact event line dropped (later occurrences).",
                    required=True,
                    minimum=0,
                ),
                *LINEAGE,
            ),
        ),
        "device_sessions": (
            "One row per distinct home-device session, all vendors (A, B, bench IBU).",
            (
                _s("device_serial", "Device serial", required=True),
                _s("vendor", "Vendor", required=True, values=("A", "B", "IBU")),
                _s(
                    "session_key",
                    "Session key",
                    "Stable, unique per session: "
                    "A:<serial>:<session_no>:<start as printed> or B:<dev>:<sid>.",
                    required=True,
                    unique=True,
                    key=1,
                ),
                Col(
                    "start_utc",
                    "timestamp",
                    UTC,
                    "Start (UTC, as recorded)",
                    "Session start as the device recorded it, in UTC (wrong when "
                    "clock_reset; see start_utc_placed).",
                ),
                Col("end_utc", "timestamp", UTC, "End (UTC)"),
                _f("duration_s", "Duration", minimum=0, unit="s"),
                _f("programmed_ma", "Programmed current", minimum=0, unit="mA"),
                _f("mean_ma", "Mean current", minimum=0, unit="mA"),
                _f(
                    "charge_mc",
                    "Delivered charge",
                    "Vendor A: as reported; vendor B: "
                    "trapezoid integral of the samples' current over time.",
                    minimum=0,
                    unit="mC",
                ),
                _i("polarity_switches", "Polarity switches", minimum=0),
                _s(
                    "end_reason",
                    "End reason",
                    "The device's end reason; a bench-unit session cut by a power cycle "
                    "(no END frame) is INTERRUPTED (bench-protocols.md).",
                    values=(*end_reasons, BENCH_INTERRUPTED),
                ),
                _s("fault_code", "Fault code", values=fault_codes),
                _f(
                    "within_tolerance_share",
                    "Share within tolerance",
                    "Share of samples within +/- current_tolerance_pct of programmed_ma; null "
                    "for vendor A.",
                    minimum=0,
                    maximum=1,
                ),
                _b("clock_reset", "Clock reset", required=True),
                _i(
                    "n_duplicate_events",
                    "Duplicate events dropped",
                    "Vendor B: exact duplicate event lines dropped; 0 otherwise.",
                    required=True,
                    minimum=0,
                ),
                Col(
                    "start_utc_placed",
                    "timestamp",
                    UTC,
                    "Start (UTC, placed)",
                    "start_utc, or for a clock-reset session the reader's estimate placed by "
                    "the counter (null when it cannot be placed).",
                ),
                Col("source_files", "array", "List(String)", "Source files", required=True),
            ),
        ),
        "quarantine": (
            "Rejected lines and files: one row per rejected line or whole file.",
            (
                _s("dataset", "Dataset", required=True),
                _s("source_file", "Source file", required=True),
                _i("source_line", "Source line", "Null for a whole file.", minimum=1),
                _s("field", "Field"),
                _s("reason_code", "Reason code", required=True, pattern=r"^[A-Z][A-Z0-9_]*$"),
                _s("message", "Message", required=True),
                _s("raw_text", "Raw text", "The line as delivered (undecodable bytes escaped)."),
            ),
        ),
        "landing_manifest": (
            "Every file version under the raw root, with its supersession.",
            (
                _s("source_file", "Relative path", required=True, unique=True, key=1),
                _s("centre_id", "Centre folder"),
                _d("delivery_date", "Delivery date"),
                _s("file_name", "File name", required=True),
                _s(
                    "kind",
                    "File kind",
                    required=True,
                    values=(
                        "dm",
                        "eligibility",
                        "visits",
                        "hdss",
                        "ae",
                        "disposition",
                        "devices",
                        "randomisation",
                        "gravimetry",
                        "vendor_a",
                        "vendor_b",
                        "bench_ibu",
                        "balance",
                        "capture_state",
                        "unknown",
                    ),
                ),
                _i("size_bytes", "Size", minimum=0, unit="byte"),
                _s("sha256", "SHA-256", required=True, pattern=r"^[0-9a-f]{64}$"),
                _i(
                    "version",
                    "Version",
                    "1 for the first delivery of (centre, file name).",
                    required=True,
                    minimum=1,
                ),
                _b("is_current", "Current version", required=True),
                _s("superseded_by", "Superseded by", "Relative path of the next version."),
                _s(
                    "repeat_of",
                    "Repeat of",
                    "Relative path of the previous version when the bytes are identical.",
                ),
                _d(
                    "content_delivered",
                    "Content first delivered",
                    "Delivery date of the first version in an unbroken run of identical bytes: "
                    "a repeat keeps its content's original delivery date when later-delivery-"
                    "wins rules compare files, so a repeat changes nothing.",
                    required=True,
                ),
            ),
        ),
    }


EDC_TABLES = (
    "dm",
    "eligibility",
    "visits",
    "hdss",
    "ae",
    "disposition",
    "devices",
    "randomisation",
)


def _property(col: Col) -> dict[str, Any]:
    prop: dict[str, Any] = {
        "name": col.name,
        "businessName": col.label,
        "logicalType": col.logical,
        "physicalType": col.dtype,
        "required": col.required,
    }
    if col.description:
        prop["description"] = col.description
    if col.unique:
        prop["unique"] = True
    if col.key is not None:
        prop["primaryKey"] = True
        prop["primaryKeyPosition"] = col.key
    options = {
        k: v
        for k, v in (
            ("minimum", col.minimum),
            ("maximum", col.maximum),
            ("pattern", col.pattern),
            ("format", col.fmt),
        )
        if v is not None
    }
    if options:
        prop["logicalTypeOptions"] = options
    if col.unit:
        prop["customProperties"] = [{"property": "unit", "value": col.unit}]
    if col.values is not None:
        prop["quality"] = [
            {
                "metric": "invalidValues",
                "arguments": {"validValues": list(col.values)},
                "mustBe": 0,
                "dimension": "conformity",
            }
        ]
    return prop


def contract_mapping(dataset: str, description: str, cols: tuple[Col, ...]) -> dict[str, Any]:
    """The ODCS mapping of one raw dataset (EDC tables get the lineage columns appended)."""
    if dataset in EDC_TABLES:
        cols = (*cols, *LINEAGE)
    return {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": f"ionto-{dataset.replace('_', '-')}",
        "version": CONTRACT_VERSION,
        "status": "active",
        "name": dataset,
        "description": {"purpose": description},
        "schema": [
            {
                "name": dataset,
                "physicalType": "table",
                "description": description,
                "properties": [_property(c) for c in cols],
            }
        ],
    }


def render(mapping: dict[str, Any]) -> str:
    header = "# Generated by data_contracts/raw_contracts.py from the study configuration.\n"
    return header + yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=100)


def rendered_contracts(study: Study) -> dict[str, str]:
    """Dataset name -> YAML text of its contract."""
    return {
        name: render(contract_mapping(name, desc, cols))
        for name, (desc, cols) in raw_tables(study).items()
    }


def write_contracts(study: Study, directory: Path = CONTRACT_DIR) -> list[Path]:
    written = []
    for name, text in rendered_contracts(study).items():
        path = contract_path(name, directory)
        path.write_text(text, "utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_contracts(load_study(sys.argv[1] if len(sys.argv) > 1 else None)):
        print(path)
