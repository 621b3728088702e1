"""Writes the raw datasets' ODCS contracts (schema only) from one compact table.

The YAML files are the source of truth that readers and checks load; this module is how they
are made. A codelist that depends on the study is named (``codelist="visits"``), never listed,
and resolved from the run's study when the contract is loaded, so one set of files serves every
study. Run ``python -m data_contracts.raw_contracts`` after changing this module;
``tests/contracts`` fails when a committed file differs from what this writes.

Column names are exactly those of ``specs/site-exports.md``; readers add the lineage columns
``source_file``/``source_line`` and the derived columns ``docs/architecture.md`` lists.
"""

from __future__ import annotations

from pathlib import Path

from data_contracts.authoring import (
    Col,
    bool_col,
    contract_mapping,
    date_col,
    float_col,
    int_col,
    render,
    string_col,
    write_rendered,
)
from data_contracts.contracts import CONTRACT_DIR

GENERATOR = "data_contracts/raw_contracts.py"
SUBJECT_PATTERN = r"^[A-Z0-9]+-[0-9]+$"
UTC = "Datetime(us, UTC)"
BENCH_INTERRUPTED = "INTERRUPTED"
"""End reason of a bench-unit session with no END frame (specs/bench-protocols.md)."""


LINEAGE = (
    string_col(
        "source_file",
        "Source file",
        "Path of the raw file relative to the raw root.",
        required=True,
    ),
    int_col(
        "source_line",
        "Source line",
        "1-based physical line in the source file (the header, or a vendor-A file's first "
        "'#' line, is line 1).",
        required=True,
        minimum=1,
    ),
)


def _subject(key: int | None = 1) -> Col:
    return string_col(
        "subject_id",
        "Subject identifier",
        "Subject identifier, e.g. C02-0117.",
        required=True,
        key=key,
        pattern=SUBJECT_PATTERN,
    )


