"""Render a simulated trial as the raw delivery tree of ``specs/site-exports.md``.

Files are built in memory as lines (``OutFile``) keyed by their path relative to the raw
root, so that delivery events and faults can be applied before anything is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

import numpy as np

from data_contracts.contracts import EDC_TABLES, contract_template, file_columns
from study import Study
from trial.simulate.cohort import Paper, Subject
from trial.simulate.devices import UTC, Device, Session, format_offset
from trial.simulate.params import SimulationParams

EDC_HEADERS: dict[str, list[str]] = {
    table: file_columns(contract_template(table)) for table in EDC_TABLES
}
"""Header of each EDC export: its raw contract's columns (``data_contracts``), in file order."""
AMENDMENT_TABLES = ("cm",)
"""EDC exports delivered only from ``simulation.cm_first_delivery`` on (protocol amendment 1)."""
GRAVIMETRY_HEADER = [
    "subject_id",
    "visit",
    "region",
    "side",
    "paper_id",
    "dry_weight",
    "wet_weight",
    "unit",
    "collection_s",
    "collected_at",
    "room_temp_c",
    "humidity_pct",
    "acclimatisation_min",
    "operator",
    "balance_serial",
]
VENDOR_A_HEADER = [
    "session_no",
    "start",
    "duration_s",
    "programmed_ma",
    "mean_ma",
    "max_v",
    "charge_mc",
    "polarity_switches",
    "end_reason",
    "fault_code",
]


@dataclass
class OutFile:
    """A file to write: lines without terminators, joined by ``eol``."""

    lines: list[str]
    eol: str = "\n"
    last_eol: bool = True
    raw_lines: dict[int, bytes] = field(default_factory=dict)  # 0-based index -> bytes as is

    def to_bytes(self) -> bytes:
        if not self.raw_lines:
            text = self.eol.join(self.lines) + (self.eol if self.last_eol and self.lines else "")
            return text.encode("utf-8")
        eol = self.eol.encode()
        parts = [self.raw_lines.get(i, line.encode("utf-8")) for i, line in enumerate(self.lines)]
        return eol.join(parts) + (eol if self.last_eol and parts else b"")


def csv_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """Header and rows as CSV lines (minimal quoting), without line terminators."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().split("\n")[:-1]


def in_header_order(table: str, header: list[str], row: dict[str, str]) -> list[str]:
    """A row's cells in the order of ``header``; raises ValueError when the row fills other
    columns than the header's (the simulator and the contract disagree)."""
    if set(row) != set(header):
        missing, extra = sorted(set(header) - set(row)), sorted(set(row) - set(header))
        raise ValueError(
            f"simulated {table}.csv row does not fit its contract's columns: "
            f"missing {missing}, not in the contract {extra}"
        )
    return [row[c] for c in header]


def _d(value: dt.date | None) -> str:
    return "" if value is None else value.isoformat()


@dataclass
class Delivery:
    centre: str
    date: dt.date
    cutoff: dt.date
    previous_cutoff: dt.date | None

    @property
    def folder(self) -> str:
        return f"{self.centre}/{self.date.isoformat()}"


def schedule_deliveries(
    study: Study, p: SimulationParams, last_event: dict[str, dt.date]
) -> dict[str, list[Delivery]]:
    """Every ``delivery_every_days`` per centre, staggered, until the centre's last event is in."""
    out: dict[str, list[Delivery]] = {}
    lag = dt.timedelta(days=p.snapshot_lag_days)
    for i, c in enumerate(study.centres):
        date = p.start_date + dt.timedelta(
            days=p.first_delivery_after_days + i * p.centre_stagger_days
        )
        previous: dt.date | None = None
        items: list[Delivery] = []
        while True:
            items.append(Delivery(c, date, date - lag, previous))
            previous = date - lag
            if previous >= last_event.get(c, p.start_date):
                break
            date += dt.timedelta(days=p.delivery_every_days)
        out[c] = items
    return out


def delivery_for(deliveries: list[Delivery], day: dt.date) -> Delivery:
    """The first delivery whose snapshot cutoff is on or after ``day``."""
    return next(d for d in deliveries if d.cutoff >= day)


