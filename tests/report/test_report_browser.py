"""The reports opened in a real browser: headless Chromium from Debian's packages.

Skipped, with the reason, where Chromium is not installed (``.ci/run`` installs it with
``apt-get install -y chromium``). Checks that the report loads with no console or resource
errors, that the key sections are in the rendered DOM, and that every printed page of the PDF
carries the blinding label.

The page-label tests print a whole report (seconds each) and check a property of the page
style, not of the design: they run for ION-301 only. The DOM test runs for each study.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import pytest

import trial.report.pdf as pdf
from trial.report.pdf import (
    Chromium,
    PrintBrowser,
    dump_dom,
    find_chromium,
    print_to_pdf,
    start_pdf_print,
)

one_study = pytest.mark.parametrize("study", ["ion301"], indirect=True)
"""The page style is the same for every design: printed for one study only."""
needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed (apt-get install -y chromium); .ci/run installs it",
)

KEY_SECTIONS = [
    "title",
    "consort",
    "baseline",
    "primary",
    "time-course",
    "safety",
    "device",
    "methods",
]


def console_errors(log: str) -> list[str]:
    """Lines of Chromium's log that report a page problem (console output, failed loads)."""
    pattern = r"CONSOLE|Failed to load|Uncaught|net::ERR"
    return [line for line in log.splitlines() if re.search(pattern, line)]


def test_console_error_filter_sees_console_lines():
    log = (
        "[1:1:1123/1.0:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n"
        '[2:2:1123/1.1:INFO:CONSOLE:1] "boom", source: file:///tmp/bad.html (1)\n'
    )
    assert console_errors(log) == [log.splitlines()[1]]


def _write(tmp_path, name, html):
    path = tmp_path / f"{name}.html"
    path.write_text(html, encoding="utf-8")
    return path


@needs_chromium
def test_report_loads_without_errors_and_shows_key_sections(unblinded_html, tmp_path):
    dom, log = dump_dom(_write(tmp_path, "unblinded", unblinded_html))
    for section in KEY_SECTIONS:
        assert f'id="{section}"' in dom, section
    assert dom.count("<svg") >= 3
    assert "UNBLINDED" in dom
    assert console_errors(log) == []


def _pages(pdf) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return [p for p in text.split("\f") if p.strip()]


@needs_chromium
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing")
@one_study
def test_unblinded_appears_on_every_printed_page(unblinded_html, tmp_path):
    pdf = print_to_pdf(_write(tmp_path, "unblinded", unblinded_html), tmp_path / "u.pdf")
    pages = _pages(pdf)
    assert len(pages) >= 5
    for number, page in enumerate(pages, start=1):
        assert "UNBLINDED" in page, f"page {number} lacks UNBLINDED"


@needs_chromium
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing")
@one_study
def test_blinded_appears_on_every_printed_page(blinded_html, tmp_path):
    pdf = print_to_pdf(_write(tmp_path, "blinded", blinded_html), tmp_path / "b.pdf")
    pages = _pages(pdf)
    assert len(pages) >= 5
    for number, page in enumerate(pages, start=1):
        assert re.search(r"\bBLINDED\b", page), f"page {number} lacks BLINDED"
        assert "UNBLINDED" not in page


@needs_chromium
def test_a_print_left_without_waiting_stops_chromium_and_leaves_no_file(tmp_path):
    html = _write(tmp_path, "page", "<html><body><p>one page</p></body></html>")
    with start_pdf_print(html, tmp_path / "page.pdf") as printing:
        pass
    assert not printing.chromium.is_running(), "Chromium still runs"
    assert list(tmp_path.glob("*.pdf")) == []
    assert list(tmp_path.glob(".*")) == []


@needs_chromium
def test_a_waited_print_is_renamed_into_place(tmp_path):
    html = _write(tmp_path, "page", "<html><body><p>one page</p></body></html>")
    with start_pdf_print(html, tmp_path / "page.pdf") as printing:
        assert printing.wait() == tmp_path / "page.pdf"
    assert (tmp_path / "page.pdf").read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@needs_chromium
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing")
def test_a_chromium_started_ahead_prints_what_a_print_of_its_own_prints(tmp_path):
    """``ionto run`` starts Chromium ahead of the report (PrintBrowser); its print is the same
    document as a print that starts Chromium itself, and the started Chromium is left running
    for its owner to close."""
    pages = "".join(f"<section style='break-after: page'><p>page {n}</p></section>" for n in (1, 2))
    html = _write(tmp_path, "two", f"<html><body>{pages}</body></html>")
    alone = print_to_pdf(html, tmp_path / "alone.pdf")
    browser = PrintBrowser()
    browser.start()
    assert browser.chromium is not None
    with start_pdf_print(html, tmp_path / "ahead.pdf", chromium=browser.chromium) as printing:
        ahead = printing.wait()
    assert browser.chromium.is_running()
    chromium = browser.chromium
    browser.close()
    assert not chromium.is_running() and browser.chromium is None
    assert _pages(ahead) == _pages(alone) and len(_pages(ahead)) == 2
    assert ahead.stat().st_size == alone.stat().st_size


@needs_chromium
def test_a_chromium_that_stopped_fails_the_print_with_its_log(tmp_path):
    html = _write(tmp_path, "page", "<html><body><p>one page</p></body></html>")
    chromium = Chromium()
    chromium.kill()
    with (
        pytest.raises(RuntimeError, match="Chromium stopped"),
        start_pdf_print(html, tmp_path / "page.pdf", chromium=chromium) as printing,
    ):
        printing.wait()
    chromium.close()
    assert list(tmp_path.glob("*.pdf")) == [] and list(tmp_path.glob(".*")) == []


@needs_chromium
def test_a_print_that_hangs_is_stopped_at_its_timeout(tmp_path):
    """A page that never finishes loading (a script that loops) is not waited for beyond the
    timeout: Chromium is killed and no file is left."""
    html = _write(tmp_path, "hang", "<html><body><script>for(;;){}</script></body></html>")
    with (
        pytest.raises(TimeoutError, match="did not print"),
        start_pdf_print(html, tmp_path / "hang.pdf", timeout_s=3) as printing,
    ):
        printing.wait()
    assert not printing.chromium.is_running()
    assert list(tmp_path.glob("*.pdf")) == [] and list(tmp_path.glob(".*")) == []


def test_without_chromium_a_print_says_how_to_install_it_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf, "find_chromium", lambda: None)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    html = _write(tmp_path, "page", "<html><body><p>one page</p></body></html>")
    with pytest.raises(FileNotFoundError, match="apt-get install -y chromium"):
        start_pdf_print(html, tmp_path / "page.pdf")
    browser = PrintBrowser()
    browser.start()
    assert browser.chromium is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
