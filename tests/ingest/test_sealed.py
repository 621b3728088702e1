"""Recognising the sealed randomisation list by its bytes (ingest/sealed.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.sealed import SNIFF_BYTES, SealedListSignature, looks_sealed, sealed_signature
from study import EXAMPLE_STUDIES, Study, load_study

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIGNATURE = sealed_signature(load_study())
"""ION-301's, for the cases that do not depend on the design."""


@dataclass(frozen=True)
class Listed:
    """A sealed list of a study as the simulator writes it (trial/simulate/sealed.py): three
    subjects of its first two centres, its arms and strata."""

    study: Study

    @property
    def signature(self) -> SealedListSignature:
        return sealed_signature(self.study)

    @property
    def codes(self) -> tuple[str, str, str, str, str, str, str]:
        """First and second centre, three arms (the first again when there are two), two
        strata."""
        st = self.study
        arms = [*st.arm_codes, st.arm_codes[0]]
        strata = st.stratum_codes
        return st.centres[0], st.centres[1], arms[1], arms[0], arms[2], strata[0], strata[-1]

    @property
    def text(self) -> str:
        c1, c2, a1, a2, a3, st1, st2 = self.codes
        return (
            "subject_id,rand_date,stratum,arm\n"
            f"{c1}-0001,2026-02-16,{st1},{a1}\n"
            f"{c1}-0002,2026-02-17,{st2},{a2}\n"
            f"{c2}-0001,2026-02-18,{st1},{a3}\n"
        )


@pytest.fixture(params=EXAMPLE_STUDIES, ids=list(EXAMPLE_STUDIES))
def listed(request: pytest.FixtureRequest) -> Listed:
    return Listed(load_study(request.param))


SEALED = Listed(load_study()).text
"""ION-301's sealed list."""


def test_signature_comes_from_the_contract_and_the_study(listed: Listed) -> None:
    signature, study = listed.signature, listed.study
    assert signature.columns == {"subject_id", "rand_date", "stratum", "arm"}
    assert signature.arm_codes == set(study.arm_codes)
    assert signature.stratum_codes == set(study.stratum_levels.values())


GIVEAWAYS = [
    "{sealed}",
    "{semicolons}",  # another delimiter
    "{tabs}",
    "\ufeff{upper}",  # byte-order mark, upper-case header
    '"arm","subject_id"\n"{a1}","{c1}-0001"\n',  # reordered, quoted, two columns only
    "Subject_ID, Stratum, Rand_Date\n",  # three of the four columns, any case
    '{{"subject_id": "{c1}-0001", "arm": "{a1}"}}\n',  # JSON lines
    "{rows}",  # rows without the header
    "{c1}-0001;{st1};{a1}\n",  # a row without date: arm and stratum codes
    "{a1},{c1}-0001,2026-02-16\n",  # a row without stratum: arm code and a date
    "some preamble\n\n{sealed}",  # after other lines
]


def _fill(template: str, listed: Listed) -> str:
    c1, _, a1, _, _, st1, _ = listed.codes
    sealed = listed.text
    return template.format(
        sealed=sealed,
        semicolons=sealed.replace(",", ";"),
        tabs=sealed.replace(",", "\t"),
        upper=sealed.upper(),
        rows="".join(sealed.splitlines(keepends=True)[1:]),
        c1=c1,
        a1=a1,
        st1=st1,
    )


@pytest.mark.parametrize("template", GIVEAWAYS)
def test_a_header_or_a_row_of_the_list_gives_it_away(template: str, listed: Listed) -> None:
    assert looks_sealed(_fill(template, listed).encode(), listed.signature)


OTHERS = [
    "subject_id,centre_id,consent_date,sex,birth_year,plantar_involved,hdss_screening\n"
    "{c1}-0001,{c1},2026-02-01,F,1990,Y,3\n",  # dm.csv
    "subject_id,visit,visit_date,status\n{c1}-0001,{bl},2026-02-16,DONE\n",  # visits.csv
    "subject_id,drug,verbatim\n{c1}-0001,ORAL_GLYCOPYRRONIUM,glycopyrronium 1 mg\n",  # cm
    "a {a1} line with no stratum and no date\n",  # an arm code alone is not a row
    "{st1},2026-02-16\n",  # stratum and date without an arm code
    '{{"serial": "B-00042", "t": "2026-03-14T18:02:11Z", "ma": 12.5}}\n',  # vendor B
]


@pytest.mark.parametrize("template", OTHERS)
def test_other_raw_formats_are_not_taken_for_it(template: str, listed: Listed) -> None:
    c1, _, a1, _, _, st1, _ = listed.codes
    text = template.format(c1=c1, a1=a1, st1=st1, bl=listed.study.baseline_visit)
    assert not looks_sealed(text.encode(), listed.signature)


def test_without_the_study_only_the_header_is_recognised(listed: Listed) -> None:
    header_only = SealedListSignature.header_only()
    assert looks_sealed(listed.text.encode(), header_only)
    rows = "".join(listed.text.splitlines(keepends=True)[1:])
    assert not looks_sealed(rows.encode(), header_only)
    assert looks_sealed(rows.encode(), listed.signature)


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
