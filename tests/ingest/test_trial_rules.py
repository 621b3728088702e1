"""Trial-level rules (``data_contracts/trial_rules.yaml``) on a small hand-made delivery tree,
read by the pipeline's own per-delivery reader and resolver: every breach is quarantined or
found with its file and line, and nothing else moves."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from data_contracts.contracts import use_study
from data_contracts.trial_rules import BLOCKING, FINDING, load_trial_rules
from ingest.deliveries import manifest_delivery_keys
from ingest.incremental import read_delivery_folder, resolve_raw_datasets
from ingest.integrity import apply_trial_rules, plausibility
from ingest.landing import scan_raw
from ingest.manifest import current_files
from ingest.registry import SOURCES, subject_datasets
from ingest.sealed import sealed_signature
from ingest.source_format import Resolved, SourceFormat
from ingest.telemetry import resolve_telemetry
from ingest.telemetry_rules import backwards_events, key_findings
from study import EXAMPLE_STUDIES, Study, load_study

SEALED = sealed_signature(load_study())
"""The sealed list's signature for the design-independent cases (ION-301)."""
DM = "subject_id,centre_id,consent_date,sex,birth_year,plantar_involved,hdss_screening"
VISITS = "subject_id,visit,visit_date,status"
HDSS = "subject_id,visit,hdss"
AE = "subject_id,ae_id,term,verbatim,onset_date,end_date,severity,serious,related"
DEVICES = "subject_id,device_serial,region,from_date,to_date"
GRAV = (
    "subject_id,visit,region,side,paper_id,dry_weight,wet_weight,unit,collection_s,"
    "collected_at,room_temp_c,humidity_pct,acclimatisation_min,operator,balance_serial"
)


@dataclass(frozen=True)
class Tree:
    """A small two-delivery tree of a study: its first, second and fourth centres (``c1``,
    ``c2``, ``c4``), its screening, baseline and first post-baseline visits, its primary
    region and the first three AE terms of its codelist."""

    study: Study

    @property
    def c1(self) -> str:
        return self.study.centres[0]

    @property
    def c2(self) -> str:
        return self.study.centres[1]

    @property
    def c4(self) -> str:
        return self.study.centres[3]

    @property
    def d1(self) -> str:
        """The first delivery folder of ``c1``."""
        return f"{self.c1}/2026-02-09/"

    @property
    def d2(self) -> str:
        """The second delivery folder of ``c1``."""
        return f"{self.c1}/2026-03-09/"

    def s(self, k: int, centre: str | None = None) -> str:
        return f"{centre or self.c1}-{k:04d}"

    def paper(self, subject: str, visit: str, side: str, wet: str = "627.5") -> str:
        region = self.study.primary_region.code
        return (
            f"{subject},{visit},{region},{side},P-{subject}-{visit}-{side},530.6,{wet},mg,60,"
            "2026-01-19T11:04:31+01:00,21.2,41,25,L. Bauer,B1"
        )

    def first(self) -> dict[str, list[str]]:
        st = self.study
        scr, bl = st.baseline_fallback_visit, st.baseline_visit
        v1 = st.visit_codes[st.visit_codes.index(bl) + 1]
        t1, t2, t3 = st.codelists.ae_term[:3]
        region = st.primary_region.code
        s1, s2, s3, c1, d1 = self.s(1), self.s(2), self.s(3), self.c1, self.d1
        return {
            f"{d1}dm.csv": [
                DM,
                f"{s1},{c1},2026-01-10,M,2001,N,3",
                f"{s2},{c1},2026-01-10,X,1990,Y,4",  # line 3: sex X, quarantined by the reader
                f"{s3},{c1},2026-01-12,F,1985,N,3",
            ],
            f"{d1}ae.csv": [
                AE,
                f"{s1},{s1}-AE01,{t1},itch,2026-01-20,,MILD,N,Y",
                f"{s1},{s1}-AE02,{t2},tingle,2026-01-21,,MILD,N,Y",
                f"{s3},{s3}-AE01,{t3},headache,2026-01-05,,MILD,N,N",  # line 4: pre-consent
            ],
            f"{d1}visits.csv": [
                VISITS,
                f"{s1},{scr},2026-01-12,DONE",
                f"{s1},{bl},2026-01-19,DONE",
                f"{s1},{v1},,MISSED",
                f"{s3},{scr},2026-01-02,DONE",  # line 5: before consent 2026-01-12
                f"{s2},{scr},2026-01-12,DONE",
            ],
            f"{d1}hdss.csv": [HDSS, f"{s1},{bl},3", f"{s1},{v1},2"],  # line 3: MISSED
            f"{d1}devices.csv": [
                DEVICES,
                f"{s1},A-00001,{region},2026-01-19,",
                # line 3: serial still with s1
                f"{s3},A-00001,{region},2026-01-25,2026-02-01",
                f"{s2},A-00002,{region},2026-01-19,",
            ],
            f"{d1}gravimetry_{c1}_a.csv": [
                GRAV,
                self.paper(s1, bl, "L"),
                self.paper(self.s(9853, self.c4), bl, "L"),  # line 3: in no dm.csv
                self.paper(s2, scr, "L"),  # line 4: dm row quarantined: kept
                self.paper(s1, scr, "R", wet="1e400"),  # line 5: not finite
            ],
            # another centre
            f"{self.c2}/2026-02-09/dm.csv": [DM, f"{s1},{c1},2026-01-10,M,2001,N,3"],
        }

    def second(self) -> dict[str, list[str]]:
        # The latest ae.csv of c1 is cut to its header: both AEs of s1 stay in force.
        return {f"{self.d2}ae.csv": [AE]}


