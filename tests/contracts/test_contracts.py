"""The contract engine: loading, structural validation, checks, typing raw text."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml

from data_contracts.contracts import (
    BLOCKING,
    WARNING,
    blocking_failures,
    cast_frame,
    check_frame,
    check_lazy,
    contract_path,
    contract_template,
    empty_frame,
    is_row_local,
    list_contracts,
    load_contract,
    parse_contract,
    parse_dtype,
    resolve_contract,
    structural_problems,
    type_text_frame,
    use_study,
    write_resolved_contracts,
)
from data_contracts.raw_contracts import BENCH_INTERRUPTED, rendered_contracts
from study import EXAMPLE_STUDIES, load_study

RAW_DATASETS = {
    "dm",
    "eligibility",
    "visits",
    "hdss",
    "ae",
    "disposition",
    "devices",
    "randomisation",
    "gravimetry",
    "vendor_a_sessions",
    "vendor_b_events",
    "device_sessions",
    "quarantine",
    "landing_manifest",
}


def small_contract(**extra: object) -> dict:
    prop = {
        "name": "hdss",
        "logicalType": "integer",
        "physicalType": "Int64",
        "required": True,
        "logicalTypeOptions": {"minimum": 1, "maximum": 4},
    }
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "x",
        "version": "1.0.0",
        "status": "active",
        "schema": [
            {
                "name": "t",
                "physicalType": "table",
                "properties": [
                    {
                        "name": "id",
                        "logicalType": "string",
                        "physicalType": "String",
                        "required": True,
                        "primaryKey": True,
                        "primaryKeyPosition": 1,
                    },
                    prop,
                    {
                        "name": "sex",
                        "logicalType": "string",
                        "physicalType": "String",
                        "customProperties": [{"property": "unit", "value": "none"}],
                        "quality": [
                            {
                                "metric": "invalidValues",
                                "arguments": {"validValues": ["F", "M"]},
                                "mustBe": 0,
                                **extra,
                            }
                        ],
                    },
                ],
            }
        ],
    }


def test_every_contract_file_is_structurally_valid_odcs() -> None:
    names = list_contracts()
    assert set(names) >= RAW_DATASETS
    for name in names:
        data = yaml.safe_load(contract_path(name).read_text("utf-8"))
        assert structural_problems(data) == [], name
        assert data["apiVersion"] == "v3.1.0"
        assert data["schema"][0]["name"] == name, "file name and table name agree"
        contract = load_contract(name)
        assert len(contract.schema) == len(contract.columns)


def test_structural_validation_names_each_problem() -> None:
    data = small_contract()
    del data["id"]
    data["kind"] = "Contract"
    data["schema"][0]["properties"][1]["physicalType"] = "Integer64"
    data["schema"][0]["properties"][2]["logicalType"] = "text"
    problems = structural_problems(data)
    assert "missing top-level key 'id'" in problems
    assert "kind must be DataContract" in problems
    assert any("Integer64" in p for p in problems)
    assert any("'text' is not ODCS" in p for p in problems)
    with pytest.raises(ValueError, match="not a valid ODCS"):
        parse_contract(data)


def test_committed_raw_contracts_are_what_the_generator_writes() -> None:
    for name, text in rendered_contracts().items():
        assert contract_path(name).read_text("utf-8") == text, (
            f"{name}.odcs.yaml was edited by hand: change data_contracts/raw_contracts.py and "
            "run python -m data_contracts.raw_contracts"
        )


@pytest.mark.parametrize("name", EXAMPLE_STUDIES)
def test_contract_codelists_resolve_from_the_study(name: str) -> None:
    study = load_study(name)
    cl = study.codelists
    expected = {
        ("dm", "sex"): cl.sex,
        ("dm", "plantar_involved"): cl.yes_no,
        ("dm", "centre_id"): study.centres,
        ("eligibility", "criterion"): study.eligibility.criteria,
        ("visits", "visit"): study.visit_codes,
        ("visits", "status"): cl.visit_status,
        ("hdss", "visit"): study.visit_codes,
        ("ae", "term"): cl.ae_term,
        ("ae", "severity"): cl.ae_severity,
        ("ae", "serious"): cl.yes_no,
        ("ae", "related"): cl.ae_related,
        ("disposition", "status"): cl.disposition_status,
        ("devices", "region"): [r.code for r in study.regions],
        ("randomisation", "arm"): study.arm_codes,
        ("randomisation", "stratum"): study.stratum_codes,
        ("gravimetry", "visit"): study.visit_codes,
        ("gravimetry", "side"): study.sides,
        ("gravimetry", "unit"): list(study.unit_to_mg),
        ("vendor_a_sessions", "end_reason"): cl.end_reason,
        ("vendor_a_sessions", "fault_code"): list(cl.fault_code),
        ("vendor_b_events", "reason"): cl.end_reason,
        ("vendor_b_events", "code"): list(cl.fault_code),
        ("device_sessions", "end_reason"): [*cl.end_reason, BENCH_INTERRUPTED],
        ("device_sessions", "fault_code"): list(cl.fault_code),
        ("balance_weighings", "region"): [r.code for r in study.regions],
        ("adsl", "STUDYID"): [study.study_id],
        ("adsl", "arm"): study.arm_codes,
        ("adsweat", "PARAMCD"): [r.paramcd for r in study.regions],
        ("analysis_long", "visit"): study.model_visits,
        ("addev", "phase"): [p.name for p in study.treatment.phases]
        + ["pre_baseline", "post_schedule"],
    }
    for (dataset, column), values in expected.items():
        assert load_contract(dataset, study).allowed_values[column] == list(values), (
            dataset,
            column,
        )
    use_study(study)
    assert load_contract("adsl").allowed_values["centre_id"] == list(study.centres)


def test_contract_files_hold_schema_only() -> None:
    """No contract file lists a study's values: each study-dependent column names its study
    codelist, and nothing of ION-301 (or of the second example) is written in a contract."""
    facts = set()
    for name in EXAMPLE_STUDIES:
        study = load_study(name)
        facts |= {study.study_id, *study.arm_codes, *study.centres, *study.stratum_codes}
        facts |= {v for v in study.visit_codes if v not in ("BL",)}
    for name in list_contracts():
        data = yaml.safe_load(contract_path(name).read_text("utf-8"))
        for prop in data["schema"][0]["properties"]:
            for rule in prop.get("quality") or []:
                listed = set(map(str, (rule.get("arguments") or {}).get("validValues") or []))
                assert not listed & facts, (name, prop["name"], listed & facts)
    text = "".join(contract_path(n).read_text("utf-8") for n in list_contracts())
    assert "ION-301" not in text and "ION-302" not in text
    assert contract_template("adsl").study_codelists["arm"] == "arms"


def test_a_contract_naming_study_codelists_needs_a_study(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("data_contracts.contracts._bound", [])
    with pytest.raises(RuntimeError, match=r"takes codelists from the study \(arms, strata\)"):
        load_contract("randomisation")
    assert load_contract("quarantine").columns[0] == "dataset"  # no study codelist: no study


def test_an_unknown_study_codelist_is_a_structural_problem() -> None:
    data = small_contract()
    data["schema"][0]["properties"][2]["customProperties"] = [
        {"property": "studyCodelist", "value": "armz"}
    ]
    problems = structural_problems(data)
    assert len(problems) == 1 and "studyCodelist 'armz' is not a study codelist" in problems[0]


def test_resolving_keeps_the_files_own_values_after_the_studys() -> None:
    data = small_contract()
    data["schema"][0]["properties"][2]["customProperties"] = [
        {"property": "studyCodelist", "value": "sex"}
    ]
    data["schema"][0]["properties"][2]["quality"][0]["arguments"]["validValues"] = ["U", "F"]
    resolved = resolve_contract(parse_contract(data), load_study())
    assert resolved.allowed_values["sex"] == ["F", "M", "U"]


def test_a_run_writes_the_contracts_it_used(tmp_path: Path) -> None:
    study = load_study("ion302")
    written = write_resolved_contracts(study, tmp_path / "contracts")
    assert sorted(p.name.removesuffix(".odcs.yaml") for p in written) == list_contracts()
    adsl = load_contract(tmp_path / "contracts" / "adsl.odcs.yaml")
    assert adsl.allowed_values["STUDYID"] == ["ION-302"]
    assert adsl.allowed_values["arm"] == ["SHAM", "GLY"]
    assert "ION-302" in (tmp_path / "contracts" / "adsl.odcs.yaml").read_text("utf-8")


def test_contract_accessors() -> None:
    c = parse_contract(small_contract())
    assert c.schema == pl.Schema({"id": pl.String, "hdss": pl.Int64, "sex": pl.String})
    assert c.primary_key == ["id"]
    assert c.ranges == {"hdss": (1.0, 4.0)}
    assert c.allowed_values == {"sex": ["F", "M"]}
    assert c.units == {"sex": "none"}
    assert parse_dtype("Datetime(us, UTC)") == pl.Datetime("us", "UTC")
    assert parse_dtype("List(String)") == pl.List(pl.String)
    assert empty_frame(c).schema == c.schema
    g = load_contract("gravimetry")
    assert g.units["collection_s"] == "s"
    assert g.labels["subject_id"] == "Subject identifier"


def test_check_frame_reports_each_rule_with_counts_and_samples() -> None:
    c = parse_contract(small_contract())
    good = pl.DataFrame({"id": ["a", "b"], "hdss": [1, 4], "sex": ["F", None]})
    results = check_frame(good, c)
    assert all(r.passed for r in results)
    names = {r.name for r in results}
    assert {
        "schema:id",
        "required:hdss",
        "range:hdss",
        "validValues:sex",
        "primaryKey",
        "columns",
    } <= names

    bad = pl.DataFrame(
        {"id": ["a", "a", None], "hdss": [0, 4, 9], "sex": ["X", "F", "Y"], "extra": [1, 2, 3]}
    )
    by_name = {r.name: r for r in check_frame(bad, c)}
    assert by_name["range:hdss"].n_failing == 2
    assert set(by_name["range:hdss"].sample) == {"0", "9"}
    assert by_name["validValues:sex"].n_failing == 2
    assert by_name["validValues:sex"].sample == ("X", "Y")
    assert by_name["required:id"].n_failing == 1
    assert by_name["primaryKey"].n_failing == 3  # two 'a' rows and one null key
    assert by_name["columns"].sample == ("extra",)
    assert all(r.severity == BLOCKING for r in by_name.values())
    assert len(blocking_failures(by_name.values())) == 5


def test_check_frame_wrong_dtype_and_missing_column_and_warning_severity() -> None:
    c = parse_contract(small_contract(severity="warning"))
    df = pl.DataFrame({"id": ["a"], "hdss": ["1"], "sex": ["Z"]})
    by_name = {r.name: r for r in check_frame(df, c)}
    assert not by_name["schema:hdss"].passed
    assert "range:hdss" not in by_name  # a mistyped column only fails its schema rule
    assert not by_name["validValues:sex"].passed
    assert by_name["validValues:sex"].severity == WARNING
    missing = {r.name: r for r in check_frame(df.drop("sex"), c)}
    assert missing["schema:sex"].sample == ("<column missing>",)


def test_check_lazy_in_batches_adds_up_to_the_whole_frame() -> None:
    """The telemetry contract checked 3 rows at a time: failing rows in different batches are
    added up, samples kept in order, and the structural rules counted once."""
    c = load_contract("vendor_b_events")
    assert is_row_local(c) and not is_row_local(load_contract("dm"))
    good = empty_frame(c).to_dict(as_series=False)
    rows = [
        {**{k: None for k in good}, "ev": ev, "dev": dev, "ma": ma}
        for ev, dev, ma in [
            ("sample", "B-1", 10.0),
            ("pause", "B-1", 10.0),
            ("sample", None, 10.0),
            ("sample", "B-1", -1.0),
            ("stop", "B-1", 10.0),
            ("sample", "B-1", 10.0),
            ("sample", None, -2.0),
        ]
    ]
    frame = cast_frame(pl.DataFrame(rows, schema=c.schema, strict=False), c)
    whole = {r.name: r for r in check_frame(frame, c)}
    batched = {r.name: r for r in check_lazy(frame.lazy().with_columns(extra=1), c, 3)}
    assert batched["columns"].sample == ("extra",) and batched["columns"].n_failing == 1
    del batched["columns"]
    assert batched == {n: r for n, r in whole.items() if n != "columns"}
    assert (batched["validValues:ev"].n_failing, batched["validValues:ev"].sample) == (
        2,
        ("pause", "stop"),
    )
    assert batched["required:dev"].n_failing == 2 and batched["range:ma"].n_failing == 2
    empty = check_lazy(empty_frame(c).lazy(), c, 3)
    assert all(r.passed for r in empty)
    with pytest.raises(ValueError, match="look across rows"):
        check_lazy(pl.LazyFrame(), load_contract("dm"), 3)


def test_cast_frame_is_strict() -> None:
    c = parse_contract(small_contract())
    df = pl.DataFrame({"sex": ["F"], "hdss": ["3"], "id": ["a"]})
    assert cast_frame(df, c).columns == ["id", "hdss", "sex"]
    with pytest.raises(pl.exceptions.InvalidOperationError):
        cast_frame(df.with_columns(hdss=pl.lit("three")), c)


def test_type_text_frame_types_good_rows_and_quarantines_each_rule() -> None:
    c = load_contract("dm")
    rows = [
        ("C01-0001", "C01", "2026-01-17", "M", "2012", "N", "3"),  # good
        ("C01-0002", "C01", "", "", "", "", ""),  # empty cells: missing only
        ("", "C01", "2026-01-17", "F", "1990", "Y", "3"),  # missing subject
        ("C01-0004", "C01", "2026-02-30", "F", "1990", "Y", "3"),  # impossible date
        ("C01-0005", "C01", "2026-01-17", "X", "1990", "Y", "3"),  # not in codelist
        ("C01-0006", "C01", "2026-01-17", "F", "1990", "Y", "7"),  # out of range
        ("C01-0007", "C01", "2026-01-17", "F", "19x0", "Y", "3"),  # not a number
        ("C01 0008", "C09", "2026-01-17", "F", "1990", "Y", "3"),  # two faults on one line
    ]
    cols = [
        "subject_id",
        "centre_id",
        "consent_date",
        "sex",
        "birth_year",
        "plantar_involved",
        "hdss_screening",
    ]
    text = pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows]).with_columns(
        source_file=pl.lit("C01/2026-02-09/dm.csv"),
        source_line=pl.int_range(2, 2 + len(rows), dtype=pl.Int64),
        raw_text=pl.concat_str(cols, separator=","),
    )
    typed, quarantine = type_text_frame(text, c)
    assert typed.height == 2
    assert typed.schema["consent_date"] == pl.Date
    assert typed.row(0, named=True)["consent_date"] == date(2026, 1, 17)
    assert typed.row(1, named=True)["sex"] is None
    got = quarantine.select("source_line", "field", "reason_code").rows()
    assert got == [
        (4, "subject_id", "MISSING_REQUIRED"),
        (5, "consent_date", "BAD_DATE"),
        (6, "sex", "NOT_IN_CODELIST"),
        (7, "hdss_screening", "OUT_OF_RANGE"),
        (8, "birth_year", "BAD_NUMBER"),
        (9, "subject_id", "BAD_FORMAT"),
    ]
    last = quarantine.row(5, named=True)
    assert last["message"].startswith("C01/2026-02-09/dm.csv line 9: subject_id='C01 0008'")
    assert "centre_id='C09' (NOT_IN_CODELIST" in last["message"]
    assert last["raw_text"].startswith("C01 0008,C09")
    assert set(quarantine["dataset"]) == {"dm"}
    assert all(r.passed for r in check_frame(typed, c))
