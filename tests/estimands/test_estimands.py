"""The estimands of each example study's file (its ICEs, estimands, tipping-point grid, arms,
visits and alpha) on its ``analysis_long`` - for ION-301 the reference trial ref1's (120
subjects, R-validated MMRM input), for ION-302 one of the same size from the analysis-level
simulator (``tests/design_data.py``) - with ICEs placed by hand.

- the primary estimand (E1, MMRM) with no rescue is section 7's primary MMRM exactly; with a
  rescue it is the MMRM on the rows before the rescue;
- the ICE table the engine receives, and the rows a hypothetical strategy removes;
- the second estimand's conditional mean (jackknife) and approximate Bayesian MI (Rubin's rules)
  agree within Monte-Carlo error;
- the tipping point: the first delta whose CI (of the study's coverage) includes 0, linear in
  delta under conditional mean imputation;
- blinded: nothing fitted, the estimands table and pooled ICE counts only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats

from study import Study, parse_study
from trial.estimands.analysis import (
    estimand_data,
    estimand_rbi,
    monte_carlo_agreement,
    run_estimand,
)
from trial.estimands.config import estimands_config
from trial.estimands.results import (
    PRIMARY_ANALYSIS,
    definitions_table,
    estimand_results,
    ice_counts,
    tipping_point_result,
    tipping_points,
)
from trial.models.mmrm import fit_mmrm
from trial.models.tidy import BLINDED_NOTE
from trial.rbi.simulate import TrialDesign, simulate_trial


def _raw(study: Study) -> dict[str, Any]:
    """The study's configuration as a mapping, to change and parse again (:func:`_study`)."""
    return study.model_dump(mode="json")


def _study(raw: dict[str, Any]) -> Study:
    return parse_study(raw, "changed-in-test.yaml")


def _without(value: Any, codes: set[str]) -> Any:
    """A configuration mapping without the arms or centres ``codes``: their keys, list items,
    entries with that ``code`` and contrasts naming them."""
    if isinstance(value, dict):
        return {k: _without(v, codes) for k, v in value.items() if k not in codes}
    if isinstance(value, list):
        return [
            _without(v, codes)
            for v in value
            if not (isinstance(v, str) and v in codes)
            and not (
                isinstance(v, dict)
                and (v.get("code") in codes or any(c in str(v.get("contrast", "")) for c in codes))
            )
        ]
    return value


@pytest.fixture(scope="module")
def analysis_long(design_long: pl.DataFrame) -> pl.DataFrame:
    return design_long


def disc(study: Study) -> str:
    """The study's id of the treatment-discontinuation ICE (``ICE1``, ``DISC``)."""
    return study.discontinuation_ice[0]


def resc(study: Study) -> str:
    """The study's id of the rescue ICE (``ICE2``, ``RESC``)."""
    return study.rescue_ice[0]


def at(study: Study, k: int) -> tuple[str, int]:
    """(code, 1-based index) of the study's ``k``-th model visit (negative: from the end)."""
    visits = study.model_visits
    k = k % len(visits)
    return visits[k], k + 1


def primary_at(study: Study) -> tuple[str, int]:
    return at(study, study.model_visits.index(study.primary_visit))


def _adice(study: Study, rows: list[tuple[str, str, tuple[str, int]]]) -> pl.DataFrame:
    """ADICE rows ``(subject, ICE, (first_visit, first_visit_index))``."""
    return pl.DataFrame(
        {
            "subject_id": [r[0] for r in rows],
            "ICE": [r[1] for r in rows],
            "basis": ["RESCUE" if r[1] == resc(study) else "WITHDRAWAL" for r in rows],
            "first_visit": [r[2][0] for r in rows],
            "first_visit_index": [r[2][1] for r in rows],
            "n_post_ice_rows": [0] * len(rows),
        },
        schema={
            "subject_id": pl.String,
            "ICE": pl.String,
            "basis": pl.String,
            "first_visit": pl.String,
            "first_visit_index": pl.Int64,
            "n_post_ice_rows": pl.Int64,
        },
    )


def _subjects(frame: pl.DataFrame) -> list[str]:
    return frame["subject"].unique(maintain_order=True).to_list()


def _complete(frame: pl.DataFrame, study: Study) -> list[str]:
    """Subjects with a value at every model visit, in order of appearance."""
    n = len(study.model_visits)
    counts = frame.filter(pl.col("chg").is_not_null()).group_by("subject").len()
    full = set(counts.filter(pl.col("len") == n)["subject"].to_list())
    return [s for s in _subjects(frame) if s in full]