def raw_tables() -> dict[str, tuple[str, tuple[Col, ...]]]:
    """Dataset name -> (description, columns) for every dataset the ingest layer produces.
    Study-dependent codelists are named (``codelist=``), never listed."""
    visit = string_col(
        "visit", "Visit", "Scheduled visit code.", required=True, key=2, codelist="visits"
    )
    return {
        "dm": (
            "EDC demographics: one row per subject (latest snapshot of each centre).",
            (
                _subject(),
                string_col(
                    "centre_id",
                    "Centre",
                    "Centre identifier.",
                    required=True,
                    codelist="centres",
                ),
                date_col("consent_date", "Informed consent date"),
                string_col("sex", "Sex", codelist="sex"),
                int_col("birth_year", "Year of birth", minimum=1900, maximum=2100),
                string_col(
                    "plantar_involved",
                    "Plantar involvement",
                    "Plantar hyperhidrosis present.",
                    codelist="yes_no",
                ),
                int_col(
                    "hdss_screening",
                    "HDSS at screening",
                    "Hyperhidrosis Disease Severity Scale at screening (1-4).",
                    minimum=1,
                    maximum=4,
                ),
                *LINEAGE,
            ),
        ),
        "eligibility": (
            "EDC eligibility answers: one row per subject and criterion.",
            (
                _subject(),
                string_col(
                    "criterion",
                    "Eligibility criterion",
                    required=True,
                    key=2,
                    codelist="eligibility_criteria",
                ),
                string_col("answer", "Answer", codelist="yes_no"),
                *LINEAGE,
            ),
        ),
        "visits": (
            "EDC visits: one row per subject and visit; a MISSED visit has no date.",
            (
                _subject(),
                visit,
                date_col("visit_date", "Visit date", "Empty when the visit was MISSED."),
                string_col("status", "Visit status", required=True, codelist="visit_status"),
                *LINEAGE,
            ),
        ),
        "hdss": (
            "EDC HDSS assessments: one row per subject and visit.",
            (
                _subject(),
                visit,
                int_col(
                    "hdss",
                    "HDSS score",
                    "Hyperhidrosis Disease Severity Scale (1-4).",
                    minimum=1,
                    maximum=4,
                ),
                *LINEAGE,
            ),
        ),
        "ae": (
            "EDC adverse events: one row per event (latest snapshot).",
            (
                _subject(None),
                string_col("ae_id", "AE identifier", required=True, key=1),
                string_col("term", "AE term", "Coded adverse event term.", codelist="ae_term"),
                string_col("verbatim", "Verbatim term"),
                date_col("onset_date", "Onset date"),
                date_col("end_date", "End date", "Empty while the event is ongoing."),
                string_col("severity", "Severity", codelist="ae_severity"),
                string_col("serious", "Serious", codelist="yes_no"),
                string_col("related", "Related to treatment", codelist="ae_related"),
                *LINEAGE,
            ),
        ),
        "cm": (
            "EDC concomitant medications: one row per medication (latest snapshot); "
            "delivered from protocol amendment 1 on (deliveries before it have no cm.csv).",
            (
                _subject(None),
                string_col("cm_id", "Medication identifier", required=True, key=1),
                string_col("drug", "Medication", "Coded medication.", codelist="cm_drug"),
                string_col("verbatim", "Verbatim medication"),
                date_col("start_date", "Start date", required=True),
                date_col("end_date", "End date", "Empty while the medication is ongoing."),
                string_col("indication", "Indication", codelist="cm_indication"),
                string_col(
                    "rescue",
                    "Rescue treatment",
                    "Y: taken as rescue treatment (an intercurrent event when the indication is "
                    "hyperhidrosis, SAP section 11).",
                    codelist="yes_no",
                ),
                *LINEAGE,
            ),
        ),
        "disposition": (
            "EDC disposition: one row per subject.",
            (
                _subject(),
                string_col(
                    "status",
                    "Disposition status",
                    required=True,
                    codelist="disposition_status",
                ),
                string_col(
                    "reason", "Reason", "Reason for withdrawal; SCREEN_FAILURE for screen failures."
                ),
                date_col("date", "Disposition date"),
                *LINEAGE,
            ),
        ),
        "devices": (
            "EDC device assignments: one row per assignment.",
            (
                _subject(),
                string_col("device_serial", "Device serial", required=True, key=2),
                string_col("region", "Treated region", codelist="regions"),
                date_col("from_date", "Assigned from", required=True, key=3),
                date_col("to_date", "Assigned until", "Empty while still assigned."),
                *LINEAGE,
            ),
        ),
        "randomisation": (
            "Sealed randomisation list: one row per randomised subject.",
            (
                _subject(),
                date_col("rand_date", "Randomisation date"),
                string_col("stratum", "Stratum", codelist="strata"),
                string_col("arm", "Randomised arm", codelist="arms"),
                *LINEAGE,
            ),
        ),
        "gravimetry": (
            "Gravimetry worksheets: one row per filter paper (current file versions, duplicate "
            "papers resolved: later delivery, then later line wins).",
            (
                _subject(),
                visit,
                string_col("region", "Region", required=True, key=3, codelist="regions"),
                string_col("side", "Side", required=True, key=4, codelist="sides"),
                string_col("paper_id", "Paper identifier"),
                float_col(
                    "dry_weight",
                    "Dry paper weight",
                    "Weight before collection, in `unit`.",
                    minimum=0,
                    unit="unit column (mg or g)",
                ),
                float_col(
                    "wet_weight",
                    "Wet paper weight",
                    "Weight after collection, in `unit`; empty when the paper was lost.",
                    minimum=0,
                    unit="unit column (mg or g)",
                ),
                string_col("unit", "Weight unit", codelist="weight_units"),
                int_col("collection_s", "Collection time", minimum=1, unit="s"),
                string_col(
                    "collected_at",
                    "Collected at (local)",
                    "Local date-time with UTC offset, as written on the worksheet.",
                ),
                float_col("room_temp_c", "Room temperature", unit="degC"),
                float_col("humidity_pct", "Relative humidity", minimum=0, maximum=100, unit="%"),
                int_col("acclimatisation_min", "Acclimatisation time", minimum=0, unit="min"),
                string_col("operator", "Operator"),
                string_col("balance_serial", "Balance serial"),
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
                string_col(
                    "serial",
                    "Device serial",
                    "From the export's '#serial=' line.",
                    required=True,
                    key=1,
                ),
                string_col("firmware", "Firmware"),
                Col(
                    "exported_at",
                    "timestamp",
                    "Datetime(us)",
                    "Exported at (device clock)",
                    "From '#exported_at=', device local clock, no offset.",
                    fmt="%Y-%m-%dT%H:%M:%S",
                ),
                string_col(
                    "utc_offset",
                    "Device UTC offset",
                    "From '#utc_offset=', e.g. +01:00.",
                    required=True,
                    pattern=r"^[+-]\d{2}:\d{2}$",
                ),
                int_col(
                    "session_no",
                    "Session counter",
                    "Device session counter; restarts at 1 after a factory reset.",
                    required=True,
                    key=2,
                    minimum=1,
                ),
                string_col(
                    "start",
                    "Start (as printed)",
                    "Session start, device local time, as printed.",
                    required=True,
                    key=3,
                ),
                int_col("duration_s", "Duration", minimum=0, unit="s"),
                float_col("programmed_ma", "Programmed current", minimum=0, unit="mA"),
                float_col("mean_ma", "Mean current", minimum=0, unit="mA"),
                float_col("max_v", "Maximum voltage", minimum=0, unit="V"),
                float_col("charge_mc", "Delivered charge", minimum=0, unit="mC"),
                int_col("polarity_switches", "Polarity switches", minimum=0),
                string_col("end_reason", "End reason", codelist="end_reason"),
                string_col("fault_code", "Fault code", codelist="fault_code"),
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
                bool_col(
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
                string_col(
                    "start_placement",
                    "Start placement",
                    required=True,
                    values=("recorded", "interpolated", "extrapolated", "unplaced"),
                ),
                int_col(
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
                string_col("dev", "Device serial", required=True),
                string_col(
                    "ev",
                    "Event type",
                    required=True,
                    values=("start", "sample", "polarity", "fault", "end"),
                ),
                string_col("sid", "Session identifier", required=True),
                float_col(
                    "ma_set",
                    "Set current",
                    "Programmed current (start events).",
                    minimum=0,
                    unit="mA",
                ),
                float_col(
                    "ma",
                    "Current magnitude",
                    "Measured current magnitude (sample events).",
                    minimum=0,
                    unit="mA",
                ),
                float_col("v", "Voltage", unit="V"),
                string_col("code", "Fault code", codelist="fault_code"),
                string_col("reason", "End reason", codelist="end_reason"),
                int_col(
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
                string_col("device_serial", "Device serial", required=True),
                string_col(
                    "vendor",
                    "Vendor",
                    "Set by the raw format the session comes from (ingest/registry.py): A, B, "
                    "IBU for the bench units.",
                    required=True,
                ),
                string_col(
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
                float_col("duration_s", "Duration", minimum=0, unit="s"),
                float_col("programmed_ma", "Programmed current", minimum=0, unit="mA"),
                float_col("mean_ma", "Mean current", minimum=0, unit="mA"),
                float_col(
                    "charge_mc",
                    "Delivered charge",
                    "Vendor A: as reported; vendor B: "
                    "trapezoid integral of the samples' current over time.",
                    minimum=0,
                    unit="mC",
                ),
                int_col("polarity_switches", "Polarity switches", minimum=0),
                string_col(
                    "end_reason",
                    "End reason",
                    "The device's end reason; a bench-unit session cut by a power cycle "
                    "(no END frame) is INTERRUPTED (bench-protocols.md).",
                    values=(BENCH_INTERRUPTED,),
                    codelist="end_reason",
                ),
                string_col("fault_code", "Fault code", codelist="fault_code"),
                float_col(
                    "within_tolerance_share",
                    "Share within tolerance",
                    "Share of samples within +/- current_tolerance_pct of programmed_ma; null "
                    "for vendor A.",
                    minimum=0,
                    maximum=1,
                ),
                bool_col("clock_reset", "Clock reset", required=True),
                int_col(
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
                string_col("dataset", "Dataset", required=True),
                string_col("source_file", "Source file", required=True),
                int_col("source_line", "Source line", "Null for a whole file.", minimum=1),
                string_col("field", "Field"),
                string_col(
                    "reason_code", "Reason code", required=True, pattern=r"^[A-Z][A-Z0-9_]*$"
                ),
                string_col("message", "Message", required=True),
                string_col(
                    "raw_text", "Raw text", "The line as delivered (undecodable bytes escaped)."
                ),
            ),
        ),
        "landing_manifest": (
            "Every file version under the raw root, with its supersession.",
            (
                string_col("source_file", "Relative path", required=True, unique=True, key=1),
                string_col("centre_id", "Centre folder"),
                date_col("delivery_date", "Delivery date"),
                string_col("file_name", "File name", required=True),
                string_col(
                    "kind",
                    "File kind",
                    "The kind of the first raw format of the registry (ingest/registry.py) whose "
                    "file pattern the name matches; randomisation for a copy of the sealed list "
                    "(by name or content), symlink for a symbolic link, else unknown.",
                    required=True,
                ),
                int_col("size_bytes", "Size", minimum=0, unit="byte"),
                string_col("sha256", "SHA-256", required=True, pattern=r"^[0-9a-f]{64}$"),
                int_col(
                    "version",
                    "Version",
                    "1 for the first delivery of (centre, file name).",
                    required=True,
                    minimum=1,
                ),
                bool_col("is_current", "Current version", required=True),
                string_col("superseded_by", "Superseded by", "Relative path of the next version."),
                string_col(
                    "repeat_of",
                    "Repeat of",
                    "Relative path of the previous version when the bytes are identical.",
                ),
                date_col(
                    "content_delivered",
                    "Content first delivered",
                    "Delivery date of the first version in an unbroken run of identical bytes: "
                    "a repeat keeps its content's original delivery date when later-delivery-"
                    "wins rules compare files, so a repeat changes nothing. Empty for an entry "
                    "outside <centre>/<YYYY-MM-DD>/ (quarantined, never read).",
                ),
            ),
        ),
    }


def rendered_contracts() -> dict[str, str]:
    """Dataset name -> YAML text of its contract."""
    return {
        name: render(contract_mapping(name, desc, cols), GENERATOR)
        for name, (desc, cols) in raw_tables().items()
    }


def write_contracts(directory: Path = CONTRACT_DIR) -> list[Path]:
    return write_rendered(rendered_contracts(), directory)


if __name__ == "__main__":
    for path in write_contracts():
        print(path)
