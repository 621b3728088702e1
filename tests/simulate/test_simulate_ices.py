"""Amendment 1 in the simulated trial: cm.csv from the amendment on, rescue rows behind every
ICE2 of the truth, session gaps that meet the ICE1 rule while the subject keeps attending
visits, and ices_truth.csv computed by the protocol's rule from the simulated sessions."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from study import Study
from trial.estimands.config import ice_rules
from trial.simulate import SimulationSummary


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))


def _latest(root: Path, centre: str) -> Path:
    return sorted((root / centre).iterdir())[-1]


def test_cm_csv_only_from_the_amendment_on(clean_run: SimulationSummary, study: Study) -> None:
    first = study.simulation.cm_first_delivery
    assert first is not None
    for centre in study.centres:
        for folder in sorted((clean_run.raw_dir / centre).iterdir()):
            has_cm = (folder / "cm.csv").exists()
            assert has_cm == (dt.date.fromisoformat(folder.name) >= first), folder


def test_truth_ices_are_in_the_raw_files(clean_run: SimulationSummary, study: Study) -> None:
    truth = _rows(clean_run.sealed_dir / "ices_truth.csv")
    rules = ice_rules(study)
    kinds = {(r["ice"], r["basis"], r["simulated_cause"]) for r in truth}
    assert (rules.discontinuation, "SESSION_GAP", "session_gap") in kinds
    assert (rules.rescue, "RESCUE", "rescue") in kinds
    assert (rules.discontinuation, "WITHDRAWAL", "withdrawn") in kinds
    cm = [r for c in study.centres for r in _rows(_latest(clean_run.raw_dir, c) / "cm.csv")]
    rescue = {
        r["subject_id"]: r["start_date"]
        for r in sorted(cm, key=lambda r: r["start_date"], reverse=True)
        if r["indication"] == "HYPERHIDROSIS" and r["rescue"] == "Y"
    }
    truth_rescue = {r["subject_id"]: r["date"] for r in truth if r["ice"] == rules.rescue}
    assert rescue == truth_rescue
    assert any(r["indication"] == "HYPERHIDROSIS" and r["rescue"] == "N" for r in cm)
    assert any(r["indication"] == "OTHER" for r in cm)


def test_session_gaps_meet_the_rule_and_visits_go_on(
    clean_run: SimulationSummary, study: Study
) -> None:
    rules = ice_rules(study)
    max_gap = rules.max_session_gap_days
    end_visit = rules.gap_until_visit
    sessions: dict[str, set[dt.date]] = {}
    for r in _rows(clean_run.sealed_dir / "sessions_truth.csv"):
        start = dt.datetime.fromisoformat(r["start_utc"].replace("Z", "+00:00")).date()
        sessions.setdefault(r["subject_id"], set()).add(start)
    visits = [r for c in study.centres for r in _rows(_latest(clean_run.raw_dir, c) / "visits.csv")]
    gaps = [
        r for r in _rows(clean_run.sealed_dir / "ices_truth.csv") if r["basis"] == "SESSION_GAP"
    ]
    assert gaps
    for gap in gaps:
        start = dt.date.fromisoformat(gap["date"])
        days = sorted(sessions[gap["subject_id"]])
        assert start - dt.timedelta(days=1) in days  # the day after the last session
        after = [d for d in days if d >= start]
        done = {
            r["visit"]: dt.date.fromisoformat(r["visit_date"])
            for r in visits
            if r["subject_id"] == gap["subject_id"] and r["status"] == "DONE"
        }
        until = min([*after[:1], done.get(end_visit, dt.date.max)])
        assert (until - start).days > max_gap
        assert any(d > start + dt.timedelta(days=max_gap) for d in done.values())
    withdrawn = [
        r for r in _rows(clean_run.sealed_dir / "ices_truth.csv") if r["basis"] == "WITHDRAWAL"
    ]
    for row in withdrawn:  # a withdrawal's ICE is the day after a session (or the BL date)
        days = sorted(sessions.get(row["subject_id"], set()))
        date = dt.date.fromisoformat(row["date"])
        assert not days or date - dt.timedelta(days=1) in days
