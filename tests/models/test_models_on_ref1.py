"""Every model of this package on ref1's raw tree through the asset graph's reading and
derivations, unblinded and blinded (slow: materialises the whole delivery tree twice)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from materialise import Tables

from study import Study, load_study
from trial.models.ancova import fit_ancova
from trial.models.device import device_summary
from trial.models.lmm import fit_lmm
from trial.models.multiplicity import fixed_sequence_from_results
from trial.models.responders import fit_responders
from trial.models.result import ModelResult
from trial.models.safety import safety_summary
from trial.models.secondary import fit_durability, fit_plantar
from trial.models.sides import fit_sides, sides_long
from trial.models.subgroups import subgroup_effects
from trial.models.tidy import BLINDED_NOTE

STUDY_FILE = Path(__file__).resolve().parents[2] / "study" / "studies" / "ion301.yaml"


def run_all(tabs: Tables, study: Study) -> dict[str, ModelResult]:
    """Every model fitted on ref1's analysis-ready tables as the asset graph stored them."""
    long = tabs.analysis_long
    responders = fit_responders(tabs.adsl, tabs.adhdss, tabs.adsweat, study)
    return {
        "lmm": fit_lmm(long, study),
        "ancova": fit_ancova(long, study),
        "responders": responders,
        "subgroups": subgroup_effects(long, tabs.adsl, study),
        "sides": fit_sides(sides_long(tabs.adsweat_side, tabs.adsl, study), study),
        "plantar": fit_plantar(tabs.adsweat, tabs.adsl, study),
        "durability": fit_durability(tabs.adsweat, tabs.adsl, study),
        "safety": safety_summary(tabs.adae, tabs.adsl, study),
        "device": device_summary(tabs.addev, tabs.adsl, study),
        "sequence": fixed_sequence_from_results(study, None, responders),
    }


@pytest.mark.slow
def test_unblinded_run_on_ref1(ref1_dir: Path, ref1_run: Tables) -> None:
    study = load_study(STUDY_FILE)
    results = run_all(ref1_run, study)
    expected = json.loads((ref1_dir / "expected" / "results.json").read_text())["lmm"]
    assert results["lmm"].fit["reml_loglik"] == pytest.approx(expected["reml_loglik"], abs=1e-4)
    shares = results["responders"].tables["shares"]
    # FAS by arm per README: TAP 38, GLY 39, OXY 41
    fas = dict(
        shares.filter(pl.col("endpoint") == "hdss_responder").select("arm", "n_subjects").rows()
    )
    assert fas == {"TAP": 38, "GLY": 39, "OXY": 41}
    for result in results.values():
        assert BLINDED_NOTE not in result.notes
    completed = results["device"].tables["by_arm"].get_column("completed_share")
    assert completed.max() <= 1.0  # type: ignore[operator]


@pytest.mark.slow
def test_blinded_run_on_ref1_fits_nothing_and_shows_no_arm(ref1_blinded_run: Tables) -> None:
    study = load_study(STUDY_FILE)
    results = run_all(ref1_blinded_run, study)
    for name in ("lmm", "ancova", "responders", "subgroups", "sides", "plantar", "durability"):
        assert BLINDED_NOTE in results[name].notes, name
        assert results[name].estimates.height == 0, name
    arm_codes = set(study.arm_codes)
    for name, result in results.items():
        for table_name, table in result.tables.items():
            if "arm" in table.columns:
                assert set(table.get_column("arm").unique().to_list()) == {"pooled"}, (
                    name,
                    table_name,
                )
            for column in table.columns:
                if table.schema[column] == pl.String:
                    values = set(table.get_column(column).drop_nulls().unique().to_list())
                    assert not values & arm_codes, (name, table_name, column)
    decisions = results["sequence"].tables["fixed_sequence"].get_column("decision")
    assert set(decisions) == {"not tested"}
