"""The numbered outputs as a sponsor files them: page parts without orphan rows, labels instead
of codes, the printed PDF without near-empty pages, and the RTF files opened by a real reader
(LibreOffice, Debian's ``libreoffice-writer-nogui``) carrying the numbers the HTML shows.

Chromium, pdftotext and LibreOffice tests are skipped, with the reason, where the program is
missing (``scripts/system-deps`` installs them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import polars as pl
import pytest

from study import Study
from trial.estimands.config import estimands_config
from trial.report.data import ReportData
from trial.report.html import document, page_css
from trial.report.investigator_tables import investigator_outputs
from trial.report.pdf import find_chromium, print_to_pdf
from trial.report.rtf import COMBINED, write_rtf_outputs
from trial.report.run_info import RunInfo
from trial.report.tlf import ROWS_PER_LANDSCAPE_PAGE, ROWS_PER_PAGE, Tlf, page_parts, tlf_html

needs_pdf = pytest.mark.skipif(
    find_chromium() is None or shutil.which("pdftotext") is None,
    reason="Chromium or pdftotext missing (scripts/system-deps installs them)",
)
needs_soffice = pytest.mark.skipif(
    shutil.which("soffice") is None or shutil.which("pdftotext") is None,
    reason="LibreOffice or pdftotext missing (scripts/system-deps installs them)",
)
RUN = RunInfo("2026-11-16", False, "sha256:0123456789abcdef", "git test")


@pytest.mark.parametrize("landscape", [False, True])
def test_page_parts_cover_the_body_and_leave_no_orphans(landscape):
    limit = ROWS_PER_LANDSCAPE_PAGE if landscape else ROWS_PER_PAGE
    for height in range(1, 4 * limit + 3):
        headings = tuple(range(0, height, 4))  # a heading every fourth row
        parts = page_parts(height, landscape, headings)
        assert sum(n for _, n in parts) == height
        assert [o for o, _ in parts] == [sum(n for _, n in parts[:i]) for i in range(len(parts))]
        assert all(n <= limit for _, n in parts), (height, parts)
        if len(parts) > 1:
            assert min(n for _, n in parts) >= 3, (height, parts)
        for offset, n in parts[:-1]:
            assert offset + n - 1 not in headings, (height, parts)


def _codes(study: Study) -> set[str]:
    """Codes that must never print as a value: codelist values and the model's own names."""
    names = ["sex", "yes_no", "ae_term", "ae_severity", "ae_related", "disposition_status"]
    codes = {c for name in names for c in study.codelist(name)}
    return codes | set(study.stratum_codes) | {"ANY", "TOTAL", "pooled", "overall", "all"}


SNAKE = re.compile(r"^[A-Za-z]+(_[A-Za-z0-9]+)+$")


@pytest.mark.parametrize("blinded", [False, True])
def test_no_row_label_or_value_is_a_raw_code(blinded, unblinded_data, blinded_data, study):
    data: ReportData = blinded_data if blinded else unblinded_data
    outputs = investigator_outputs(data)
    assert {"enrolment", "baseline", "ae_soc_pt", "ae_severity", "ae_related"} <= set(outputs)
    codes = _codes(study)
    for name, tlf in outputs.items():
        for column in tlf.frame.columns:
            values = [v for v in tlf.frame[column].to_list() if v]
            raw = [v for v in values if v in codes or SNAKE.match(v)]
            assert raw == [], (name, column, raw)
        assert not any(SNAKE.match(c) for c in tlf.frame.columns), (name, tlf.frame.columns)


def test_every_output_has_number_population_and_source(unblinded_data):
    outputs = investigator_outputs(unblinded_data)
    numbers = [t.number for t in outputs.values()]
    assert len(set(numbers)) == len(numbers)
    for tlf in outputs.values():
        assert re.fullmatch(r"14\.\d+(\.\d+)+", tlf.number)
        assert re.search(r"\(N = \d+\)|\d+ serious events", tlf.population), tlf.population
        assert tlf.sources and tlf.footnotes
        html = tlf_html(tlf, unblinded_data.run)
        assert f"{tlf.label}</p>" in html
        assert "Program: " in html and "data cut 2026-11-16" in html


def test_primary_contrast_rows_are_bold_with_se_and_df(unblinded_data, study):
    tlf = investigator_outputs(unblinded_data)["contrasts"]
    assert {"SE", "df"} <= set(tlf.frame.columns)
    visits = tlf.frame["Visit"].to_list()
    assert tlf.emphasis and all(visits[i] == study.primary_visit for i in tlf.emphasis)
    assert len(tlf.emphasis) == visits.count(study.primary_visit)


