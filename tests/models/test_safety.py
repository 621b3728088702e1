"""AE counts on a tiny hand-made ADAE, by arm and pooled (blinded), for each example study (its
arms, AE dictionary and AE withdrawal reason)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from study import Study
from trial.derive.ae import code_events
from trial.models.safety import safety_summary

ADSL = pl.DataFrame(
    {
        "subject_id": ["S1", "S2", "S3", "S4", "S5", "S6"],
        "SAFFL": ["Y", "Y", "Y", "Y", "Y", "N"],
        "arm": ["REF", "REF", "ARM", "ARM", "ARM", "ARM"],
    }
)
ADAE = pl.DataFrame(
    {
        "subject_id": ["S1", "S1", "S1", "S3", "S4", "S4", "S5", "S6", "S2"],
        "ae_id": ["1", "2", "3", "4", "5", "6", "7", "8", "9"],
        "term": [
            "TINGLING",
            "TINGLING",
            "ITCHING",
            "DRY_MOUTH",
            "DRY_MOUTH",
            "TINGLING",
            "TINGLING",
            "TINGLING",
            "HEADACHE",
        ],
        "severity": ["MILD", "SEVERE", "MILD", "MODERATE", "MILD", "MILD", "MILD", "MILD", "MILD"],
        "serious": ["N", "Y", "N", "N", "N", "N", "N", "N", "N"],
        "related": ["POSSIBLE", "Y", "N", "N", "POSSIBLE", "N", "Y", "Y", "N"],
        "TRTEMFL": ["Y", "Y", "Y", "Y", "Y", "Y", "Y", "Y", "N"],
    }
)


def cell(frame: pl.DataFrame, **keys: str) -> dict[str, object]:
    return frame.filter(*[pl.col(k) == v for k, v in keys.items()]).row(0, named=True)


def arms(study: Study) -> tuple[str, str]:
    """(reference arm, first treated arm): the arms ``REF`` and ``ARM`` of the frames here."""
    return study.reference_arm, study.treated_arms[0]


def for_study(adsl: pl.DataFrame, study: Study) -> pl.DataFrame:
    """The hand-made ADSL with the study's arms and disposition reasons: ``AE`` is its AE
    withdrawal reason, ``OTHER_REASON`` another reason of the study."""
    ref, arm = arms(study)
    assert study.ae_coding is not None
    ae = study.ae_coding.discontinuation_reason
    other = next(r for r in study.simulation.withdrawal_reasons if r != ae)
    out = adsl.with_columns(pl.col("arm").replace_strict({"REF": ref, "ARM": arm}))
    if "disposition_reason" in out.columns:
        out = out.with_columns(
            pl.col("disposition_reason").replace_strict(
                {"AE": ae, "OTHER_REASON": other}, default=None
            )
        )
    return out


def pt(study: Study, term: str) -> str:
    """The preferred term the study's dictionary codes an AE form term to."""
    assert study.ae_coding is not None
    return study.ae_coding.terms[term].pt


def soc(study: Study, term: str) -> str:
    """The system organ class the study's dictionary codes an AE form term to."""
    assert study.ae_coding is not None
    return study.ae_coding.terms[term].soc


def test_counts_by_arm(study: Study) -> None:
    ref, arm = arms(study)
    result = safety_summary(ADAE, for_study(ADSL, study), study)
    by_term = result.tables["by_term"]
    tap = cell(by_term, arm=ref, term="TINGLING")
    assert (tap["n_subjects"], tap["n_events"], tap["N"]) == (1, 2, 2)
    assert tap["pct"] == pytest.approx(50.0)
    gly = cell(by_term, arm=arm, term="DRY_MOUTH")
    assert (gly["n_subjects"], gly["N"]) == (2, 3)
    # S6 is outside the Safety set; S2's headache is not treatment-emergent
    assert cell(by_term, arm=arm, term="TINGLING")["n_subjects"] == 2
    assert by_term.filter(pl.col("term") == "HEADACHE").height == 0
    assert cell(by_term, arm=arm, term="ANY")["n_subjects"] == 3
    assert cell(by_term, arm=ref, term="ANY")["n_subjects"] == 1


def test_worst_severity_and_strongest_relatedness(study: Study) -> None:
    ref, arm = arms(study)
    result = safety_summary(ADAE, for_study(ADSL, study), study)
    sev = result.tables["by_severity"]
    # S1 had TINGLING MILD and SEVERE: counted once, as SEVERE
    assert cell(sev, arm=ref, term="TINGLING", severity="SEVERE")["n_subjects"] == 1
    assert sev.filter((pl.col("arm") == ref) & (pl.col("term") == "TINGLING")).height == 1
    rel = result.tables["by_relatedness"]
    assert cell(rel, arm=ref, term="TINGLING", related="Y")["n_subjects"] == 1
    gly_tingling = rel.filter((pl.col("arm") == arm) & (pl.col("term") == "TINGLING"))
    assert dict(zip(gly_tingling["related"], gly_tingling["n_subjects"], strict=True)) == {
        "Y": 1,
        "N": 1,
    }


def test_serious_listing(study: Study) -> None:
    ref = arms(study)[0]
    serious = safety_summary(ADAE, for_study(ADSL, study), study).tables["serious"]
    assert serious["ae_id"].to_list() == ["2"]
    assert serious["arm"].to_list() == [ref]


def test_blinded_pools_arms(study: Study) -> None:
    result = safety_summary(ADAE, for_study(ADSL, study).drop("arm"), study)
    by_term = result.tables["by_term"]
    assert by_term["arm"].unique().to_list() == ["pooled"]
    tingling = cell(by_term, term="TINGLING")
    assert (tingling["n_subjects"], tingling["n_events"], tingling["N"]) == (3, 4, 5)
    assert "arm" not in result.tables["serious"].columns
    assert result.tables["denominators"]["N"].to_list() == [5]