def test_e1_without_rescue_is_the_primary_mmrm_exactly(
    study: Study, analysis_long: pl.DataFrame
) -> None:
    config = estimands_config(study)
    e1 = config.estimands[0]
    assert e1.method == "mmrm"
    ids = _subjects(analysis_long)
    adice = _adice(
        study, [(ids[0], disc(study), primary_at(study)), (ids[5], disc(study), at(study, 1))]
    )
    e1_result = run_estimand({"FAS": analysis_long}, adice, e1, config, study)
    primary = fit_mmrm(analysis_long, study)
    contrasts = e1_result.filter(pl.col("parameter").str.starts_with("trt_"))
    expected = primary.tables["contrasts"]
    assert contrasts["visit"].to_list() == expected["visit"].to_list()
    assert contrasts["contrast"].to_list() == expected["contrast"].to_list()
    for ours, theirs in [("estimate", "estimate"), ("se", "std_error"), ("df", "df")]:
        assert (contrasts[ours].to_numpy() == expected[theirs].to_numpy()).all()
    lsm = e1_result.filter(pl.col("parameter").str.starts_with("lsm_"))
    assert (lsm["estimate"].to_numpy() == primary.tables["lsmeans"]["estimate"].to_numpy()).all()


def test_e1_sets_post_rescue_values_missing(study: Study, analysis_long: pl.DataFrame) -> None:
    config = estimands_config(study)
    ids = _subjects(analysis_long)
    rescued = ids[3:9]
    visit = primary_at(study)
    adice = _adice(study, [(s, resc(study), visit) for s in rescued])
    e1_result = run_estimand({"FAS": analysis_long}, adice, config.estimands[0], config, study)
    kept = analysis_long.filter(
        ~pl.col("subject").is_in(rescued) | (pl.col("visit_index") < visit[1])
    )
    assert kept.height < analysis_long.height
    by_hand = fit_mmrm(kept, study).tables["contrasts"]
    contrasts = e1_result.filter(pl.col("parameter").str.starts_with("trt_"))
    assert np.array_equal(contrasts["estimate"].to_numpy(), by_hand["estimate"].to_numpy())
    primary = fit_mmrm(analysis_long, study).tables["contrasts"]
    assert not np.allclose(contrasts["estimate"].to_numpy(), primary["estimate"].to_numpy())


def test_estimand_data_removes_hypothetical_rows_and_lists_the_switch_visit(
    study: Study, analysis_long: pl.DataFrame
) -> None:
    config = estimands_config(study)
    e2 = config.estimands[1]
    (strategy,) = {h.missing for h in e2.ices.values()} - {"MAR"}
    a, b, c = _complete(analysis_long, study)[:3]
    # a: rescue at the third model visit, discontinuation later; b: discontinuation at the last
    adice = _adice(
        study,
        [
            (a, disc(study), at(study, -2)),
            (a, resc(study), at(study, 2)),
            (b, disc(study), at(study, -1)),
        ],
    )
    data, ice = estimand_data(analysis_long, adice, e2)
    assert data.height == analysis_long.height  # rows stay, outcomes are set missing
    rows_a = data.filter(pl.col("subject") == a)
    assert rows_a.filter(pl.col("chg").is_not_null())["visit_index"].max() == 2  # post-rescue
    assert rows_a.filter(pl.col("visit_index") >= 3)["chg"].null_count() == (
        rows_a.filter(pl.col("visit_index") >= 3).height
    )
    for subject in (b, c):  # post-discontinuation values are used (treatment policy)
        assert data.filter(pl.col("subject") == subject)["chg"].null_count() == 0
    # the earlier ICE switches
    assert ice.rows() == [(a, at(study, 2)[0], strategy), (b, at(study, -1)[0], strategy)]


