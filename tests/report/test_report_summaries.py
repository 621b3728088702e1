"""Numbers behind the descriptive tables and figures, recomputed independently from the
synthetic trial's ADaM tables (numpy/scipy, or the models' own safety summary)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from trial.models.safety import safety_summary
from trial.report import summaries as sm
from trial.report.data import check_blinding
from trial.report.run_info import RunInfo


def _n(flow: pl.DataFrame, stage: str, group: str = sm.TOTAL, reason: str | None = None) -> int:
    rows = flow.filter(
        (pl.col("stage") == stage)
        & (pl.col("group") == group)
        & (pl.col("reason").is_null() if reason is None else pl.col("reason") == reason)
    )
    assert rows.height == 1, (stage, group, reason)
    return int(rows["n"][0])


def test_consort_counts_match_adsl(unblinded_tables, study):
    adsl = unblinded_tables["adsl"]
    flow = sm.consort_flow(adsl, unblinded_tables["adsweat"], study, None)
    assert _n(flow, "screened") == 40
    assert _n(flow, "excluded") == 4
    # Screen failures k = 36..39 carry criteria[k % 3]: 2 PREGNANT, PACEMAKER, METAL_IMPLANT.
    assert _n(flow, "excluded", reason="PREGNANT") == 2
    assert _n(flow, "excluded", reason="PACEMAKER") == 1
    assert _n(flow, "excluded", reason="METAL_IMPLANT") == 1
    assert _n(flow, "randomised") == 36
    for arm in study.arm_codes:
        assert _n(flow, "allocated", arm) == 12
    # Subject k=5 (OXY) has no session; k=11 (OXY) has no post-baseline value; k=7 (GLY)
    # withdrew for an adverse event, k=11 was lost to follow-up.
    assert _n(flow, "no_session", "OXY") == 1
    assert _n(flow, "excluded_fas", "OXY", "NO_TREATMENT_SESSION") == 1
    assert _n(flow, "excluded_fas", "OXY", "NO_POST_BASELINE_VALUE") == 1
    assert _n(flow, "withdrawn", "GLY", "ADVERSE_EVENT") == 1
    assert _n(flow, "withdrawn", "OXY", "LOST_TO_FOLLOW_UP") == 1
    for stage, flag in (("analysed_fas", "FASFL"), ("analysed_pp", "PPFL")):
        for arm in study.arm_codes:
            expected = adsl.filter((pl.col("arm") == arm) & (pl.col(flag) == "Y")).height
            assert _n(flow, stage, arm) == expected
    assert _n(flow, "analysed_safety") == adsl.filter(pl.col("SAFFL") == "Y").height


def test_consort_reasons_fall_back_to_eligibility_form(unblinded_tables, study):
    adsl = unblinded_tables["adsl"].drop("eligibility_reasons")
    flow = sm.consort_flow(
        adsl, unblinded_tables["adsweat"], study, unblinded_tables["eligibility"]
    )
    assert _n(flow, "excluded", reason="PREGNANT") == 2
    no_form = sm.consort_flow(adsl, unblinded_tables["adsweat"], study, None)
    assert _n(no_form, "excluded", reason="NOT_RECORDED") == 4


def test_enrolment_by_centre(unblinded_tables, study):
    e = sm.enrolment_by_centre(unblinded_tables["adsl"], study)
    total = e.filter(pl.col("group") == sm.TOTAL)
    assert total["screened"].sum() == 40
    assert total["randomised"].to_list() == [9, 9, 9, 9]
    assert e.filter(pl.col("group") != sm.TOTAL)["screened"].null_count() == 12


def test_baseline_geometric_means_and_percentages(unblinded_tables, study):
    adsl, adsweat = unblinded_tables["adsl"], unblinded_tables["adsweat"]
    b = sm.baseline_characteristics(adsl, adsweat, study)
    for arm in study.arm_codes:
        ids = adsl.filter((pl.col("arm") == arm) & (pl.col("RANDFL") == "Y"))["subject_id"]
        rates = adsweat.filter(
            (pl.col("ABLFL") == "Y")
            & (pl.col("PARAMCD") == "LPALMSR")
            & pl.col("subject_id").is_in(ids.implode())
        )["rate_mg_min"].to_numpy()
        row = b.filter(
            (pl.col("characteristic") == "Baseline palm sweat rate (mg/min)")
            & (pl.col("group") == arm)
        )
        assert row["estimate"][0] == pytest.approx(math.exp(np.log(rates).mean()))
        assert row["low"][0] == pytest.approx(rates.min())
        assert row["high"][0] == pytest.approx(rates.max())
        sex = b.filter((pl.col("characteristic") == "Sex") & (pl.col("group") == arm))
        assert sex["estimate"].sum() == pytest.approx(100.0)
        assert sex["n"].sum() == 12
    plantar = b.filter(
        (pl.col("characteristic") == "Baseline sole sweat rate (mg/min)")
        & (pl.col("group") == sm.TOTAL)
    )
    involved = adsl.filter((pl.col("RANDFL") == "Y") & (pl.col("plantar_involved") == "Y"))
    assert plantar["n"][0] == involved.height


def test_time_course_geometric_mean_and_ci(unblinded_tables, study):
    adsl, adsweat = unblinded_tables["adsl"], unblinded_tables["adsweat"]
    course = sm.sweat_time_course(adsl, adsweat, study)
    assert course["visit"].unique(maintain_order=True).to_list() == study.visit_codes[1:]
    fas = adsl.filter((pl.col("arm") == "GLY") & (pl.col("FASFL") == "Y"))["subject_id"]
    values = adsweat.filter(
        (pl.col("AVISIT") == "W16")
        & (pl.col("PARAMCD") == "LPALMSR")
        & pl.col("subject_id").is_in(fas.implode())
    )
    x = values["AVAL"].to_numpy()
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    row = course.filter((pl.col("visit") == "W16") & (pl.col("group") == "GLY"))
    assert row["n"][0] == len(x)
    assert row["geo_mean"][0] == pytest.approx(math.exp(x.mean()))
    assert row["ci_low"][0] == pytest.approx(math.exp(x.mean() - half))
    assert row["ci_high"][0] == pytest.approx(math.exp(x.mean() + half))
    assert row["pct_reduction"][0] == pytest.approx(
        100 * (1 - math.exp(values["CHG"].to_numpy().mean()))
    )
    # The synthetic effect wanes after treatment stops: W16 is above W12 (relapse visible).
    w12 = course.filter((pl.col("visit") == "W12") & (pl.col("group") == sm.TOTAL))
    w16 = course.filter((pl.col("visit") == "W16") & (pl.col("group") == sm.TOTAL))
    assert w16["geo_mean"][0] > w12["geo_mean"][0]


def test_responders_count_missing_as_non_responders(unblinded_tables, study):
    adsl = unblinded_tables["adsl"]
    r = sm.responder_shares(adsl, unblinded_tables["adsweat"], unblinded_tables["adhdss"], study)
    fas = adsl.filter(pl.col("FASFL") == "Y")
    total = r.filter(pl.col("group") == sm.TOTAL)
    assert total["N"][0] == fas.height
    hdss = unblinded_tables["adhdss"].filter(
        (pl.col("AVISIT") == "W4")
        & pl.col("subject_id").is_in(fas["subject_id"].implode())
        & (pl.col("CHG") <= -2)
    )
    assert total["hdss_responders"][0] == hdss.height
    # Subject k=7 withdrew after W2: in the FAS, no W4 value, so fewer observed than N.
    assert total["n_observed"][0] == fas.height - 1
    assert total["hdss_responder_pct"][0] == pytest.approx(100 * hdss.height / fas.height)


def test_adverse_events_agree_with_the_safety_model(unblinded_tables, study):
    adsl, adae = unblinded_tables["adsl"], unblinded_tables["adae"]
    ours = sm.adverse_event_summary(adae, adsl, study)
    theirs = safety_summary(adae, adsl, study).tables
    by_term = theirs["by_term"].select("arm", "term", pl.col("n_subjects"))
    any_rows = ours.filter((pl.col("dimension") == "any") & (pl.col("group") != sm.TOTAL))
    joined = any_rows.join(by_term, left_on=["group", "term"], right_on=["arm", "term"], how="left")
    assert (joined["n"] == joined["n_subjects"].fill_null(0)).all()
    sev = ours.filter(
        (pl.col("dimension") == "severity")
        & (pl.col("group") != sm.TOTAL)
        & (pl.col("term") != "ANY")
    )
    joined = sev.join(
        theirs["by_severity"],
        left_on=["group", "term", "level"],
        right_on=["arm", "term", "severity"],
        how="left",
    )
    assert (joined["n"] == joined["n_subjects"].fill_null(0)).all()
    # Severity rows add up to the term row (worst severity per subject and term).
    for term in ours["term"].unique().to_list():
        t = ours.filter((pl.col("term") == term) & (pl.col("group") == sm.TOTAL))
        assert (
            t.filter(pl.col("dimension") == "severity")["n"].sum()
            == (t.filter(pl.col("dimension") == "any")["n"][0])
        )
        assert (
            t.filter(pl.col("dimension") == "related")["n"].sum()
            == (t.filter(pl.col("dimension") == "any")["n"][0])
        )


def test_serious_events_listing(unblinded_tables):
    sae = sm.serious_events(unblinded_tables["adae"], unblinded_tables["adsl"])
    assert sae.height == unblinded_tables["adae"].filter(pl.col("serious") == "Y").height == 1
    assert {"subject_id", "centre_id", "arm", "term", "severity", "related"} <= set(sae.columns)


def test_device_adherence_and_dose(unblinded_tables, study):
    adsl, addev = unblinded_tables["adsl"], unblinded_tables["addev"]
    d = sm.device_summary(addev, adsl, study).filter(pl.col("group") == sm.TOTAL)
    safety = adsl.filter(pl.col("SAFFL") == "Y")
    treated = addev.filter(pl.col("phase").is_in(["induction", "maintenance"]))
    completed = (
        safety.select("subject_id")
        .join(
            treated.filter(pl.col("end_reason") == "COMPLETED").group_by("subject_id").len(),
            on="subject_id",
            how="left",
        )["len"]
        .fill_null(0)
        .to_numpy()
    )
    assert d["adherence_pct"][0] == pytest.approx(
        np.mean(100 * completed / study.planned_sessions_total)
    )
    assert d["charge_mc_mean"][0] == pytest.approx(treated["charge_mc"].mean())
    assert d["aborted"][0] == treated.filter(pl.col("end_reason") != "COMPLETED").height
    faults = sm.fault_summary(addev, adsl, study).filter(pl.col("group") == sm.TOTAL)
    assert faults["sessions"].sum() == d["aborted"][0]
    assert set(faults.filter(pl.col("fault_code") == "E03")["fault"]) == {"over-current"}


def test_blinded_frames_are_pooled_and_equal_the_unblinded_total(blinded_data, unblinded_data):
    for name, frame in blinded_data.frames().items():
        if "group" in frame.columns:
            assert set(frame["group"]) <= {sm.TOTAL}, name
            total = unblinded_data.frames()[name].filter(pl.col("group") == sm.TOTAL)
            assert frame.drop_nulls().shape == total.drop_nulls().shape, name
    b = blinded_data.time_course.select("visit", "geo_mean")
    u = unblinded_data.time_course.filter(pl.col("group") == sm.TOTAL).select("visit", "geo_mean")
    assert b.equals(u)
    assert blinded_data.primary_lsmeans.height == 0
    assert blinded_data.sensitivity.height == 0
    assert blinded_data.subgroups.height == 0


def test_blinding_label_must_match_the_data(unblinded_tables, blinded_tables):
    blinded = RunInfo("2026-11-16", True, "sha256:x", "git x")
    unblinded = RunInfo("2026-11-16", False, "sha256:x", "git x")
    with pytest.raises(ValueError, match="carries the arm"):
        check_blinding(unblinded_tables["adsl"], blinded)
    with pytest.raises(ValueError, match="no arm column"):
        check_blinding(blinded_tables["adsl"], unblinded)


def test_plantar_time_course_covers_involved_subjects_only(unblinded_data, unblinded_tables):
    adsl = unblinded_tables["adsl"]
    involved = adsl.filter((pl.col("FASFL") == "Y") & (pl.col("plantar_involved") == "Y"))
    baseline = unblinded_data.plantar_time_course.filter(
        (pl.col("visit") == "BL") & (pl.col("group") == sm.TOTAL)
    )
    assert baseline["n"][0] == involved.height
