"""Every model of this package on a raw delivery tree of each example study drawn by the trial
simulator (``trial.simulate``, 60 subjects, seed 5) and read and derived by the asset graph,
unblinded (slow: materialises the whole tree). What the design decides is checked by hand on
the analysis tables: contrasts of the study's arms, its primary and durability visits, its
regions (ION-302: soles only, no separate plantar endpoint), its devices (ION-302: vendor A only,
no current samples), its responder thresholds and its fixed sequence at its alpha."""

from __future__ import annotations

from pathlib import Path

import materialise
import polars as pl
import pytest
from materialise import Tables

from data_contracts.contracts import use_study
from study import Study, example_study_path
from trial.models.ancova import fit_ancova
from trial.models.device import device_summary
from trial.models.lmm import fit_lmm
from trial.models.mmrm import fit_mmrm
from trial.models.multiplicity import fixed_sequence_from_results
from trial.models.responders import fit_responders
from trial.models.result import ModelResult
from trial.models.safety import safety_summary
from trial.models.secondary import NOT_APPLICABLE_NOTE, fit_durability, fit_plantar
from trial.models.sides import fit_sides, sides_long
from trial.models.subgroups import subgroup_effects
from trial.simulate import simulate_trial

SUBJECTS = 60
SEED = 5


@pytest.fixture(scope="module")
def tables(study: Study, tmp_path_factory: pytest.TempPathFactory) -> Tables:
    use_study(study)
    root = tmp_path_factory.mktemp(f"models_{study.study_id}")
    summary = simulate_trial(study, SUBJECTS, SEED, root / "raw")
    return materialise.materialise_tree(
        root / "raw",
        root / "out",
        example_study_path(Path(study.source).stem),
        unblind_path=summary.sealed_dir / "randomisation.csv",
        groups=materialise.CLEAN_AND_READY,
    )


@pytest.fixture(scope="module")
def results(tables: Tables, study: Study) -> dict[str, ModelResult]:
    long = tables.analysis_long
    mmrm = fit_mmrm(long, study)
    responders = fit_responders(tables.adsl, tables.adhdss, tables.adsweat, study)
    return {
        "mmrm": mmrm,
        "lmm": fit_lmm(long, study),
        "ancova": fit_ancova(long, study),
        "responders": responders,
        "subgroups": subgroup_effects(long, tables.adsl, study),
        "sides": fit_sides(sides_long(tables.adsweat_side, tables.adsl, study), study),
        "plantar": fit_plantar(tables.adsweat, tables.adsl, study),
        "durability": fit_durability(tables.adsweat, tables.adsl, study),
        "safety": safety_summary(tables.adae, tables.adsl, study),
        "device": device_summary(tables.addev, tables.adsl, study),
        "sequence": fixed_sequence_from_results(study, mmrm, responders),
    }


@pytest.mark.slow
def test_every_model_on_the_simulated_tree_follows_the_design(
    study: Study, tables: Tables, results: dict[str, ModelResult]
) -> None:
    ref = study.reference_arm
    contrasts = [f"{a}-{ref}" for a in study.treated_arms]
    per_visit = [(v, c) for v in study.model_visits for c in contrasts]
    for name in ("mmrm", "lmm", "sides"):
        assert results[name].fit["converged"] is True, name
        assert results[name].tables["contrasts"].select("visit", "contrast").rows() == per_visit
    ancova = results["ancova"].tables["contrasts"]
    assert ancova.select("visit", "contrast").rows() == [
        (study.primary_visit, c) for c in contrasts
    ]
    assert results["subgroups"].tables["forest"]["contrast"].unique().sort().to_list() == sorted(
        contrasts
    )
    # durability: subjects of the FAS with the primary region at both visits, by hand
    first, last = study.durability_visits
    fas = tables.adsl.filter(pl.col("FASFL") == "Y").select("subject_id", "arm")
    both = (
        tables.adsweat.filter(
            (pl.col("PARAMCD") == study.primary_region.paramcd)
            & pl.col("AVISIT").is_in([first, last])
            & pl.col("AVAL").is_not_null()
            & (pl.col("ANL01FL") == "Y")
        )
        .group_by("subject_id")
        .agg(pl.col("AVISIT").n_unique().alias("n"))
        .filter(pl.col("n") == 2)
        .join(fas, on="subject_id")
    )
    durability = results["durability"]
    assert durability.tables["contrasts"]["visit"].to_list() == [f"{last}/{first}"] * len(contrasts)
    by_arm = dict(durability.tables["by_arm"].select("arm", "n").rows())
    assert by_arm == {a: both.filter(pl.col("arm") == a).height for a in study.arm_codes}
    plantar = results["plantar"]
    if study.involvement_region is None:
        assert plantar.notes == [NOT_APPLICABLE_NOTE]
    else:
        assert plantar.tables["contrasts"]["contrast"].to_list() == contrasts