@pytest.fixture(params=EXAMPLE_STUDIES, ids=list(EXAMPLE_STUDIES))
def tree(request: pytest.FixtureRequest) -> Tree:
    """The small tree of each example study, its contracts bound."""
    study = load_study(request.param)
    use_study(study)
    return Tree(study)


def write_tree(root: Path, files: dict[str, list[str]]) -> None:
    for name, lines in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _resolve(raw: Path, study: Study, scratch: Path) -> dict[str, pl.DataFrame]:
    manifest = scan_raw(raw)
    keys = manifest_delivery_keys(manifest)
    sealed = sealed_signature(study)
    frames = [read_delivery_folder(raw, f, sealed) for f in keys["folder"]]
    tolerance = study.current_tolerance_pct
    out = resolve_raw_datasets(manifest, frames, raw, tolerance, scratch)
    return {name: frame for name, frame in out.items() if isinstance(frame, pl.DataFrame)}


@pytest.fixture
def resolved(tree: Tree, tmp_path: Path) -> dict[str, pl.DataFrame]:
    raw = tmp_path / "raw"
    write_tree(raw, {**tree.first(), **tree.second()})
    return _resolve(raw, tree.study, tmp_path / "scratch")


def at(frame: pl.DataFrame, code_col: str, code: str) -> list[tuple[str, int | None]]:
    rows = frame.filter(pl.col(code_col) == code)
    return sorted(zip(rows["source_file"], rows["source_line"], strict=True))


def test_every_rule_is_declared_with_severity_and_fix() -> None:
    rules = load_trial_rules()
    for code in (
        "UNKNOWN_SUBJECT",
        "WRONG_CENTRE",
        "SUBJECT_IN_TWO_CENTRES",
        "VISIT_BEFORE_CONSENT",
        "SERIAL_DOUBLE_ASSIGNED",
        "AE_BEFORE_CONSENT",
        "VISIT_NOT_DONE",
        "NON_FINITE",
        "IMPLAUSIBLE_VALUE",
        "TIMESTAMP_BACKWARDS",
    ):
        assert rules.rule(code).severity == BLOCKING, code
        assert rules.rule(code).fix
    for code in ("UNKNOWN_JSON_KEY", "DUPLICATE_JSON_KEY", "SNAPSHOT_ROW_MISSING"):
        assert rules.rule(code).severity == FINDING, code


