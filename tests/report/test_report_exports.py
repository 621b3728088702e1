"""XPT v5 exports: FDA limits, labels and units from the data contracts, and a round trip."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyreadstat
import pytest

from data_contracts.contracts import load_contract
from trial.report.exports import (
    DATASET_LABELS,
    XPT_DATASETS,
    dataset_label,
    define_metadata,
    join_whole_items,
    write_xpt_exports,
)


@pytest.fixture(scope="module")
def exported(unblinded_tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("xpt")
    return out, write_xpt_exports(unblinded_tables, out)


def test_names_and_labels_within_v5_limits(exported):
    out, result = exported
    define = result.define
    assert set(define["dataset"]) == {d for d in XPT_DATASETS if d != "adsweat_side"}
    assert (define["xpt_name"].str.len_chars() <= 8).all()
    assert (define["xpt_dataset"].str.len_chars() <= 8).all()
    assert (define["label"].str.len_chars() <= 40).all()
    assert define.select(pl.struct("dataset", "xpt_name").is_unique().all()).item()
    for path in out.glob("*.xpt"):
        assert len(path.stem) <= 8
        # A v5 transport file starts with the v5 library header (v8 says LIBV8).
        assert path.read_bytes()[:48] == b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"


def test_round_trip_values_and_labels(exported, unblinded_tables):
    out, result = exported
    adsl = unblinded_tables["adsl"]
    data, meta = pyreadstat.read_xport(str(out / "adsl.xpt"))
    define = result.define.filter(pl.col("dataset") == "adsl").sort("order")
    assert meta.table_name == "ADSL"
    assert list(data.columns) == define["xpt_name"].to_list()
    assert meta.column_labels == define["label"].to_list()
    assert data["USUBJID"].tolist() == adsl["subject_id"].to_list()
    assert data["AGE"].tolist() == [float(a) for a in adsl["age"].to_list()]
    assert data["SCRFFL"].tolist() == ["Y" if f else "N" for f in adsl["screen_failure"]]
    assert data["RFICDT"].tolist() == adsl["consent_date"].to_list()
    assert data["ARMCD"].tolist() == adsl["arm"].fill_null("").to_list()
    dev, _ = pyreadstat.read_xport(str(out / "addev.xpt"))
    first = unblinded_tables["addev"].row(0, named=True)
    assert dev["STARTDTM"][0].to_pydatetime() == first["start_utc"].replace(tzinfo=None)
    assert dev["SRCFILES"][0] == ";".join(first["source_files"])


def test_define_comes_from_the_contracts():
    contract = load_contract("adsweat")
    define = define_metadata([contract])
    rate = define.filter(pl.col("variable") == "rate_mg_min").row(0, named=True)
    assert rate["label"] == contract.prop("rate_mg_min").label
    assert rate["unit"] == contract.prop("rate_mg_min").unit
    assert rate["type"] == "Num"
    adt = define.filter(pl.col("variable") == "ADT").row(0, named=True)
    assert adt["format"] == "DATE9."
    sex = define_metadata([load_contract("adsl")]).filter(pl.col("variable") == "sex")
    assert sex["origin"][0] == "Predecessor: dm.sex"
    assert define.filter(pl.col("variable") == "CHG")["origin"][0] == "Derived"
    assert define.filter(pl.col("variable") == "STUDYID")["origin"][0] == "Assigned"
    subject = define_metadata([load_contract("adsl")]).filter(pl.col("variable") == "subject_id")
    assert subject.select("xpt_name", "origin").row(0) == ("USUBJID", "Predecessor: dm.subject_id")


def test_blinded_define_lists_only_present_columns(blinded_tables):
    define = define_metadata([load_contract("adsl")], blinded_tables)
    assert "arm" not in define["variable"].to_list()


def test_xpt_names_are_the_contracts_choice_and_meaningful():
    """Every exported variable has the name and origin its contract chose: ADaM-style, at
    most 8 characters, unique per dataset, none of the old word-dealt abbreviations, and a
    predecessor that exists in the raw dataset it names."""
    define = define_metadata([load_contract(d) for d in XPT_DATASETS])
    assert define.select(pl.struct("dataset", "xpt_name").is_unique().all()).item()
    names = set(define["xpt_name"])
    assert {"TIWITOSH", "CHAMCTOT", "SOURRECO", "NSESSCOM", "PLANINVO", "OUTOFWIN"}.isdisjoint(
        names
    )
    assert {"USUBJID", "SITEID", "AGE", "TRTSDT", "AESEV", "AEDECOD", "AEBODSYS"} <= names
    adsl = define.filter(pl.col("dataset") == "adsl")
    chosen = dict(zip(adsl["variable"], adsl["xpt_name"], strict=True))
    assert chosen["time_within_tolerance_share"] == "TOLSHR"
    assert chosen["charge_mc_total"] == "CHRGTOT"
    assert chosen["source_records"] == "SRCREC"
    for origin in define["origin"]:
        assert origin in ("Assigned", "Derived") or origin.startswith("Predecessor: ")
        if origin.startswith("Predecessor: "):
            dataset, column = origin.removeprefix("Predecessor: ").split(".")
            assert column in load_contract(dataset).columns, origin


def test_columns_outside_the_contract_are_refused(unblinded_tables, tmp_path):
    bad = {"adsl": unblinded_tables["adsl"].with_columns(pl.lit(1).alias("secret"))}
    with pytest.raises(ValueError, match="not in its data contract"):
        write_xpt_exports(bad, tmp_path)


def test_non_ascii_is_transliterated_and_noted(unblinded_tables, tmp_path):
    adae = unblinded_tables["adae"].with_columns(pl.lit("érythème").alias("verbatim"))
    result = write_xpt_exports({"adae": adae}, tmp_path)
    data, _ = pyreadstat.read_xport(str(tmp_path / "adae.xpt"))
    assert set(data["AEVERB"]) == {"erytheme"}
    assert any("non-ASCII" in n for n in result.notes)
    assert data["ASTDT"].tolist() == adae["onset_date"].to_list()
    assert dt.date(1960, 1, 1) < data["ASTDT"][0]


def test_dataset_labels_are_whole_words(exported):
    """Each XPT file's dataset label is the one chosen for it, never a description cut
    mid-word; a dataset without a chosen label gets its description cut at a word, noted."""
    out, result = exported
    for path in out.glob("*.xpt"):
        _, meta = pyreadstat.read_xport(str(path), metadataonly=True)
        dataset = "adsweat_side" if meta.table_name == "ADSWEATS" else meta.table_name.lower()
        assert meta.file_label == DATASET_LABELS[dataset]
        assert len(meta.file_label) <= 40
    assert not any("dataset label" in n for n in result.notes)
    long = load_contract("adsl")  # its description is longer than 40 characters
    label, note = dataset_label("not_chosen", long)
    assert len(long.description) > 40 and len(label) <= 40
    assert long.description.startswith(label) and long.description[len(label)] in " ,;:"
    assert note is not None and "not_chosen" in note


def test_what_the_limits_changed_is_written_beside_the_files(unblinded_tables, tmp_path):
    """A value cut to 200 bytes is listed in export_notes.txt, not only in the result."""
    long = unblinded_tables["adae"].with_columns(pl.lit("x" * 250).alias("verbatim"))
    result = write_xpt_exports({**unblinded_tables, "adae": long}, tmp_path)
    notes = (tmp_path / "export_notes.txt").read_text("utf-8").splitlines()
    assert notes == result.notes
    assert any("longer than 200 bytes" in n for n in notes)
    assert tmp_path / "export_notes.txt" in result.paths


def test_a_long_list_keepsjoin_whole_items():
    """Source files too many for 200 bytes: the first paths whole, then how many more."""
    paths = [f"C01/2026-03-{d:02d}/ionto-a_A-0001_202603{d:02d}.csv" for d in range(1, 11)]
    text = join_whole_items(paths, 200)
    assert len(text) <= 200 and text.endswith(" more")
    kept, more = text.rsplit(";+", 1)
    assert kept.split(";") == paths[: len(kept.split(";"))]
    assert int(more.removesuffix(" more")) == len(paths) - len(kept.split(";"))
    assert join_whole_items(paths[:2], 200) == ";".join(paths[:2])
