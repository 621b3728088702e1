"""Numbers behind the descriptive tables and figures, recomputed independently from the
synthetic trial's ADaM tables (numpy/scipy); adverse events and device use are the safety and
device model results, checked against ADAE and ADDEV and shown as the results hold them."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import synthetic_trial as st
from scipy import stats

from study import Study
from trial.models.result import ModelResult
from trial.report import summaries as sm
from trial.report.data import build_report_data, check_blinding
from trial.report.run_info import RunInfo


def _n(flow: pl.DataFrame, stage: str, group: str = sm.TOTAL, reason: str | None = None) -> int:
    rows = flow.filter(
        (pl.col("stage") == stage)
        & (pl.col("group") == group)
        & (pl.col("reason").is_null() if reason is None else pl.col("reason") == reason)
    )
    assert rows.height == 1, (stage, group, reason)
    return int(rows["n"][0])


def _randomised(study: Study) -> int:
    return len(study.centres) * st.N_PER_CENTRE


def _screen_failure_reasons(study: Study) -> dict[str, int]:
    """Screen failure k (after the randomised subjects) carries criteria[k % 3]."""
    n = _randomised(study)
    reasons = [study.eligibility.criteria[k % 3] for k in range(n, n + st.N_SCREEN_FAIL)]
    return {r: reasons.count(r) for r in reasons}


def test_consort_counts_match_adsl(unblinded_tables, study):
    adsl = unblinded_tables["adsl"]
    flow = sm.consort_flow(adsl, unblinded_tables["adsweat"], study, None)
    n = _randomised(study)
    assert _n(flow, "screened") == n + st.N_SCREEN_FAIL
    assert _n(flow, "excluded") == st.N_SCREEN_FAIL
    for reason, count in _screen_failure_reasons(study).items():
        assert _n(flow, "excluded", reason=reason) == count
    assert _n(flow, "randomised") == n
    arms = [st.arm_of(k, study) for k in range(n)]
    for arm in study.arm_codes:
        assert _n(flow, "allocated", arm) == arms.count(arm)
    # Subject NO_SESSION has no session; LOST has no post-baseline value; WITHDRAWN_AE
    # withdrew for an adverse event, LOST was lost to follow-up.
    no_session, lost = st.arm_of(st.NO_SESSION, study), st.arm_of(st.LOST, study)
    assert _n(flow, "no_session", no_session) == 1
    assert _n(flow, "excluded_fas", no_session, "NO_TREATMENT_SESSION") == 1
    assert _n(flow, "excluded_fas", lost, "NO_POST_BASELINE_VALUE") == 1
    assert _n(flow, "withdrawn", st.arm_of(st.WITHDRAWN_AE, study), "ADVERSE_EVENT") == 1
    assert _n(flow, "withdrawn", lost, "LOST_TO_FOLLOW_UP") == 1
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
    for reason, count in _screen_failure_reasons(study).items():
        assert _n(flow, "excluded", reason=reason) == count
    no_form = sm.consort_flow(adsl, unblinded_tables["adsweat"], study, None)
    assert _n(no_form, "excluded", reason="NOT_RECORDED") == st.N_SCREEN_FAIL


def test_enrolment_by_centre(unblinded_tables, study):
    e = sm.enrolment_by_centre(unblinded_tables["adsl"], study)
    total = e.filter(pl.col("group") == sm.TOTAL)
    assert total["screened"].sum() == _randomised(study) + st.N_SCREEN_FAIL
    assert total["randomised"].to_list() == [st.N_PER_CENTRE] * len(study.centres)
    by_arm = e.filter(pl.col("group") != sm.TOTAL)
    assert by_arm["screened"].null_count() == len(study.arm_codes) * len(study.centres)


def test_baseline_geometric_means_and_percentages(unblinded_tables, study):
    adsl, adsweat = unblinded_tables["adsl"], unblinded_tables["adsweat"]
    b = sm.baseline_characteristics(adsl, adsweat, study)
    primary = study.primary_region
    for arm in study.arm_codes:
        ids = adsl.filter((pl.col("arm") == arm) & (pl.col("RANDFL") == "Y"))["subject_id"]
        rates = adsweat.filter(
            (pl.col("ABLFL") == "Y")
            & (pl.col("PARAMCD") == primary.paramcd)
            & pl.col("subject_id").is_in(ids.implode())
        )["rate_mg_min"].to_numpy()
        row = b.filter(
            (pl.col("characteristic") == f"Baseline {primary.code.lower()} sweat rate (mg/min)")
            & (pl.col("group") == arm)
        )
        assert row["estimate"][0] == pytest.approx(math.exp(np.log(rates).mean()))
        assert row["low"][0] == pytest.approx(rates.min())
        assert row["high"][0] == pytest.approx(rates.max())
        sex = b.filter((pl.col("characteristic") == "Sex") & (pl.col("group") == arm))
        assert sex["estimate"].sum() == pytest.approx(100.0)
        assert sex["n"].sum() == ids.len()
    involvement = study.involvement_region
    if involvement is None:  # every region measured in every subject
        return
    plantar = b.filter(
        (pl.col("characteristic") == f"Baseline {involvement.code.lower()} sweat rate (mg/min)")
        & (pl.col("group") == sm.TOTAL)
    )
    involved = adsl.filter((pl.col("RANDFL") == "Y") & (pl.col("plantar_involved") == "Y"))
    assert plantar["n"][0] == involved.height


def test_time_course_geometric_mean_and_ci(unblinded_tables, study):
    adsl, adsweat = unblinded_tables["adsl"], unblinded_tables["adsweat"]
    course = sm.sweat_time_course(adsl, adsweat, study)
    assert course["visit"].unique(maintain_order=True).to_list() == study.visit_codes[1:]
    arm = study.treated_arms[0]
    last, before = study.visit_codes[-1], study.visit_codes[-2]
    fas = adsl.filter((pl.col("arm") == arm) & (pl.col("FASFL") == "Y"))["subject_id"]
    values = adsweat.filter(
        (pl.col("AVISIT") == last)
        & (pl.col("PARAMCD") == study.primary_region.paramcd)
        & pl.col("subject_id").is_in(fas.implode())
    )
    x = values["AVAL"].to_numpy()
    half = stats.t.ppf(1 - study.alpha / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    row = course.filter((pl.col("visit") == last) & (pl.col("group") == arm))
    assert row["n"][0] == len(x)
    assert row["geo_mean"][0] == pytest.approx(math.exp(x.mean()))
    assert row["ci_low"][0] == pytest.approx(math.exp(x.mean() - half))
    assert row["ci_high"][0] == pytest.approx(math.exp(x.mean() + half))
    assert row["pct_reduction"][0] == pytest.approx(
        100 * (1 - math.exp(values["CHG"].to_numpy().mean()))
    )
    # The synthetic effect wanes after treatment stops (the study's effect fraction falls at
    # the last visit): the last visit is above the one before (relapse visible).
    frac = study.simulation.effect_fraction_by_visit
    assert frac[last] < frac[before]
    earlier = course.filter((pl.col("visit") == before) & (pl.col("group") == sm.TOTAL))
    later = course.filter((pl.col("visit") == last) & (pl.col("group") == sm.TOTAL))
    assert later["geo_mean"][0] > earlier["geo_mean"][0]


def test_responders_count_missing_as_non_responders(unblinded_tables, study):
    adsl = unblinded_tables["adsl"]
    r = sm.responder_shares(adsl, unblinded_tables["adsweat"], unblinded_tables["adhdss"], study)
    fas = adsl.filter(pl.col("FASFL") == "Y")
    total = r.filter(pl.col("group") == sm.TOTAL)
    assert total["N"][0] == fas.height
    hdss = unblinded_tables["adhdss"].filter(
        (pl.col("AVISIT") == study.primary_visit)
        & pl.col("subject_id").is_in(fas["subject_id"].implode())
        & (pl.col("CHG") <= -study.endpoints.responder.hdss_improvement)
    )
    assert 0 < hdss.height < fas.height  # the threshold tells responders apart
    assert total["hdss_responders"][0] == hdss.height
    # Subject WITHDRAWN_AE withdrew before the primary visit: in the FAS, no value there, so
    # fewer observed than N.
    assert total["n_observed"][0] == fas.height - 1
    assert total["hdss_responder_pct"][0] == pytest.approx(100 * hdss.height / fas.height)


def run_info(blinded: bool) -> RunInfo:
    return RunInfo("2026-11-16", blinded, "sha256:x", "git x")


def _safety_set_events(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Treatment-emergent AEs of Safety-set subjects with their arm, straight from ADAE."""
    adsl = tables["adsl"].filter(pl.col("SAFFL") == "Y").select("subject_id", "arm")
    return tables["adae"].filter(pl.col("TRTEMFL") == "Y").join(adsl, on="subject_id")


