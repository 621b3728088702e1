"""A small hand-built delivery in the reader's frame shapes (site-exports.md + lineage), built
from a study's design so that the same cases run for every example study.

Names below are the design's (:class:`Design`): ``SCR`` is the study's baseline fallback visit,
``BL`` its baseline visit, ``V1``/``V2``/``V3`` the first three visits after it, ``REGION`` the
primary region, ``C`` the first centre. Day 1 is 2026-01-10 for S1 and 2026-01-11 for S3/S4.

- S1 (``C-0001``): randomised to the first treated arm, SCR day -5, BL day 1, V1 on its target
  day, V2 one day after its window closes (out of window), V3 missed. HDSS: BL 4, V1 improved by
  exactly the responder threshold, V2 by one point less. Unit A-00001 from day 1 to day 11, then
  A-00002 (the swap day, day 11).
- S2 (``C-0002``): screen failure (WITHDRAWN / SCREEN_FAILURE), SCR only, no device, screening
  HDSS one below the lowest allowed score.
- S3 (``C-0003``): randomised to the reference arm, BL papers lost / invalid -> SCR baseline;
  a vendor-B unit B-00001 (vendor A, A-00003, in a study whose devices are all vendor A);
  V1 one-sided; answered Y to the study's second eligibility criterion; aged two years above
  the lowest age group's minimum.
- S4 (``C-0004``): randomised to the last arm under another stratum than dm.csv's, BL done,
  device assigned, no sessions (not treated).

Sessions of S1 (study days from 2026-01-10): day 3 on A-00001 (adequate), day 16 on A-00001
(after its to_date: unmapped), day 11 on A-00002 (the swap day), a clock-reset session placed
right after it, day 13 at 10 mA (not adequate) and ten adequate sessions at 08:00 on days
12..21. Every example study's induction phase holds enough of them for the per-protocol set:
ION-301's (days 1-28) all 13 adequate ones (>= 10 needed), ION-302's (days 1-14) six (days 3,
11, the reset, 12, 13, 14; >= 6 needed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl
from materialise import Tables, materialise_from_raw

from data_contracts.contracts import empty_frame, load_contract
from data_contracts.trial_rules import FINDINGS_SCHEMA
from study import Study, example_study_path, load_study

D = dt.date

BL_DATE = D(2026, 1, 10)
"""S1's baseline date (study day 1); S3's and S4's is a day later."""


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


UTC_TYPE = pl.Datetime("us", "UTC")


def on_day(day: int, bl: dt.date = BL_DATE) -> dt.date:
    """The date of study day ``day`` (no day 0) for a baseline ``bl``."""
    return bl + dt.timedelta(days=day - 1 if day > 0 else day)


@dataclass(frozen=True)
class Design:
    """The facts of a study the hand-built delivery is made of."""

    name: str
    """The example study's file stem (``ion301``)."""

    @cached_property
    def study(self) -> Study:
        return load_study(self.study_file)

    @property
    def study_file(self) -> Path:
        return example_study_path(self.name)

    @property
    def centre(self) -> str:
        return self.study.centres[0]

    def subject(self, k: int) -> str:
        return f"{self.centre}-{k:04d}"

    @property
    def delivery(self) -> str:
        return f"{self.centre}/2026-02-09"

    # visits -----------------------------------------------------------------------------
    @property
    def scr(self) -> str:
        return self.study.baseline_fallback_visit

    @property
    def bl(self) -> str:
        return self.study.baseline_visit

    @property
    def post(self) -> list[str]:
        """Visits after the baseline visit, in schedule order."""
        codes = self.study.visit_codes
        return codes[codes.index(self.bl) + 1 :]

    @property
    def v1(self) -> str:
        return self.post[0]

    @property
    def v2(self) -> str:
        return self.post[1]

    @property
    def v3(self) -> str:
        return self.post[2]

    @property
    def v1_day(self) -> int:
        """V1 on its target day."""
        return self.study.visit(self.v1).target_day

    @property
    def v2_day(self) -> int:
        """V2 one day after its window closes."""
        visit = self.study.visit(self.v2)
        assert visit.window_days is not None
        return visit.target_day + visit.window_days + 1

    # arms, strata, regions, devices -------------------------------------------------------
    @property
    def arm_s1(self) -> str:
        return self.study.treated_arms[0]

    @property
    def arm_s3(self) -> str:
        return self.study.reference_arm

    @property
    def arm_s4(self) -> str:
        return self.study.arm_codes[-1]

    def stratum(self, hdss: int) -> str:
        return self.study.stratum_levels[hdss]

    @property
    def other_stratum_s4(self) -> str:
        """A stratum other than S4's (screening HDSS 3): the list disagrees with dm.csv."""
        return next(c for c in self.study.stratum_codes if c != self.stratum(3))

    @property
    def hdss_s2(self) -> int:
        """S2's screening HDSS: one below the lowest allowed score (an eligibility reason)."""
        return min(self.study.eligibility.hdss_screening_allowed) - 1

    @property
    def age_s3(self) -> int:
        return self.study.models.age_groups[0].min + 2

    @property
    def region(self) -> str:
        return self.study.primary_region.code

    @property
    def criteria(self) -> tuple[str, str]:
        first, second = self.study.eligibility.criteria[:2]
        return first, second

    @property
    def vendor_b(self) -> bool:
        """Whether the study has vendor-B devices (ION-302: vendor A only)."""
        return self.study.simulation.vendor_b_share > 0

    @property
    def serial_s3(self) -> str:
        return "B-00001" if self.vendor_b else "A-00003"

    @property
    def responder_points(self) -> int:
        return self.study.endpoints.responder.hdss_improvement


