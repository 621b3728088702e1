"""AE coding with the study dictionary: terms, OTHER by verbatim, uncoded events as findings."""

from __future__ import annotations

import polars as pl

from study import load_study
from trial.derive.ae import NOT_CODED, ae_coding_findings, code_events

AE = pl.DataFrame(
    {
        "subject_id": ["S1", "S1", "S2", "S3"],
        "ae_id": ["S1-AE01", "S1-AE02", "S2-AE01", "S3-AE01"],
        "term": ["TINGLING", "OTHER", "OTHER", "MILD_SHOCK"],
        "verbatim": ["pins and needles", "  Common   COLD ", "stubbed toe", "jolt"],
        "source_file": ["C01/2026-03-01/ae.csv"] * 4,
        "source_line": [2, 3, 4, 5],
    }
)


def test_terms_and_verbatims_are_coded_to_pt_and_soc() -> None:
    study = load_study()
    coded = code_events(AE.lazy(), study.ae_coding).collect()
    assert coded.select("AEDECOD", "AEBODSYS").rows() == [
        ("Paraesthesia", "Nervous system disorders"),
        ("Nasopharyngitis", "Infections and infestations"),
        (None, None),
        ("Electric shock", "Injury, poisoning and procedural complications"),
    ]


def test_an_uncoded_verbatim_is_a_finding_with_its_line() -> None:
    study = load_study()
    coded = code_events(AE.lazy(), study.ae_coding).collect()
    findings = ae_coding_findings(coded, study)
    assert findings.select("subject_id", "finding", "source_line").rows() == [("S2", NOT_CODED, 4)]
    assert "'stubbed toe'" in findings["detail"][0]