def test_multiplicity_table_shows_order_p_and_decision(unblinded_data, study):
    tlf = investigator_outputs(unblinded_data)["multiplicity"]
    sequence = study.endpoints.key_secondary_sequence
    assert tlf.frame["Hypothesis"].to_list() == [h.id for h in sequence]
    assert tlf.frame["Order"].to_list() == [str(i) for i in range(1, len(sequence) + 1)]
    decisions = unblinded_data.multiplicity["decision"].str.to_titlecase().to_list()
    assert tlf.frame["Decision"].to_list() == decisions


def _pdf_pages(pdf: Path) -> list[list[str]]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    margin = re.compile(r"data cut \d{4}-\d\d-\d\d\s*(UN)?BLINDED\s*$|page \d+ of \d+\s*$")
    return [
        [line for line in page.splitlines() if line.strip() and not margin.search(line)]
        for page in text.split("\f")
        if page.strip()
    ]


def _stress_html(study: Study) -> str:
    """Outputs that must be cut: 100 rows (portrait), 40 rows (landscape), a heading row on
    every fifth line, between short tables and text."""

    def table(number: str, rows: int, landscape: bool = False) -> Tlf:
        frame = pl.DataFrame(
            {
                "Row": [f"Row {i + 1}" for i in range(rows)],
                "A (N = 10)": [f"{i} ({i / 10:.1f})" for i in range(rows)],
                "B (N = 10)": [f"{2 * i} ({i / 5:.1f})" for i in range(rows)],
            }
        )
        return Tlf(
            number=number,
            title=f"Stress table of {rows} rows",
            population="Test set (N = 20)",
            frame=frame,
            footnotes=("A footnote.",),
            sources=("ADSL",),
            landscape=landscape,
            headings=tuple(range(0, rows, 5)),
        )

    body = "".join(
        tlf_html(t, RUN) + "<p>Text between outputs.</p>"
        for t in (
            table("14.9.1", 7),
            table("14.9.2", 100),
            table("14.9.3", 40, landscape=True),
            table("14.9.4", 12),
            table("14.9.5", 33),
        )
    )
    return document("stress", page_css(RUN, study.study_id), f"<section>{body}</section>")


def _assert_no_orphan_pages(pages: list[list[str]]) -> None:
    row = re.compile(r"^\s*Row \d+\s{2,}\S")
    title = re.compile(r"^\s*(Table|Listing) 14\.[\d.]+")
    for number, lines in enumerate(pages, start=1):
        assert len(lines) >= 3, f"page {number} is near empty: {lines}"
        rows = [line for line in lines if row.match(line)]
        if not any(title.match(line) for line in lines):
            # a page without an output's title continues a table cut by the browser
            assert len(rows) >= 3, f"page {number} holds {len(rows)} table rows only: {lines}"
        if any("(continued)" in line for line in lines):
            assert len(rows) >= 3, f"page {number}: a continued part with {len(rows)} rows"


@needs_pdf
@pytest.mark.parametrize("study", ["ion301"], indirect=True)  # hand-made tables: one study
def test_printed_outputs_leave_no_page_with_a_few_rows(study, tmp_path):
    html = tmp_path / "stress.html"
    html.write_text(_stress_html(study), encoding="utf-8")
    pages = _pdf_pages(print_to_pdf(html, tmp_path / "stress.pdf"))
    _assert_no_orphan_pages(pages)
    text = "\n".join("\n".join(p) for p in pages)
    for i in range(100):  # every row printed once
        assert len(re.findall(rf"^\s*Row {i + 1}\s", text, flags=re.M)) == 1 + (i < 40) + (
            i < 33
        ) + (i < 12) + (i < 7)
    assert text.count("Table 14.9.2 (continued)") >= 2  # the header repeats on each part


@needs_pdf
def test_printed_report_has_no_near_empty_page(unblinded_html, tmp_path):
    html = tmp_path / "report.html"
    html.write_text(unblinded_html, encoding="utf-8")
    pages = _pdf_pages(print_to_pdf(html, tmp_path / "report.pdf"))
    for number, lines in enumerate(pages, start=1):
        assert len(lines) >= 3, f"page {number} is near empty: {lines}"


