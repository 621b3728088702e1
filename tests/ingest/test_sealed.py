"""Recognising the sealed randomisation list by its bytes (ingest/sealed.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.sealed import SNIFF_BYTES, SealedListSignature, looks_sealed, sealed_signature
from study import load_study

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIGNATURE = sealed_signature(load_study())
# A sealed list as the simulator writes it (trial/simulate/sealed.py), three subjects.
SEALED = (
    "subject_id,rand_date,stratum,arm\n"
    "C01-0001,2026-02-16,HDSS3,GLY\n"
    "C01-0002,2026-02-17,HDSS4,TAP\n"
    "C02-0001,2026-02-18,HDSS3,OXY\n"
)


def test_signature_comes_from_the_contract_and_the_study() -> None:
    study = load_study()
    assert SIGNATURE.columns == {"subject_id", "rand_date", "stratum", "arm"}
    assert SIGNATURE.arm_codes == set(study.arm_codes)
    assert SIGNATURE.stratum_codes == set(study.stratum_levels.values())


@pytest.mark.parametrize(
    "text",
    [
        SEALED,
        SEALED.replace(",", ";"),  # another delimiter
        SEALED.replace(",", "\t"),
        "\ufeff" + SEALED.upper(),  # byte-order mark, upper-case header
        '"arm","subject_id"\n"GLY","C01-0001"\n',  # reordered, quoted, two columns only
        "Subject_ID, Stratum, Rand_Date\n",  # three of the four columns, any case
        '{"subject_id": "C01-0001", "arm": "GLY"}\n',  # JSON lines
        "".join(SEALED.splitlines(keepends=True)[1:]),  # rows without the header
        "C01-0001;HDSS3;GLY\n",  # a row without date: arm and stratum codes
        "GLY,C01-0001,2026-02-16\n",  # a row without stratum: arm code and a date
        "some preamble\n\n" + SEALED,  # after other lines
    ],
)
def test_a_header_or_a_row_of_the_list_gives_it_away(text: str) -> None:
    assert looks_sealed(text.encode(), SIGNATURE)


@pytest.mark.parametrize(
    "text",
    [
        "subject_id,centre_id,consent_date,sex,birth_year,plantar_involved,hdss_screening\n"
        "C01-0001,C01,2026-02-01,F,1990,Y,3\n",  # dm.csv
        "subject_id,visit,visit_date,status\nC01-0001,BL,2026-02-16,DONE\n",  # visits.csv
        "subject_id,drug,verbatim\nC01-0001,ORAL_GLYCOPYRRONIUM,glycopyrronium 1 mg\n",  # cm
        "a GLY line with no stratum and no date\n",  # an arm code alone is not a row
        "HDSS3,2026-02-16\n",  # stratum and date without an arm code
        '{"serial": "B-00042", "t": "2026-03-14T18:02:11Z", "ma": 12.5}\n',  # vendor B
    ],
)
def test_other_raw_formats_are_not_taken_for_it(text: str) -> None:
    assert not looks_sealed(text.encode(), SIGNATURE)


def test_without_the_study_only_the_header_is_recognised() -> None:
    header_only = SealedListSignature.header_only()
    assert looks_sealed(SEALED.encode(), header_only)
    rows = "".join(SEALED.splitlines(keepends=True)[1:])
    assert not looks_sealed(rows.encode(), header_only)
    assert looks_sealed(rows.encode(), SIGNATURE)


def test_undecodable_bytes_do_not_stop_the_judgement() -> None:
    assert looks_sealed(b"\xff\xfe\x00junk\n" + SEALED.encode(), SIGNATURE)
    assert not looks_sealed(b"\xff\xfe\x00junk\n" * 10, SIGNATURE)


def test_only_the_first_bytes_are_judged() -> None:
    """The sniff reads :data:`SNIFF_BYTES`: a list appended after that much other text is
    beyond it (documented: a copy of the list is a small file that starts as one)."""
    filler = ("x" * 99 + "\n").encode() * (SNIFF_BYTES // 100 + 1)
    assert looks_sealed(SEALED.encode() + filler, SIGNATURE)
    assert not looks_sealed(filler[:SNIFF_BYTES], SIGNATURE)


def test_no_file_of_the_raw_fixtures_is_taken_for_the_list() -> None:
    files = [p for p in (FIXTURES / "raw").rglob("*") if p.is_file()]
    assert len(files) > 20
    assert [p for p in files if looks_sealed(p.read_bytes()[:SNIFF_BYTES], SIGNATURE)] == []