def test_blocking_rules_quarantine_with_file_and_line(
    resolved: dict[str, pl.DataFrame], tree: Tree
) -> None:
    q = resolved["quarantine"]
    d1, c1 = tree.d1, tree.c1
    assert at(q, "reason_code", "UNKNOWN_SUBJECT") == [(f"{d1}gravimetry_{c1}_a.csv", 3)]
    assert at(q, "reason_code", "NON_FINITE") == [(f"{d1}gravimetry_{c1}_a.csv", 5)]
    assert at(q, "reason_code", "VISIT_BEFORE_CONSENT") == [(d1 + "visits.csv", 5)]
    assert at(q, "reason_code", "AE_BEFORE_CONSENT") == [(d1 + "ae.csv", 4)]
    assert at(q, "reason_code", "VISIT_NOT_DONE") == [(d1 + "hdss.csv", 3)]
    assert at(q, "reason_code", "SERIAL_DOUBLE_ASSIGNED") == [
        (d1 + "devices.csv", 2),
        (d1 + "devices.csv", 3),
    ]
    # One id in two centres: both dm rows quarantined; the subject stays registered.
    assert at(q, "reason_code", "SUBJECT_IN_TWO_CENTRES") == [
        (d1 + "dm.csv", 2),
        (f"{tree.c2}/2026-02-09/dm.csv", 2),
    ]
    unknown = q.filter(pl.col("reason_code") == "UNKNOWN_SUBJECT").row(0, named=True)
    stranger = tree.s(9853, tree.c4)
    region = tree.study.primary_region.code
    assert unknown["raw_text"].startswith(f"{stranger},{tree.study.baseline_visit},{region},L")
    assert stranger in unknown["message"] and "fix:" in unknown["message"]


def test_the_subject_rules_judge_every_dataset_whose_contract_names_a_subject() -> None:
    """Derived from the registry and the contracts: the datasets with ``subject_id`` but the
    register ``dm`` and the bench weighings (judged as the gravimetry papers they become)."""
    assert subject_datasets() == (
        "eligibility",
        "visits",
        "hdss",
        "ae",
        "cm",
        "disposition",
        "devices",
        "gravimetry",
    )


def _diary_contract(directory: Path) -> Path:
    """A toy EDC form's contract, outside ``data_contracts/``: rows that name a subject."""
    text = """apiVersion: v3.1.0
kind: DataContract
id: toy-diary
version: 1.0.0
status: active
name: diary
schema:
- name: diary
  physicalType: table
  properties:
  - {name: subject_id, logicalType: string, physicalType: String, required: true}
  - {name: entry, logicalType: string, physicalType: String}
  - {name: source_file, logicalType: string, physicalType: String, required: true}
  - {name: source_line, logicalType: integer, physicalType: Int64, required: true}
"""
    path = directory / "diary.odcs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_new_format_with_subject_rows_is_judged_with_no_other_edit(
    resolved: dict[str, pl.DataFrame], tree: Tree, tmp_path: Path
) -> None:
    diary_rows = pl.DataFrame(
        {
            "subject_id": [tree.s(3), tree.s(1, tree.c4)],
            "entry": ["slept well", "who?"],
            "source_file": [tree.d1 + "diary.csv"] * 2,
            "source_line": [2, 3],
        }
    )
    diary = SourceFormat(
        kind="diary",
        pattern=r"^diary\.csv$",
        datasets=("diary",),
        resolve=lambda _resolution: Resolved({"diary": diary_rows}),
        contracts={"diary": _diary_contract(tmp_path)},
    )
    names = subject_datasets((*SOURCES, diary))
    assert names == (*subject_datasets(), "diary")
    kept = {k: v for k, v in resolved.items() if k not in ("quarantine", "integrity_findings")}
    checked = apply_trial_rules(
        {**kept, "diary": diary_rows}, resolved["quarantine"], tmp_path, names
    )
    assert checked.datasets["diary"]["subject_id"].to_list() == [tree.s(3)]
    blocked = checked.quarantine.filter(pl.col("dataset") == "diary")
    assert at(blocked, "reason_code", "UNKNOWN_SUBJECT") == [(tree.d1 + "diary.csv", 3)]
    # Not registered, its rows are not judged.
    unjudged = apply_trial_rules(
        {**kept, "diary": diary_rows}, resolved["quarantine"], tmp_path, subject_datasets()
    )
    assert unjudged.datasets["diary"].height == 2