def _soc_pt(events: pl.DataFrame) -> pl.DataFrame:
    """Events with the SOC and PT the report counts them under (ADAE coding, or 'Not coded')."""
    if "AEDECOD" in events.columns:
        return events.with_columns(
            soc=pl.col("AEBODSYS").fill_null("Not coded"),
            pt=pl.col("AEDECOD").fill_null(pl.format("Not coded: {}", pl.col("verbatim"))),
        )
    return events.with_columns(soc=pl.lit("Not coded"), pt=pl.col("term"))


def test_ae_soc_pt_subjects_events_and_worst_severity(unblinded_data, unblinded_tables):
    """Every cell of the SOC/PT tables against a plain count over ADAE, per group: subjects
    once per row, events all, SOC totals a subject once across its PTs, worst severity and
    strongest relatedness one category per subject."""
    events = _soc_pt(_safety_set_events(unblinded_tables))
    safety_set = unblinded_tables["adsl"].filter(pl.col("SAFFL") == "Y")
    denominators = dict(safety_set.group_by("arm").len().rows()) | {sm.TOTAL: safety_set.height}
    rank = {"MILD": 0, "MODERATE": 1, "SEVERE": 2}
    strength = {"N": 0, "POSSIBLE": 1, "Y": 2}
    soc_pt, sev, rel = (
        unblinded_data.ae_soc_pt,
        unblinded_data.ae_severity,
        unblinded_data.ae_related,
    )
    assert soc_pt.group_by("soc", "pt").agg(pl.col("n").max())["n"].min() > 0  # no zero rows
    for group, N in denominators.items():
        mine = events if group == sm.TOTAL else events.filter(pl.col("arm") == group)
        levels = [("ANY", "ANY", mine)]
        for (soc,), part in mine.group_by("soc"):
            levels.append((soc, "ANY", part))
            for (pt,), of_pt in part.group_by("pt"):
                levels.append((soc, pt, of_pt))
        got = soc_pt.filter(pl.col("group") == group)
        assert set(got["N"]) == {N}
        for soc, pt, rows in levels:
            cell = got.filter((pl.col("soc") == soc) & (pl.col("pt") == pt))
            assert cell.select("n", "events").row(0) == (
                rows["subject_id"].n_unique(),
                rows.height,
            ), (group, soc, pt)
            worst: dict[str, int] = {}
            strongest: dict[str, int] = {}
            for sid, s_, r_ in rows.select("subject_id", "severity", "related").rows():
                worst[sid] = max(worst.get(sid, -1), rank[s_])
                strongest[sid] = max(strongest.get(sid, -1), strength[r_])
            for frame, counts, order in ((sev, worst, rank), (rel, strongest, strength)):
                mine_rows = frame.filter(
                    (pl.col("group") == group) & (pl.col("soc") == soc) & (pl.col("pt") == pt)
                )
                for level, r in order.items():
                    expected = sum(v == r for v in counts.values())
                    found = mine_rows.filter(pl.col("category") == level)["n"]
                    assert (found[0] if found.len() else 0) == expected, (group, soc, pt, level)
        # the worst-severity categories of a row add up to its subjects
        sums = sev.filter(pl.col("group") == group).group_by("soc", "pt").agg(pl.col("n").sum())
        joined = sums.join(got.select("soc", "pt", pl.col("n").alias("subjects")), on=["soc", "pt"])
        assert (joined["n"] == joined["subjects"]).all()


