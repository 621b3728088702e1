"""The simulator writes each EDC export with its raw contract's columns: the headers come from
``data_contracts`` (one list of EDC tables, one source of columns), never from a copy."""

from __future__ import annotations

import pytest

from data_contracts.contracts import EDC_TABLES, contract_template, file_columns
from trial.simulate import SimulationSummary
from trial.simulate.render import AMENDMENT_TABLES, in_header_order


def test_every_edc_file_has_its_contracts_columns(faulty_run: SimulationSummary) -> None:
    seen: set[str] = set()
    for path in sorted(faulty_run.raw_dir.glob("*/*/*.csv")):
        table = path.stem
        if table not in EDC_TABLES:
            continue
        seen.add(table)
        header = path.read_bytes().split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
        assert header.split(",") == file_columns(contract_template(table)), path
    # every EDC table is delivered (the amendment's tables from their first delivery on)
    assert seen == set(EDC_TABLES) or seen == set(EDC_TABLES) - set(AMENDMENT_TABLES)
    assert {"dm", "visits", "devices"} <= seen


def test_a_row_that_does_not_fit_the_contract_is_refused() -> None:
    header = file_columns(contract_template("hdss"))
    row = {"subject_id": "C01-0001", "visit": "BL", "hdss": "3"}
    assert in_header_order("hdss", header, row) == ["C01-0001", "BL", "3"]
    with pytest.raises(ValueError, match=r"missing \['hdss'\], not in the contract \[\]"):
        in_header_order("hdss", header, {"subject_id": "C01-0001", "visit": "BL"})
    with pytest.raises(ValueError, match=r"not in the contract \['score'\]"):
        in_header_order("hdss", header, {**row, "score": "3"})
