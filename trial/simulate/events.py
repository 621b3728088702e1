"""Legal delivery events (re-delivered and corrected worksheets) and injected faults.

Both act on the rendered files (``Renderer.files``) before anything is written. Faults go
into the latest version of a file only (EDC: a centre's last delivery; worksheets that are
never re-delivered), so a reader of current files meets every one of them. Line numbers are
1-based physical lines of the file as delivered.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study import Study
from trial.simulate.render import Delivery, OutFile

LINE_NUMBERING = (
    "1-based physical lines of the file as delivered; the CSV header (or a vendor-A file's "
    "first '#' line) is line 1; line null = whole file"
)


def _split(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)))


def _join(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()


@dataclass
class EventLog:
    events: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    hidden: list[dict[str, Any]] = field(default_factory=list)  # truth values faults hide
    untouchable: set[str] = field(default_factory=set)  # files faults must not touch


class EventInjector:
    def __init__(
        self,
        study: Study,
        files: dict[str, OutFile],
        deliveries: dict[str, list[Delivery]],
        rng: np.random.Generator,
    ):
        self.study = study
        self.files = files
        self.deliveries = deliveries
        self.rng = rng
        self.log = EventLog()
        # visits whose values the primary analysis or baseline depend on most: never faulted
        self.protected_visits = {study.visits[0].code, study.baseline_visit, study.primary_visit}

    def _pick(self, items: list[Any]) -> Any:
        if not items:
            raise ValueError("the simulated trial is too small to place every delivery event")
        return items[int(self.rng.integers(0, len(items)))]

    def _worksheets(self, centre: str) -> list[str]:
        """Worksheets of a centre except the last delivery's (they can be re-delivered)."""
        last = self.deliveries[centre][-1].folder
        return sorted(
            k
            for k in self.files
            if k.startswith(f"{centre}/") and "/gravimetry_" in k and not k.startswith(last)
        )

    def _wet_rows(self, path: str) -> list[int]:
        """Rows (0-based line indices) of a worksheet with a wet weight at a visit that is
        not protected (screening, baseline, primary)."""
        lines = self.files[path].lines
        wet = _split(lines[0]).index("wet_weight")
        rows = [(i, _split(line)) for i, line in enumerate(lines[1:], start=1)]
        return [i for i, f in rows if f[wet] and f[1] not in self.protected_visits]

    def _rotated(self, start: int) -> list[str]:
        """Centres in study order, starting at index ``start`` (wrapping)."""
        c = self.study.centres
        return [c[(start + k) % len(c)] for k in range(len(c))]

    def _next_folder(self, path: str) -> str:
        centre, date, _ = path.split("/")
        folders = [d.folder for d in self.deliveries[centre]]
        return folders[folders.index(f"{centre}/{date}") + 1]

    # -- legal events --------------------------------------------------------------------
    def redeliveries(self) -> None:
        start = int(self.rng.integers(0, len(self.study.centres)))
        with_sheets = [c for c in self._rotated(start) if self._worksheets(c)]
        if not with_sheets:
            raise ValueError("the simulated trial is too small to place every delivery event")
        first, second = with_sheets[0], with_sheets[1 % len(with_sheets)]
        repeat = self._pick(self._worksheets(first))
        again = f"{self._next_folder(repeat)}/{repeat.rsplit('/', 1)[1]}"
        src = self.files[repeat]
        self.files[again] = OutFile(list(src.lines), src.eol)
        self.log.events.append(
            {
                "kind": "repeat",
                "file": repeat,
                "repeated_as": again,
                "note": "identical bytes delivered again in the next delivery; "
                "re-reading must change nothing",
            }
        )
        corrected, i = self._pick(
            [(k, i) for k in self._worksheets(second) if k != repeat for i in self._wet_rows(k)]
        )
        fixed = f"{self._next_folder(corrected)}/{corrected.rsplit('/', 1)[1]}"
        header = _split(self.files[corrected].lines[0])
        wet = header.index("wet_weight")
        good = self.files[corrected]
        self.files[fixed] = OutFile(list(good.lines), good.eol)
        fields = _split(good.lines[i])
        new = fields[wet]
        decimals = len(new.split(".")[1]) if "." in new else 0
        step = 10.0 if fields[header.index("unit")] == "mg" else 0.01
        old = f"{float(new) + step:.{decimals}f}"
        fields[wet] = old
        good.lines[i] = _join(fields)
        self.log.events.append(
            {
                "kind": "correction",
                "file": corrected,
                "corrected_by": fixed,
                "line": i + 1,
                "field": "wet_weight",
                "old": old,
                "new": new,
                "subject_id": fields[0],
                "visit": fields[1],
                "region": fields[2],
                "side": fields[3],
                "note": "same file name in the next delivery; the later version supersedes",
            }
        )
        self.log.untouchable |= {repeat, again, corrected, fixed}

    def device_events(self, resets: dict[str, list[dict[str, Any]]]) -> None:
        for r in resets.get("factory_resets", []):
            self.log.events.append(
                {
                    "kind": "factory_reset",
                    **r,
                    "note": (
                        "session_no restarts at 1 after the export made at this time; later "
                        "exports hold only the post-reset sessions. Sessions are not identified "
                        "by session_no alone."
                    ),
                }
            )
        for r in resets.get("clock_resets", []):
            files = sorted(k for k in self.files if f"ionto-a_{r['serial']}_" in k)
            self.log.events.append(
                {
                    "kind": "clock_reset",
                    **r,
                    "files": files,
                    "note": (
                        "backup battery died: these sessions are dated from 2000-01-01T00:00:00 "
                        "on the device clock in every later export; the clock was set again at "
                        "the next clinic export. The true times are in sessions_truth.csv."
                    ),
                }
            )

    # -- faults --------------------------------------------------------------------------
    def _fault(
        self, path: str, line: int | None, dataset: str, fld: str | None, code: str, note: str
    ) -> None:
        self.log.faults.append(
            {
                "file": path,
                "line": line,
                "dataset": dataset,
                "field": fld,
                "reason_code": code,
                "note": note,
            }
        )
        self.log.untouchable.add(path)

    def _edc_row(self, start: int, name: str, ok: Any) -> tuple[str, int, list[str], list[str]]:
        """A row of a centre's current EDC table satisfying ``ok``: the first centre from
        index ``start`` (wrapping) that has one."""
        for centre in self._rotated(start):
            path = f"{self.deliveries[centre][-1].folder}/{name}.csv"
            lines = self.files[path].lines
            header = _split(lines[0])
            rows = [
                i
                for i in range(1, len(lines))
                if ok(dict(zip(header, _split(lines[i]), strict=True)))
            ]
            if rows:
                i = self._pick(rows)
                return path, i, header, _split(lines[i])
        raise ValueError(f"the simulated trial is too small to place a fault in {name}.csv")

    def _set(self, path: str, i: int, fields: list[str]) -> None:
        self.files[path].lines[i] = _join(fields)

    def edc_faults(self, randomised: set[str]) -> None:
        sex_codes = set(self.study.codelists.sex)
        bad_sex = next(x for x in ["X", "U", "Z"] if x not in sex_codes)
        path, i, header, f = self._edc_row(0, "dm", lambda r: r["subject_id"] in randomised)
        f[header.index("sex")] = bad_sex
        self._set(path, i, f)
        self._fault(
            path,
            i + 1,
            "dm",
            "sex",
            "NOT_IN_CODELIST",
            f"sex '{bad_sex}' is not in the sex codelist",
        )
        self.log.hidden.append({"subject_id": f[0], "dataset": "dm", "what": "sex"})

        free = lambda r: r["visit"] not in self.protected_visits  # noqa: E731
        path, i, header, f = self._edc_row(1, "hdss", free)
        low, high = self.study.simulation.hdss_scale
        f[header.index("hdss")] = str(high + 3)
        self._set(path, i, f)
        self._fault(
            path,
            i + 1,
            "hdss",
            "hdss",
            "OUT_OF_RANGE",
            f"HDSS {high + 3} is outside the {low}-{high} scale",
        )
        self.log.hidden.append({"subject_id": f[0], "dataset": "hdss", "what": f"hdss at {f[1]}"})

        done = lambda r: free(r) and r["status"] == "DONE"  # noqa: E731
        path, i, header, f = self._edc_row(2, "visits", done)
        k = header.index("visit_date")
        f[k] = f"{f[k][:4]}-02-30"
        self._set(path, i, f)
        self._fault(
            path,
            i + 1,
            "visits",
            "visit_date",
            "BAD_DATE",
            f"visit_date '{f[k]}' is not a calendar date",
        )
        self.log.hidden.append(
            {
                "subject_id": f[0],
                "dataset": "visits",
                "what": f"visit date of {f[1]} (window check)",
            }
        )

        try:
            path, i, header, f = self._edc_row(3, "ae", lambda r: "," in r["verbatim"])
        except ValueError:  # no verbatim with a comma: one gets a comma
            path, i, header, f = self._edc_row(3, "ae", lambda r: True)
            f[header.index("verbatim")] += ", see notes"
        line = ",".join(f)  # the verbatim's comma left unquoted: one field too many
        self.files[path].lines[i] = line
        self._fault(
            path,
            i + 1,
            "ae",
            None,
            "WRONG_FIELD_COUNT",
            f"{len(header) + 1} fields where the header has {len(header)} "
            "(verbatim with a comma not quoted)",
        )
        self.log.hidden.append({"subject_id": f[0], "dataset": "ae", "what": f"AE {f[1]}"})

    def gravimetry_fault(self) -> None:
        path, i = self._pick(
            [
                (path, i)
                for path in sorted(self.files)
                if "/gravimetry_" in path and path not in self.log.untouchable
                for i in self._wet_rows(path)
            ]
        )
        lines = self.files[path].lines
        wet = _split(lines[0]).index("wet_weight")
        f = _split(lines[i])
        value = f[wet]
        dot = value.index(".")
        f[wet] = value[: dot - 1] + "O" + value[dot:]  # a letter O typed for a digit
        self._set(path, i, f)
        self._fault(
            path,
            i + 1,
            "gravimetry",
            "wet_weight",
            "BAD_NUMBER",
            f"wet_weight '{f[wet]}' is not a number",
        )
        self.log.hidden.append(
            {
                "subject_id": f[0],
                "dataset": "gravimetry",
                "what": f"{f[1]} {f[2]} {f[3]} paper {f[4]}",
            }
        )

    def vendor_a_faults(self, skip_serials: set[str]) -> None:
        """Two non-final exports (their sessions recur in a later export, nothing is hidden)."""
        exports: dict[str, list[str]] = {}
        for k in sorted(self.files, key=lambda k: k.rsplit("_", 1)[-1]):  # by export date
            name = k.rsplit("/", 1)[1]
            if name.startswith("ionto-a_") and name.split("_")[1] not in skip_serials:
                exports.setdefault(name.split("_")[1], []).append(k)
        options = sorted(
            k for paths in exports.values() for k in paths[:-1] if len(self.files[k].lines) >= 7
        )
        first = self._pick(options)
        f = self.files[first]
        f.raw_lines[1] = f.lines[1].encode("ascii") + b" \xa0rev"
        self._fault(
            first,
            None,
            "vendor_a_sessions",
            None,
            "NOT_UTF8",
            "byte 0xA0 on line 2 is not valid UTF-8 (whole file)",
        )
        second = self._pick([k for k in options if k != first])
        lines = self.files[second].lines
        i = int(self.rng.integers(5, len(lines)))
        no, start = lines[i].split(",")[:2]
        lines[i] = f"{no};{start[:13]}#@~%"
        self._fault(
            second,
            i + 1,
            "vendor_a_sessions",
            None,
            "WRONG_FIELD_COUNT",
            "garbage session row (1 field where the header has 10)",
        )

    def vendor_b_faults(self, b_paths: list[str], owners: dict[str, str]) -> None:
        """Broken JSON mid-file, a half-written last line re-sent whole in the unit's next
        file, and exact duplicate lines (legal; listed as delivery events). ``b_paths`` are
        the vendor-B files in time order per unit; ``owners`` maps serial -> subject."""
        by_unit: dict[str, list[str]] = {}
        for path in b_paths:
            by_unit.setdefault(path.rsplit("_", 2)[1], []).append(path)
        pairs = [(u[i], u[i + 1]) for u in by_unit.values() for i in range(len(u) - 1)]
        first, nxt = self._pick(pairs)
        f, g = self.files[first], self.files[nxt]
        last = f.lines[-1]
        f.lines[-1] = last[: len(last) // 2]
        f.last_eol = False
        g.lines.insert(0, last)
        ts = last[7:26].replace("-", "").replace(":", "").replace("T", "")
        renamed = nxt.rsplit("_", 1)[0] + f"_{ts}.jsonl"
        if renamed != nxt:
            self.files[renamed] = self.files.pop(nxt)
        self._fault(
            first,
            len(f.lines),
            "vendor_b_events",
            None,
            "TRUNCATED_LINE",
            f"half-written last line; the event is re-sent whole as line 1 of {renamed}",
        )
        self.log.untouchable.add(renamed)
        others = [
            k
            for k in sorted({*b_paths, renamed} - {nxt})
            if k not in self.log.untouchable and len(self.files[k].lines) > 50
        ]
        path = self._pick(others)
        lines = self.files[path].lines
        i = int(self.rng.integers(10, len(lines) - 10))
        while '"sample"' not in lines[i]:
            i += 1
        broken = lines[i].replace(',"v":', ',"v"', 1).removesuffix("}")
        sid = lines[i].split('"sid":"')[1][:4]
        lines[i] = broken
        self._fault(
            path,
            i + 1,
            "vendor_b_events",
            None,
            "BAD_JSON",
            "broken JSON in the middle of the file (missing ':' and closing brace)",
        )
        self.log.hidden.append(
            {
                "subject_id": owners[path.rsplit("_", 2)[1]],
                "dataset": "vendor_b_events",
                "serial": path.rsplit("_", 2)[1],
                "what": f"one sample of session {sid} at {broken[7:31]} "
                "(charge from samples lower by that sample)",
            }
        )
        dup_path = self._pick([k for k in others if k != path])
        lines = self.files[dup_path].lines
        picks = sorted(
            int(x) for x in self.rng.choice(np.arange(5, len(lines) - 5), 3, replace=False)
        )
        for shift, i in enumerate(picks):
            at = i + shift
            lines.insert(at + 1, lines[at])
            self.log.events.append(
                {
                    "kind": "duplicate_event",
                    "file": dup_path,
                    "line": at + 2,
                    "duplicate_of_line": at + 1,
                    "note": "exact duplicate event line (legal): a reader keeps one",
                }
            )
        self.log.untouchable.add(dup_path)