def _lineage(frame: pl.DataFrame, file: str) -> pl.DataFrame:
    return frame.with_columns(
        source_file=pl.lit(file), source_line=pl.int_range(2, frame.height + 2, dtype=pl.Int64)
    )


@dataclass(frozen=True)
class Raw:
    design: Design
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


def subjects(d: Design) -> tuple[str, str, str, str]:
    return d.subject(1), d.subject(2), d.subject(3), d.subject(4)


def dm(d: Design) -> pl.DataFrame:
    s1, s2, s3, s4 = subjects(d)
    return _lineage(
        pl.DataFrame(
            {
                "subject_id": [s1, s2, s3, s4],
                "centre_id": [d.centre] * 4,
                "consent_date": [D(2026, 1, 2), D(2026, 1, 3), D(2026, 1, 2), D(2026, 1, 2)],
                "sex": ["F", "M", "M", "F"],
                "birth_year": [1990, 1980, 2026 - d.age_s3, 1970],
                "plantar_involved": ["N", "N", "Y", "N"],
                "hdss_screening": [3, d.hdss_s2, 4, 3],
            }
        ),
        f"{d.delivery}/dm.csv",
    )


def eligibility(d: Design) -> pl.DataFrame:
    rows = [(s, c, "N") for s in subjects(d) for c in d.criteria]
    rows[5] = (d.subject(3), d.criteria[1], "Y")
    return _lineage(
        pl.DataFrame(rows, schema=["subject_id", "criterion", "answer"], orient="row"),
        f"{d.delivery}/eligibility.csv",
    )


def visits(d: Design) -> pl.DataFrame:
    s1, s2, s3, s4 = subjects(d)
    bl3 = on_day(2)
    rows = [
        (s1, d.scr, on_day(-5), "DONE"),
        (s1, d.bl, BL_DATE, "DONE"),
        (s1, d.v1, on_day(d.v1_day), "DONE"),
        (s1, d.v2, on_day(d.v2_day), "DONE"),
        (s1, d.v3, None, "MISSED"),
        (s2, d.scr, D(2026, 1, 6), "DONE"),
        (s3, d.scr, on_day(-7, bl3), "DONE"),
        (s3, d.bl, bl3, "DONE"),
        (s3, d.v1, on_day(d.v1_day, bl3), "DONE"),
        (s4, d.scr, on_day(-7, bl3), "DONE"),
        (s4, d.bl, bl3, "DONE"),
        (s4, d.v1, on_day(d.v1_day, bl3), "DONE"),
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
        f"{d.delivery}/visits.csv",
    )


def hdss(d: Design) -> pl.DataFrame:
    s1, _, s3, _ = subjects(d)
    points = d.responder_points
    rows = [
        (s1, d.scr, 3),
        (s1, d.bl, 4),
        (s1, d.v1, 4 - points),
        (s1, d.v2, 4 - points + 1),
        (s3, d.scr, 4),
        (s3, d.v1, 3),
    ]
    return _lineage(
        pl.DataFrame(rows, schema=["subject_id", "visit", "hdss"], orient="row"),
        f"{d.delivery}/hdss.csv",
    )


