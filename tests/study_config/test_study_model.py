"""The typed study model: both example studies load; a mistake in a study file is one line with
the key path, before anything else is read."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ionto.cli import main
from study import EXAMPLE_STUDIES, Study, StudyError, example_study_path, load_study, parse_study


def _mapping(name: str = "ion301") -> dict:
    return yaml.safe_load(example_study_path(name).read_text("utf-8"))


def _error(data: dict) -> StudyError:
    with pytest.raises(StudyError) as caught:
        parse_study(data, "bad.yaml")
    return caught.value


@pytest.mark.parametrize("name", EXAMPLE_STUDIES)
def test_example_studies_load_with_visit_neutral_keys(name: str) -> None:
    study = load_study(name)
    assert isinstance(study, Study)
    assert study.primary_visit in study.model_visits
    assert study.arm_codes[0] == study.reference_arm
    assert study.induction_phase.name == study.treatment.induction_phase
    assert set(study.simulation.primary_mean_change) == set(study.arm_codes)
    assert study.codelist("arms") == tuple(study.arm_codes)
    assert study.codelist("study_id") == (study.study_id,)


def test_the_two_examples_differ_in_every_design_dimension() -> None:
    a, b = load_study("ion301"), load_study("ion302")
    assert a.study_id != b.study_id and a.reference_arm != b.reference_arm
    assert set(a.arm_codes) != set(b.arm_codes) and len(a.arms) != len(b.arms)
    assert a.primary_region.code != b.primary_region.code
    assert not set(a.visit_codes) & set(b.visit_codes)
    assert [v.window_days for v in a.visits] != [v.window_days for v in b.visits]
    assert len(a.centres) == 4 and len(b.centres) == 5
    assert a.primary_visit != b.primary_visit
    assert a.simulation.vendor_b_share > 0 and b.simulation.vendor_b_share == 0
    assert b.simulation.plantar_share == 1.0
    assert a.stratum_levels != b.stratum_levels
    assert a.alpha != b.alpha
    assert a.endpoints.responder != b.endpoints.responder
    assert a.treatment.induction_phase != b.treatment.induction_phase
    assert a.models.mmrm.covariance != b.models.mmrm.covariance


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["models"]["mmrm"].update(covariance="unstructred"),
            "bad.yaml: models.mmrm.covariance: 'unstructred' is not one of 'unstructured', "
            "'heterogeneous_toeplitz', 'heterogeneous_ar1' or 'compound_symmetry'",
        ),
        (
            lambda d: d["endpoints"]["responder"].update(
                hdss_improvment=d["endpoints"]["responder"].pop("hdss_improvement")
            ),
            "bad.yaml: endpoints.responder.hdss_improvment: is not a key of this section "
            "(misspelt, or a key renamed?) (and 1 more problem)",
        ),
        (
            lambda d: d["endpoints"].update(primary_visit="W5"),
            "bad.yaml: endpoints.primary_visit: 'W5' is not one of the model visits "
            "(W1, W2, W3, W4, W8, W12)",
        ),
        (
            lambda d: d.update(reference_arm="PLACEBO"),
            "bad.yaml: reference_arm: 'PLACEBO' is not one of the arms (TAP, GLY, OXY) "
            "(and 3 more problems)",
        ),
        (
            lambda d: d["endpoints"].update(alpha=5),
            "bad.yaml: endpoints.alpha: 5: input should be less than 0.5",
        ),
        (
            lambda d: d["simulation"].pop("primary_mean_change"),
            "bad.yaml: simulation.primary_mean_change: a required key is missing",
        ),
        (
            lambda d: d["visits"][3].update(window_days="two"),
            "bad.yaml: visits[3].window_days: 'two': input should be a valid integer, unable to "
            "parse string as an integer",
        ),
        (
            lambda d: d["simulation"]["primary_mean_change"].pop("OXY"),
            "bad.yaml: simulation.primary_mean_change: needs exactly the arms "
            "['TAP', 'GLY', 'OXY'], has ['GLY', 'TAP']",
        ),
    ],
)
def test_a_mistake_names_its_key_path_in_one_line(
    change: Callable[[dict], object], message: str
) -> None:
    data = _mapping()
    change(data)
    error = _error(data)
    assert str(error) == message
    assert "\n" not in str(error)


def test_visit_named_keys_of_earlier_versions_are_refused() -> None:
    data = _mapping()
    data["simulation"]["mean_change_w4"] = data["simulation"].pop("primary_mean_change")
    assert str(_error(data)).startswith("bad.yaml: simulation.mean_change_w4: is not a key")


def _write_broken(tmp_path: Path) -> Path:
    text = example_study_path("ion301").read_text("utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("covariance: unstructured", "covariance: unstructred"))
    return broken


def test_ionto_run_stops_on_a_broken_study_before_reading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The raw root does not even exist and OUT is not created: the study is checked first."""
    out = tmp_path / "out"
    code = main(
        ["run", "--study", str(_write_broken(tmp_path)), "--raw", "/nonexistent", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "models.mmrm.covariance: 'unstructred' is not one of 'unstructured'" in err
    assert not out.exists()


def test_ionto_simulate_stops_on_a_broken_study_with_one_line(tmp_path: Path) -> None:
    """Through the installed command: exit 2, one line on stderr, no traceback, nothing written."""
    out = tmp_path / "raw"
    args = ["simulate", "--study", str(_write_broken(tmp_path)), "--subjects", "10"]
    done = subprocess.run(
        [sys.executable, "-m", "ionto.cli", *args, "--seed", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "models.mmrm.covariance" in done.stderr
    assert not out.exists()


def test_dagster_definitions_refuse_a_broken_study(tmp_path: Path) -> None:
    from pipelines.definitions import build_definitions
    from pipelines.resources import TrialSettings

    settings = TrialSettings(
        raw_dir=str(tmp_path / "raw"),
        out_dir=str(tmp_path / "out"),
        study_path=str(_write_broken(tmp_path)),
    )
    with pytest.raises(StudyError, match=r"models\.mmrm\.covariance: 'unstructred'"):
        build_definitions(settings)


@pytest.mark.parametrize("name", EXAMPLE_STUDIES)
def test_the_amendment_sections_are_typed_for_each_example(name: str) -> None:
    """``intercurrent_events`` and ``estimands`` are typed by the study model: one
    discontinuation and one rescue ICE, every estimand handles exactly those ICEs."""
    study = load_study(name)
    disc, rule = study.discontinuation_ice
    rescue, _ = study.rescue_ice
    assert list(study.intercurrent_events) == [disc, rescue]
    assert rule.gap_until_visit in study.visit_codes
    assert all(set(e.ices) == {disc, rescue} for e in study.estimands.definitions)
    assert all(e.visit in study.model_visits for e in study.estimands.definitions)
    assert study.estimands.tipping_point.visit in study.model_visits
    assert study.codelist("intercurrent_events") == (disc, rescue)


def _estimand_error(change: Callable[[dict], None]) -> str:
    data = _mapping()
    change(data)
    text = str(_error(data))
    assert "\n" not in text
    return text


def test_a_bad_strategy_is_one_line_with_its_key_path() -> None:
    def change(data: dict) -> None:
        data["estimands"]["definitions"][1]["ices"]["ICE1"]["missing"] = "J2Rx"

    assert _estimand_error(change) == (
        "bad.yaml: estimands.definitions[1].ices.ICE1.missing: 'J2Rx' is not one of "
        "'MAR', 'JR', 'CR' or 'CIR'"
    )


def test_an_unknown_ice_of_an_estimand_is_one_line_with_its_key_path() -> None:
    def change(data: dict) -> None:
        ices = data["estimands"]["definitions"][2]["ices"]
        ices["ICE3"] = ices.pop("ICE2")

    assert _estimand_error(change) == (
        "bad.yaml: estimands.definitions[2].ices.ICE3: 'ICE3' is not one of the intercurrent "
        "events (ICE1, ICE2) (and 1 more problem)"
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("delta_step", 0, "estimands.tipping_point.delta_step: 0: input should be greater than 0"),
        (
            "delta_max",
            -0.5,
            "estimands.tipping_point.delta_max: -0.5 is below delta_start 0.0: the grid is empty",
        ),
    ],
)
def test_a_bad_tipping_point_grid_is_one_line_with_its_key_path(
    key: str, value: float, expected: str
) -> None:
    def change(data: dict) -> None:
        data["estimands"]["tipping_point"][key] = value

    assert _estimand_error(change) == f"bad.yaml: {expected}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["intercurrent_events"]["ICE1"].update(gap_until_visit="W99"),
            "intercurrent_events.ICE1.gap_until_visit: 'W99' is not one of the visits",
        ),
        (
            lambda d: d["intercurrent_events"]["ICE2"].pop("cm_rescue"),
            "intercurrent_events.ICE2.cm_rescue: a required key is missing",
        ),
        (
            lambda d: d["intercurrent_events"].update(ICE2={"name": "rescue"}),
            "intercurrent_events.ICE2: an ICE rule is a discontinuation (",
        ),
        (
            lambda d: d["estimands"]["definitions"][0]["ices"]["ICE1"].update(missing="JR"),
            "estimands.definitions[0].method: the MMRM handles missing values under MAR only",
        ),
        (
            lambda d: d["estimands"]["definitions"][0]["ices"].pop("ICE2"),
            "estimands.definitions[0].ices: gives no handling of ICE2",
        ),
        (
            lambda d: d["estimands"]["tipping_point"].update(visit="W16"),
            "estimands.tipping_point.visit: 'W16' is not one of the model visits",
        ),
    ],
)
def test_ice_and_estimand_mistakes_name_their_key_path(
    change: Callable[[dict], None], expected: str
) -> None:
    assert _estimand_error(change).startswith(f"bad.yaml: {expected}")