def test_no_blocked_row_reaches_a_dataset(resolved: dict[str, pl.DataFrame], tree: Tree) -> None:
    papers = resolved["gravimetry"]
    assert tree.s(9853, tree.c4) not in papers["subject_id"].to_list()
    # Kept: the paper of the subject whose dm row is quarantined (the subject exists).
    assert papers.filter(pl.col("subject_id") == tree.s(2)).height == 1
    assert papers.height == 2
    assert resolved["visits"].filter(pl.col("subject_id") == tree.s(3)).height == 0
    assert resolved["hdss"]["visit"].to_list() == [tree.study.baseline_visit]
    assert resolved["devices"]["subject_id"].to_list() == [tree.s(2)]
    assert resolved["dm"]["subject_id"].to_list() == [tree.s(3)]


def test_shrinking_snapshot_keeps_earlier_rows_with_a_finding(
    resolved: dict[str, pl.DataFrame], tree: Tree
) -> None:
    ae = resolved["ae"]
    s1 = tree.s(1)
    assert sorted(ae["ae_id"]) == [f"{s1}-AE01", f"{s1}-AE02"]
    assert set(ae["source_file"]) == {tree.d1 + "ae.csv"}
    found = resolved["integrity_findings"].filter(pl.col("finding") == "SNAPSHOT_ROW_MISSING")
    # Each missing row is named (line 4, before consent, is then quarantined too).
    assert at(found, "finding", "SNAPSHOT_ROW_MISSING") == [
        (tree.d1 + "ae.csv", 2),
        (tree.d1 + "ae.csv", 3),
        (tree.d1 + "ae.csv", 4),
    ]
    assert all(tree.d2 + "ae.csv" in d for d in found["detail"])


def test_a_later_snapshot_with_the_row_settles_it(tree: Tree, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    first = tree.first()
    third = {f"{tree.c1}/2026-04-06/ae.csv": first[tree.d1 + "ae.csv"]}
    write_tree(raw, {**first, **tree.second(), **third})
    out = _resolve(raw, tree.study, tmp_path / "scratch")
    assert set(out["ae"]["source_file"]) == {f"{tree.c1}/2026-04-06/ae.csv"}
    assert out["integrity_findings"].filter(pl.col("dataset") == "ae").height == 0


def test_plausibility_rejects_non_finite_and_implausible() -> None:
    frame = pl.DataFrame(
        {
            "source_file": ["f.csv"] * 3,
            "source_line": [2, 3, 4],
            "programmed_ma": [15.0, 9999.0, 15.0],
            "mean_ma": [14.8, 14.9, float("inf")],
            "_raw": ["a", "b", "c"],
        }
    )
    kept, q = plausibility(frame, "vendor_a_sessions", raw_text="_raw")
    assert kept["source_line"].to_list() == [2]
    assert q.select("source_line", "reason_code", "field", "raw_text").rows() == [
        (3, "IMPLAUSIBLE_VALUE", "programmed_ma", "b"),
        (4, "NON_FINITE", "mean_ma", "c"),
    ]


def _events(ts: list[str]) -> pl.DataFrame:
    base = dt.datetime(2026, 3, 14, 18, 0, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "source_file": ["C01/2026-03-15/ionto-b_B-1_20260314180000.jsonl"] * len(ts),
            "source_line": list(range(1, len(ts) + 1)),
            "dev": ["B-1"] * len(ts),
            "sid": ["s1"] * len(ts),
            "ts": [base + dt.timedelta(seconds=float(s)) for s in ts],
        }
    )


