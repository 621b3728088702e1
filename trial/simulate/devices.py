"""Home devices: assignments (with swaps), treatment sessions, vendor-A exports, vendor-B events.

Sessions follow the study's treatment phases (weeks x sessions per week) from the BL day,
in the evening local time, on the device assigned that day. Vendor-A units print local
times with the UTC offset they were issued with (no daylight saving); vendor-B units
stream UTC events at ``vendor_b_hz``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study import Study
from trial.simulate.cohort import Subject, _choice
from trial.simulate.params import SimulationParams

UTC = dt.UTC
CLOCK_RESET_EPOCH = dt.datetime(2000, 1, 1, 0, 0, 0)
FIRMWARES = ["3.2.1", "3.3.0"]


@dataclass
class Session:
    subject_id: str
    serial: str
    vendor: str
    region: str
    session_no: int
    sid: str
    start_utc: dt.datetime  # aware UTC (vendor B with milliseconds)
    duration_s: int
    programmed_ma: float
    end_reason: str
    fault_code: str
    mean_ma: float = 0.0
    max_v: float = 0.0
    charge_mc: float = 0.0  # vendor A: as printed; vendor B: rectangle rule over samples
    device_start: dt.datetime | None = None  # vendor A: naive device-clock time as printed
    ma: np.ndarray | None = None  # vendor B samples (mA, rounded to 0.01)
    volts: np.ndarray | None = None  # vendor B samples (V, rounded to 0.1)


@dataclass
class Export:
    """A vendor-A export or a vendor-B upload, at a clinic contact (device-local time)."""

    at_local: dt.datetime  # aware, true local time
    sessions: list[Session]  # vendor A: memory content at the export


@dataclass
class Device:
    serial: str
    vendor: str
    region: str
    subject_id: str
    from_date: dt.date
    to_date: dt.date | None
    centre: str
    firmware: str = ""
    utc_offset: dt.timedelta = dt.timedelta(0)
    sessions: list[Session] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)


def format_offset(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class DeviceBuilder:
    def __init__(self, study: Study, params: SimulationParams, rng: np.random.Generator):
        self.study = study
        self.p = params
        self.rng = rng
        self.used_serials: set[str] = set()
        self.used_sids: set[str] = set()
        self.session_days = self._planned_days()

    def _planned_days(self) -> list[int]:
        """Planned session study days from the treatment phases (first session on day 1)."""
        days: list[int] = []
        for phase in self.study.treatment.phases:
            first, last = phase.weeks
            per_week = phase.sessions_per_week
            for week in range(first, last + 1):
                for j in range(per_week):
                    days.append((week - 1) * 7 + 1 + (j * 7) // per_week)
        return days

    def _serial(self, vendor: str) -> str:
        while True:
            serial = f"{vendor}-{int(self.rng.integers(0, 10000)):05d}"
            if serial not in self.used_serials:
                self.used_serials.add(serial)
                return serial

    def _sid(self) -> str:
        while True:
            sid = f"{int(self.rng.integers(0, 16**4)):04x}"
            if sid not in self.used_sids:
                self.used_sids.add(sid)
                return sid

    def _new_device(self, s: Subject, vendor: str, region: str, start: dt.date) -> Device:
        issued = dt.datetime.combine(start, dt.time(12, 0), tzinfo=self.p.timezone)
        offset = issued.utcoffset() or dt.timedelta(0)
        return Device(
            serial=self._serial(vendor),
            vendor=vendor,
            region=region,
            subject_id=s.subject_id,
            from_date=start,
            to_date=None,
            centre=s.centre,
            firmware=FIRMWARES[int(self.rng.integers(0, len(FIRMWARES)))],
            utc_offset=offset,
        )

    def build(self, subjects: list[Subject]) -> tuple[list[Device], dict[str, list[Any]]]:
        """Devices of all randomised subjects, with sessions and exports. Also the special
        device events chosen (swaps, vendor-B subjects, clock and factory resets)."""
        rng, p = self.rng, self.p
        rand = [s for s in subjects if s.randomised]
        devices: list[Device] = []
        b_subjects = {s.subject_id for s in rand if rng.random() < p.vendor_b_share}
        completers = [s for s in rand if s.withdrawn is None]
        if p.vendor_b_share > 0 and not b_subjects & {s.subject_id for s in completers}:
            # at least one vendor-B unit with a full treatment (streams spanning files)
            b_subjects.add(completers[int(rng.integers(0, len(completers)))].subject_id)
        eligible_swap = [s for s in rand if not s.never_treated and s.withdrawn is None]
        n_swap = min(max(1, round(p.device_swap_share * len(rand))), len(eligible_swap))
        swaps = {
            eligible_swap[int(i)].subject_id for i in rng.permutation(len(eligible_swap))[:n_swap]
        }
        swap_events: list[dict[str, str]] = []
        for s in rand:
            assert s.bl_date is not None
            primary = self.study.primary_region.code
            for region in self.study.regions:
                if region.requires_involvement and not s.plantar:
                    continue
                vendor = "B" if region.code == primary and s.subject_id in b_subjects else "A"
                dev = self._new_device(s, vendor, region.code, s.bl_date)
                devices.append(dev)
                if region.code == primary and s.subject_id in swaps:
                    visit_days = {r.date for r in s.visits if r.date is not None}
                    while True:
                        swap = s.bl_date + dt.timedelta(days=int(rng.integers(10, 60)))
                        if swap not in visit_days:
                            break
                    dev.to_date = swap
                    new = self._new_device(s, vendor, region.code, swap)
                    devices.append(new)
                    swap_events.append(
                        {
                            "subject_id": s.subject_id,
                            "old": dev.serial,
                            "new": new.serial,
                            "date": swap.isoformat(),
                        }
                    )
        by_subject: dict[str, list[Device]] = {}
        for d in devices:
            by_subject.setdefault(d.subject_id, []).append(d)
        for s in rand:
            self._sessions(s, by_subject[s.subject_id])
            self._exports(s, by_subject[s.subject_id])
        resets = self._resets(devices)
        return devices, {
            "device_swaps": swap_events,
            "vendor_b_subjects": sorted(b_subjects),
            **resets,
        }

    def _outcome(self) -> tuple[int, str, str]:
        rng, p = self.rng, self.p
        full = self.study.treatment.session_minutes * 60
        u = rng.random()
        if u < p.session_fault_share:
            reason, code = "FAULT", _choice(rng, p.fault_code_weights)
        elif u < p.session_fault_share + p.session_stopped_share:
            reason, code = "STOPPED_BY_USER", ""
        else:
            return full, "COMPLETED", ""
        duration = int(rng.integers(30, full - 10))
        if duration == full // 2:
            duration += 1
        return duration, reason, code

    def _sessions(self, s: Subject, devices: list[Device]) -> None:
        rng, p = self.rng, self.p
        if s.never_treated:
            return
        assert s.bl_date is not None
        stop = s.withdrawn[0] if s.withdrawn else None
        for day in self.session_days:
            if day > 1 and rng.random() < p.session_skip_share:
                continue
            date = s.bl_date + dt.timedelta(
                days=day - 1 + int(rng.integers(0, 2) if day > 1 else 0)
            )
            if stop is not None and date >= stop:
                break
            gap = s.session_gap
            if gap is not None and gap[0] <= date < gap[1]:
                continue
            local = dt.datetime.combine(date, dt.time(0), tzinfo=p.timezone) + dt.timedelta(
                seconds=int(rng.integers(15 * 3600, 21 * 3600 + 30 * 60)),
                milliseconds=int(rng.integers(0, 1000)),
            )
            for offset_min, region in enumerate(r.code for r in self.study.regions):
                dev = next(
                    (
                        d
                        for d in devices
                        if d.region == region
                        and d.from_date <= date
                        and (d.to_date is None or date < d.to_date)
                    ),
                    None,
                )
                if dev is None or any(d.to_date == date for d in devices):
                    continue
                start = (local + dt.timedelta(minutes=25 * offset_min)).astimezone(UTC)
                if dev.vendor == "A":
                    start = start.replace(microsecond=0)
                duration, reason, code = self._outcome()
                sess = Session(
                    subject_id=s.subject_id,
                    serial=dev.serial,
                    vendor=dev.vendor,
                    region=region,
                    session_no=len(dev.sessions) + 1,
                    sid=self._sid() if dev.vendor == "B" else "",
                    start_utc=start,
                    duration_s=duration,
                    programmed_ma=s.programmed_ma,
                    end_reason=reason,
                    fault_code=code,
                )
                self._values(sess, dev)
                dev.sessions.append(sess)

    def _values(self, sess: Session, dev: Device) -> None:
        rng, ma_set = self.rng, sess.programmed_ma
        ohm = float(rng.uniform(1.25, 1.75))  # kOhm: V = mA x kOhm
        if dev.vendor == "A":
            sess.mean_ma = round(ma_set * float(rng.uniform(0.985, 0.998)), 2)
            sess.max_v = round(ma_set * ohm * float(rng.uniform(1.0, 1.15)), 1)
            sess.charge_mc = round(sess.duration_s * sess.mean_ma, 1)
            sess.device_start = (sess.start_utc + dev.utc_offset).replace(tzinfo=None)
            return
        n = sess.duration_s * self.p.vendor_b_hz
        t = np.arange(1, n + 1) / self.p.vendor_b_hz
        ramp = np.minimum(t / 20.0, 1.0)
        raw = ma_set * ramp * (1 + rng.normal(0, 0.008, n)) + rng.normal(0, 0.03, n) * ramp
        ma = np.round(np.abs(raw), 2)
        volts = np.round(ma * (ohm + np.cumsum(rng.normal(0, 0.0004, n))), 1)
        sess.ma, sess.volts = ma, volts
        sess.charge_mc = round(float(ma.sum()) / self.p.vendor_b_hz, 3)

    def _exports(self, s: Subject, devices: list[Device]) -> None:
        """Exports at every done post-baseline visit while assigned, and at the device's return."""
        rng = self.rng
        end = s.end_date
        post = [r for r in s.visits[2:] if r.date is not None]
        for dev in devices:
            last_day = dev.to_date or end
            times = [
                r.start_local + dt.timedelta(minutes=int(rng.integers(20, 90)))
                for r in post
                if r.date is not None and dev.from_date < r.date <= last_day
            ]
            if not any(t.date() == last_day for t in times):
                times.append(
                    dt.datetime.combine(last_day, dt.time(0), tzinfo=self.p.timezone)
                    + dt.timedelta(minutes=int(rng.integers(9 * 60, 12 * 60)))
                )
            for t in sorted(times):
                t = t.replace(second=0, microsecond=0)
                done = [x for x in dev.sessions if x.start_utc < t.astimezone(UTC)]
                dev.exports.append(Export(t, done[-self.p.vendor_a_memory :]))

    def _resets(self, devices: list[Device]) -> dict[str, list[dict[str, Any]]]:
        """One vendor-A factory reset and one backup-battery clock reset (different units).

        Factory reset: right after export k (not the last, and holding more sessions than the
        next export adds, so that the counter visibly restarts); later memory holds only the
        new sessions, numbered from 1. Clock reset: the battery dies after export j; the sessions
        until export j + 1 (where the clinic sets the clock again) run from 2000-01-01.
        """
        rng = self.rng
        windows = [
            (d, k)
            for d in devices
            if d.vendor == "A"
            for k in range(len(d.exports) - 1)
            if 0
            < sum(_between(x, d.exports[k], d.exports[k + 1]) for x in d.sessions)
            < len(d.exports[k].sessions)
        ]
        if not windows:
            return {"factory_resets": [], "clock_resets": []}
        fr, k = windows[int(rng.integers(0, len(windows)))]
        others = [(d, j) for d, j in windows if d is not fr]
        at = fr.exports[k].at_local.astimezone(UTC)
        for i, x in enumerate((x for x in fr.sessions if x.start_utc >= at), start=1):
            x.session_no = i
        for e in fr.exports[k + 1 :]:
            e.sessions = [x for x in e.sessions if x.start_utc >= at]
        factory = [
            {
                "serial": fr.serial,
                "subject_id": fr.subject_id,
                "at_utc": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ]
        if not others:
            return {"factory_resets": factory, "clock_resets": []}
        cr, j = others[int(rng.integers(0, len(others)))]
        affected = [x for x in cr.sessions if _between(x, cr.exports[j], cr.exports[j + 1])]
        t0 = cr.exports[j].at_local.astimezone(UTC)
        died = t0 + (affected[0].start_utc - t0) * float(rng.uniform(0.1, 0.9))
        died = died.replace(microsecond=0)
        for x in affected:
            x.device_start = CLOCK_RESET_EPOCH + (x.start_utc - died)
        clock = [
            {
                "serial": cr.serial,
                "subject_id": cr.subject_id,
                "battery_died_utc": died.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "clock_set_utc": cr.exports[j + 1]
                .at_local.astimezone(UTC)
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
                "session_nos": [x.session_no for x in affected],
            }
        ]
        return {"factory_resets": factory, "clock_resets": clock}


def _between(x: Session, first: Export, second: Export) -> bool:
    return first.at_local.astimezone(UTC) <= x.start_utc < second.at_local.astimezone(UTC)