class Renderer:
    def __init__(self, study: Study, p: SimulationParams, rng: np.random.Generator):
        self.study = study
        self.p = p
        self.rng = rng
        self.files: dict[str, OutFile] = {}
        self.balance = {c: f"B{int(rng.integers(100_000_000, 999_999_999))}" for c in study.centres}

    # -- EDC -----------------------------------------------------------------------------
    def edc_snapshot(self, subjects: list[Subject], devices: list[Device], d: Delivery) -> None:
        cut = d.cutoff
        subs = sorted(
            (s for s in subjects if s.centre == d.centre and s.consent <= cut),
            key=lambda s: s.subject_id,
        )
        codes = self.study.visit_codes
        rows: dict[str, list[dict[str, str]]] = {k: [] for k in EDC_HEADERS}
        sf_reason = self.study.screen_failure_reason
        for s in subs:
            rows["dm"].append(
                {
                    "subject_id": s.subject_id,
                    "centre_id": s.centre,
                    "consent_date": _d(s.consent),
                    "sex": s.sex,
                    "birth_year": str(s.birth_year),
                    "plantar_involved": "Y" if s.plantar else "N",
                    "hdss_screening": str(s.hdss_scr),
                }
            )
            rows["eligibility"].extend(
                {"subject_id": s.subject_id, "criterion": k, "answer": v}
                for k, v in s.eligibility.items()
            )
            for r in sorted(s.visits, key=lambda r: codes.index(r.code)):
                visit = {"subject_id": s.subject_id, "visit": r.code}
                if r.date is not None and r.date <= cut:
                    rows["visits"].append({**visit, "visit_date": _d(r.date), "status": "DONE"})
                    if r.code in s.hdss:
                        rows["hdss"].append({**visit, "hdss": str(s.hdss[r.code])})
                elif r.date is None and r.planned <= cut:
                    rows["visits"].append({**visit, "visit_date": "", "status": "MISSED"})
            for ae in s.aes:
                if ae.onset <= cut:
                    rows["ae"].append(
                        {
                            "subject_id": s.subject_id,
                            "ae_id": ae.ae_id,
                            "term": ae.term,
                            "verbatim": ae.verbatim,
                            "onset_date": _d(ae.onset),
                            "end_date": _d(ae.end) if ae.end <= cut else "",
                            "severity": ae.severity,
                            "serious": ae.serious,
                            "related": ae.related,
                        }
                    )
            for m in s.medications:
                if m.start <= cut:
                    end = _d(m.end) if m.end is not None and m.end <= cut else ""
                    rows["cm"].append(
                        {
                            "subject_id": s.subject_id,
                            "cm_id": m.cm_id,
                            "drug": m.drug,
                            "verbatim": m.verbatim,
                            "start_date": _d(m.start),
                            "end_date": end,
                            "indication": m.indication,
                            "rescue": m.rescue,
                        }
                    )
            if s.end_date <= cut:
                if s.fail_reason is not None:
                    status, reason, date = "WITHDRAWN", sf_reason, _d(s.scr_date)
                elif s.withdrawn is not None:
                    status, reason, date = "WITHDRAWN", s.withdrawn[1], _d(s.withdrawn[0])
                else:
                    status, reason, date = "COMPLETED", "", _d(s.completed)
            else:
                status, reason, date = "ONGOING", "", ""
            rows["disposition"].append(
                {"subject_id": s.subject_id, "status": status, "reason": reason, "date": date}
            )
        ids = {s.subject_id for s in subs}
        for dev in sorted(devices, key=lambda x: (x.subject_id, x.from_date)):
            if dev.subject_id in ids and dev.from_date <= cut:
                to = _d(dev.to_date) if dev.to_date is not None and dev.to_date <= cut else ""
                rows["devices"].append(
                    {
                        "subject_id": dev.subject_id,
                        "device_serial": dev.serial,
                        "region": dev.region,
                        "from_date": _d(dev.from_date),
                        "to_date": to,
                    }
                )
        eol = "\r\n" if d.centre in self.p.edc_crlf_centres else "\n"
        amended = self.p.cm_first_delivery is not None and d.date >= self.p.cm_first_delivery
        for name, header in EDC_HEADERS.items():
            if name in AMENDMENT_TABLES and not amended:
                continue
            lines = csv_lines(header, [in_header_order(name, header, row) for row in rows[name]])
            self.files[f"{d.folder}/{name}.csv"] = OutFile(lines, eol)

    # -- gravimetry ----------------------------------------------------------------------
    def gravimetry(self, papers: list[Paper], centre: str, deliveries: list[Delivery]) -> None:
        papers = sorted(papers, key=lambda x: (x.collected_at, x.subject_id, x.region, x.side))
        grams = centre in self.p.gram_centres
        per_delivery: dict[str, list[list[str]]] = {}
        for n, pp in enumerate(papers, start=1):
            if not pp.weighed:
                continue
            d = delivery_for(deliveries, pp.collected_at.date())
            if grams:
                dry, wet = (
                    f"{pp.dry_mg / 1000:.4f}",
                    "" if pp.wet_mg is None else f"{pp.wet_mg / 1000:.4f}",
                )
            else:
                dry, wet = f"{pp.dry_mg:.1f}", "" if pp.wet_mg is None else f"{pp.wet_mg:.1f}"
            per_delivery.setdefault(d.folder, []).append(
                [
                    pp.subject_id,
                    pp.visit,
                    pp.region,
                    pp.side,
                    f"{centre}-P{n:05d}",
                    dry,
                    wet,
                    "g" if grams else "mg",
                    str(pp.collection_s),
                    pp.collected_at.isoformat(timespec="seconds"),
                    f"{pp.room_temp_c:.1f}",
                    str(pp.humidity_pct),
                    str(pp.acclimatisation_min),
                    pp.operator,
                    self.balance[centre],
                ]
            )
        for d in deliveries:
            if d.folder in per_delivery:
                name = f"{d.folder}/gravimetry_{centre}_{d.date:%Y%m%d}.csv"
                self.files[name] = OutFile(csv_lines(GRAVIMETRY_HEADER, per_delivery[d.folder]))

    # -- vendor A ------------------------------------------------------------------------
    def vendor_a(self, dev: Device, deliveries: list[Delivery]) -> None:
        for e in dev.exports:
            d = delivery_for(deliveries, e.at_local.date())
            exported = (e.at_local.astimezone(UTC) + dev.utc_offset).replace(tzinfo=None)
            lines = [
                f"#serial={dev.serial}",
                f"#firmware={dev.firmware}",
                f"#exported_at={exported.isoformat(timespec='seconds')}",
                f"#utc_offset={format_offset(dev.utc_offset)}",
                ",".join(VENDOR_A_HEADER),
            ]
            for x in e.sessions:
                assert x.device_start is not None
                half = x.duration_s >= self.study.treatment.session_minutes * 30
                lines.append(
                    f"{x.session_no},{x.device_start.isoformat(timespec='seconds')},"
                    f"{x.duration_s},{x.programmed_ma:.1f},{x.mean_ma:.2f},{x.max_v:.1f},"
                    f"{x.charge_mc:.1f},{int(half)},{x.end_reason},{x.fault_code}"
                )
            path = f"{d.folder}/ionto-a_{dev.serial}_{e.at_local:%Y%m%d}.csv"
            if path in self.files:
                raise RuntimeError(f"two exports of {dev.serial} on one day: {path}")
            self.files[path] = OutFile(lines)

    # -- vendor B ------------------------------------------------------------------------
    def session_events(self, x: Session) -> list[str]:
        """JSON lines of one vendor-B session: start, samples, polarity at half time, end."""
        assert x.ma is not None and x.volts is not None
        hz = self.p.vendor_b_hz
        t0 = np.datetime64(x.start_utc.replace(tzinfo=None), "ms")
        n = len(x.ma)
        ts = np.datetime_as_string(
            t0 + (np.arange(0, n + 1) * (1000 // hz)).astype("timedelta64[ms]"), unit="ms"
        )
        dev_sid = f'"dev":"{x.serial}","ev":"%s","sid":"{x.sid}"'

        def head(t: object, ev: str) -> str:
            return f'{{"ts":"{t}Z",' + dev_sid % ev

        mid = f'Z","dev":"{x.serial}","ev":"sample","sid":"{x.sid}","ma":'
        samples = [
            f'{{"ts":"{t}{mid}{m:.2f},"v":{v:.1f}}}'
            for t, m, v in zip(ts[1:].tolist(), x.ma.tolist(), x.volts.tolist(), strict=True)
        ]
        end_ts = str(ts[-1])
        out = [head(ts[0], "start") + f',"ma_set":{x.programmed_ma:.1f}}}']
        half = self.study.treatment.session_minutes * 30 * hz
        if n > half:
            out.extend(samples[:half])
            out.append(head(ts[half], "polarity") + "}")
            out.extend(samples[half:])
        else:
            out.extend(samples)
        if x.end_reason == "FAULT":
            out.append(head(end_ts, "fault") + f',"code":"{x.fault_code}"}}')
        out.append(head(end_ts, "end") + f',"reason":"{x.end_reason}"}}')
        return out

    def vendor_b(self, dev: Device, deliveries: list[Delivery]) -> list[str]:
        """Files of one vendor-B unit (rotating at ``vendor_b_rotate_lines`` and at every
        upload); registers them and returns their paths in time order."""
        uploads = [e.at_local.astimezone(UTC) for e in dev.exports]
        files: list[tuple[dt.datetime, list[str]]] = []  # (upload that delivers it, lines)
        current: list[str] = []
        limit = self.p.vendor_b_rotate_lines
        u = 0
        for x in dev.sessions:
            while u < len(uploads) and uploads[u] <= x.start_utc:
                if current:
                    files.append((uploads[u], current))
                    current = []
                u += 1
            lines = self.session_events(x)
            while lines:
                room = limit - len(current)
                current.extend(lines[:room])
                lines = lines[room:]
                if len(current) >= limit:
                    files.append((uploads[min(u, len(uploads) - 1)], current))
                    current = []
        if current:
            files.append((uploads[min(u, len(uploads) - 1)], current))
        out: list[str] = []
        for upload, lines in files:
            first = dt.datetime.strptime(lines[0][7:26], "%Y-%m-%dT%H:%M:%S")
            d = delivery_for(deliveries, upload.astimezone(self.p.timezone).date())
            path = f"{d.folder}/ionto-b_{dev.serial}_{first:%Y%m%d%H%M%S}.jsonl"
            self.files[path] = OutFile(lines)
            out.append(path)
        return out
