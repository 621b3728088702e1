"""ADaM contracts: committed files match the generator, derived frames satisfy them."""

from __future__ import annotations

import polars as pl
import pytest
from derive_fixture import Design
from materialise import Tables

from data_contracts.contracts import blocking_failures, check_frame, contract_path, load_contract
from trial.derive import build_analysis_long
from trial.derive.contracts import adam_tables, rendered_contracts, table_contract

TABLES = ["adsl", "adsweat", "adsweat_side", "adhdss", "adae", "addev", "analysis_long"]


def test_committed_adam_contracts_are_what_the_generator_writes() -> None:
    rendered = rendered_contracts()
    assert sorted(rendered) == sorted([*TABLES, "adice"])
    for name, text in rendered.items():
        assert contract_path(name).read_text("utf-8") == text, (
            f"{name}: run python -m trial.derive.contracts"
        )


def test_labels_fit_sas_and_units_are_declared() -> None:
    for name in TABLES:
        contract = load_contract(name)
        assert all(len(label) <= 40 for label in contract.labels.values()), name
    assert load_contract("adsweat").units["AVAL"] == "ln(mg/min)"
    assert load_contract("addev").units["charge_mc"] == "mC"


def test_blinded_contract_drops_unblinded_only_columns() -> None:
    assert "arm" in load_contract("adsl").columns
    blinded = table_contract("adsl", blinded=True)
    assert not {"arm", "rand_date"} & set(blinded.columns)
    assert blinded.columns == [
        c for c in load_contract("adsl").columns if c not in ("arm", "rand_date")
    ]


@pytest.mark.parametrize("mode", ["unblinded", "blinded"])
def test_derived_tables_satisfy_their_contracts(
    mode: str, design: Design, request: pytest.FixtureRequest
) -> None:
    """Resolved for the design's study: its codelists of arms, visits, centres, regions."""
    blinded = mode == "blinded"
    tables: Tables = request.getfixturevalue(mode)
    frames: dict[str, pl.DataFrame] = {name: getattr(tables, name) for name in TABLES}
    expected_long = build_analysis_long(tables.adsl, tables.adsweat, design.study)
    assert frames["analysis_long"].equals(expected_long)
    for name, frame in frames.items():
        failures = blocking_failures(check_frame(frame, table_contract(name, blinded)))
        assert failures == [], (name, failures)


def test_contract_catches_a_wrong_derivation(unblinded: Tables) -> None:
    broken = unblinded.adsweat.with_columns(ABLFL=pl.lit("yes"))
    failures = blocking_failures(check_frame(broken, table_contract("adsweat", False)))
    assert [f.name for f in failures] == ["validValues:ABLFL"]


def test_every_table_of_the_generator_has_a_key() -> None:
    for name, (_, cols) in adam_tables().items():
        assert any(c.key is not None for c in cols), name