def test_adverse_events_are_read_from_the_safety_result(unblinded_tables, unblinded_results, study):
    """The report shows what the safety result holds, not a count of its own."""
    safety = unblinded_results["safety"]
    soc_pt = safety.tables["soc_pt"].with_columns(pl.col("n_subjects") + 100)
    doctored = ModelResult(
        name=safety.name,
        estimates=safety.estimates,
        fit=safety.fit,
        tables=safety.tables | {"soc_pt": soc_pt},
    )
    data = build_report_data(
        unblinded_tables,
        unblinded_results | {"safety": doctored},
        study,
        run_info(False),
    )
    shown = data.ae_soc_pt.join(
        soc_pt, left_on=["group", "soc", "pt"], right_on=["arm", "soc", "pt"]
    )
    assert shown.height == soc_pt.height
    assert (shown["n"] == shown["n_subjects"]).all()
    total = data.ae_soc_pt.filter((pl.col("group") == sm.TOTAL) & (pl.col("soc") == "ANY"))
    assert total["n"][0] == soc_pt.filter(pl.col("soc") == "ANY")["n_subjects"].sum()


def test_serious_events_listing(unblinded_data, unblinded_tables):
    sae = unblinded_data.serious_events
    expected = _safety_set_events(unblinded_tables).filter(pl.col("serious") == "Y")
    assert sae.height == expected.height == 1
    assert {"subject_id", "centre_id", "arm", "term", "severity", "related"} <= set(sae.columns)
    centre = unblinded_tables["adsl"].filter(pl.col("subject_id") == sae["subject_id"][0])
    assert sae["centre_id"][0] == centre["centre_id"][0]
    assert sae["arm"][0] == expected["arm"][0]


