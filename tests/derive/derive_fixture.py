"""A small hand-built delivery in the reader's frame shapes (site-exports.md + lineage).

Subjects (ION-301 configuration):
- C01-0001: randomised, SCR 2026-01-05, BL 2026-01-10 (day 1), W1 01-17 (day 8), W2 01-27
  (day 18, out of window 15 +/- 2). PALM serial A-00001 01-10..01-20, then A-00002 from 01-20.
- C01-0002: screen failure (WITHDRAWN / SCREEN_FAILURE), SCR only, no device.
- C01-0003: randomised, BL papers lost / invalid -> SCR baseline; vendor-B unit B-00001; W1
  one-sided; answered Y to an exclusion criterion.
- C01-0004: randomised, BL done, device assigned, no sessions (not treated).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from materialise import Tables, materialise_from_raw

from data_contracts.contracts import empty_frame, load_contract
from data_contracts.trial_rules import FINDINGS_SCHEMA
from study import Study, load_study

D = dt.date

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


def study() -> Study:
    """ION-301 from the checkout's file (``load_study()`` without a path needs the installed
    package data)."""
    return load_study(STUDY_FILE)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


UTC_TYPE = pl.Datetime("us", "UTC")


def _lineage(frame: pl.DataFrame, file: str) -> pl.DataFrame:
    return frame.with_columns(
        source_file=pl.lit(file), source_line=pl.int_range(2, frame.height + 2, dtype=pl.Int64)
    )


@dataclass(frozen=True)
class Raw:
    dm: pl.DataFrame
    eligibility: pl.DataFrame
    visits: pl.DataFrame
    hdss: pl.DataFrame
    ae: pl.DataFrame
    disposition: pl.DataFrame
    devices: pl.DataFrame
    randomisation: pl.DataFrame | None
    gravimetry: pl.DataFrame
    vendor_b_events: pl.DataFrame
    device_sessions: pl.DataFrame


S1, S2, S3, S4 = "C01-0001", "C01-0002", "C01-0003", "C01-0004"
DELIVERY = "C01/2026-02-09"


def dm() -> pl.DataFrame:
    return _lineage(
        pl.DataFrame(
            {
                "subject_id": [S1, S2, S3, S4],
                "centre_id": ["C01"] * 4,
                "consent_date": [D(2026, 1, 2), D(2026, 1, 3), D(2026, 1, 2), D(2026, 1, 2)],
                "sex": ["F", "M", "M", "F"],
                "birth_year": [1990, 1980, 2012, 1970],
                "plantar_involved": ["N", "N", "Y", "N"],
                "hdss_screening": [3, 2, 4, 3],
            }
        ),
        f"{DELIVERY}/dm.csv",
    )


def eligibility() -> pl.DataFrame:
    rows = [(s, c, "N") for s in (S1, S2, S3, S4) for c in ("PREGNANT", "PACEMAKER")]
    rows[5] = (S3, "PACEMAKER", "Y")
    return _lineage(
        pl.DataFrame(rows, schema=["subject_id", "criterion", "answer"], orient="row"),
        f"{DELIVERY}/eligibility.csv",
    )


def visits() -> pl.DataFrame:
    rows = [
        (S1, "SCR", D(2026, 1, 5), "DONE"),
        (S1, "BL", D(2026, 1, 10), "DONE"),
        (S1, "W1", D(2026, 1, 17), "DONE"),
        (S1, "W2", D(2026, 1, 27), "DONE"),
        (S1, "W3", None, "MISSED"),
        (S2, "SCR", D(2026, 1, 6), "DONE"),
        (S3, "SCR", D(2026, 1, 4), "DONE"),
        (S3, "BL", D(2026, 1, 11), "DONE"),
        (S3, "W1", D(2026, 1, 18), "DONE"),
        (S4, "SCR", D(2026, 1, 4), "DONE"),
        (S4, "BL", D(2026, 1, 11), "DONE"),
        (S4, "W1", D(2026, 1, 18), "DONE"),
    ]
    return _lineage(
        pl.DataFrame(
            rows,
            schema={
                "subject_id": pl.String,
                "visit": pl.String,
                "visit_date": pl.Date,
                "status": pl.String,
            },
            orient="row",
        ),
        f"{DELIVERY}/visits.csv",
    )


def hdss() -> pl.DataFrame:
    rows = [
        (S1, "SCR", 3),
        (S1, "BL", 4),
        (S1, "W1", 2),
        (S1, "W2", 3),
        (S3, "SCR", 4),
        (S3, "W1", 3),
    ]
    return _lineage(
        pl.DataFrame(rows, schema=["subject_id", "visit", "hdss"], orient="row"),
        f"{DELIVERY}/hdss.csv",
    )


def ae() -> pl.DataFrame:
    rows = [
        (S1, "C01-0001-AE01", "HEADACHE", "headache", D(2026, 1, 8), D(2026, 1, 9)),
        (S1, "C01-0001-AE02", "TINGLING", "tingling, hands", D(2026, 1, 12), None),
        (S4, "C01-0004-AE01", "OTHER", "cold", D(2026, 1, 20), D(2026, 1, 25)),
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "subject_id": pl.String,
            "ae_id": pl.String,
            "term": pl.String,
            "verbatim": pl.String,
            "onset_date": pl.Date,
            "end_date": pl.Date,
        },
        orient="row",
    ).with_columns(severity=pl.lit("MILD"), serious=pl.lit("N"), related=pl.lit("N"))
    return _lineage(frame, f"{DELIVERY}/ae.csv")


def disposition() -> pl.DataFrame:
    return _lineage(
        pl.DataFrame(
            {
                "subject_id": [S1, S2, S3, S4],
                "status": ["ONGOING", "WITHDRAWN", "ONGOING", "ONGOING"],
                "reason": [None, "SCREEN_FAILURE", None, None],
                "date": [None, D(2026, 1, 7), None, None],
            },
            schema_overrides={"date": pl.Date, "reason": pl.String},
        ),
        f"{DELIVERY}/disposition.csv",
    )


def devices() -> pl.DataFrame:
    rows = [
        (S1, "A-00001", "PALM", D(2026, 1, 10), D(2026, 1, 20)),
        (S1, "A-00002", "PALM", D(2026, 1, 20), None),
        (S3, "B-00001", "PALM", D(2026, 1, 11), None),
        (S4, "A-00004", "PALM", D(2026, 1, 11), None),
    ]
    return _lineage(
        pl.DataFrame(
            rows,
            schema={
                "subject_id": pl.String,
                "device_serial": pl.String,
                "region": pl.String,
                "from_date": pl.Date,
                "to_date": pl.Date,
            },
            orient="row",
        ),
        f"{DELIVERY}/devices.csv",
    )


def randomisation() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "subject_id": [S1, S3, S4],
            "rand_date": [D(2026, 1, 10), D(2026, 1, 11), D(2026, 1, 11)],
            "stratum": ["HDSS3", "HDSS4", "HDSS4"],
            "arm": ["GLY", "TAP", "OXY"],
        }
    ).with_columns(source_file=pl.lit("randomisation.csv"), source_line=pl.int_range(2, 5))


def gravimetry() -> pl.DataFrame:
    """Rates (mg/min): S1 BL L 60 (mg, 60 s), R 40 (g: 0.03 g over 45 s); S1 W1 L 30, R invalid
    (wet < dry); S1 W2 L 20, R 20 (g over 90 s: 0.03 g); S3 SCR L 50, R 80; S3 BL L empty wet,
    R wet == dry (invalid); S3 W1 L 20, R missing row. S1 SCR L 100, R 100."""
    rows = [
        (S1, "SCR", "L", 300.0, 400.0, "mg", 60),
        (S1, "SCR", "R", 300.0, 400.0, "mg", 60),
        (S1, "BL", "L", 400.0, 460.0, "mg", 60),
        (S1, "BL", "R", 0.4000, 0.4300, "g", 45),
        (S1, "W1", "L", 400.0, 430.0, "mg", 60),
        (S1, "W1", "R", 400.0, 390.0, "mg", 60),
        (S1, "W2", "L", 400.0, 420.0, "mg", 60),
        (S1, "W2", "R", 0.5000, 0.5300, "g", 90),
        (S3, "SCR", "L", 400.0, 450.0, "mg", 60),
        (S3, "SCR", "R", 400.0, 480.0, "mg", 60),
        (S3, "BL", "L", 400.0, None, "mg", 60),
        (S3, "BL", "R", 400.0, 400.0, "mg", 60),
        (S3, "W1", "L", 400.0, 420.0, "mg", 60),
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "subject_id": pl.String,
            "visit": pl.String,
            "side": pl.String,
            "dry_weight": pl.Float64,
            "wet_weight": pl.Float64,
            "unit": pl.String,
            "collection_s": pl.Int64,
        },
        orient="row",
    ).with_columns(
        region=pl.lit("PALM"),
        paper_id=pl.format("P{}", pl.int_range(1, len(rows) + 1)),
        collected_at_utc=pl.lit(utc(2026, 1, 10, 9), dtype=UTC_TYPE),
    )
    return _lineage(frame, f"{DELIVERY}/gravimetry_C01_20260209.csv")


def _a_session(
    serial: str, start: dt.datetime, mean_ma: float, placed: dt.datetime | None = None
) -> dict:
    reset = placed is not None
    return {
        "session_key": f"A:{serial}:{start.isoformat()}",
        "device_serial": serial,
        "vendor": "A",
        "start_utc": start,
        "end_utc": start + dt.timedelta(seconds=1200),
        "duration_s": 1200.0,
        "programmed_ma": 15.0,
        "mean_ma": mean_ma,
        "charge_mc": mean_ma * 1200,
        "polarity_switches": 1,
        "end_reason": "COMPLETED",
        "fault_code": None,
        "within_tolerance_share": None,
        "clock_reset": reset,
        "n_duplicate_events": 0,
        "start_utc_placed": placed if reset else start,
    }


RESET_START = utc(2000, 1, 1, 0, 10)
RESET_PLACED = utc(2026, 1, 20, 18, 20)  # the reader's placement: after the 01-20 session


def device_sessions() -> pl.DataFrame:
    """S1: A-00001 on 01-12 (adequate); A-00001 on 01-25 (after its to_date: unmapped);
    A-00002 on 01-20 (swap day), 01-22 at 10 mA (not adequate), a clock-reset session between
    01-20 and 01-22 (placed by the reader at 01-20 18:20), and 10 adequate sessions
    01-23..02-01 (induction days 14..23).
    A-00009 never assigned. S3: B-00001 on 01-15 (90 % of samples at 15 mA)."""
    rows = [
        _a_session("A-00001", utc(2026, 1, 12, 18), 14.9),
        _a_session("A-00001", utc(2026, 1, 25, 18), 14.9),
        _a_session("A-00002", utc(2026, 1, 20, 18), 14.8),
        _a_session("A-00002", RESET_START, 14.8, placed=RESET_PLACED),
        _a_session("A-00002", utc(2026, 1, 22, 18), 10.0),
        *[_a_session("A-00002", utc(2026, 1, 23 + i, 18), 15.0) for i in range(9)],
        _a_session("A-00002", utc(2026, 2, 1, 18), 15.0),
        _a_session("A-00009", utc(2026, 1, 15, 18), 15.0),
    ]
    b = _a_session("B-00001", utc(2026, 1, 15, 19), 14.0)
    b.update(vendor="B", session_key="B:B-00001:s1", within_tolerance_share=0.9)
    rows.append(b)
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            "start_utc": UTC_TYPE,
            "end_utc": UTC_TYPE,
            "start_utc_placed": UTC_TYPE,
            "fault_code": pl.String,
            "within_tolerance_share": pl.Float64,
            "n_duplicate_events": pl.Int64,
        },
    )
    return frame.with_columns(source_files=pl.concat_list(pl.lit("x")))


def vendor_b_events() -> pl.DataFrame:
    start = utc(2026, 1, 15, 19)
    ts = [start + dt.timedelta(milliseconds=500 * i) for i in range(12)]
    ev = ["start"] + ["sample"] * 10 + ["end"]
    ma = [None] + [15.0] * 9 + [5.0] + [None]
    ma_set = [15.0] + [None] * 11
    # Distinct lines, as the reader gives them (it drops exact duplicate lines).
    return pl.DataFrame(
        {"ts": ts, "dev": "B-00001", "ev": ev, "sid": "s1", "ma_set": ma_set, "ma": ma},
        schema_overrides={"ts": UTC_TYPE, "ma": pl.Float64, "ma_set": pl.Float64},
    )


def raw(blinded: bool = False) -> Raw:
    return Raw(
        dm=dm(),
        eligibility=eligibility(),
        visits=visits(),
        hdss=hdss(),
        ae=ae(),
        disposition=disposition(),
        devices=devices(),
        randomisation=None if blinded else randomisation(),
        gravimetry=gravimetry(),
        vendor_b_events=vendor_b_events(),
        device_sessions=device_sessions(),
    )


def derived_tables(frames: Raw, out: Path) -> Tables:
    """The ``clean`` and ``analysis_ready`` assets of the real graph computed from ``frames``
    (stored as the raw assets they stand for; no trial-level finding), in an output folder
    ``out``. Unblinded exactly when ``frames.randomisation`` is not None."""
    stored = {
        name: getattr(frames, name)
        for name in (
            "dm",
            "eligibility",
            "visits",
            "hdss",
            "ae",
            "disposition",
            "devices",
            "gravimetry",
            "vendor_b_events",
            "device_sessions",
        )
    }
    blinded = frames.randomisation is None
    stored["randomisation"] = (
        empty_frame(load_contract("randomisation"))
        if frames.randomisation is None
        else frames.randomisation
    )
    stored["integrity_findings"] = pl.DataFrame(schema=FINDINGS_SCHEMA)
    return materialise_from_raw(stored, out, STUDY_FILE, blinded=blinded)
