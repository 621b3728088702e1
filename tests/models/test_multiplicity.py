"""Fixed-sequence decisions for constructed p-values, and the look-up of p-values, for each
example study (its hypotheses, their order and its alpha)."""

from __future__ import annotations

import polars as pl

from study import Study, load_study
from trial.models.multiplicity import (
    fixed_sequence,
    fixed_sequence_from_results,
    key_secondary_pvalues,
)
from trial.models.result import ModelResult
from trial.models.tidy import empty_estimates


def decisions(study: Study, p: dict[str, float | None]) -> list[str]:
    return fixed_sequence(study, p).tables["fixed_sequence"]["decision"].to_list()


def ids(study: Study) -> list[str]:
    """Hypothesis ids in the study's configured order."""
    return [h.id for h in study.endpoints.key_secondary_sequence]


def test_all_rejected_at_the_studys_alpha(study: Study) -> None:
    alpha = study.alpha
    # p = alpha itself is rejected (p <= alpha)
    p = dict(zip(ids(study), [alpha / 50, alpha * 0.8, alpha], strict=True))
    result = fixed_sequence(study, p)
    table = result.tables["fixed_sequence"]
    assert table["decision"].to_list() == ["reject"] * len(p)
    assert table["alpha"].to_list() == [alpha] * len(p)
    assert table["id"].to_list() == ids(study)
    assert table["endpoint"].to_list() == [
        h.endpoint for h in study.endpoints.key_secondary_sequence
    ]
    assert (
        result.notes[0] == f"fixed sequence at two-sided alpha {alpha:g}, in the configured order"
    )


def test_p_between_the_two_studies_alphas() -> None:
    """p = 0.07 fails the sequence at alpha 0.05 and passes at 0.10."""
    for name, expected in (("ion301", "not rejected"), ("ion302", "reject")):
        study = load_study(name)
        first = ids(study)[0]
        assert decisions(study, {first: 0.07})[0] == expected, name


def test_failure_stops_the_sequence(study: Study) -> None:
    # the last would be significant on its own, but the second failed first
    h1, h2, h3 = ids(study)
    p = {h1: study.alpha / 5, h2: study.alpha * 1.002, h3: study.alpha / 500}
    assert decisions(study, p) == ["reject", "not rejected", "not tested"]


def test_first_failure(study: Study) -> None:
    h1, h2, h3 = ids(study)
    p = {h1: min(0.99, study.alpha * 4), h2: 0.001, h3: 0.001}
    assert decisions(study, p) == ["not rejected", "not tested", "not tested"]


def test_missing_p_value_is_not_tested(study: Study) -> None:
    h1, h2, h3 = ids(study)
    result = fixed_sequence(study, {h1: 0.01, h2: None, h3: 0.01})
    assert result.tables["fixed_sequence"]["decision"].to_list() == [
        "reject",
        "not tested",
        "not tested",
    ]
    assert any(h2 in n for n in result.notes)


def test_p_values_come_from_mmrm_and_responder_tables(study: Study) -> None:
    """Each hypothesis's p-value is looked up where its endpoint lives: the MMRM contrast at
    the primary visit, or the responder odds ratio; rows of other visits, contrasts or
    endpoints are decoys."""
    sequence = study.endpoints.key_secondary_sequence
    other_visit = next(v for v in study.model_visits if v != study.primary_visit)
    ref = study.reference_arm
    mmrm_rows: list[tuple[str, str, float]] = []
    odds_rows: list[tuple[str, str, float]] = []
    expected: dict[str, float] = {}
    for k, h in enumerate(sequence):
        p = round(study.alpha / (k + 2), 6)
        expected[h.id] = p
        if h.endpoint == "primary":
            mmrm_rows += [(study.primary_visit, h.contrast, p), (other_visit, h.contrast, 0.9)]
        else:
            odds_rows.append((h.endpoint, h.contrast, p))
    for endpoint in ("hdss_responder", "sweat_responder"):
        for arm in study.treated_arms:
            contrast = f"{arm}-{ref}"
            if not any(h.endpoint == endpoint and h.contrast == contrast for h in sequence):
                odds_rows.append((endpoint, contrast, 0.5))
    mmrm = pl.DataFrame(mmrm_rows, schema=["visit", "contrast", "p_value"], orient="row")
    odds = pl.DataFrame(odds_rows, schema=["endpoint", "contrast", "p_value"], orient="row")
    assert key_secondary_pvalues(study, mmrm, odds) == expected
    result = fixed_sequence_from_results(
        study,
        ModelResult("mmrm", empty_estimates(), {}, tables={"contrasts": mmrm}),
        ModelResult("responders", empty_estimates(), {}, tables={"odds_ratios": odds}),
    )
    table = result.tables["fixed_sequence"]
    assert table["id"].to_list() == [h.id for h in sequence]
    assert table["decision"].to_list() == ["reject"] * len(sequence)
    assert result.fit["n_rejected"] == result.fit["n_hypotheses"] == len(sequence)


def test_blinded_results_are_not_tested(study: Study) -> None:
    result = fixed_sequence_from_results(study, None, None)
    assert set(result.tables["fixed_sequence"]["decision"]) == {"not tested"}
    assert result.tables["fixed_sequence"].height == len(study.endpoints.key_secondary_sequence)