def test_device_adherence_and_dose_by_arm_and_region(unblinded_data, unblinded_tables, study):
    adsl, addev = unblinded_tables["adsl"], unblinded_tables["addev"]
    phases = [p.name for p in study.treatment.phases if p.sessions_per_week > 0]
    safety = adsl.filter(pl.col("SAFFL") == "Y").select("subject_id", "arm")
    treated = addev.filter(pl.col("phase").is_in(phases)).join(safety, on="subject_id")
    d = unblinded_data.device
    assert sm.TOTAL not in d["group"].to_list()
    assert d.select("group", "region").rows() == [
        (a, r.code) for a in study.arm_codes for r in study.regions
    ]
    for arm in study.arm_codes:
        row = d.filter((pl.col("group") == arm) & (pl.col("region") == study.primary_region.code))
        mine = treated.filter(pl.col("arm") == arm)
        n_subjects = safety.filter(pl.col("arm") == arm).height
        completed = mine.filter(pl.col("end_reason") == "COMPLETED").height
        assert row["n_subjects"][0] == n_subjects
        assert row["sessions_planned"][0] == n_subjects * study.planned_sessions_total
        assert row["sessions_completed"][0] == completed
        assert row["completed_share"][0] == pytest.approx(
            completed / (n_subjects * study.planned_sessions_total)
        )
        assert row["charge_mean_mc"][0] == pytest.approx(mine["charge_mc"].mean())
        assert row["charge_sd_mc"][0] == pytest.approx(np.std(mine["charge_mc"].to_numpy(), ddof=1))
        sampled = mine.filter(pl.col("within_tolerance_share").is_not_null())
        share = sampled["within_tolerance_share"].to_numpy()
        weights = sampled["duration_s"].to_numpy()
        assert row["n_sessions_with_samples"][0] == sampled.height
        assert row["within_tolerance_share"][0] == pytest.approx(np.average(share, weights=weights))
        assert row["aborted"][0] == mine.filter(pl.col("end_reason") != "COMPLETED").height
        # No device on the involvement region in the synthetic trial: planned sessions, none
        # logged.
        involvement = study.involvement_region
        if involvement is None:
            continue
        sole = d.filter((pl.col("group") == arm) & (pl.col("region") == involvement.code))
        involved = adsl.filter(
            (pl.col("arm") == arm) & (pl.col("SAFFL") == "Y") & (pl.col("plantar_involved") == "Y")
        )
        assert sole["n_subjects"][0] == involved.height
        assert sole["n_sessions"][0] == 0
    faults = unblinded_data.faults
    with_code = treated.filter(pl.col("fault_code").is_not_null())
    assert faults["n_sessions"].sum() == with_code.height > 0
    assert set(faults.filter(pl.col("fault_code") == "E03")["description"]) == {"over-current"}