def _cells(tlf: Tlf) -> list[str]:
    """The value cells as text; a cell of a column that wraps (in the RTF too) as its words,
    since a reader's text puts the lines of a wrapped cell apart."""
    cells = []
    for row in tlf.frame.iter_rows():
        for j, value in enumerate(row[1:], start=1):
            if value in (None, ""):
                continue
            cells.extend(str(value).split() if j in tlf.wrap_columns else [str(value)])
    return cells


@needs_soffice
def test_rtf_files_open_in_libreoffice_with_the_numbers_of_the_html(
    unblinded_data, study, tmp_path
):
    outputs = investigator_outputs(unblinded_data)
    special = Tlf(
        number="14.9.9",
        title="Text that RTF must escape",
        population="Test set (N = 2)",
        frame=pl.DataFrame({"Label": ["enrolment_by_centre {x}", "érythème"], "A": ["1", "2"]}),
        footnotes=("a_b stays a_b",),
        sources=("ADSL",),
    )
    names = ("enrolment", "accountability", "contrasts", "ae_soc_pt", "ae_severity")
    chosen = [outputs[k] for k in (*names, "estimands", "ice_counts", "estimand_results")]
    if "estimand_check" in outputs:  # a study whose estimands name a check
        chosen.append(outputs["estimand_check"])
    chosen.append(special)
    paths = write_rtf_outputs(chosen, unblinded_data.run, study.study_id, tmp_path / "rtf")
    assert [p.name for p in paths] == [f"{t.key}.rtf" for t in chosen] + [COMBINED]
    subprocess.run(
        ["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf")]
        + [str(p) for p in paths],
        capture_output=True,
        check=True,
        timeout=300,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    combined = ""
    for tlf, path in zip(chosen, paths, strict=False):
        pdf = tmp_path / "pdf" / path.with_suffix(".pdf").name
        text = " ".join("\n".join(p) for p in _pdf_pages(pdf))
        text = " ".join(text.split())
        html = tlf_html(tlf, unblinded_data.run)
        assert tlf.label in text and tlf.title.split(" (")[0] in text
        for cell in _cells(tlf):
            assert escape(cell) in html
            assert cell in text, (tlf.label, cell)
        combined += text
    special_text = " ".join("\n".join(p) for p in _pdf_pages(tmp_path / "pdf" / "t_14_9_9.pdf"))
    for text in ("enrolment_by_centre {x}", "érythème", "a_b stays a_b"):
        assert text in special_text, text
    whole = " ".join(
        " ".join("\n".join(p) for p in _pdf_pages(tmp_path / "pdf" / "all_outputs.pdf")).split()
    )
    for tlf in chosen:
        assert tlf.label in whole
        assert all(cell in whole for cell in _cells(tlf))


def test_model_notes_name_the_analysis_not_the_result(unblinded_data):
    from trial.report.investigator import investigator_html

    html = investigator_html(unblinded_data)
    notes = re.findall(r"<dd>([^<:]+): ", html)
    assert notes and not [n for n in notes if SNAKE.match(n)], notes
    assert "<dd>Primary analysis: MMRM, full analysis set: " in html


ESTIMAND_OUTPUTS = {
    "estimands": "14.2.11",
    "ice_counts": "14.2.12",
    "estimand_results": "14.2.13",
    "estimand_check": "14.2.14",
}


def _estimand_outputs(study: Study) -> dict[str, str]:
    """The estimand outputs an unblinded report of ``study`` shows: the check (14.2.14) only
    where an estimand of the study file names one."""
    checked = any(e.check is not None for e in estimands_config(study).estimands)
    return {k: n for k, n in ESTIMAND_OUTPUTS.items() if checked or k != "estimand_check"}


def test_estimand_and_accountability_outputs_are_numbered_after_the_others(
    unblinded_data, blinded_data, study
):
    outputs = investigator_outputs(unblinded_data)
    expected = _estimand_outputs(study)
    assert {k: t.number for k, t in outputs.items() if k in ESTIMAND_OUTPUTS} == expected
    assert outputs["accountability"].number == "14.1.3"
    efficacy = [t.number for k, t in outputs.items() if k not in ESTIMAND_OUTPUTS]
    assert all(int(n.split(".")[2]) < 11 for n in efficacy if n.startswith("14.2.")), (
        efficacy
    )  # the estimands come after every other efficacy table
    numbers = list(outputs)  # the combined RTF file's order is the numbers' order
    keys = [tuple(int(x) for x in outputs[k].number.split(".")) for k in numbers]
    assert keys == sorted(keys)
    blinded = investigator_outputs(blinded_data)
    assert {"estimands", "ice_counts"} <= set(blinded)
    assert not {"estimand_results", "estimand_check"} & set(blinded)
    assert blinded["ice_counts"].frame.columns[1:] == [
        f"Total (N = {blinded_data.estimands.ice_counts['n_fas'][0]})"
    ]