def test_dagster_definitions_refuse_a_broken_estimand(tmp_path: Path) -> None:
    """The estimands section is validated with the rest of the study: its mistakes stop the
    definitions as early, in one line naming the key path."""
    from pipelines.definitions import build_definitions
    from pipelines.resources import TrialSettings

    text = example_study_path("ion302").read_text("utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("      method: mmrm\n", "      method: mmrn\n", 1), "utf-8")
    settings = TrialSettings(
        raw_dir=str(tmp_path / "raw"), out_dir=str(tmp_path / "out"), study_path=str(broken)
    )
    with pytest.raises(StudyError) as caught:
        build_definitions(settings)
    assert str(caught.value).startswith(
        f"{broken}: estimands.definitions[0].method: 'mmrn' is not one of"
    )
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", EXAMPLE_STUDIES)
def test_free_text_a_blinded_report_prints_may_not_name_an_arm(name: str) -> None:
    data = _mapping(name)
    study = load_study(name)
    reference = study.reference_arm
    data["estimands"]["definitions"][0]["summary"] = f"difference in LS means vs {reference}"
    error = _error(data)
    assert str(error).startswith("bad.yaml: estimands.definitions[0].summary: ")
    assert f"names the arm code {reference!r}" in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize("name", EXAMPLE_STUDIES)
def test_an_arm_name_in_a_printed_label_is_refused_in_any_case(name: str) -> None:
    data = _mapping(name)
    arm = load_study(name).arms[-1]
    data["labels"]["sex"]["F"] = f"Female ({arm.name.upper()})"
    error = _error(data)
    assert str(error).startswith("bad.yaml: labels.sex.F: ")
    assert f"names the arm name {arm.name!r}" in str(error)


def test_an_arm_code_inside_a_word_is_not_an_arm() -> None:
    data = _mapping("ion301")
    codes = load_study("ion301").arm_codes
    summary = f"difference in LS means vs the reference arm ({codes[0].lower()}ered)"
    data["estimands"]["definitions"][0]["summary"] = summary
    assert parse_study(data, "ok.yaml").estimands.definitions[0].summary == summary
