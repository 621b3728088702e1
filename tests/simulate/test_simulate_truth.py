"""The simulated values follow the SAP's section 9 and the truth matches the raw tree."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import math
import statistics
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from study import Study
from trial.simulate import SimulationSummary, simulate_trial


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))


def current(root: Path, centre: str, name: str) -> list[dict[str, str]]:
    return read_csv(sorted((root / centre).iterdir())[-1] / name)


def papers(root: Path) -> dict[tuple[str, str, str, str], float]:
    """Latest rate (mg/min) per paper, later deliveries winning."""
    out: dict[tuple[str, str, str, str], float] = {}
    for path in sorted(root.rglob("gravimetry_*.csv"), key=lambda p: (p.parent.name, p.name)):
        for r in read_csv(path):
            if not r["wet_weight"]:
                continue
            scale = 1000.0 if r["unit"] == "g" else 1.0
            diff = (float(r["wet_weight"]) - float(r["dry_weight"])) * scale
            out[(r["subject_id"], r["visit"], r["region"], r["side"])] = diff / (
                int(r["collection_s"]) / 60
            )
    return out


def test_screening_rates_and_entry(clean_run: SimulationSummary, study: Study) -> None:
    rates = papers(clean_run.raw_dir)
    palm = study.primary_region.code
    scr = study.visit_codes[0]
    sealed = read_csv(clean_run.sealed_dir / "randomisation.csv")
    by_subject: dict[str, list[float]] = {}
    for (sid, visit, region, _), rate in rates.items():
        if visit == scr and region == palm:
            by_subject.setdefault(sid, []).append(rate)
    geo = [math.exp(sum(math.log(r) for r in v) / len(v)) for v in by_subject.values()]
    median = math.exp(study.simulation.log_median_screening)  # ION-301: 60 mg/min
    assert 0.8 * median < statistics.median(geo) < 1.25 * median
    entry = study.gravimetry.entry_min_rate_mg_min
    for r in sealed:
        assert min(by_subject[r["subject_id"]]) >= entry
    sd = statistics.stdev(math.log(g) for g in geo)
    assert abs(sd - study.simulation.sd_log_screening) < 0.2


def test_allocation_balanced_within_strata(clean_run: SimulationSummary, study: Study) -> None:
    sealed = read_csv(clean_run.sealed_dir / "randomisation.csv")
    dm = {
        r["subject_id"]: r for c in study.centres for r in current(clean_run.raw_dir, c, "dm.csv")
    }
    strata: dict[tuple[str, str], dict[str, int]] = {}
    for r in sealed:
        centre = dm[r["subject_id"]]["centre_id"]
        assert r["stratum"] == study.stratum_levels[int(dm[r["subject_id"]]["hdss_screening"])]
        counts = strata.setdefault((centre, r["stratum"]), dict.fromkeys(study.arm_codes, 0))
        counts[r["arm"]] += 1
    for counts in strata.values():  # permuted blocks of 6, 1:1:1: never more than 2 apart
        assert max(counts.values()) - min(counts.values()) <= 2
    assert len(sealed) == clean_run.n_randomised == 120


def test_truth_counts_and_effects(clean_run: SimulationSummary, study: Study) -> None:
    truth = json.loads((clean_run.sealed_dir / "truth.json").read_text("utf-8"))
    subjects = read_csv(clean_run.sealed_dir / "subjects_truth.csv")
    counts = truth["counts"]
    assert counts["randomised"] == 120
    assert 0.08 < counts["screen_failures"] / counts["screened"] < 0.25
    first_post = study.visits[2].code.lower()
    assert len(counts["never_treated"]) == 1 and counts[f"withdrawn_before_{first_post}"]
    assert counts["bl_palm_missing"] and counts["device_swaps"]
    assert bool(counts["vendor_b_subjects"]) == (study.simulation.vendor_b_share > 0)
    assert counts["out_of_window_visits"] > 0
    assert 0.03 < counts["withdrawn"] / counts["randomised"] < 0.2
    change = study.simulation.primary_mean_change
    for arm, target in change.items():
        vals = [
            float(s[f"true_mean_chg_{study.primary_visit}"])
            for s in subjects
            if s["arm"] == arm and s["never_treated"] == "N"
        ]
        assert abs(statistics.mean(vals) - target) < 0.2
    ref = study.reference_arm
    for arm in study.treated_arms:  # ION-301: GLY-TAP = -1.6 - (-1.2) = -0.4
        assert truth["population_contrasts"][study.primary_visit][f"{arm}-{ref}"] == (
            pytest.approx(change[arm] - change[ref])
        )
    never = counts["never_treated"][0]
    rows = {s["subject_id"]: s for s in subjects}
    assert rows[never]["n_sessions"] == "0"
    bl = {(k[0], k[1]) for k in papers(clean_run.raw_dir) if k[2] == study.primary_region.code}
    for sid in counts["bl_palm_missing"]:
        assert (sid, study.baseline_visit) not in bl and (sid, study.visit_codes[0]) in bl


def test_sessions_truth_reach_raw(clean_run: SimulationSummary, study: Study) -> None:
    """Every simulated session is in the raw tree; vendor-A start minus the file's
    utc_offset is the true UTC even after a daylight-saving change (the offset is kept)."""
    tz = ZoneInfo(study.simulation.timezone)
    stale = 0
    sessions = read_csv(clean_run.sealed_dir / "sessions_truth.csv")
    root = clean_run.raw_dir
    a_rows: set[tuple[str, str, str]] = set()  # serial, session_no, true UTC start
    for path in root.rglob("ionto-a_*.csv"):
        serial = path.name.split("_")[1]
        lines = path.read_text("utf-8").splitlines()
        offset = next(x for x in lines if x.startswith("#utc_offset=")).split("=")[1]
        sign = 1 if offset[0] == "+" else -1
        shift = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
        for r in csv.DictReader(x for x in lines if not x.startswith("#")):
            utc = dt.datetime.fromisoformat(r["start"]) - shift  # the offset as issued, no DST
            a_rows.add((serial, r["session_no"], f"{utc:%Y-%m-%dT%H:%M:%SZ}"))
            stale += utc.replace(tzinfo=dt.UTC).astimezone(tz).utcoffset() != shift
    b_starts: dict[str, float] = {}
    b_charge: dict[str, float] = {}
    for path in root.rglob("ionto-b_*.jsonl"):
        lines = path.read_text("utf-8").splitlines()
        for e in json.loads("[" + ",".join(lines) + "]"):
            if e["ev"] == "start":
                b_starts[e["sid"]] = e["ma_set"]
            elif e["ev"] == "sample":
                b_charge[e["sid"]] = b_charge.get(e["sid"], 0.0) + e["ma"] / 2
    reset = {
        (r["serial"], str(n))
        for r in json.loads((clean_run.sealed_dir / "truth.json").read_text("utf-8"))["counts"][
            "clock_resets"
        ]
        for n in r["session_nos"]
    }
    for s in sessions:
        if s["vendor"] == "A":
            if (s["device_serial"], s["session_no"]) not in reset:
                assert (s["device_serial"], s["session_no"], s["start_utc"]) in a_rows
        else:
            assert s["sid"] in b_starts
            assert b_charge[s["sid"]] == pytest.approx(
                float(s["vendor_b_charge_mc_rect"]), abs=1e-3
            )
    vendors = {"A", "B"} if study.simulation.vendor_b_share > 0 else {"A"}
    assert {s["vendor"] for s in sessions} == vendors
    assert stale > 0  # some units keep a winter offset into summer (or the reverse)


def test_vendor_a_clock_reset_and_factory_reset(faulty_run: SimulationSummary) -> None:
    events = json.loads((faulty_run.sealed_dir / "delivery_events.json").read_text("utf-8"))[
        "events"
    ]
    clock = next(e for e in events if e["kind"] == "clock_reset")
    dated_2000 = set()
    for rel in clock["files"]:
        for line in (faulty_run.raw_dir / rel).read_text("utf-8").splitlines():
            parts = line.split(",")
            if len(parts) == 10 and parts[1].startswith("2000-01-"):
                dated_2000.add(int(parts[0]))
    assert dated_2000 == set(clock["session_nos"])
    reset = next(e for e in events if e["kind"] == "factory_reset")
    numbers = []
    for path in sorted(faulty_run.raw_dir.rglob(f"ionto-a_{reset['serial']}_*.csv")):
        lines = [x for x in path.read_text("utf-8").splitlines() if x[:1].isdigit()]
        numbers.append([int(x.split(",")[0]) for x in lines])
    assert any(a and b and b[-1] < a[-1] for a, b in itertools.pairwise(numbers))


@pytest.mark.slow
def test_demo_size(tmp_path: Path, study: Study) -> None:
    """The demo study size runs through and holds its randomised count."""
    n = int(study.simulation.subjects)
    summary = simulate_trial(study, n, 2026, tmp_path / "raw", faults=True)
    assert summary.n_randomised == n
    assert summary.n_faults >= 9 and summary.files_by_kind["ionto-b"] > 0