@pytest.mark.slow
def test_responders_and_the_fixed_sequence_by_hand(
    study: Study, tables: Tables, results: dict[str, ModelResult]
) -> None:
    """HDSS responders per arm counted from ADHDSS with the study's threshold (a FAS subject
    without a value at the primary visit is a non-responder), and the sequence's decisions
    from its p-values at the study's alpha."""
    points = study.endpoints.responder.hdss_improvement
    fas = tables.adsl.filter(pl.col("FASFL") == "Y").select("subject_id", "arm")
    improved = tables.adhdss.filter(
        (pl.col("AVISIT") == study.primary_visit) & (pl.col("CHG") <= -points)
    ).select("subject_id")
    counts = fas.join(improved, on="subject_id", how="left", coalesce=True)
    n_fas = dict(fas.group_by("arm").len().rows())
    n_resp = dict(fas.join(improved, on="subject_id").group_by("arm").len().rows())
    assert counts.height == fas.height
    shares = results["responders"].tables["shares"].filter(pl.col("endpoint") == "hdss_responder")
    for arm, n_subjects, n_responders in shares.select(
        "arm", "n_subjects", "n_responders"
    ).iter_rows():
        assert (n_subjects, n_responders) == (n_fas[arm], n_resp.get(arm, 0))
    sequence = results["sequence"].tables["fixed_sequence"]
    assert sequence["id"].to_list() == [h.id for h in study.endpoints.key_secondary_sequence]
    expected, stopped = [], False
    for p in sequence["p_value"].to_list():
        if stopped or p is None:
            expected.append("not tested")
            stopped = True
        elif p <= study.alpha:
            expected.append("reject")
        else:
            expected.append("not rejected")
            stopped = True
    assert sequence["decision"].to_list() == expected
    assert sequence["p_value"].null_count() == 0


@pytest.mark.slow
def test_safety_and_device_by_arm_region_and_vendor(
    study: Study, tables: Tables, results: dict[str, ModelResult]
) -> None:
    saf = tables.adsl.filter(pl.col("SAFFL") == "Y")
    n_saf = dict(saf.group_by("arm").len().rows())
    denominators = results["safety"].tables["denominators"]
    assert dict(denominators.rows()) == n_saf
    device = results["device"].tables["by_arm"]
    regions = {r.code for r in study.regions}
    assert set(device["region"]) <= regions
    primary = device.filter(pl.col("region") == study.primary_region.code)
    planned = sum(
        (p.weeks[1] - p.weeks[0] + 1) * p.sessions_per_week for p in study.treatment.phases
    )
    assert dict(primary.select("arm", "sessions_planned").rows()) == {
        a: n * planned for a, n in n_saf.items()
    }
    vendors = set(tables.device_sessions["vendor"].unique())
    if study.simulation.vendor_b_share == 0:  # vendor A devices only: no current samples
        assert primary["n_sessions_with_samples"].to_list() == [0] * primary.height
        assert primary["within_tolerance_share"].null_count() == primary.height
        assert vendors == {"A"}
