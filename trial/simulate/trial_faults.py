"""Faults that only a trial-level rule can see (``data_contracts/trial_rules.yaml``).

Every file stays well-formed on its own: the readers accept each row. Each fault is listed in
``faults.json`` under ``trial_faults`` with the file and line where the pipeline must name it,
the dataset, field, reason code and ``outcome``: ``quarantine`` (a blocking rule) or ``finding``
(kept and named). The kinds: an unknown subject (a paper for a subject in no ``dm.csv``), a
visit dated before consent, one serial assigned to two subjects at once (both rows), a
shrinking snapshot (a centre's latest ``ae.csv`` lacks a row of the one before: the finding is
at the earlier row), a vendor-B sample a day early, a vendor-A current of ``1e400``. The dm row
quarantined for a bad sex code is a reader fault (``faults``). A list missing a subject is a
second sealed list, ``randomisation_missing_subject.csv``, beside the right one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trial.simulate.events import EventInjector, _join, _split

MISSING_LIST = "randomisation_missing_subject.csv"


def _current(inj: EventInjector, path: str) -> bool:
    """No later delivery of the centre holds a file of the same name."""
    centre, date, name = path.split("/")
    return not any(
        k.startswith(f"{centre}/") and k.split("/")[1] > date and k.endswith(f"/{name}")
        for k in inj.files
    )


class TrialFaults:
    """Places the trial-level faults into an injector's rendered files."""

    def __init__(self, inj: EventInjector) -> None:
        self.inj = inj
        self.faults: list[dict[str, Any]] = []
        self.taken = {(f["file"], f["line"]) for f in inj.log.faults}

    def _log(
        self,
        path: str,
        line: int,
        dataset: str,
        fld: str | None,
        code: str,
        outcome: str,
        note: str,
    ) -> None:
        self.faults.append(
            {
                "file": path,
                "line": line,
                "dataset": dataset,
                "field": fld,
                "reason_code": code,
                "outcome": outcome,
                "note": note,
            }
        )
        self.taken.add((path, line))

    def _latest(self, centre: str, name: str) -> str | None:
        path = f"{self.inj.deliveries[centre][-1].folder}/{name}"
        return path if path in self.inj.files else None

    def _rows(self, path: str) -> list[tuple[int, dict[str, str]]]:
        lines = self.inj.files[path].lines
        header = _split(lines[0])
        return [
            (i, dict(zip(header, _split(lines[i]), strict=True)))
            for i in range(1, len(lines))
            if (path, i + 1) not in self.taken and len(_split(lines[i])) == len(header)
        ]

    def _consent(self, centre: str) -> dict[str, dt.date]:
        path = self._latest(centre, "dm.csv")
        if path is None:
            return {}
        return {
            r["subject_id"]: dt.date.fromisoformat(r["consent_date"])
            for _, r in self._rows(path)
            if r["consent_date"]
        }

    def place(self, b_paths: list[str], skip_serials: set[str]) -> list[dict[str, Any]]:
        """Every trial-level fault (vendor-B only when there are vendor-B files); returns the
        ``trial_faults`` entries."""
        self.unknown_subject()
        self.visit_before_consent()
        self.overlapping_assignment()
        self.shrinking_snapshot()
        if b_paths:
            self.backwards_timestamp(b_paths)
        self.non_finite(skip_serials)
        return self.faults

    def unknown_subject(self) -> None:
        sheets = sorted(
            k
            for k in self.inj.files
            if "/gravimetry_" in k and k not in self.inj.log.untouchable and _current(self.inj, k)
        )
        path = self.inj._pick([k for k in sheets if len(self.inj.files[k].lines) > 1])
        lines = self.inj.files[path].lines
        fields = _split(lines[-1])
        centre = path.split("/")[0]
        fields[0] = f"{centre}-9853"
        lines.append(_join(fields))
        self._log(
            path,
            len(lines),
            "gravimetry",
            "subject_id",
            "UNKNOWN_SUBJECT",
            "quarantine",
            f"a paper for {fields[0]}, a subject in no dm.csv",
        )

    def visit_before_consent(self) -> None:
        for centre in self.inj._rotated(0):
            path = self._latest(centre, "visits.csv")
            consent = self._consent(centre)
            if path is None:
                continue
            rows = [
                (i, r)
                for i, r in self._rows(path)
                if r["status"] == "DONE"
                and r["visit"] not in self.inj.protected_visits
                and r["subject_id"] in consent
            ]
            if rows:
                i, r = self.inj._pick(rows)
                early = consent[r["subject_id"]] - dt.timedelta(days=10)
                fields = _split(self.inj.files[path].lines[i])
                fields[2] = early.isoformat()
                self.inj._set(path, i, fields)
                self._log(
                    path,
                    i + 1,
                    "visits",
                    "visit_date",
                    "VISIT_BEFORE_CONSENT",
                    "quarantine",
                    f"{r['subject_id']} {r['visit']} dated {early}, ten days before consent",
                )
                return
        raise ValueError("the simulated trial is too small to place a visit before consent")

    def overlapping_assignment(self) -> None:
        for centre in self.inj._rotated(1):
            path = self._latest(centre, "devices.csv")
            if path is None:
                continue
            rows = self._rows(path)
            subjects = sorted({r["subject_id"] for _, r in rows})
            if len(subjects) < 2:
                continue
            open_ended = [
                (i, r)
                for i, r in rows
                if not r["to_date"]
                or dt.date.fromisoformat(r["to_date"])
                > dt.date.fromisoformat(r["from_date"]) + dt.timedelta(days=1)
            ]
            if not open_ended:
                continue
            i, a = self.inj._pick(open_ended)
            other = self.inj._pick([s for s in subjects if s != a["subject_id"]])
            start = dt.date.fromisoformat(a["from_date"]) + dt.timedelta(days=1)
            lines = self.inj.files[path].lines
            lines.append(_join([other, a["device_serial"], a["region"], start.isoformat(), ""]))
            note = f"serial {a['device_serial']} of {a['subject_id']} also given to {other}"
            self._log(
                path,
                i + 1,
                "devices",
                "device_serial",
                "SERIAL_DOUBLE_ASSIGNED",
                "quarantine",
                note,
            )
            self._log(
                path,
                len(lines),
                "devices",
                "device_serial",
                "SERIAL_DOUBLE_ASSIGNED",
                "quarantine",
                note,
            )
            return
        raise ValueError("the simulated trial is too small to place an overlapping assignment")

    def shrinking_snapshot(self) -> None:
        for centre in self.inj._rotated(2):
            items = self.inj.deliveries[centre]
            if len(items) < 2:
                continue
            latest = f"{items[-1].folder}/ae.csv"
            before = f"{items[-2].folder}/ae.csv"
            if latest not in self.inj.files or before not in self.inj.files:
                continue
            if latest in self.inj.log.untouchable:
                continue
            lines = self.inj.files[latest].lines
            if len(lines) < 2:
                continue
            earlier = self.inj.files[before].lines
            if lines[-1] not in earlier:
                continue
            row = lines.pop()
            self._log(
                before,
                earlier.index(row) + 1,
                "ae",
                None,
                "SNAPSHOT_ROW_MISSING",
                "finding",
                f"the latest {latest} lacks this adverse event (the last row was cut)",
            )
            self.inj.log.untouchable.add(latest)
            return
        raise ValueError("the simulated trial is too small to place a shrinking snapshot")

    def backwards_timestamp(self, b_paths: list[str]) -> None:
        options = []
        for path in sorted(set(b_paths) & set(self.inj.files)):
            if path in self.inj.log.untouchable or not _current(self.inj, path):
                continue
            lines = self.inj.files[path].lines
            for i in range(1, len(lines) - 1):
                if all('"ev":"sample"' in lines[j] for j in (i - 1, i, i + 1)):
                    options.append((path, i))
                    break
        path, i = self.inj._pick(options)
        line = self.inj.files[path].lines[i]
        day = dt.date.fromisoformat(line[7:17])
        moved = line[:7] + (day - dt.timedelta(days=1)).isoformat() + line[17:]
        self.inj.files[path].lines[i] = moved
        self.inj.log.untouchable.add(path)
        self._log(
            path,
            i + 1,
            "vendor_b_events",
            "ts",
            "TIMESTAMP_BACKWARDS",
            "quarantine",
            "a sample's time stamp a day early, between two samples of its session",
        )

    def non_finite(self, skip_serials: set[str]) -> None:
        exports: dict[str, list[str]] = {}
        for k in sorted(self.inj.files, key=lambda k: k.rsplit("_", 1)[-1]):
            name = k.rsplit("/", 1)[1]
            if name.startswith("ionto-a_") and name.split("_")[1] not in skip_serials:
                exports.setdefault(name.split("_")[1], []).append(k)
        options = []
        for paths in exports.values():
            last = paths[-1]
            if last in self.inj.log.untouchable or len(self.inj.files[last].lines) < 6:
                continue
            row = self.inj.files[last].lines[-1]
            start = row.split(",")[1]
            if not any(start in line for p in paths[:-1] for line in self.inj.files[p].lines):
                options.append(last)
        path = self.inj._pick(options)
        lines = self.inj.files[path].lines
        at = len(lines) - 1
        header_at = next(i for i, x in enumerate(lines) if not x.startswith("#"))
        header = _split(lines[header_at])
        fields = _split(lines[at])
        fields[header.index("mean_ma")] = "1e400"
        self.inj._set(path, at, fields)
        self.inj.log.untouchable.add(path)
        self._log(
            path,
            at + 1,
            "vendor_a_sessions",
            "mean_ma",
            "NON_FINITE",
            "quarantine",
            "mean_ma 1e400 (infinite) in the export's newest session",
        )


def missing_subject_fault(dropped: str) -> dict[str, Any]:
    """The ``trial_faults`` entry of the second sealed list, which leaves out ``dropped``."""
    return {
        "file": MISSING_LIST,
        "line": None,
        "dataset": "randomisation",
        "field": "subject_id",
        "reason_code": "MISSING_FROM_LIST",
        "outcome": "stop",
        "note": f"{dropped}, randomised and treated, is left out: an unblinded run must stop",
    }
