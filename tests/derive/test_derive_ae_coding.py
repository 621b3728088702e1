"""AE coding with the study dictionary: terms, OTHER by verbatim, uncoded events as findings,
for each example study (its dictionary's terms and verbatims)."""

from __future__ import annotations

import polars as pl

from study import Study
from trial.derive.ae import NOT_CODED, ae_coding_findings, code_events


def _ae(study: Study) -> tuple[pl.DataFrame, list[tuple[str | None, str | None]]]:
    """Four events: the dictionary's first term, OTHER with its first verbatim in another case
    and with runs of spaces, OTHER with a verbatim it does not list, its last term; and the
    (pt, soc) each should be coded to."""
    coding = study.ae_coding
    first, last = next(iter(coding.terms)), list(coding.terms)[-1]
    verbatim = next(iter(coding.verbatims))
    messy = "  " + "   ".join(verbatim.upper().split(" ")) + " "
    frame = pl.DataFrame(
        {
            "subject_id": ["S1", "S1", "S2", "S3"],
            "ae_id": ["S1-AE01", "S1-AE02", "S2-AE01", "S3-AE01"],
            "term": [first, coding.other_term, coding.other_term, last],
            "verbatim": ["pins and needles", messy, "stubbed toe", "jolt"],
            "source_file": ["C01/2026-03-01/ae.csv"] * 4,
            "source_line": [2, 3, 4, 5],
        }
    )
    expected = [
        (coding.terms[first].pt, coding.terms[first].soc),
        (coding.verbatims[verbatim].pt, coding.verbatims[verbatim].soc),
        (None, None),
        (coding.terms[last].pt, coding.terms[last].soc),
    ]
    return frame, expected


def test_terms_and_verbatims_are_coded_to_pt_and_soc(study: Study) -> None:
    frame, expected = _ae(study)
    coded = code_events(frame.lazy(), study.ae_coding).collect()
    assert coded.select("AEDECOD", "AEBODSYS").rows() == expected


def test_an_uncoded_verbatim_is_a_finding_with_its_line(study: Study) -> None:
    frame, _ = _ae(study)
    coded = code_events(frame.lazy(), study.ae_coding).collect()
    findings = ae_coding_findings(coded, study)
    assert findings.select("subject_id", "finding", "source_line").rows() == [("S2", NOT_CODED, 4)]
    assert "'stubbed toe'" in findings["detail"][0]
