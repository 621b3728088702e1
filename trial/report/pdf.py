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


HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
"""Flags of every headless run (a throw-away profile is added)."""
PRINT_FLAGS = ("--no-pdf-header-footer",)
"""Flags of a PDF print. Measured on the demo report (Chromium 150, ``perf stat``, medians of 8)
and not kept: ``--single-process`` (1.8 s of CPU instead of 2.2 s, same pages, text and pixels,
but Chromium died of SIGTRAP on one print of a full test run under heavy load); and, with no
gain, ``--no-zygote``, ``--disable-extensions``, ``--disable-breakpad``,
``--disable-crash-reporter``, ``--disable-dev-shm-usage``,
``--run-all-compositor-stages-before-draw``, and calling ``/usr/lib/chromium/chromium`` without
Debian's wrapper script. A print's wall time is mostly start-up (a one-line page costs about
1 s of CPU, the demo report about 2 s, spread over the browser, zygote, renderer, GPU and
utility processes)."""


def _command(profile: str, args: list[str]) -> list[str]:
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium is not installed (apt-get install -y chromium)")
    return [str(chromium), *HEADLESS_FLAGS, f"--user-data-dir={profile}", *args]


def _run_headless(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="ionto-chromium-") as profile:
        return subprocess.run(
            _command(profile, args), capture_output=True, text=True, timeout=timeout_s, check=True
        )


class PdfPrint:
    """A PDF print under way: Chromium prints ``html`` to a file beside ``pdf`` while the caller
    goes on (a print costs about a second of wall time, most of it Chromium starting, which
    other work of the report can fill). :meth:`wait` renames the print to ``pdf``, so a file at
    ``pdf`` is always a whole print; leaving the ``with`` block without waiting stops Chromium
    and removes its partial file."""

    def __init__(self, html: Path, pdf: Path, timeout_s: float) -> None:
        self.pdf = pdf
        self.aside = pdf.with_name(f".{pdf.stem}.printing.pdf")
        self.timeout_s = timeout_s
        self._profile = tempfile.TemporaryDirectory(prefix="ionto-chromium-")
        # Chromium's log goes to a file: a pipe nobody reads until wait() could fill and stall it.
        self._log = (Path(self._profile.name) / "chromium.log").open("w+", encoding="utf-8")
        args = [*PRINT_FLAGS, f"--print-to-pdf={self.aside.resolve()}"]
        self._process = subprocess.Popen(
            _command(self._profile.name, [*args, html.resolve().as_uri()]),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def __enter__(self) -> PdfPrint:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def wait(self) -> Path:
        """Wait for Chromium (at most ``timeout_s`` from now) and return ``pdf``."""
        try:
            code = self._process.wait(timeout=self.timeout_s)
            if code != 0:
                self._log.seek(0)
                raise subprocess.CalledProcessError(
                    code, self._process.args, stderr=self._log.read()
                )
            if not self.aside.is_file():
                raise RuntimeError(f"Chromium did not write {self.pdf}")
            self.aside.replace(self.pdf)
            return self.pdf
        finally:
            self.close()

    def close(self) -> None:
        """Stop Chromium if it still runs, and remove its profile and any partial print."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._log.close()
        self._profile.cleanup()
        self.aside.unlink(missing_ok=True)


def start_pdf_print(html: Path, pdf: Path, timeout_s: float = 120.0) -> PdfPrint:
    """Start printing ``html`` to ``pdf`` as Chromium would (A4, the report's ``@page``
    margins); :meth:`PdfPrint.wait` finishes it."""
    return PdfPrint(html, pdf, timeout_s)


def print_to_pdf(html: Path, pdf: Path, timeout_s: float = 120.0) -> Path:
    """Print ``html`` to ``pdf`` and wait for it (:func:`start_pdf_print`)."""
    with start_pdf_print(html, pdf, timeout_s) as printing:
        return printing.wait()


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
