"""``ionto power``: power by simulation, checked on scenarios with known answers."""

from __future__ import annotations

import pytest

from ionto.cli import main


def _power_rows(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """hypothesis id -> power, read from the printed table."""
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = [c.strip() for c in line.split("┆")]
        if len(cells) > 3 and cells[1] in {"H1", "H2"}:
            rows[cells[1]] = float(cells[3])
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
