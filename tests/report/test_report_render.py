"""The HTML reports: self-contained, every section present, the blinding label on every page,
byte-stable output (tests check the numbers elsewhere, not HTML bytes)."""

from __future__ import annotations

import re

import trial.report.investigator as investigator
import trial.report.outputs as outputs
from trial.estimands.config import estimands_config
from trial.report.investigator import render_investigator_report

SECTIONS = [
    "title",
    "baseline",
    "primary",
    "time-course",
    "subgroups",
    "safety",
    "device",
    "estimands",
    "methods",
]


def _sections(html: str) -> list[str]:
    return re.findall(r'<section class="page[^"]*" id="[^"]+">.*?</section>', html, flags=re.S)


def test_unblinded_report_has_every_section_and_unblinded_on_each_page(unblinded_html, study):
    html = unblinded_html
    pages = _sections(html)
    assert [re.search(r'id="([^"]+)"', p).group(1) for p in pages] == SECTIONS
    for page in pages:
        assert '<span class="blinding">UNBLINDED</span>' in page
    # The print margins repeat the label on every printed page.
    assert '@top-right { content: "UNBLINDED"' in html
    plantar = study.involvement_region is not None  # a region of involved subjects only
    checked = any(e.check is not None for e in estimands_config(study).estimands)
    for key, shown in (
        ("t_14_2_2", True),  # LS means
        ("t_14_2_3", True),  # contrasts
        ("t_14_2_4", True),  # multiplicity
        ("t_14_2_10", True),  # sensitivity
        ("forest", True),
        ("consort", True),
        ("t_14_2_6", plantar),  # plantar time course
        ("t_14_3_1_1", True),  # AEs by SOC and PT
        ("l_14_3_2_1", True),  # serious AEs
        ("t_14_1_3", True),  # subject accountability
        ("t_14_2_11", True),  # estimands
        ("t_14_2_12", True),  # intercurrent events
        ("t_14_2_13", True),  # estimands beside the primary analysis
        ("t_14_2_14", checked),  # check of the key supportive estimand
    ):
        assert (f'id="{key}"' in html) == shown, key


def test_blinded_report_says_blinded_and_withholds_arm_results(blinded_html):
    html = blinded_html
    assert "UNBLINDED" not in html
    for page in _sections(html):
        assert '<span class="blinding">BLINDED</span>' in page
    assert 'id="t_14_2_2"' not in html
    assert "withheld in this blinded report" in html


def test_report_is_self_contained(unblinded_html):
    html = unblinded_html
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html
    assert html.count("<svg") >= 3  # CONSORT, time course, forest


def test_title_block_names_versions(unblinded_html):
    html = unblinded_html
    assert "sha256:0123456789abcdef" in html
    assert "git test" in html
    assert "2026-11-16" in html


def test_rendering_is_byte_stable(blinded_data, blinded_html, tmp_path):
    path = render_investigator_report(blinded_data, tmp_path / "a")
    assert path.read_text("utf-8") == blinded_html


def test_methods_block_from_the_study_configuration(unblinded_data, blinded_data, study):
    methods = dict(unblinded_data.methods)
    assert f"permuted blocks of {study.allocation.block_size}" in methods["Randomisation"]
    assert study.arms[1].name in methods["Randomisation"]
    assert f"{study.models.mmrm.covariance} within-subject" in methods["Primary model"]
    assert ", ".join(study.model_visits) in methods["Primary model"]
    blinded = dict(blinded_data.methods)
    assert "block" not in blinded["Randomisation"]
    assert all(a.code not in blinded["Randomisation"] for a in study.arms)


def test_numbers_print_with_fixed_decimals():
    import polars as pl

    from trial.report.investigator_tables import fixed

    values = pl.DataFrame({"x": [-0.8, 0.0004, 12.3456, -0.0004, None]})
    out = values.select(fixed(pl.col("x"), 3).alias("x"))["x"].to_list()
    assert out == ["-0.800", "0.000", "12.346", "0.000", None]


def test_data_version_depends_on_the_manifest_content_only():
    import datetime as dt

    import polars as pl

    from trial.report.run_info import manifest_version, run_info_for

    manifest = pl.DataFrame(
        {
            "source_file": ["C01/2026-02-09/dm.csv", "C01/2026-03-09/dm.csv"],
            "sha256": ["aa", "bb"],
            "delivery_date": [dt.date(2026, 2, 9), dt.date(2026, 3, 9)],
        }
    )
    assert manifest_version(manifest) == manifest_version(manifest.reverse())
    changed = manifest.with_columns(pl.Series("sha256", ["aa", "bc"]))
    assert manifest_version(changed) != manifest_version(manifest)
    info = run_info_for(manifest, blinded=True)
    assert info.data_cut == "2026-03-09"
    assert info.blinding_label == "BLINDED"
    assert info.data_version.startswith("sha256:")


def _fake_print(events: list[str], printed: list[str]) -> type:
    """A stand-in for ``start_pdf_print``: records when a print starts (the HTML it was given)
    and when it is waited for, then writes a four-byte PDF."""

    class FakePrint:
        def __init__(self, html, pdf, chromium=None):
            assert html.is_file()
            events.append("print started")
            printed.append(html.read_text("utf-8"))
            self.pdf = pdf

        def __enter__(self):
            return self

        def __exit__(self, *_exc):
            pass

        def wait(self):
            events.append("print waited")
            self.pdf.write_bytes(b"%PDF")
            return self.pdf

    return FakePrint


def test_the_pdf_is_printed_only_when_the_html_changed(
    blinded_data, unblinded_data, tmp_path, monkeypatch
):
    events: list[str] = []
    printed: list[str] = []
    monkeypatch.setattr(investigator, "start_pdf_print", _fake_print(events, printed))
    render_investigator_report(blinded_data, tmp_path, pdf=True)
    render_investigator_report(blinded_data, tmp_path, pdf=True)
    assert len(printed) == 1
    render_investigator_report(unblinded_data, tmp_path, pdf=True)
    assert len(printed) == 2 and "UNBLINDED" in printed[1]
    (tmp_path / "investigator_report.pdf").unlink()
    render_investigator_report(unblinded_data, tmp_path, pdf=True)
    assert len(printed) == 3
    assert not list(tmp_path.glob(".*printing*"))


def test_the_pdf_prints_while_the_rtf_files_are_written(blinded_data, tmp_path, monkeypatch):
    """write_investigator_outputs starts Chromium after the HTML is written and waits for it
    only after the RTF files and the report's numbers are written."""
    events: list[str] = []

    def fake_rtf(outputs, run, study_id, out_dir):
        events.append("rtf written")
        return []

    monkeypatch.setattr(investigator, "start_pdf_print", _fake_print(events, []))
    monkeypatch.setattr(outputs, "write_rtf_outputs", fake_rtf)
    written = outputs.write_investigator_outputs(blinded_data, tmp_path, pdf=True)
    assert events == ["print started", "rtf written", "print waited"]
    assert written["investigator"] == [
        tmp_path / "investigator_report.html",
        tmp_path / "investigator_report.pdf",
    ]
    assert (tmp_path / "investigator_report.pdf").read_bytes() == b"%PDF"
    assert written["investigator_data"], "the report's numbers are written"
