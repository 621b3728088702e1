"""Leak test: nothing a blinded run writes lets a reader infer a subject's arm.

The scan (``trial.report.blinding``) is checked both ways: every blinded output of the report
package is clean, and each kind of leak it exists for is caught in a planted example."""

from __future__ import annotations

import polars as pl
import pytest

from study import Study
from trial.report.blinding import scan_for_arm_leaks, scan_metadata


def test_every_blinded_output_is_free_of_arm_leaks(blinded_out, randomisation, study):
    files = sorted(
        p.relative_to(blinded_out).as_posix() for p in blinded_out.rglob("*") if p.is_file()
    )
    # The scan covers tables (report data), reports and exports alike.
    assert any(f.startswith("reports/investigator_report_data/") for f in files)
    assert "reports/investigator_report.html" in files
    assert "reports/data_quality_report.html" in files
    assert any(f.startswith("exports/xpt/") and f.endswith(".xpt") for f in files)
    assert scan_for_arm_leaks([blinded_out], randomisation, study) == []


def test_blinded_input_tables_are_free_of_arm_leaks(blinded_tables, randomisation, study, tmp_path):
    """The blinded ADaM tables the reports read (what OUT/tables holds) leak nothing either."""
    for name, frame in blinded_tables.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    assert scan_for_arm_leaks([tmp_path], randomisation, study) == []


def test_unblinded_outputs_are_flagged(
    unblinded_data, unblinded_html, unblinded_tables, randomisation, study, tmp_path
):
    from trial.report.exports import write_xpt_exports
    from trial.report.outputs import write_report_data

    (tmp_path / "investigator_report.html").write_text(unblinded_html, encoding="utf-8")
    write_report_data(unblinded_data, tmp_path)
    write_xpt_exports({"adsl": unblinded_tables["adsl"]}, tmp_path / "xpt")
    kinds = {leak.kind for leak in scan_for_arm_leaks([tmp_path], randomisation, study)}
    assert {"ARM_COLUMN", "ARM_TOKEN", "ARM_ENCODING"} <= kinds


def test_masked_codes_consistent_with_the_arms_are_caught(randomisation, study, tmp_path):
    masked = {code: f"Z{i}" for i, code in enumerate(study.arm_codes)}
    frame = randomisation.select("subject_id", pl.col("arm").replace_strict(masked).alias("cohort"))
    frame.write_parquet(tmp_path / "masked.parquet")
    leaks = scan_for_arm_leaks([tmp_path / "masked.parquet"], randomisation, study)
    assert [leak.kind for leak in leaks] == ["ARM_ENCODING"]
    assert leaks[0].source.endswith("masked.parquet:cohort")


def test_a_column_unrelated_to_the_arms_is_not_flagged(randomisation, study, tmp_path):
    # Centre splits subjects into shared values that each mix arms: no leak.
    site = pl.col("subject_id").str.split("-").list.first().alias("site")
    frame = randomisation.select("subject_id", site)
    assert frame["site"].n_unique() == len(study.centres)
    frame.write_parquet(tmp_path / "site.parquet")
    assert scan_for_arm_leaks([tmp_path / "site.parquet"], randomisation, study) == []


@pytest.mark.parametrize(
    "template",
    [
        "<td>{subject}</td><td>{arm}</td>",
        "Dry mouth: Arm B 3 (25 %)",
        "{arm_name} n = 12",
    ],
)
def test_arm_tokens_in_text_are_caught(template, randomisation, study, tmp_path):
    last = study.arms[-1]
    subject = randomisation["subject_id"][1]
    text = template.format(subject=subject, arm=last.code, arm_name=last.name)
    path = tmp_path / "report.html"
    path.write_text(f"<html><h1>{study.title}</h1>{text}</html>", encoding="utf-8")
    leaks = scan_for_arm_leaks([path], randomisation, study)
    assert leaks and {leak.kind for leak in leaks} == {"ARM_TOKEN"}


def test_a_pooled_or_empty_arm_column_is_not_a_leak(randomisation, study, tmp_path):
    pl.DataFrame({"arm": ["pooled", "pooled"], "n": [3, 4]}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame(schema={"subject_id": pl.String, "arm": pl.String}).write_parquet(
        tmp_path / "b.parquet"
    )
    assert scan_for_arm_leaks([tmp_path], randomisation, study) == []
    masked = pl.DataFrame({"arm": ["A", "B"], "dry_mouth": [1, 6]})
    masked.write_parquet(tmp_path / "c.parquet")
    leaks = scan_for_arm_leaks([tmp_path / "c.parquet"], randomisation, study)
    assert [leak.kind for leak in leaks] == ["ARM_COLUMN"]


def test_the_study_title_alone_is_not_a_leak(randomisation, study, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(f"<html><h1>{study.title}</h1>pooled only</html>", encoding="utf-8")
    assert scan_for_arm_leaks([path], randomisation, study) == []


def test_dagster_metadata_is_scanned(randomisation, study):
    visit = study.visit_codes[2]
    clean = {"dagster/row_count": 36, "preview": pl.DataFrame({"visit": [visit], "n": [3]})}
    assert scan_metadata(clean, "adsl", randomisation, study) == []
    leaky = {"n_by_arm": dict.fromkeys(study.arm_codes, 12)}
    assert scan_metadata(leaky, "adsl", randomisation, study)
    frame = {"preview": randomisation}
    assert {leak.kind for leak in scan_metadata(frame, "adsl", randomisation, study)} >= {
        "ARM_COLUMN"
    }


def test_files_the_scan_cannot_read_are_reported(randomisation, study, tmp_path):
    (tmp_path / "figure.png").write_bytes(b"\x89PNG")
    leaks = scan_for_arm_leaks([tmp_path], randomisation, study)
    assert [leak.kind for leak in leaks] == ["UNSCANNABLE"]


def test_names_wrapped_over_lines_are_still_found(randomisation, study, tmp_path):
    path = tmp_path / "page.txt"
    words = study.title.split(" ")
    title = " ".join(words[:3]) + "\n    " + " ".join(words[3:])
    name = study.arms[-1].name
    wrapped = name.replace(" ", "\n   ", 1)
    assert wrapped != name
    path.write_text(f"{title}\n\n{wrapped}: 12", encoding="utf-8")
    leaks = scan_for_arm_leaks([path], randomisation, study)
    assert [leak.detail for leak in leaks] == [f"arm name '{name}'"]


def test_neighbouring_cells_do_not_make_a_masked_label(study: Study) -> None:
    """A define table with the label "Age group" beside a length "7" is not an arm label."""
    from trial.report.blinding import ArmKnowledge, scan_frame

    define = pl.DataFrame({"label": ["Age group", "Sex"], "length": ["7", "1"]})
    randomisation = pl.DataFrame({"subject_id": ["S1"], "arm": [study.reference_arm]})
    arms = ArmKnowledge.from_study(study, randomisation)
    assert scan_frame(define, "define.csv", arms) == []
    assert scan_frame(pl.DataFrame({"label": ["group 7"]}), "x", arms) != []
