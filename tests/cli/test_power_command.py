"""``ionto power``: power by simulation, checked on scenarios with known answers."""

from __future__ import annotations

import pytest

from ionto.cli import main


def _cells(line: str) -> list[str]:
    return [c.strip(" │") for c in line.split("┆")]


def _power_rows(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """hypothesis id -> power, read from the printed table by its column labels."""
    lines = capsys.readouterr().out.splitlines()
    header = _cells(next(line for line in lines if "hypothesis" in line))
    hyp, power = header.index("hypothesis"), header.index("power")
    rows = {}
    for line in lines:
        cells = _cells(line)
        if len(cells) == len(header) and cells[hyp] in {"H1", "H2"}:
            rows[cells[hyp]] = float(cells[power])
    return rows


def test_zero_effect_rejects_at_about_alpha(capsys: pytest.CaptureFixture[str]) -> None:
    """All arms share the same true change: the rejection rate is the type I error, 0.05.
    200 seeded replicates: the binomial SD of the estimate is 0.015."""
    code = main(
        [
            "power",
            "--subjects",
            "45",
            "--sims",
            "200",
            "--quiet",
            "--effect",
            "TAP=-1.2,GLY=-1.2,OXY=-1.2",
        ]
    )
    assert code == 0
    power = _power_rows(capsys)
    assert set(power) == {"H1", "H2"}
    for value in power.values():
        assert 0.01 <= value <= 0.10


def test_large_effect_has_high_power(capsys: pytest.CaptureFixture[str]) -> None:
    """A GLY-TAP difference of -1.0 on the log scale (SE about 0.15 at 90 subjects) is found
    in nearly every replicate."""
    code = main(
        [
            "power",
            "--subjects",
            "90",
            "--sims",
            "40",
            "--quiet",
            "--effect",
            "TAP=-1.0,GLY=-2.0,OXY=-1.0",
        ]
    )
    assert code == 0
    assert _power_rows(capsys)["H1"] >= 0.95


def test_effect_for_an_unknown_arm_is_refused() -> None:
    with pytest.raises(SystemExit, match="PLACEBO"):
        main(["power", "--subjects", "30", "--sims", "2", "--effect", "PLACEBO=-1"])


def test_the_table_is_labelled(capsys: pytest.CaptureFixture[str]) -> None:
    """Subjects in all and per arm, alpha and the true effect are on the printed table."""
    code = main(["power", "--subjects", "31", "--sims", "2", "--quiet", "--effect", "GLY=-1.7"])
    assert code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Power of the primary MMRM contrasts at W4: two-sided alpha 0.05")
    assert "TAP -1.20, GLY -1.70, OXY -1.40; effect = arm - TAP" in lines[1]
    header = _cells(next(line for line in lines if "hypothesis" in line))
    assert header[:6] == [
        "subjects (total)",
        "per arm (TAP/GLY/OXY)",
        "hypothesis",
        "contrast",
        "effect",
        "alpha",
    ]
    rows = [_cells(line) for line in lines if "GLY-TAP" in line or "OXY-TAP" in line]
    assert [r[:6] for r in rows] == [
        ["31", "11/10/10", "H1", "GLY-TAP", "-0.5", "0.05"],
        ["31", "11/10/10", "H2", "OXY-TAP", "-0.2", "0.05"],
    ]
