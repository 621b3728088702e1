"""Balance capture against the emulated MT-SICS balance (pty and socket://), worklist and
interactive modes, faults, and a restart that neither re-weighs nor re-writes a phase."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.bench.balance_capture import BalanceCapture, BalanceTiming, WorklistError, read_worklist
from ingest.bench.emulators.balance import BalanceEmulator, BalanceScenario
from ingest.bench.emulators.lines import PtyLine, TcpLine

pytestmark = pytest.mark.timeout(60)  # a hung device test fails instead of blocking the suite

SPEED = 25.0
WORKLIST = (
    "paper_id,subject_id,visit,region,side,phase\n"
    "P1,C02-0001,BL,PALM,L,dry\n"
    "P2,C02-0001,BL,PALM,R,dry\n"
    "P1,C02-0001,BL,PALM,L,wet\n"
    "P2,C02-0001,BL,PALM,R,wet\n"
)
LOADS = [0.1234, 0.2345, 0.1534, 0.3001]
OPERATOR = {"loads_g": LOADS, "dwell_s": 0.3, "gap_s": 1.0}


def _records(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(out.glob("balance_*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def _run(
    tmp_path: Path,
    scenario: BalanceScenario,
    kind: str = "pty",
    worklist: str | None = WORKLIST,
    ask: Callable[[str], str] = input,
    stop_when: Callable[[str], bool] | None = None,
    emulator: BalanceEmulator | None = None,
    discover: list[str] | None = None,
) -> tuple[int, list[str], BalanceEmulator]:
    if emulator is None:
        link = str(tmp_path / "ttyBAL") if discover else None
        line = PtyLine(link) if kind == "pty" else TcpLine()
        emulator = BalanceEmulator(line, scenario, SPEED)
        threading.Thread(target=emulator.run, daemon=True).start()
    wl = None
    if worklist is not None:
        wl = tmp_path / "worklist.csv"
        wl.write_text(worklist, encoding="utf-8")
    said: list[str] = []
    stop = threading.Event()

    def say(text: str) -> None:
        said.append(text)
        if stop_when is not None and stop_when(text):
            stop.set()

    capture = BalanceCapture(
        emulator.line.name,
        tmp_path / "out",
        "anna",
        regions=["PALM", "SOLE"],
        sides=["L", "R"],
        worklist=wl,
        timing=BalanceTiming().scaled(SPEED),
        stop_event=stop,
        discover=discover,
        ask=ask,
        say=say,
    )
    code = capture.run()
    return code, said, emulator


@pytest.mark.parametrize("kind", ["pty", "tcp"])
def test_worklist_with_faults(kind: str, tmp_path: Path) -> None:
    scenario = BalanceScenario(
        operator=OPERATOR,
        i4_busy=1,
        stability_timeout_s=2.0,
        steps=[{"at": 0, "reply": "S I"}, {"at": 0, "reply": "S +"}, {"at": 0, "reply": "ES"}],
    )
    code, said, emulator = _run(tmp_path, scenario, kind)
    emulator.stop_event.set()
    assert code == 0
    records = _records(tmp_path / "out")
    assert [r["paper_id"] for r in records] == ["P1", "P2"]
    p1 = records[0]
    assert p1["dry"]["value"] == "0.1234" and p1["wet"]["value"] == "0.1534"
    assert p1["dry"]["raw"] == "S S     0.1234 g" and p1["dry"]["unit"] == "g"
    assert p1["dry"]["at"].endswith("+00:00") and p1["wet"]["at"] > p1["dry"]["at"]
    assert (p1["balance_serial"], p1["operator"]) == ("B123456789", "anna")
    assert set(p1) == {
        "paper_id",
        "subject_id",
        "visit",
        "region",
        "side",
        "balance_serial",
        "operator",
        "dry",
        "wet",
    }
    assert any("did not settle" in s for s in said)
    assert any("overload" in s for s in said)
    assert any("syntax error" in s for s in said)
    assert "S I" in emulator.model.sent and "S +" in emulator.model.sent
    assert any(line.startswith("S D") for line in emulator.model.sent)
    assert emulator.model.stable_replies == 4, "each phase weighed exactly once"


def test_milligram_balance_and_unsettled_pan(tmp_path: Path) -> None:
    scenario = BalanceScenario(
        unit="mg",
        operator={"loads_g": LOADS, "dwell_s": 0.3, "gap_s": 1.0},
        steps=[{"at": 0.5, "unsettled_s": 3.0}],
    )
    code, _, emulator = _run(tmp_path, scenario)
    emulator.stop_event.set()
    assert code == 0
    records = _records(tmp_path / "out")
    assert [(r["dry"]["value"], r["dry"]["unit"]) for r in records] == [
        ("123.4", "mg"),
        ("234.5", "mg"),
    ]
    assert all(r["wet"]["raw"].startswith("S S") for r in records)


def test_restart_resumes_at_the_next_unweighed_phase(tmp_path: Path) -> None:
    scenario = BalanceScenario(operator=OPERATOR)
    code, said, emulator = _run(tmp_path, scenario, stop_when=lambda s: s.startswith("P1 wet"))
    assert code == 0 and "stopped" in said
    assert [r["paper_id"] for r in _records(tmp_path / "out")] == ["P1"]
    state = json.loads((tmp_path / "out" / "capture-balance.checkpoint.json").read_text())
    assert {tuple(x) for x in state["done"]} == {("P1", "dry"), ("P2", "dry"), ("P1", "wet")}
    assert state["pending"]["P2"]["dry"]["value"] == "0.2345"
    code, said, _ = _run(tmp_path, scenario, emulator=emulator)
    emulator.stop_event.set()
    records = _records(tmp_path / "out")
    assert [r["paper_id"] for r in records] == ["P1", "P2"]
    assert [r["wet"]["value"] for r in records] == ["0.1534", "0.3001"]
    assert emulator.model.stable_replies == 4, "no phase weighed twice across the restart"
    assert not any(s.startswith("P1") for s in said)


def test_interactive_mode(tmp_path: Path) -> None:
    answers = iter(["P9", "C02-0003", "w4", "palm", "r", "dry", "", "P9", "wet", "", ""])
    emulator_box: list[BalanceEmulator] = []

    def ask(prompt: str) -> str:
        answer = next(answers)
        if prompt.startswith("place the paper"):
            load = 0.25 if emulator_box[0].model.load == 0 else 0.31
            emulator_box[0].model.set_load(load, emulator_box[0].clock.now() - 1.0)
        return answer

    line = PtyLine()
    emulator = BalanceEmulator(line, BalanceScenario(), SPEED)
    emulator_box.append(emulator)
    threading.Thread(target=emulator.run, daemon=True).start()
    code, _, _ = _run(tmp_path, BalanceScenario(), worklist=None, ask=ask, emulator=emulator)
    emulator.stop_event.set()
    assert code == 0
    (record,) = _records(tmp_path / "out")
    assert (record["subject_id"], record["visit"], record["region"], record["side"]) == (
        "C02-0003",
        "W4",
        "PALM",
        "R",
    )
    assert (record["dry"]["value"], record["wet"]["value"]) == ("0.2500", "0.3100")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("paper_id,subject_id,visit,region,side\nP1,C,BL,PALM,L\n", "missing column"),
        (WORKLIST.replace("L,wet", "L,moist"), "not dry or wet"),
        (WORKLIST + "P1,C02-0001,BL,PALM,L,dry\n", "listed twice"),
    ],
)
def test_bad_worklists_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "wl.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WorklistError, match=message):
        read_worklist(path)


def test_balance_found_again_under_another_name(tmp_path: Path) -> None:
    scenario = BalanceScenario(
        operator={"loads_g": LOADS, "dwell_s": 0.3, "gap_s": 1.5},
        steps=[{"at": 0.1, "unplug": 0.5, "rename": True, "after_zero": True}],
    )
    code, said, emulator = _run(tmp_path, scenario, discover=[str(tmp_path / "ttyBAL*")])
    emulator.stop_event.set()
    assert code == 0
    records = _records(tmp_path / "out")
    assert [(r["dry"]["value"], r["wet"]["value"]) for r in records] == [
        ("0.1234", "0.1534"),
        ("0.2345", "0.3001"),
    ]
    assert any(s.startswith("balance B123456789 found on") for s in said)


def test_quick_paper_swap_is_refused_never_recorded_for_the_next_row(tmp_path: Path) -> None:
    """The operator swaps the weighed P1 for P2 faster than one poll (the pan never reads
    empty): P2's weight must not become P2's dry weight without the pan having been seen
    cleared; the driver refuses with a prompt and records nothing more."""
    scenario = BalanceScenario(operator={**OPERATOR, "swap": True})
    code, said, emulator = _run(
        tmp_path, scenario, stop_when=lambda text: text.startswith("refused:")
    )
    emulator.stop_event.set()
    assert code == 0
    refusal = next(s for s in said if s.startswith("refused:"))
    assert "0.2345 g, not paper P1 (0.1234 g)" in refusal and "lift it off" in refusal
    assert any(s == "remove paper P1 from the pan" for s in said)
    assert emulator.model.stable_replies == 1, "only P1 dry was weighed"
    assert _records(tmp_path / "out") == []
    state = json.loads((tmp_path / "out" / "capture-balance.checkpoint.json").read_text("utf-8"))
    assert state["done"] == [["P1", "dry"]] and state["awaiting_clear"]
    assert state["pending"]["P1"]["dry"]["value"] == "0.1234"


def test_draught_longer_than_the_stability_timeout(tmp_path: Path) -> None:
    """A draught outlasts the balance's stability timeout twice over while P1 is weighed:
    each ``S I`` is reported and the weighing retried; every phase is weighed once, right."""
    scenario = BalanceScenario(
        operator=OPERATOR,
        stability_timeout_s=2.0,
        steps=[{"at": 0.0, "unsettled_s": 8.0, "after_zero": True}],
    )
    code, said, emulator = _run(tmp_path, scenario)
    emulator.stop_event.set()
    assert code == 0
    unsettled = [s for s in said if "did not settle" in s]
    assert len(unsettled) >= 2 and all(s.startswith("P1 dry: S:") for s in unsettled)
    assert emulator.model.sent.count("S I") == len(unsettled)
    assert said[-1].endswith(f"; {len(unsettled)} unsettled (S I) weighing(s) retried")
    records = _records(tmp_path / "out")
    assert [(r["paper_id"], r["dry"]["value"], r["wet"]["value"]) for r in records] == [
        ("P1", "0.1234", "0.1534"),
        ("P2", "0.2345", "0.3001"),
    ]
    assert emulator.model.stable_replies == 4