def test_ice_counts_table_carries_hand_counted_percentages(unblinded_data, study):
    tlf = investigator_outputs(unblinded_data)["ice_counts"]
    adsl_fas = unblinded_data.estimands.ice_counts.select("group", "n_fas").unique()
    n = dict(adsl_fas.iter_rows())
    assert tlf.frame["Intercurrent event"].to_list() == [
        f"{rule.name[:1].upper()}{rule.name[1:]} ({ice})"
        for ice, rule in study.intercurrent_events.items()
    ]  # ION-301: "Treatment discontinuation (ICE1)", "Rescue treatment ... (ICE2)"
    for arm in study.arm_codes:  # 2 subjects with discontinuation, 1 with rescue per arm
        column = tlf.frame[f"{arm} (N = {n[arm]})"].to_list()
        assert column == [f"2 ({round(200 / n[arm], 1)})", f"1 ({round(100 / n[arm], 1)})"]
    assert tlf.population.startswith("Full analysis set (N = ")


def test_estimand_tables_print_methods_and_strategies_by_name(unblinded_data, study):
    outputs = investigator_outputs(unblinded_data)
    results = outputs["estimand_results"].frame
    config = estimands_config(study)
    assert "Conditional mean imputation, jackknife SE" in results["Method"].to_list()
    named = {
        "MAR": "Missing at random",
        "JR": "Jump to reference",
        "CR": "Copy reference",
        "CIR": "Copy increments in reference",
    }  # the primary analysis assumes MAR beside each estimand's strategy
    expected = {named["MAR"]} | {named[e.imputation] for e in config.estimands}
    assert set(results["Missing values"]) == expected
    assert results["Contrast"][0] == f"{study.arm_codes[1]} vs {study.reference_arm}"
    bold = [results["Estimand"][i] for i in outputs["estimand_results"].emphasis]
    primary = next(e.id for e in config.estimands if e.role == "primary")
    assert bold and set(bold) == {f"{primary} (primary)"}
    definitions = outputs["estimands"].frame
    second = config.estimands[1]
    assert second.method == "condmean-jackknife"
    assert definitions["Method"][1] == "Conditional mean imputation, jackknife SE" + (
        "; checked by approximate Bayesian multiple imputation" if second.check else ""
    )
    raw = {"mmrm", "condmean-jackknife", "bayes-approx", "MAR", "JR", "CR", "CIR", "FAS"}
    for name in _estimand_outputs(study):
        frame = outputs[name].frame
        for column in frame.columns:
            words = {w.strip("(),;:") for v in frame[column].to_list() for w in v.split()}
            assert not words & raw, (name, column, words & raw)
    if "estimand_check" in outputs:
        agree = outputs["estimand_check"].frame["Agree"].to_list()
        assert agree == ["Yes"] * len(study.treated_arms)


def test_estimands_section_shows_the_numbered_tables_and_withholds_when_blinded(
    unblinded_html, blinded_html, study
):
    for number in ESTIMAND_OUTPUTS.values():
        shown = number in _estimand_outputs(study).values()
        assert (f"Table {number}</p>" in unblinded_html) == shown, number
    assert "Table 14.2.11</p>" in blinded_html and "Table 14.2.12</p>" in blinded_html
    assert "Table 14.2.13" not in blinded_html and "Table 14.2.14" not in blinded_html
    assert "Estimand results and the tipping-point analysis by arm: withheld" in blinded_html
    assert "Table 14.1.3</p>" in unblinded_html and "Table 14.1.3</p>" in blinded_html


def test_data_issue_listing_labels_status_and_flags():
    from trial.report.accountability import data_issue_listing

    box = pl.DataFrame(
        {
            "subject_id": ["S-01", "S-02"],
            "centre_id": ["C01", None],
            "dm_status": ["QUARANTINED", "ABSENT"],
            "RANDFL": ["Y", "N"],
            "SAFFL": ["Y", "N"],
            "FASFL": ["N", "N"],
            "PPFL": ["N", "N"],
            "data_issues": ["dm.csv line 4: sex 'X'", "ae.csv line 9: unknown subject"],
        }
    )
    tlf = data_issue_listing(box, "14.1.4", 50)
    assert tlf.label == "Listing 14.1.4"
    assert tlf.population == "Subjects in the EDC (N = 50); 2 listed"
    assert tlf.frame.row(0) == (
        "S-01",
        "C01",
        "Quarantined",
        "Yes",
        "Yes",
        "No",
        "No",
        "dm.csv line 4: sex 'X'",
    )
    assert tlf.frame["Demography"][1] == "Not in dm.csv" and tlf.frame["Centre"][1] == ""


