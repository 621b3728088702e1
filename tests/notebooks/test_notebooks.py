"""The notebooks run top to bottom on materialised outputs of a small trial.

Notebooks are jupytext percent scripts (``notebooks/*.py``, no stored outputs); the tests pair
them to notebooks in memory and execute them with nbclient in a fresh kernel, pointing
``IONTO_OUT`` at the run's output folder."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))


def execute(paths: list[Path], out_dir: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run notebooks one after the other in one kernel (one start-up, shared imports);
    returns the combined notebook with outputs (raises on any cell error)."""
    notebooks = [jupytext.read(path) for path in paths]
    combined = notebooks[0]
    for extra in notebooks[1:]:
        combined.cells.extend(extra.cells)
    monkeypatch.setenv("IONTO_OUT", str(out_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(
        combined, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()
    return combined


def _text(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        str(output.get("text", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def test_notebooks_are_diff_friendly_percent_scripts():
    names = {p.name for p in NOTEBOOKS}
    assert {"sweat_rate_exploration.py", "model_diagnostics.py"} <= names
    assert not list((REPO / "notebooks").glob("*.ipynb")), "store notebooks as paired scripts"
    for path in NOTEBOOKS:
        text = path.read_text("utf-8")
        assert "format_name: percent" in text
        assert "# %%" in text
        assert "IONTO_OUT" in text


EXPLORATION = REPO / "notebooks" / "sweat_rate_exploration.py"
DIAGNOSTICS = REPO / "notebooks" / "model_diagnostics.py"


def test_notebooks_run_on_an_unblinded_run(synthetic_unblinded_out, monkeypatch):
    nb = execute([EXPLORATION, DIAGNOSTICS], synthetic_unblinded_out, monkeypatch)
    text = _text(nb)
    assert "groups: ['TAP', 'GLY', 'OXY']" in text
    assert "max |fitted - empirical| variance" in text
    assert "MMRM not fitted" not in text


@pytest.mark.slow
def test_notebooks_run_pooled_on_a_blinded_run(synthetic_blinded_out, monkeypatch):
    nb = execute([EXPLORATION, DIAGNOSTICS], synthetic_blinded_out, monkeypatch)
    text = _text(nb)
    assert "groups: ['TOTAL']" in text
    assert "MMRM not fitted (blinded run)" in text


@pytest.mark.slow
def test_notebooks_run_on_a_small_simulated_trial(tmp_path, monkeypatch):
    """End to end: simulate a small trial, run every asset, execute both notebooks on it."""
    from pipelines.run import run_pipeline
    from trial.simulate import simulate_trial
    from study import load_study

    summary = simulate_trial(load_study(), n_subjects=36, seed=11, raw_dir=tmp_path / "raw")
    report = run_pipeline(
        tmp_path / "raw",
        tmp_path / "run",
        unblind_path=summary.sealed_dir / "randomisation.csv",
    )
    assert report.success, report.describe()
    nb = execute([EXPLORATION, DIAGNOSTICS], tmp_path / "run", monkeypatch)
    assert "max |fitted - empirical| variance" in _text(nb)
