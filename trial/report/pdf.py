"""PDF rendering and screenshots of the HTML reports with headless Chromium (Debian's package).

Chromium is optional: :func:`find_chromium` returns None when it is absent, and callers decide
whether that is an error (``print_to_pdf`` raises) or a skip (the browser test).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium() -> Path | None:
    """The Chromium executable, or None. Only looks, never installs."""
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("chromium")
    return Path(found) if found else None


def _run_headless(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="ionto-chromium-") as profile:
        command = [
            str(chromium),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=True
        )


def print_to_pdf(html: Path, pdf: Path, timeout_s: float = 120.0) -> Path:
    """Print ``html`` to ``pdf`` as Chromium would (A4, the report's ``@page`` margins)."""
    _run_headless(
        ["--no-pdf-header-footer", f"--print-to-pdf={pdf.resolve()}", html.resolve().as_uri()],
        timeout_s,
    )
    if not pdf.is_file():
        raise RuntimeError(f"Chromium did not write {pdf}")
    return pdf


def screenshot(
    html: Path, png: Path, size: tuple[int, int] = (1200, 3000), timeout_s: float = 120.0
) -> Path:
    """A PNG screenshot of the report's top ``size`` pixels."""
    _run_headless(
        [
            f"--screenshot={png.resolve()}",
            f"--window-size={size[0]},{size[1]}",
            html.resolve().as_uri(),
        ],
        timeout_s,
    )
    return png


def dump_dom(html: Path, timeout_s: float = 120.0) -> tuple[str, str]:
    """The DOM after load (``--dump-dom``) and Chromium's stderr (console errors land there)."""
    result = _run_headless(
        ["--enable-logging=stderr", "--v=0", "--dump-dom", html.resolve().as_uri()], timeout_s
    )
    return result.stdout, result.stderr