@pytest.mark.parametrize(
    ("offsets", "bad"),
    [
        (["0", "0.5", "1", "1.5", "2"], []),
        (["0", "0.5", str(1 - 86400), "1.5", "2"], [3]),  # a day early, mid-session
        (["0", "0.5", "1", str(1.5 + 86400), "2", "2.5"], [4]),  # a day late
        ([str(-86400), "0.5", "1", "1.5"], []),  # first event alone early: nothing before it
        (["0", "0.5", "1", "1.5", str(2 - 86400)], [5]),  # last event early
        (["0", "1", "5000", "2", "3", "-100", "4"], [3, 6]),  # two strays in one session
    ],
)
def test_backwards_events(offsets: list[str], bad: list[int]) -> None:
    events = _events(offsets)
    flagged = events.filter(backwards_events(events))
    assert flagged["source_line"].to_list() == bad


def test_vendor_b_backwards_sample_is_quarantined_and_not_integrated(tmp_path: Path) -> None:
    def ev(ts: str, kind: str, extra: str = "") -> str:
        return f'{{"ts":"2026-03-14T{ts}Z","dev":"B-00042","ev":"{kind}","sid":"7f3c"{extra}}}'

    lines = [
        ev("18:00:00.000", "start", ',"ma_set":10.0'),
        ev("18:00:00.500", "sample", ',"ma":10.0,"v":20.0'),
        ev("18:00:01.000", "sample", ',"ma":10.0,"v":20.0'),
        ev("18:00:01.500", "sample", ',"ma":10.0,"v":20.0').replace("03-14", "03-13"),
        ev("18:00:02.000", "sample", ',"ma":10.0,"v":20.0'),
        ev("18:00:02.500", "end", ',"reason":"COMPLETED"'),
        ev("18:00:02.600", "polarity", ',"volt":3,"dev":"B-00042"'),  # unknown + doubled key
    ]
    raw = tmp_path / "raw"
    write_tree(raw, {"C01/2026-03-15/ionto-b_B-00042_20260314180000.jsonl": lines})
    manifest = scan_raw(raw)
    frames = [read_delivery_folder(raw, "C01/2026-03-15", SEALED)]
    current = current_files(manifest, "vendor_b").select("source_file")
    telemetry = resolve_telemetry(
        [f["vendor_b"].lazy() for f in frames], current, raw, 10.0, tmp_path / "events"
    )
    q = telemetry.quarantine
    assert q.select("source_line", "reason_code").rows() == [(4, "TIMESTAMP_BACKWARDS")]
    session = telemetry.sessions.row(0, named=True)
    # Samples at 0.5, 1.0, 2.0 s of 10 mA: trapezoids 10 mA x 1.5 s = 15 mC, not a day's worth.
    assert session["charge_mc"] == pytest.approx(15.0)
    found = telemetry.findings
    assert found.select("source_line", "finding").sort("finding").rows() == [
        (7, "DUPLICATE_JSON_KEY"),
        (7, "UNKNOWN_JSON_KEY"),
    ]
    assert "volt" in found.filter(pl.col("finding") == "UNKNOWN_JSON_KEY")["detail"][0]


def test_key_findings_ignore_lines_as_devices_write_them() -> None:
    line = '{"ts":"2026-03-14T18:00:00.500Z","dev":"B-1","ev":"sample","sid":"s","ma":1.0,"v":2.0}'
    rows = pl.DataFrame(
        {
            "source_file": ["f"],
            "source_line": [1],
            "raw_text": [line],
            "ts": ["x"],
            "dev": ["B-1"],
            "ev": ["sample"],
            "sid": ["s"],
            "ma_set": [None],
            "ma": [1.0],
            "v": [2.0],
            "code": [None],
            "reason": [None],
        }
    )
    assert key_findings(rows).height == 0


