"""``simulate_trial``: a complete, seeded raw delivery tree plus its sealed truth.

The raw tree goes to ``raw_dir`` exactly as ``specs/site-exports.md`` lays it out; the sealed
randomisation list and the simulation truth go to the sibling ``<raw_dir>_sealed/``, never
inside the raw tree. Same study, size and seed give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from study import Study
from trial.simulate.cohort import CohortBuilder, Subject
from trial.simulate.devices import Device, DeviceBuilder
from trial.simulate.events import LINE_NUMBERING, EventInjector
from trial.simulate.ices import assign_intercurrent_events, ice_shift, ice_truth_csv
from trial.simulate.params import SimulationParams
from trial.simulate.render import Renderer, schedule_deliveries
from trial.simulate.sealed import (
    dumps,
    randomisation_csv,
    sessions_truth_csv,
    subjects_truth_csv,
    truth_json,
)
from trial.simulate.trial_faults import MISSING_LIST, TrialFaults, missing_subject_fault


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation run produced (what ``ionto simulate`` prints)."""

    raw_dir: Path
    sealed_dir: Path
    seed: int
    faults: bool
    n_screened: int
    n_randomised: int
    n_screen_failures: int
    n_withdrawn: int
    n_deliveries: int
    n_files: int
    total_bytes: int
    files_by_kind: dict[str, int]
    n_sessions: dict[str, int]  # per vendor
    n_delivery_events: int
    n_faults: int
    elapsed_s: float
    sealed_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (paths as strings)."""
        out = dataclasses.asdict(self)
        out["raw_dir"], out["sealed_dir"] = str(self.raw_dir), str(self.sealed_dir)
        return out

    def lines(self) -> list[str]:
        """Human-readable lines for a command-line report."""
        kinds = ", ".join(f"{k} {v}" for k, v in self.files_by_kind.items())
        sessions = ", ".join(f"{k} {v}" for k, v in self.n_sessions.items())
        return [
            f"raw tree      {self.raw_dir}",
            f"sealed        {self.sealed_dir} ({', '.join(self.sealed_files)})",
            f"seed          {self.seed}  faults={'yes' if self.faults else 'no'}",
            f"subjects      {self.n_screened} screened, {self.n_screen_failures} screen "
            f"failures, {self.n_randomised} randomised, {self.n_withdrawn} withdrawn",
            f"deliveries    {self.n_deliveries}",
            f"files         {self.n_files} ({kinds}), {self.total_bytes / 1e6:.1f} MB",
            f"sessions      {sessions}",
            f"events        {self.n_delivery_events} delivery events, {self.n_faults} faults",
            f"elapsed       {self.elapsed_s:.2f} s",
        ]


def sealed_dir_for(raw_dir: Path) -> Path:
    """The sibling folder of the sealed list and the truth: ``<raw_dir>_sealed``."""
    return Path(str(raw_dir) + "_sealed")


def _file_kind(path: str) -> str:
    name = path.rsplit("/", 1)[1]
    for prefix in ("gravimetry_", "ionto-a_", "ionto-b_"):
        if name.startswith(prefix):
            return prefix.rstrip("_")
    return name.removesuffix(".csv")


def _last_event(subjects: list[Subject], devices: list[Device]) -> dict[str, dt.date]:
    last: dict[str, dt.date] = {}

    def bump(centre: str, day: dt.date) -> None:
        last[centre] = max(last.get(centre, day), day)

    for s in subjects:
        bump(s.centre, s.end_date)
        for r in s.visits:
            bump(s.centre, r.date or r.planned)
        for ae in s.aes:
            bump(s.centre, ae.end)
    for d in devices:
        for e in d.exports:
            bump(d.centre, e.at_local.date())
    return last


def simulate_trial(
    study: Study, n_subjects: int, seed: int, raw_dir: Path, faults: bool = False
) -> SimulationSummary:
    """Simulate a trial of ``n_subjects`` randomised subjects (screen failures on top) and
    write its raw delivery tree to ``raw_dir`` and sealed files to ``<raw_dir>_sealed``.

    ``raw_dir`` must not exist or be empty (nothing is ever deleted). With ``faults``,
    malformed rows and files are injected and listed in ``faults.json``.
    """
    started = time.perf_counter()
    raw_dir = Path(raw_dir)
    sealed_dir = sealed_dir_for(raw_dir)
    for folder in (raw_dir, sealed_dir):
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} is not empty; simulate into a new folder")
    if n_subjects < 12:
        raise ValueError("simulate at least 12 randomised subjects (special cases need room)")
    params = SimulationParams.from_study(study)
    cohort_rng, device_rng, render_rng, event_rng, ice_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    cohort = CohortBuilder(study, params, cohort_rng)
    subjects = cohort.screen(n_subjects)
    cohort.allocate(subjects)
    cohort.follow_up(
        subjects,
        intercurrent=lambda rand: assign_intercurrent_events(study, params, rand, ice_rng),
        shift=lambda s, record: ice_shift(study, params, s, record),
    )
    devices, device_events = DeviceBuilder(study, params, device_rng).build(subjects)
    primary = study.primary_region.code
    session_days: dict[str, set[dt.date]] = {}
    for dev in devices:
        if dev.region == primary:
            session_days.setdefault(dev.subject_id, set()).update(
                x.start_utc.astimezone(params.timezone).date() for x in dev.sessions
            )
    for s in subjects:
        cohort.adverse_events(s, sorted(session_days.get(s.subject_id, set())))

    deliveries = schedule_deliveries(study, params, _last_event(subjects, devices))
    renderer = Renderer(study, params, render_rng)
    b_paths: list[str] = []
    for centre, items in deliveries.items():
        for d in items:
            renderer.edc_snapshot(subjects, devices, d)
        renderer.gravimetry(
            [p for s in subjects if s.centre == centre for p in s.papers], centre, items
        )
        for dev in devices:
            if dev.centre != centre:
                continue
            if dev.vendor == "A":
                renderer.vendor_a(dev, items)
            else:
                b_paths.extend(renderer.vendor_b(dev, items))

    injector = EventInjector(study, renderer.files, deliveries, event_rng)
    injector.redeliveries()
    injector.device_events(device_events)
    if faults:
        randomised = {s.subject_id for s in subjects if s.randomised}
        injector.edc_faults(randomised)
        injector.gravimetry_fault()
        reset_serials = {
            str(r["serial"])
            for k in ("factory_resets", "clock_resets")
            for r in device_events.get(k, [])
        }
        injector.vendor_a_faults(reset_serials)
        if b_paths:  # a study with vendor A devices only has no vendor-B file to fault
            injector.vendor_b_faults(b_paths, {d.serial: d.subject_id for d in devices})
        trial_faults = TrialFaults(injector).place(b_paths, reset_serials)
        treated = sorted(d.subject_id for d in devices if d.sessions)
        dropped = treated[0] if treated else ""
        trial_faults.append(missing_subject_fault(dropped))
    else:
        trial_faults, dropped = [], ""
    log = injector.log

    total = 0
    kinds: dict[str, int] = {}
    for rel in sorted(renderer.files):
        data = renderer.files[rel].to_bytes()
        target = raw_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        total += len(data)
        kind = _file_kind(rel)
        kinds[kind] = kinds.get(kind, 0) + 1

    extras = {
        "counts": {
            "device_swaps": device_events["device_swaps"],
            "vendor_b_subjects": device_events["vendor_b_subjects"],
            "factory_resets": device_events["factory_resets"],
            "clock_resets": device_events["clock_resets"],
        },
        "dropout_logit_intercept": cohort.dropout_intercept,
        "deliveries": {c: [d.date.isoformat() for d in items] for c, items in deliveries.items()},
        "simulation": {
            "seed": seed,
            "n_subjects": n_subjects,
            "faults": faults,
            "study": study.study_id,
        },
        "faults_hide": log.hidden,
    }
    sealed = {
        "randomisation.csv": randomisation_csv(subjects),
        "truth.json": dumps(truth_json(study, params, subjects, extras)),
        "subjects_truth.csv": subjects_truth_csv(study, params, subjects, devices),
        "sessions_truth.csv": sessions_truth_csv(devices),
        "ices_truth.csv": ice_truth_csv(study, subjects, devices),
        "delivery_events.json": dumps({"paths": "relative to the raw root", "events": log.events}),
        "faults.json": dumps(
            {"line_numbering": LINE_NUMBERING, "faults": log.faults, "trial_faults": trial_faults}
        ),
    }
    if faults:
        sealed[MISSING_LIST] = randomisation_csv([s for s in subjects if s.subject_id != dropped])
    sealed_dir.mkdir(parents=True, exist_ok=True)
    for name, text in sealed.items():
        (sealed_dir / name).write_text(text, encoding="utf-8", newline="\n")

    sessions: dict[str, int] = {}
    for dev in devices:
        sessions[dev.vendor] = sessions.get(dev.vendor, 0) + len(dev.sessions)
    rand = [s for s in subjects if s.randomised]
    return SimulationSummary(
        raw_dir=raw_dir,
        sealed_dir=sealed_dir,
        seed=seed,
        faults=faults,
        n_screened=len(subjects),
        n_randomised=len(rand),
        n_screen_failures=len(subjects) - len(rand),
        n_withdrawn=sum(s.withdrawn is not None for s in rand),
        n_deliveries=sum(len(v) for v in deliveries.values()),
        n_files=len(renderer.files),
        total_bytes=total,
        files_by_kind=dict(sorted(kinds.items())),
        n_sessions=dict(sorted(sessions.items())),
        n_delivery_events=len(log.events),
        n_faults=len(log.faults),
        elapsed_s=time.perf_counter() - started,
        sealed_files=list(sealed),
    )
