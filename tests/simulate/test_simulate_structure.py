"""The simulated tree looks like ref1 file for file, column for column, format for format."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import re
from pathlib import Path

import pytest

from ingest.registry import edc_tables
from study import Study
from trial.simulate import SimulationSummary, simulate_trial

AMENDED_EDC = ["cm"]  # from protocol amendment 1 on; ref1 predates it
EDC = [t for t in edc_tables() if t not in AMENDED_EDC]
NAME_PATTERNS = [
    r"(dm|eligibility|visits|hdss|ae|cm|disposition|devices)\.csv",
    r"gravimetry_[A-Z0-9]+_\d{8}\.csv",
    r"ionto-a_A-\d{5}_\d{8}\.csv",
    r"ionto-b_B-\d{5}_\d{14}\.jsonl",
]


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def first_line(path: Path) -> str:
    return path.read_bytes().split(b"\n", 1)[0].decode("utf-8").rstrip("\r")


def read_events(path: Path) -> list[dict[str, object]]:
    lines = path.read_text("utf-8").splitlines()
    return list(json.loads("[" + ",".join(lines) + "]"))


def latest(root: Path, centre: str) -> Path:
    return sorted((root / centre).iterdir())[-1]


def test_same_seed_gives_identical_bytes(
    tmp_path: Path, study: Study, faulty_run: SimulationSummary
) -> None:
    again = simulate_trial(study, 40, 7, tmp_path / "raw", faults=True)
    first = tree_hashes(faulty_run.raw_dir)
    assert first == tree_hashes(again.raw_dir)
    assert tree_hashes(faulty_run.sealed_dir) == tree_hashes(again.sealed_dir)
    assert len(first) == faulty_run.n_files


def test_other_seed_differs(tmp_path: Path, study: Study, faulty_run: SimulationSummary) -> None:
    other = simulate_trial(study, 40, 8, tmp_path / "raw", faults=True)
    a, b = tree_hashes(faulty_run.raw_dir), tree_hashes(other.raw_dir)
    assert a != b
    assert (
        tree_hashes(faulty_run.sealed_dir)["truth.json"]
        != tree_hashes(other.sealed_dir)["truth.json"]
    )


def test_summary_counts_what_was_written(faulty_run: SimulationSummary) -> None:
    files = [p for p in faulty_run.raw_dir.rglob("*") if p.is_file()]
    assert faulty_run.n_files == len(files) == sum(faulty_run.files_by_kind.values())
    assert faulty_run.total_bytes == sum(p.stat().st_size for p in files)
    assert faulty_run.n_randomised == 40
    assert faulty_run.n_screened == faulty_run.n_randomised + faulty_run.n_screen_failures
    faults = json.loads((faulty_run.sealed_dir / "faults.json").read_text("utf-8"))["faults"]
    assert faulty_run.n_faults == len(faults)
    assert json.loads(json.dumps(faulty_run.to_dict()))["raw_dir"] == str(faulty_run.raw_dir)
    assert any(line.startswith("elapsed") for line in faulty_run.lines())


def test_refuses_a_non_empty_folder(tmp_path: Path, study: Study) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        simulate_trial(study, 20, 1, tmp_path / "raw")


def test_layout_and_file_names(clean_run: SimulationSummary, study: Study) -> None:
    root = clean_run.raw_dir
    assert sorted(p.name for p in root.iterdir()) == study.centres
    for path in root.rglob("*"):
        if path.is_file():
            rel = path.relative_to(root).parts
            assert len(rel) == 3, rel
            assert rel[0] in study.centres
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", rel[1])
            assert any(re.fullmatch(p, rel[2]) for p in NAME_PATTERNS), rel
    for centre in study.centres:
        deliveries = sorted((root / centre).iterdir())
        dates = [dt.date.fromisoformat(d.name) for d in deliveries]
        gaps = {(b - a).days for a, b in itertools.pairwise(dates)}
        assert gaps == {study.simulation.delivery_every_days}
        for d in deliveries:
            assert {f"{n}.csv" for n in EDC} <= {p.name for p in d.iterdir()}
    assert clean_run.files_by_kind["ionto-a"] > 0
    has_b = study.simulation.vendor_b_share > 0
    assert (clean_run.files_by_kind.get("ionto-b", 0) > 0) == has_b


def test_headers_equal_ref1(clean_run: SimulationSummary, ref1_dir: Path, study: Study) -> None:
    """Every study writes the export formats of ref1 (the site-exports spec)."""
    ours, ref = clean_run.raw_dir, ref1_dir / "raw"
    first = study.centres[0]
    for name in [*(f"{n}.csv" for n in EDC)]:
        assert first_line(latest(ours, first) / name) == first_line(latest(ref, "C01") / name)
    ours_g = next(ours.rglob("gravimetry_*.csv"))
    assert first_line(ours_g) == first_line(next(ref.rglob("gravimetry_*.csv")))
    ours_a = next(ours.rglob("ionto-a_*.csv")).read_text("utf-8").splitlines()
    ref_a = next(ref.rglob("ionto-a_*.csv")).read_text("utf-8").splitlines()
    keys = [line.split("=")[0] for line in ours_a if line.startswith("#")]
    assert keys == [line.split("=")[0] for line in ref_a if line.startswith("#")]
    assert ours_a[len(keys)] == ref_a[len(keys)]
    assert re.fullmatch(r"#utc_offset=[+-]\d\d:\d\d", ours_a[3])
    assert re.fullmatch(r"#exported_at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", ours_a[2])


def test_vendor_b_json_keys_equal_ref1(
    clean_run: SimulationSummary, ref1_dir: Path, study: Study
) -> None:
    if study.simulation.vendor_b_share == 0:
        assert not list(clean_run.raw_dir.rglob("ionto-b_*.jsonl")), "vendor A only"
        return

    def keys(paths: list[Path]) -> dict[str, set[tuple[str, ...]]]:
        out: dict[str, set[tuple[str, ...]]] = {}
        for p in paths:
            for event in read_events(p):
                out.setdefault(event["ev"], set()).add(tuple(event))
        return out

    ours = keys(sorted(clean_run.raw_dir.rglob("ionto-b_*.jsonl"))[:12])
    ref = keys(sorted((ref1_dir / "raw").rglob("ionto-b_*.jsonl"))[:8])
    for ev in ("start", "sample", "polarity", "end"):
        assert ours[ev] == ref[ev]
    assert ours.get("fault", {("ts", "dev", "ev", "sid", "code")}) == {
        ("ts", "dev", "ev", "sid", "code")
    }


def test_vendor_b_streams(clean_run: SimulationSummary, study: Study) -> None:
    """2 Hz samples, polarity at half time, file name = UTC time of the first event,
    rotation at 5000 lines so that some session spans two files, ma never negative."""
    if study.simulation.vendor_b_share == 0:
        assert not list(clean_run.raw_dir.rglob("ionto-b_*.jsonl")), "vendor A only"
        return
    units = sorted({p.name.split("_")[1] for p in clean_run.raw_dir.rglob("ionto-b_*.jsonl")})
    files = sorted(
        (
            p
            for p in clean_run.raw_dir.rglob("ionto-b_*.jsonl")
            if p.name.split("_")[1] in units[:2]
        ),
        key=lambda p: p.name,
    )
    spans: dict[str, set[str]] = {}
    half_s = study.treatment.session_minutes * 30
    for path in files:
        events = read_events(path)
        assert len(events) <= 5000
        stamp = events[0]["ts"][:19].replace("-", "").replace(":", "").replace("T", "")
        assert path.name.endswith(f"_{stamp}.jsonl")
        for e in events:
            assert e["ts"].endswith("Z") and len(e["ts"]) == 24
            spans.setdefault(e["sid"], set()).add(path.name)
            if e["ev"] == "sample":
                assert e["ma"] >= 0
        starts = {e["sid"]: e["ts"] for e in events if e["ev"] == "start"}
        for e in events:
            if e["ev"] == "polarity" and e["sid"] in starts:
                t0, t1 = starts[e["sid"]], e["ts"]
                secs = (int(t1[11:13]) * 3600 + int(t1[14:16]) * 60 + float(t1[17:23])) - (
                    int(t0[11:13]) * 3600 + int(t0[14:16]) * 60 + float(t0[17:23])
                )
                assert secs % 86400 == pytest.approx(half_s)
        samples = [e for e in events if e["ev"] == "sample"]
        if len(samples) > 2:
            a, b = samples[0]["ts"], samples[1]["ts"]
            assert round(float(b[17:23]) - float(a[17:23]), 3) % 60 == pytest.approx(0.5)
    assert any(len(v) == 2 for v in spans.values())


def test_line_endings_and_encoding(clean_run: SimulationSummary, study: Study) -> None:
    crlf = set(study.simulation.edc_crlf_centres)
    for path in clean_run.raw_dir.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        data.decode("utf-8")
        is_edc = path.stem in EDC or path.stem in AMENDED_EDC
        centre = path.parts[-3]
        if is_edc and centre in crlf:
            assert data.count(b"\r\n") == data.count(b"\n")
        else:
            assert b"\r" not in data
        assert data.endswith(b"\n")


def test_gravimetry_units_and_formats(clean_run: SimulationSummary, study: Study) -> None:
    grams = set(study.simulation.balance_in_grams_centres)
    non_ascii = set()
    other_collection = total = 0
    for path in clean_run.raw_dir.rglob("gravimetry_*.csv"):
        centre = path.parts[-3]
        for row in csv.DictReader(io.StringIO(path.read_text("utf-8"))):
            total += 1
            unit = "g" if centre in grams else "mg"
            assert row["unit"] == unit
            decimals = 4 if unit == "g" else 1
            assert re.fullmatch(rf"\d+\.\d{{{decimals}}}", row["dry_weight"])
            assert row["wet_weight"] == "" or re.fullmatch(
                rf"\d+\.\d{{{decimals}}}", row["wet_weight"]
            )
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", row["collected_at"])
            other_collection += row["collection_s"] != "60"
            if not row["operator"].isascii():
                non_ascii.add(centre)
    assert non_ascii == set(study.centres)
    assert 0.02 < other_collection / total < 0.09


def test_edc_content_rules(clean_run: SimulationSummary, study: Study) -> None:
    """Screen failures: SCR only, WITHDRAWN/SCREEN_FAILURE, not in the sealed list; MISSED
    visits have an empty date; some AE verbatims are quoted; ONGOING turns final."""
    root = clean_run.raw_dir
    sealed = {
        r["subject_id"]
        for r in csv.DictReader((clean_run.sealed_dir / "randomisation.csv").open(encoding="utf-8"))
    }
    failures: set[str] = set()
    quoted = 0
    for centre in study.centres:
        last = latest(root, centre)

        def rows(name: str, folder: Path = last) -> list[dict[str, str]]:
            return list(csv.DictReader(io.StringIO((folder / name).read_text("utf-8"))))

        for r in rows("disposition.csv"):
            assert r["status"] != "ONGOING"
            if r["reason"] == "SCREEN_FAILURE":
                assert r["status"] == "WITHDRAWN"
                failures.add(r["subject_id"])
        visits = rows("visits.csv")
        for r in visits:
            assert (r["status"] == "MISSED") == (r["visit_date"] == "")
            if r["subject_id"] in failures:
                assert r["visit"] == study.visit_codes[0]
        first = sorted((root / centre).iterdir())[0]
        assert any(r["status"] == "ONGOING" for r in rows("disposition.csv", first))
        quoted += (last / "ae.csv").read_text("utf-8").count('"') // 2
    assert failures and not failures & sealed
    assert quoted > 0


def in_study_terms(key: str, study: Study) -> str:
    """A ref1 (ION-301) truth key with its visit named as the study's: the primary visit for
    W4, the dropout visit for W12, the first post-baseline visit for W1."""
    first_post = study.visits[2].code.lower()
    for ion301, ours in (
        ("_w12", f"_{study.simulation.dropout_visit.lower()}"),
        ("_w4", f"_{study.primary_visit.lower()}"),
        ("_W4", f"_{study.primary_visit}"),
        ("_w1", f"_{first_post}"),
    ):
        if ion301 + "_" in key + "_":
            return (key + "_").replace(ion301 + "_", ours + "_")[:-1]
    return key


def test_sealed_files_outside_raw(
    faulty_run: SimulationSummary, ref1_dir: Path, study: Study
) -> None:
    raw, sealed = faulty_run.raw_dir, faulty_run.sealed_dir
    assert sealed == Path(str(raw) + "_sealed")
    names = {p.name for p in raw.rglob("*")}
    for name in ("randomisation.csv", "truth.json", "faults.json", "delivery_events.json"):
        assert name not in names
        assert (sealed / name).is_file()
    assert first_line(sealed / "randomisation.csv") == first_line(
        ref1_dir / "sealed" / "randomisation.csv"
    )
    for name in ("subjects_truth.csv", "sessions_truth.csv"):
        ref_header = first_line(ref1_dir / "expected" / name).split(",")
        assert first_line(sealed / name).split(",") == [
            in_study_terms(h, study) for h in ref_header
        ]
    truth = json.loads((sealed / "truth.json").read_text("utf-8"))
    ref = json.loads((ref1_dir / "expected" / "truth.json").read_text("utf-8"))
    assert {in_study_terms(k, study) for k in ref} <= set(truth)
    assert {in_study_terms(k, study) for k in ref["counts"]} <= set(truth["counts"])
    assert {in_study_terms(k, study) for k in ref["parameters"]} <= set(truth["parameters"])
    faults = json.loads((sealed / "faults.json").read_text("utf-8"))
    assert set(faults) == {"line_numbering", "faults", "trial_faults"}