# Coded events: S1 has two Paraesthesia events (one SEVERE) and a Pruritus (MILD) in two SOCs;
# S3 a Dry mouth; S4 a Dry mouth and a Paraesthesia; S5 a Paraesthesia; S7 (ARM) an OTHER
# whose verbatim the dictionary does not know; S6 is outside the Safety set, S2's event is not
# treatment-emergent. S4 withdrew for an AE on day 2026-03-10: only the event with onset by then
# led to the withdrawal.
CODED_ADSL = pl.DataFrame(
    {
        "subject_id": ["S1", "S2", "S3", "S4", "S5", "S6", "S7"],
        "SAFFL": ["Y", "Y", "Y", "Y", "Y", "N", "Y"],
        "arm": ["REF", "REF", "ARM", "ARM", "ARM", "ARM", "ARM"],
        "disposition_reason": [None, None, None, "AE", "OTHER_REASON", None, None],
        "disposition_date": [None, None, None, "2026-03-10", "2026-03-01", None, None],
    }
).with_columns(pl.col("disposition_date").str.to_date())
CODED_ADAE = pl.concat(
    [
        ADAE.with_columns(
            verbatim=pl.lit("text"),
            onset_date=pl.lit("2026-03-05").str.to_date(),
        ).with_columns(
            onset_date=pl.when(pl.col("ae_id") == "6")
            .then(pl.lit("2026-03-20").str.to_date())
            .otherwise(pl.col("onset_date"))
        ),
        pl.DataFrame(
            {
                "subject_id": ["S7"],
                "ae_id": ["10"],
                "term": ["OTHER"],
                "severity": ["MODERATE"],
                "serious": ["Y"],
                "related": ["N"],
                "TRTEMFL": ["Y"],
                "verbatim": ["stubbed toe"],
                "onset_date": [dt.date(2026, 3, 5)],
            }
        ),
    ]
)


def coded_result(study: Study):
    adae = code_events(CODED_ADAE.lazy(), study.ae_coding).collect()
    return safety_summary(adae, for_study(CODED_ADSL, study), study)


def test_soc_pt_subjects_and_events(study: Study) -> None:
    ref, arm = arms(study)
    t = coded_result(study).tables["soc_pt"]
    nervous = soc(study, "TINGLING")
    tap_para = cell(t, arm=ref, soc=nervous, pt=pt(study, "TINGLING"))
    assert (tap_para["n_subjects"], tap_para["n_events"]) == (1, 2)
    tap_any = cell(t, arm=ref, soc="ANY", pt="ANY")
    assert (tap_any["n_subjects"], tap_any["n_events"], tap_any["N"]) == (1, 3, 2)
    # GLY: S3, S4, S5, S7 treated with events; S6 outside the set
    gly_any = cell(t, arm=arm, soc="ANY", pt="ANY")
    assert (gly_any["n_subjects"], gly_any["n_events"], gly_any["N"]) == (4, 5, 4)
    gi = cell(t, arm=arm, soc=soc(study, "DRY_MOUTH"), pt="ANY")
    assert (gi["n_subjects"], gi["n_events"]) == (2, 2)
    # the SOC total counts a subject once even with two PTs in it; here Nervous system (GLY):
    # S4 and S5 Paraesthesia
    assert cell(t, arm=arm, soc=nervous, pt="ANY")["n_subjects"] == 2
    uncoded = cell(t, arm=arm, soc="Not coded", pt="Not coded: stubbed toe")
    assert (uncoded["n_subjects"], uncoded["n_events"]) == (1, 1)


def test_worst_severity_and_strongest_relatedness_by_soc_and_pt(study: Study) -> None:
    ref, arm = arms(study)
    result = coded_result(study)
    sev = result.tables["soc_pt_severity"]
    tap_any = sev.filter((pl.col("arm") == ref) & (pl.col("soc") == "ANY"))
    # S1: MILD, SEVERE, MILD -> one subject, SEVERE
    assert tap_any.select("severity", "n_subjects").rows() == [("SEVERE", 1)]
    gly_any = sev.filter((pl.col("arm") == arm) & (pl.col("soc") == "ANY"))
    # S3 MODERATE, S4 MILD, S5 MILD, S7 MODERATE
    assert sorted(gly_any.select("severity", "n_subjects").rows()) == [
        ("MILD", 2),
        ("MODERATE", 2),
    ]
    rel = result.tables["soc_pt_related"]
    skin = rel.filter((pl.col("arm") == ref) & (pl.col("pt") == pt(study, "ITCHING")))
    assert skin.select("related", "n_subjects").rows() == [("N", 1)]
    tap_any = rel.filter((pl.col("arm") == ref) & (pl.col("soc") == "ANY"))
    assert tap_any.select("related", "n_subjects").rows() == [("Y", 1)]


def test_leading_to_discontinuation_and_serious_listing(study: Study) -> None:
    arm = arms(study)[1]
    result = coded_result(study)
    disc = result.tables["soc_pt_discontinuation"]
    # S4 withdrew on 03-10: Dry mouth (03-05) counts, Paraesthesia (03-20) does not
    assert disc.filter(pl.col("pt") != "ANY").select("arm", "pt", "n_events").rows() == [
        (arm, pt(study, "DRY_MOUTH"), 1)
    ]
    serious = result.tables["serious"]
    assert serious.select("subject_id", "pt").rows() == [
        ("S1", pt(study, "TINGLING")),
        ("S7", "Not coded: stubbed toe"),
    ]