def test_a_bad_repeat_in_a_later_vendor_a_export_is_blamed_not_the_good_one(
    tmp_path: Path,
) -> None:
    """A later export repeats session 2 with ``programmed_ma`` 9999 and session 3 with
    ``mean_ma`` 1e400: those lines are quarantined (implausible, not finite) before repeats are
    resolved, so no conflict blames the earlier, correct export and the sessions keep its
    values."""
    head = [
        "#serial=A-00001",
        "#firmware=3.2.1",
        "#exported_at=2026-02-01T12:00:00",
        "#utc_offset=+01:00",
        "session_no,start,duration_s,programmed_ma,mean_ma,max_v,charge_mc,polarity_switches,"
        "end_reason,fault_code",
    ]
    s1 = "1,2026-01-19T19:00:00,1200,15.0,14.85,22.8,17820.0,1,COMPLETED,"
    s2 = "2,2026-01-21T19:00:00,1200,15.0,14.87,25.1,17844.0,1,COMPLETED,"
    s3 = "3,2026-01-24T20:30:00,508,15.0,14.73,25.9,7482.8,0,STOPPED_BY_USER,"
    bad2 = s2.replace(",15.0,14.87,", ",9999,14.87,")
    bad3 = s3.replace(",14.73,", ",1e400,")
    raw = tmp_path / "raw"
    write_tree(
        raw,
        {
            "C01/2026-02-09/ionto-a_A-00001_20260201.csv": [*head, s1, s2, s3],
            "C01/2026-03-09/ionto-a_A-00001_20260301.csv": [*head, s1, bad2, bad3],
        },
    )
    manifest = scan_raw(raw)
    frames = [
        read_delivery_folder(raw, f, SEALED) for f in manifest_delivery_keys(manifest)["folder"]
    ]
    out = resolve_raw_datasets(manifest, frames, raw, 10.0, tmp_path / "scratch")
    q = out["quarantine"]
    assert isinstance(q, pl.DataFrame)
    later = "C01/2026-03-09/ionto-a_A-00001_20260301.csv"
    assert q.select("source_file", "source_line", "reason_code", "field").rows() == [
        (later, 7, "IMPLAUSIBLE_VALUE", "programmed_ma"),
        (later, 8, "NON_FINITE", "mean_ma"),
    ]
    sessions = out["vendor_a_sessions"]
    assert isinstance(sessions, pl.DataFrame)
    assert sessions.sort("session_no").select("programmed_ma", "mean_ma").rows() == [
        (15.0, 14.85),
        (15.0, 14.87),
        (15.0, 14.73),
    ]


def test_an_unreadable_latest_snapshot_keeps_the_earlier_rows(tree: Tree, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    first, d1, s1 = tree.first(), tree.d1, tree.s(1)
    write_tree(raw, {d1 + "dm.csv": first[d1 + "dm.csv"]})
    write_tree(raw, {d1 + "ae.csv": first[d1 + "ae.csv"][:3]})
    latest = raw / tree.d2 / "ae.csv"
    latest.parent.mkdir(parents=True)
    term = tree.study.codelists.ae_term[0]
    latest.write_bytes(
        AE.encode() + f"\n{s1},{s1}-AE01,{term},".encode() + b"\xff\xfe,2026-01-20\n"
    )
    out = _resolve(raw, tree.study, tmp_path / "scratch")
    ae, found = out["ae"], out["integrity_findings"]
    assert sorted(ae["ae_id"]) == [f"{s1}-AE01", f"{s1}-AE02"]
    assert at(found, "finding", "SNAPSHOT_UNREADABLE") == [(tree.d2 + "ae.csv", None)]
    assert at(found, "finding", "SNAPSHOT_ROW_MISSING") == [
        (d1 + "ae.csv", 2),
        (d1 + "ae.csv", 3),
    ]
    assert "not readable" in found.filter(finding="SNAPSHOT_ROW_MISSING")["detail"][0]