def ae(d: Design) -> pl.DataFrame:
    s1, _, _, s4 = subjects(d)
    rows = [
        (s1, f"{s1}-AE01", "HEADACHE", "headache", D(2026, 1, 8), D(2026, 1, 9)),
        (s1, f"{s1}-AE02", "TINGLING", "tingling, hands", D(2026, 1, 12), None),
        (s4, f"{s4}-AE01", "OTHER", "cold", D(2026, 1, 20), D(2026, 1, 25)),
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
    return _lineage(frame, f"{d.delivery}/ae.csv")


def disposition(d: Design) -> pl.DataFrame:
    return _lineage(
        pl.DataFrame(
            {
                "subject_id": list(subjects(d)),
                "status": ["ONGOING", "WITHDRAWN", "ONGOING", "ONGOING"],
                "reason": [None, "SCREEN_FAILURE", None, None],
                "date": [None, D(2026, 1, 7), None, None],
            },
            schema_overrides={"date": pl.Date, "reason": pl.String},
        ),
        f"{d.delivery}/disposition.csv",
    )


SWAP_DATE = on_day(11)
"""S1's unit swap: A-00001 until, A-00002 from this date."""


def devices(d: Design) -> pl.DataFrame:
    s1, _, s3, s4 = subjects(d)
    rows = [
        (s1, "A-00001", d.region, BL_DATE, SWAP_DATE),
        (s1, "A-00002", d.region, SWAP_DATE, None),
        (s3, d.serial_s3, d.region, on_day(2), None),
        (s4, "A-00004", d.region, on_day(2), None),
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
        f"{d.delivery}/devices.csv",
    )


def randomisation(d: Design) -> pl.DataFrame:
    s1, _, s3, s4 = subjects(d)
    return pl.DataFrame(
        {
            "subject_id": [s1, s3, s4],
            "rand_date": [BL_DATE, on_day(2), on_day(2)],
            "stratum": [d.stratum(3), d.stratum(4), d.other_stratum_s4],
            "arm": [d.arm_s1, d.arm_s3, d.arm_s4],
        }
    ).with_columns(source_file=pl.lit("randomisation.csv"), source_line=pl.int_range(2, 5))


def gravimetry(d: Design) -> pl.DataFrame:
    """Rates (mg/min): S1 BL L 60 (mg, 60 s), R 40 (g: 0.03 g over 45 s); S1 V1 L 30, R invalid
    (wet < dry); S1 V2 L 20, R 20 (g over 90 s: 0.03 g); S3 SCR L 50, R 80; S3 BL L empty wet,
    R wet == dry (invalid); S3 V1 L 20, R missing row. S1 SCR L 100, R 100."""
    s1, _, s3, _ = subjects(d)
    left, right = d.study.sides
    rows = [
        (s1, d.scr, left, 300.0, 400.0, "mg", 60),
        (s1, d.scr, right, 300.0, 400.0, "mg", 60),
        (s1, d.bl, left, 400.0, 460.0, "mg", 60),
        (s1, d.bl, right, 0.4000, 0.4300, "g", 45),
        (s1, d.v1, left, 400.0, 430.0, "mg", 60),
        (s1, d.v1, right, 400.0, 390.0, "mg", 60),
        (s1, d.v2, left, 400.0, 420.0, "mg", 60),
        (s1, d.v2, right, 0.5000, 0.5300, "g", 90),
        (s3, d.scr, left, 400.0, 450.0, "mg", 60),
        (s3, d.scr, right, 400.0, 480.0, "mg", 60),
        (s3, d.bl, left, 400.0, None, "mg", 60),
        (s3, d.bl, right, 400.0, 400.0, "mg", 60),
        (s3, d.v1, left, 400.0, 420.0, "mg", 60),
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
        region=pl.lit(d.region),
        paper_id=pl.format("P{}", pl.int_range(1, len(rows) + 1)),
        collected_at_utc=pl.lit(utc(2026, 1, 10, 9), dtype=UTC_TYPE),
    )
    return _lineage(frame, f"{d.delivery}/gravimetry_{d.centre}_20260209.csv")


def _a_session(
    serial: str,
    start: dt.datetime,
    mean_ma: float,
    duration_s: float,
    placed: dt.datetime | None = None,
) -> dict:
    """A vendor-A session programmed at 15 mA (a titrated current of both example studies)."""
    reset = placed is not None
    return {
        "session_key": f"A:{serial}:{start.isoformat()}",
        "device_serial": serial,
        "vendor": "A",
        "start_utc": start,
        "end_utc": start + dt.timedelta(seconds=duration_s),
        "duration_s": duration_s,
        "programmed_ma": 15.0,
        "mean_ma": mean_ma,
        "charge_mc": mean_ma * duration_s,
        "polarity_switches": 1,
        "end_reason": "COMPLETED",
        "fault_code": None,
        "within_tolerance_share": None,
        "clock_reset": reset,
        "n_duplicate_events": 0,
        "start_utc_placed": placed if reset else start,
    }


RESET_START = utc(2000, 1, 1, 0, 10)
SWAP_DAY_START = utc(2026, 1, 20, 18)
"""S1's session on the swap day, on the new unit."""


def reset_placed(d: Design) -> dt.datetime:
    """The reader's placement of S1's clock-reset session: when the swap-day session ended."""
    return SWAP_DAY_START + dt.timedelta(seconds=d.study.treatment.session_s)


LOW_START = utc(2026, 1, 22, 18)
"""S1's session at 10 mA (study day 13)."""
BLOCK_DAYS = range(12, 22)
"""Study days of S1's ten adequate sessions at 08:00 (2026-01-21..30)."""
S1_MEANS = [14.9, 14.8, 14.8, 10.0, *[15.0] * len(BLOCK_DAYS)]
"""Mean currents (mA) of S1's mapped sessions (programmed 15 mA, each as long as the study's
session)."""


def device_sessions(d: Design) -> pl.DataFrame:
    """S1: A-00001 on 01-12 (adequate); A-00001 on 01-25 (after its to_date: unmapped);
    A-00002 on 01-20 (swap day), a clock-reset session placed by the reader when that one
    ended, 01-22 at 10 mA (not adequate) and 10 adequate sessions at 08:00 on 01-21..01-30.
    A-00009 never assigned. S3: its unit on 01-15 (vendor B: 90 % of samples at 15 mA;
    vendor A: mean 14 mA). Every session lasts the study's session length."""
    length = d.study.treatment.session_s
    rows = [
        _a_session("A-00001", utc(2026, 1, 12, 18), 14.9, length),
        _a_session("A-00001", utc(2026, 1, 25, 18), 14.9, length),
        _a_session("A-00002", SWAP_DAY_START, 14.8, length),
        _a_session("A-00002", RESET_START, 14.8, length, placed=reset_placed(d)),
        _a_session("A-00002", LOW_START, 10.0, length),
        *[
            _a_session("A-00002", dt.datetime.combine(on_day(k), dt.time(8), dt.UTC), 15.0, length)
            for k in BLOCK_DAYS
        ],
        _a_session("A-00009", utc(2026, 1, 15, 18), 15.0, length),
    ]
    s3 = _a_session(d.serial_s3, utc(2026, 1, 15, 19), 14.0, length)
    if d.vendor_b:
        s3.update(vendor="B", session_key="B:B-00001:s1", within_tolerance_share=0.9)
    rows.append(s3)
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


def vendor_b_events(d: Design) -> pl.DataFrame:
    """S3's vendor-B session as the reader gives it (distinct lines: it drops exact duplicate
    lines); none in a study without vendor-B devices."""
    start = utc(2026, 1, 15, 19)
    ts = [start + dt.timedelta(milliseconds=500 * i) for i in range(12)]
    ev = ["start"] + ["sample"] * 10 + ["end"]
    ma = [None] + [15.0] * 9 + [5.0] + [None]
    ma_set = [15.0] + [None] * 11
    frame = pl.DataFrame(
        {"ts": ts, "dev": "B-00001", "ev": ev, "sid": "s1", "ma_set": ma_set, "ma": ma},
        schema_overrides={"ts": UTC_TYPE, "ma": pl.Float64, "ma_set": pl.Float64},
    )
    return frame if d.vendor_b else frame.clear()


def raw(d: Design, blinded: bool = False) -> Raw:
    return Raw(
        design=d,
        dm=dm(d),
        eligibility=eligibility(d),
        visits=visits(d),
        hdss=hdss(d),
        ae=ae(d),
        disposition=disposition(d),
        devices=devices(d),
        randomisation=None if blinded else randomisation(d),
        gravimetry=gravimetry(d),
        vendor_b_events=vendor_b_events(d),
        device_sessions=device_sessions(d),
    )


def derived_tables(frames: Raw, out: Path) -> Tables:
    """The ``clean`` and ``analysis_ready`` assets of the real graph computed from ``frames``
    (stored as the raw assets they stand for; no trial-level finding), for the frames' study, in
    an output folder ``out``. Unblinded exactly when ``frames.randomisation`` is not None."""
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
    return materialise_from_raw(stored, out, frames.design.study_file, blinded=blinded)