def _small_trial(
    study: Study, effect_last: float = -0.5
) -> tuple[Study, pl.DataFrame, pl.DataFrame]:
    """A simulated two-arm trial (``trial.rbi.simulate``: 160 subjects over the study's model
    visits, 30 % discontinue at a uniform visit, values after it missing) as ``analysis_long``
    (the study's first two centres and strata, alternating) and ``adice``, and the study cut to
    its first two arms and two centres, with the tipping point at the last visit."""
    arms = (study.reference_arm, study.arm_codes[1])
    design = TrialDesign(
        n_subjects=160, n_visits=len(study.model_visits), labels=arms, effect_last=effect_last
    )
    c1, c2 = study.centres[:2]
    s1, s2 = study.stratum_codes[:2]
    long, ice = simulate_trial(design, seed=3)
    visits = study.model_visits
    index = pl.DataFrame({"sim": [f"W{j + 1}" for j in range(len(visits))], "visit": visits})
    index = index.with_columns(visit_index=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))
    number = pl.col("subject").str.slice(1).cast(pl.Int64)
    data = (
        long.rename({"visit": "sim", "base": "logbase", "y": "chg"})
        .join(index, on="sim")
        .drop("sim")
        .with_columns(
            # arms alternate by subject number: centres and strata cross them
            centre=pl.when(number // 2 % 2 == 0).then(pl.lit(c1)).otherwise(pl.lit(c2)),
            stratum=pl.when(number // 4 % 2 == 0).then(pl.lit(s1)).otherwise(pl.lit(s2)),
        )
    )
    adice = (
        ice.rename({"visit": "sim"})
        .join(index, on="sim")
        .select(
            pl.col("subject").alias("subject_id"),
            ICE=pl.lit(disc(study)),
            basis=pl.lit("WITHDRAWAL"),
            first_visit=pl.col("visit"),
            first_visit_index=pl.col("visit_index"),
            n_post_ice_rows=pl.lit(0, dtype=pl.Int64),
        )
    )
    dropped = {*study.arm_codes[2:], *study.centres[2:]}
    raw = _without(_raw(study), dropped)
    raw["allocation"]["ratio"] = raw["allocation"]["ratio"][:2]
    raw["estimands"]["tipping_point"]["visit"] = visits[-1]
    return _study(raw), data, adice


def test_e2_conditional_mean_and_bayesian_mi_agree_within_monte_carlo_error(
    study: Study,
) -> None:
    small, data, adice = _small_trial(study)
    config = estimands_config(small)
    e2 = config.estimands[1]
    populations = {"FAS": data}
    primary = run_estimand(populations, adice, e2, config, small)
    check = estimand_rbi(populations, adice, e2, config, small, "bayes-approx", 100, seed=7)
    agreement = monte_carlo_agreement(primary, check)
    assert agreement.height == len(small.model_visits) * 3  # visits x (1 contrast + 2 LS means)
    assert agreement["n_imputations"].unique().to_list() == [100]
    assert agreement["agree"].all(), agreement.filter(~pl.col("agree"))
    first = agreement.filter(pl.col("visit") == small.model_visits[0])
    assert (first["mc_se"] < 1e-9).all()  # nothing missing at the first visit: no MC error
    assert (agreement.filter(pl.col("visit") != small.model_visits[0])["mc_se"] > 0).all()
    # J2R pulls the drug arm towards the reference: a smaller effect at the last visit than MAR
    mar = estimand_rbi(populations, adice.head(0), e2, config, small, "condmean-jackknife")
    last = small.model_visits[-1]

    def effect(frame: pl.DataFrame) -> float:
        row = frame.filter(pl.col("visit") == last, pl.col("parameter").str.starts_with("trt_"))
        return float(row["estimate"][0])

    assert abs(effect(primary)) < abs(effect(mar.pooled))


def _with_grid(study: Study, start: float, step: float, top: float) -> Study:
    raw = _raw(study)
    raw["estimands"]["tipping_point"].update(delta_start=start, delta_step=step, delta_max=top)
    return _study(raw)


def test_tipping_point_is_the_first_delta_whose_ci_includes_zero(study: Study) -> None:
    small, data, adice = _small_trial(study, effect_last=-1.0)
    coarse = _with_grid(small, 0.0, 0.25, 3.0)
    adsl = data.select(pl.col("subject").alias("subject_id"), "arm").unique()
    result = tipping_point_result({"FAS": data}, adsl, adice, coarse)
    curve, points = result.tables["curve"], result.tables["tipping"]
    assert points.equals(tipping_points(curve))
    rows = curve.sort("delta")
    tip = points.row(0, named=True)
    assert tip["contrast"] == f"{small.arm_codes[1]}-{small.reference_arm}"
    assert tip["visit"] == small.model_visits[-1]
    assert tip["reached"] and rows.height > 2
    assert rows["includes_zero"].to_list() == [False] * (rows.height - 1) + [True]
    assert tip["tipping_delta"] == rows["delta"][-1]
    assert rows["delta"].to_list() == [0.25 * k for k in range(rows.height)]
    # conditional mean imputation: the estimate moves linearly with delta, towards 0
    slope = np.diff(rows["estimate"].to_numpy()) / np.diff(rows["delta"].to_numpy())
    assert np.allclose(slope, slope[0], rtol=1e-8, atol=1e-12)
    assert slope[0] > 0 and rows["estimate"][0] < 0
    # jackknife intervals are normal, of the study's coverage (90 % for ION-302's alpha 0.10)
    z = stats.norm.ppf(1 - study.alpha / 2)
    np.testing.assert_allclose(rows["uci"] - rows["estimate"], z * rows["se"], rtol=1e-10)
    # the reported estimate at the tipping point carries that same interval, and the note says
    # which coverage the rule used
    (estimate,) = result.estimates.iter_rows(named=True)
    last = rows.row(rows.height - 1, named=True)
    assert estimate["term"] == f"{tip['contrast']} at delta {tip['tipping_delta']}"
    assert (estimate["ci_low"], estimate["ci_high"]) == pytest.approx(
        (last["lci"], last["uci"]), rel=1e-10
    )
    assert f"until the {study.ci_label} at {tip['visit']} first includes 0" in result.notes[0]


def test_tipping_points_of_a_hand_made_curve() -> None:
    curve = pl.DataFrame(
        {
            "arm": ["GLY"] * 3 + ["OXY"],
            "contrast": ["GLY-TAP"] * 3 + ["OXY-TAP"],
            "visit": ["W4"] * 4,
            "delta": [0.0, 0.05, 0.1, 0.0],
            "estimate": [-0.3, -0.2, -0.1, -0.05],
            "lci": [-0.5, -0.4, -0.3, -0.2],
            "uci": [-0.1, -0.01, 0.1, 0.1],
            "includes_zero": [False, False, True, True],
        }
    )
    points = tipping_points(curve)
    assert points.select("arm", "tipping_delta", "reached", "estimate_at_0").rows() == [
        ("GLY", 0.1, True, -0.3),
        ("OXY", 0.0, True, -0.05),
    ]


def test_blinded_results_fit_nothing_and_say_so(study: Study, analysis_long: pl.DataFrame) -> None:
    blinded = analysis_long.drop("arm")
    ids = _subjects(analysis_long)
    adsl = pl.DataFrame({"subject_id": ids, "FASFL": ["Y"] * len(ids)})
    adice = _adice(
        study, [(ids[0], disc(study), primary_at(study)), (ids[1], resc(study), at(study, -1))]
    )
    primary = fit_mmrm(analysis_long, study)
    result = estimand_results({"FAS": blinded}, adsl, adice, primary, study)
    assert result.estimates.height == 0 and BLINDED_NOTE in result.notes
    assert set(result.tables) == {"definitions", "ice_counts"}
    assert result.tables["ice_counts"]["group"].unique().to_list() == ["TOTAL"]
    assert result.tables["ice_counts"]["n_subjects"].to_list() == [1, 1]
    assert result.tables["definitions"]["estimand"].to_list() == [
        e.id for e in study.estimands.definitions
    ]
    tipping = tipping_point_result({"FAS": blinded}, adsl, adice, study)
    assert tipping.estimates.height == 0 and tipping.notes == [BLINDED_NOTE]


def test_unblinded_results_put_each_estimand_beside_the_primary(study: Study) -> None:
    small, data, adice = _small_trial(study)
    adsl = (
        data.select(pl.col("subject").alias("subject_id"), "arm")
        .unique(maintain_order=True)
        .with_columns(FASFL=pl.lit("Y"))
    )
    raw = _raw(small)
    checked = [d["id"] for d in raw["estimands"]["definitions"] if d.get("check")]
    for definition in raw["estimands"]["definitions"]:
        if definition.get("check"):
            definition["check"]["n_samples"] = 20
    fast = _study(raw)
    ids = [e.id for e in study.estimands.definitions]
    result = estimand_results({"FAS": data}, adsl, adice, fit_mmrm(data, fast), fast)
    at_visit = result.tables["primary_visit"]
    assert at_visit["estimand"].unique(maintain_order=True).to_list() == [PRIMARY_ANALYSIS, *ids]
    assert set(at_visit["visit"]) == {e.visit for e in study.estimands.definitions}
    primary = at_visit.filter(pl.col("estimand") == PRIMARY_ANALYSIS)
    e1 = at_visit.filter(pl.col("estimand") == ids[0])
    assert np.array_equal(primary["estimate"].to_numpy(), e1["estimate"].to_numpy())
    counts = result.tables["ice_counts"].filter(pl.col("ICE") == disc(study))
    assert counts["n_subjects"].sum() == adice.height
    assert result.estimates.height == len(ids)  # estimands x 1 contrast
    if checked:
        assert result.tables["check"]["n_imputations"].unique().to_list() == [20]
        assert any(n.startswith(f"{checked[0]} check (") for n in result.notes)
    else:
        assert "check" not in result.tables


def test_definitions_and_ice_counts_follow_the_study_file(study: Study) -> None:
    config = estimands_config(study)
    table = definitions_table(config)
    definitions = study.estimands.definitions
    assert table["estimand"].to_list() == [e.id for e in definitions]
    assert table["visit"].to_list() == [e.visit for e in definitions]
    # one column per ICE of the study, named by its id and name
    for ice, rule in study.intercurrent_events.items():
        column = f"{ice} ({rule.name})"
        assert table[column].to_list() == [
            f"{e.ices[ice].strategy}: "
            + (
                "observed values used"
                if e.ices[ice].observed == "use"
                else "post-ICE values set missing"
            )
            + f"; missing values {e.ices[ice].missing}"
            for e in definitions
        ]
    assert table["method"].to_list() == [
        e.method + ("" if e.check is None else f" (check: {e.check.method})") for e in definitions
    ]
    # ICE counts: FAS subjects with each ICE per arm of the study, every arm and ICE listed
    arms = study.arm_codes
    adsl = pl.DataFrame(
        {
            "subject_id": [f"S{k}{a}" for a in arms for k in (1, 2, 3)],
            "arm": [a for a in arms for _ in (1, 2, 3)],
            "FASFL": ["Y", "Y", "N"] * len(arms),
        }
    )
    ref, arm = study.reference_arm, study.treated_arms[0]
    adice = _adice(
        study,
        [
            (f"S1{ref}", disc(study), primary_at(study)),
            (f"S1{ref}", resc(study), at(study, 0)),
            (f"S2{arm}", resc(study), at(study, 0)),
            (f"S3{arm}", disc(study), at(study, 0)),  # not in the FAS
        ],
    )
    counts = ice_counts(adsl, adice, config)
    expected = sorted(
        (a, ice, int(a == ref and ice == disc(study)) + int(ice == resc(study) and a in (ref, arm)))
        for a in arms
        for ice in (disc(study), resc(study))
    )
    assert sorted(counts.select("group", "ICE", "n_subjects").rows()) == expected
    assert set(counts["n_fas"]) == {2}
    names = {ice: rule.name for ice, rule in study.intercurrent_events.items()}
    assert dict(counts.select("ICE", "ICE_NAME").unique().rows()) == names


def test_configuration_errors_name_what_to_fix(study: Study) -> None:
    raw = _raw(study)
    raw["estimands"]["definitions"][1]["ices"][disc(study)]["missing"] = "LOCF"
    with pytest.raises(ValueError, match="'LOCF' is not one of 'MAR', 'JR', 'CR' or 'CIR'"):
        estimands_config(_study(raw))
    raw = _raw(study)
    raw["estimands"]["definitions"][0]["ices"][disc(study)]["missing"] = "JR"
    with pytest.raises(ValueError, match="MMRM handles missing values under MAR only"):
        estimands_config(_study(raw))
    raw = _raw(study)
    raw["estimands"]["tipping_point"]["estimand"] = "E9"
    with pytest.raises(ValueError, match="unknown estimand E9"):
        estimands_config(_study(raw))


def test_a_subject_rescued_before_the_first_visit_is_imputed_not_dropped(
    study: Study, analysis_long: pl.DataFrame
) -> None:
    """Every value of the subject is post-rescue: E1's MMRM has no row of them, E2 imputes all
    of them (jump to reference) instead of refusing an ICE row without data."""
    config = estimands_config(study)
    rescued = _subjects(analysis_long)[7]
    adice = _adice(study, [(rescued, resc(study), at(study, 0))])
    populations = {"FAS": analysis_long}
    data, ice = estimand_data(analysis_long, adice, config.estimands[1])
    assert data.filter(pl.col("subject") == rescued)["chg"].null_count() > 0
    (strategy,) = {h.missing for h in config.estimands[1].ices.values()} - {"MAR"}
    assert ice.rows() == [(rescued, study.model_visits[0], strategy)]
    e1 = run_estimand(populations, adice, config.estimands[0], config, study)
    kept = analysis_long.filter(pl.col("subject") != rescued)
    by_hand = fit_mmrm(kept, study).tables["contrasts"]["estimate"].to_numpy()
    assert np.array_equal(
        e1.filter(pl.col("parameter").str.starts_with("trt_"))["estimate"].to_numpy(), by_hand
    )
    e2 = run_estimand(populations, adice, config.estimands[1], config, study)
    assert e2["estimate"].is_finite().all()
