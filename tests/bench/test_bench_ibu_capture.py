"""Integration: the capture loop against the emulated IBU-1 on a pty and on socket://, one
fault scenario at a time, checked against the emulator's own record of what it produced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench_helpers import assert_exactly_once, run_ibu

pytestmark = pytest.mark.timeout(60)  # a hung device test fails instead of blocking the suite

SESSION = {"session": {"sid": "S0001", "ma_set": 15.0, "duration_s": 6, "polarity_every_s": 2}}


def _with(*steps: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"at": 0.3, **SESSION}, *steps]


SCENARIOS: dict[str, list[dict[str, Any]]] = {
    "clean": _with(),
    "corrupt_crc": _with({"at": 1.0, "corrupt": 3}),
    "dropped_frames": _with({"at": 1.0, "drop": 4}, {"at": 3.0, "drop": 1}),
    "truncated": _with({"at": 1.0, "truncate": 2}),
    "glued": _with({"at": 1.0, "glue": 3}),
    "unplug_replug": _with({"at": 2.0, "unplug": 1.0}),
    "power_cycle": _with({"at": 3.0, "power_cycle": 0.5}),
}


@pytest.mark.parametrize("kind", ["pty", "tcp"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_exactly_once(kind: str, name: str, tmp_path: Path) -> None:
    run = run_ibu(kind, tmp_path, SCENARIOS[name])
    assert_exactly_once(run)
    gaps = [r for r in run.records if r["type"] == "GAP"]
    assert gaps == [], "no frame is lost in these scenarios: every gap is fillable"
    bad = [r for r in run.records if r["type"] == "BAD"]
    if name == "corrupt_crc":
        assert [r["reason"] for r in bad] == ["CRC"] * 3
    if name == "truncated":
        assert [r["reason"] for r in bad] == ["NO_CRC"] * 2
    if name in ("clean", "glued", "dropped_frames", "unplug_replug"):
        assert bad == []
    if name == "dropped_frames":
        assert run.capture is not None and run.capture.stats.resends >= 2
    boots = {r["boot"] for r in run.records if r["type"] not in ("BAD", "GAP")}
    assert len(boots) == (2 if name == "power_cycle" else 1)
    assert all(r["unit"] == "IBU-00031" for r in run.records if r["type"] != "BAD")


def test_replug_under_another_name_is_found_by_serial(tmp_path: Path) -> None:
    run = run_ibu("pty", tmp_path, _with({"at": 2.0, "unplug": 1.0, "rename": True}))
    assert_exactly_once(run)
    assert [r for r in run.records if r["type"] == "GAP"] == []
    assert run.capture is not None and run.capture.stats.connects == 2


def test_power_cycle_while_unplugged_records_an_open_gap(tmp_path: Path) -> None:
    steps = _with({"at": 2.0, "unplug": 1.5}, {"at": 2.5, "power_cycle": 0.2})
    run = run_ibu("tcp", tmp_path, steps)
    assert_exactly_once(run)
    gaps = [r for r in run.records if r["type"] == "GAP"]
    first_boot = run.generated[0][0]
    assert len(gaps) == 1 and gaps[0]["boot"] == first_boot and gaps[0]["to_seq"] is None
    held = [s for b, s, _ in run.expected if b == first_boot]
    written = [r["seq"] for r in run.records if r.get("boot") == first_boot and "seq" in r]
    assert gaps[0]["from_seq"] == max(written) + 1 <= max(held)


def test_resend_past_the_ring_buffer_is_a_closed_gap(tmp_path: Path) -> None:
    # 12-frame ring; the unit streams ~25 frames while unplugged: RESEND gets NAK,GONE
    steps = _with({"at": 1.0, "unplug": 2.5})
    run = run_ibu("tcp", tmp_path, steps, ring_frames=12)
    assert_exactly_once(run)
    gaps = [r for r in run.records if r["type"] == "GAP"]
    assert len(gaps) == 1 and gaps[0]["to_seq"] is not None
    naks = [r["raw"] for r in run.records if r["type"] == "NAK"]
    assert any(",GONE," in raw for raw in naks)
    gone_oldest = int(next(raw for raw in naks if ",GONE," in raw).split(",")[4].split("*")[0])
    assert gaps[0]["to_seq"] == gone_oldest - 1