def test_induction_adherence_from_adsl(unblinded_data, unblinded_tables, study):
    adsl = unblinded_tables["adsl"].filter(pl.col("SAFFL") == "Y")
    # ION-301: 12 planned induction sessions, 80 %: at least 10 adequate ones (9.6 rounded up);
    # ION-302: 8 planned loading sessions, 75 %: at least 6.
    planned = study.induction_phase.sessions_per_week * (
        study.induction_phase.weeks[1] - study.induction_phase.weeks[0] + 1
    )
    needed = math.ceil(study.analysis_sets.pp.min_induction_sessions_share * planned - 1e-9)
    adherent = adsl.filter(pl.col("n_induction_sessions_adequate") >= needed)
    assert 0 < adherent.height < adsl.height  # the threshold tells subjects apart
    row = unblinded_data.induction_adherence.filter(pl.col("group") == sm.TOTAL)
    assert (row["N"][0], row["n"][0]) == (adsl.height, adherent.height)
    for arm in study.arm_codes:
        row = unblinded_data.induction_adherence.filter(pl.col("group") == arm)
        assert row["n"][0] == adherent.filter(pl.col("arm") == arm).height


def test_report_refuses_safety_results_that_disagree_with_its_blinding(
    unblinded_tables, blinded_tables, unblinded_results, blinded_results, study
):
    with pytest.raises(ValueError, match="'safety' is by arm"):
        build_report_data(blinded_tables, unblinded_results, study, run_info(True))
    with pytest.raises(ValueError, match="'safety' is pooled"):
        build_report_data(unblinded_tables, blinded_results, study, run_info(False))


def test_missing_safety_and_device_results_say_so(unblinded_tables, models, study):
    from trial.report.investigator import investigator_html

    data = build_report_data(unblinded_tables, models, study, run_info(False))
    assert data.ae_soc_pt.width == data.device.width == data.faults.width == 0
    html = investigator_html(data)
    assert "the safety model result is not available" in html
    assert "the device model result is not available" in html


def test_blinded_frames_are_pooled_and_equal_the_unblinded_total(blinded_data, unblinded_data):
    by_arm_only = {"device", "faults"}  # model results by arm and region, no TOTAL row
    # One row per N the outputs state: the unblinded report has outputs a blinded one withholds.
    by_arm_only.add("count_reconciliation")
    for name, frame in blinded_data.frames().items():
        if "group" in frame.columns:
            assert set(frame["group"]) <= {sm.TOTAL}, name
            if name in by_arm_only:
                continue
            total = unblinded_data.frames()[name].filter(pl.col("group") == sm.TOTAL)
            assert frame.height == total.height, name
    b = blinded_data.time_course.select("visit", "geo_mean")
    u = unblinded_data.time_course.filter(pl.col("group") == sm.TOTAL).select("visit", "geo_mean")
    assert b.equals(u)
    # Pooled device counts are the sums over the arms of the unblinded result.
    counts = ["n_subjects", "sessions_planned", "n_sessions", "sessions_completed", "aborted"]
    summed = unblinded_data.device.group_by("region").agg(pl.col(counts).sum()).sort("region")
    assert blinded_data.device.select("region", *counts).sort("region").equals(summed)
    faults = unblinded_data.faults.group_by("region", "fault_code").agg(pl.col("n_sessions").sum())
    pooled = blinded_data.faults.select("region", "fault_code", "n_sessions")
    assert pooled.sort("region", "fault_code").equals(faults.sort("region", "fault_code"))
    keys = ["soc", "pt", "category"]
    for name in ("ae_soc_pt", "ae_severity", "ae_related"):
        pooled = blinded_data.frames()[name].select(*keys, "n", "events").sort(keys)
        total = unblinded_data.frames()[name].filter(pl.col("group") == sm.TOTAL)
        assert pooled.equals(total.select(*keys, "n", "events").sort(keys)), name
    assert "arm" not in blinded_data.serious_events.columns
    assert blinded_data.serious_events.height == unblinded_data.serious_events.height
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


def test_plantar_time_course_covers_involved_subjects_only(unblinded_data, unblinded_tables, study):
    if study.involvement_region is None:  # no region measured in involved subjects only
        assert unblinded_data.plantar_time_course.height == 0
        return
    adsl = unblinded_tables["adsl"]
    involved = adsl.filter((pl.col("FASFL") == "Y") & (pl.col("plantar_involved") == "Y"))
    baseline = unblinded_data.plantar_time_course.filter(
        (pl.col("visit") == study.baseline_visit) & (pl.col("group") == sm.TOTAL)
    )
    assert baseline["n"][0] == involved.height