def test_estimand_notes_name_methods_and_strategies(unblinded_data):
    import dataclasses

    from trial.report.estimand_tables import named_notes

    section = dataclasses.replace(
        unblinded_data.estimands,
        notes=[
            "E1: mmrm",
            "E2 check (bayes-approx, 20 imputations): agrees; MAR imputation of E1-JR data",
            "GLY-TAP: tipping point delta = 1.5",
        ],
    )
    data = dataclasses.replace(unblinded_data, estimands=section)
    assert named_notes(data) == [
        "E1: MMRM (section 7)",
        "E2 check (approximate Bayesian multiple imputation, 20 imputations): agrees; missing "
        "at random imputation of E1-JR data",
        "GLY-TAP: tipping point delta = 1.5",
    ]


def test_intervals_are_named_at_the_study_alpha(unblinded_data, study):
    """ION-302 tests at alpha 0.10: its estimand intervals are 90 % CIs, and its primary MMRM's
    df method (Kenward-Roger) is the one the footnote names (both were fixed texts)."""
    tlf = investigator_outputs(unblinded_data)["estimand_results"]
    ci = f"{100 * (1 - study.alpha):g} % CI"
    assert ci in tlf.frame.columns and ci == study.ci_label
    assert [c for c in tlf.frame.columns if c.endswith("% CI")] == [ci]
    # the column holds the synthetic normal-based interval at that level
    rows = unblinded_data.estimands.primary_visit
    assert tlf.frame[ci][0] == f"({rows['lci'][0]:.3f}, {rows['uci'][0]:.3f})"
    ddf = {"satterthwaite": "Satterthwaite", "kenward_roger": "Kenward-Roger"}
    assert tlf.footnotes[-1].endswith(f"MMRM intervals use {ddf[study.models.mmrm.ddf]} df.")


def test_the_tipping_point_is_drawn_and_noted_at_the_study_alpha(
    unblinded_data, study, monkeypatch
):
    """The tipping-point figure's caption and the analysis note name the study's interval
    (90 % for ION-302): a hand-made curve where the CI first includes 0 at delta 0.2."""
    import dataclasses

    import trial.estimands.results as results
    from trial.report.estimands_section import estimands_html

    arm = study.treated_arms[0]
    curve = pl.DataFrame(
        {
            "arm": [arm] * 3,
            "contrast": [f"{arm}-{study.reference_arm}"] * 3,
            "visit": [study.primary_visit] * 3,
            "delta": [0.0, 0.1, 0.2],
            "estimate": [-0.5, -0.3, -0.1],
            "se": [0.1, 0.1, 0.1],
            "lci": [-0.7, -0.5, -0.3],
            "uci": [-0.3, -0.1, 0.1],
            "pvalue": [0.001, 0.01, 0.3],
            "includes_zero": [False, False, True],
        }
    )
    monkeypatch.setattr(results, "tipping_curve", lambda populations, adice, s: curve)
    adsl = pl.DataFrame({"subject_id": ["S1"], "arm": [arm]})
    result = results.tipping_point_result({}, adsl, pl.DataFrame(), study)
    assert f"until the {study.ci_label} at " in result.notes[0]
    assert f"{arm}-{study.reference_arm}: tipping point delta = 0.2" in result.notes
    section = dataclasses.replace(unblinded_data.estimands, tipping_curve=curve)
    html = estimands_html(section, "", [], blinded=False, ci=study.ci_label)
    assert f"with its {study.ci_label} against the delta" in html
    assert "<svg" in html


def test_baseline_footnote_names_an_involvement_region_only_where_there_is_one(
    unblinded_data, study
):
    footnote = investigator_outputs(unblinded_data)["baseline"].footnotes[0]
    involvement = study.involvement_region
    if involvement is None:  # ION-302: the soles are the primary region, measured in all
        assert "involvement" not in footnote
    else:
        assert "the plantar rate among subjects with plantar involvement" in footnote
