"""PDF rendering and screenshots of the HTML reports with headless Chromium (Debian's package).

Chromium is optional: :func:`find_chromium` returns None when it is absent, and callers decide
whether that is an error (``print_to_pdf`` raises) or a skip (the browser test).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

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
PIPE_FLAG = "--remote-debugging-pipe"
"""DevTools over descriptors 3 and 4 (:class:`Chromium`): no port, nothing another process
can reach."""
PRINT_OPTIONS = {"printBackground": True, "preferCSSPageSize": True, "displayHeaderFooter": False}
"""``Page.printToPDF``'s options for what ``--print-to-pdf --no-pdf-header-footer`` gave (the
demo report's print compared: same size, page count, text and pixels at 50 dpi).

Flags measured for a print on the demo report (Chromium 150, ``perf stat``, medians of 8)
and not kept: ``--single-process`` (1.8 s of CPU instead of 2.2 s, same pages, text and pixels,
but Chromium died of SIGTRAP on one print of a full test run under heavy load); and, with no
gain, ``--no-zygote``, ``--disable-extensions``, ``--disable-breakpad``,
``--disable-crash-reporter``, ``--disable-dev-shm-usage``,
``--run-all-compositor-stages-before-draw``, and calling ``/usr/lib/chromium/chromium`` without
Debian's wrapper script. A print's wall time is mostly start-up (a one-line page costs about
1 s of CPU, the demo report about 2 s, spread over the browser, zygote, renderer, GPU and
utility processes)."""


def _installed_chromium() -> Path:
    """The Chromium executable; FileNotFoundError saying how to install it if there is none."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium is not installed (apt-get install -y chromium)")
    return chromium


def _command(profile: str, args: list[str]) -> list[str]:
    return [str(_installed_chromium()), *HEADLESS_FLAGS, f"--user-data-dir={profile}", *args]


def _run_headless(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="ionto-chromium-") as profile:
        return subprocess.run(
            _command(profile, args), capture_output=True, text=True, timeout=timeout_s, check=True
        )


class Chromium:
    """A headless Chromium that prints pages over its DevTools pipe (``--remote-debugging-pipe``:
    JSON messages ending in a NUL byte, commands on the browser's descriptor 3 and answers on
    its descriptor 4; the Chrome DevTools Protocol's ``Page.printToPDF``).

    Starting it costs about 0.5 s of wall time before a page can load (the browser, zygote and
    renderer processes, and a tab): :meth:`__init__` starts the browser and opens the tab in
    the background, so a Chromium started ahead of the print (``ionto run`` starts one when the
    investigator report is stale, :class:`PrintBrowser`) is ready when the HTML is written, and
    the print itself costs about 0.3 s (the demo report: load 0.14 s, print 0.19 s). One print
    at a time."""

    def __init__(self) -> None:
        _installed_chromium()  # before any descriptor or folder is made
        self._profile = tempfile.TemporaryDirectory(prefix="ionto-chromium-")
        # Chromium's log goes to a file: a pipe nobody reads could fill and stall it.
        self._log = (Path(self._profile.name) / "chromium.log").open("w+", encoding="utf-8")
        commands_in, commands_out = os.pipe()
        answers_in, answers_out = os.pipe()
        # The browser expects the pipe on descriptors 3 and 4; bash puts them there (dash, the
        # shell of Debian's chromium script, takes only one-digit descriptors). The ends are
        # first moved to 10 or above, so that the redirections cannot overwrite each other.
        child_in = fcntl.fcntl(commands_in, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(answers_out, fcntl.F_DUPFD, 10)
        for fd in (commands_in, answers_out):
            os.close(fd)
        shell = f'exec "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        try:
            self._process = subprocess.Popen(
                ["/bin/bash", "-c", shell, "bash", *_command(self._profile.name, [PIPE_FLAG])],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                pass_fds=(child_in, child_out),
                start_new_session=True,  # its own process group: kill() reaches every process
            )
        except OSError:
            for fd in (commands_out, answers_in):
                os.close(fd)
            self._log.close()
            self._profile.cleanup()
            raise
        finally:
            for fd in (child_in, child_out):
                os.close(fd)
        self._commands = commands_out
        self._answers = answers_in
        self._received = b""
        self._events: list[dict[str, Any]] = []
        self._last_id = 0
        self._session = ""
        self._error: BaseException | None = None
        self._tab = threading.Thread(target=self._open_tab, daemon=True)
        self._tab.start()

    def _open_tab(self) -> None:
        try:
            target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
            attached = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})
            self._session = attached["sessionId"]
            self._call("Page.enable")
        except BaseException as error:  # handed to the print that waits for the tab
            self._error = error

    def _send(self, method: str, params: dict[str, Any] | None = None) -> int:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if self._session:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._last_id

    def _next_message(self) -> dict[str, Any]:
        while b"\0" not in self._received:
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                self._log.seek(0)
                raise RuntimeError(f"Chromium stopped: {self._log.read()[-2000:].strip()}")
            self._received += chunk
        message, self._received = self._received.split(b"\0", 1)
        return json.loads(message)

    def _call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command and return its result; the events that arrive meanwhile are kept."""
        sent = self._send(method, params)
        while True:
            message = self._next_message()
            if message.get("id") != sent:
                self._events.append(message)
            elif "error" in message:
                raise RuntimeError(f"Chromium refused {method}: {message['error']}")
            else:
                return message["result"]

    def _wait_for_event(self, method: str) -> None:
        while not any(e.get("method") == method for e in self._events):
            self._events.append(self._next_message())

    def print_pdf(self, html: Path, pdf: Path) -> None:
        """Load ``html`` and write its print to ``pdf`` (A4 and the margins of the page's
        ``@page`` rule, backgrounds printed, no header or footer: what ``--print-to-pdf
        --no-pdf-header-footer`` gives)."""
        self._tab.join()
        if self._error is not None:
            raise self._error
        self._events.clear()
        self._call("Page.navigate", {"url": html.resolve().as_uri()})
        self._wait_for_event("Page.loadEventFired")
        printed = self._call("Page.printToPDF", PRINT_OPTIONS)
        pdf.write_bytes(base64.b64decode(printed["data"]))

    def is_running(self) -> bool:
        return self._process.poll() is None

    def kill(self) -> None:
        """Kill every process of this Chromium at once (a print that hangs); a read waiting on
        the pipe then ends."""
        if self.is_running():
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def close(self) -> None:
        """Stop Chromium and remove its profile; closing it again does nothing. Its processes
        are killed rather than asked to close (``Browser.close`` took 0.2 s): nothing of the
        throw-away profile is kept."""
        self.kill()
        self._tab.join()
        if not self._log.closed:
            for fd in (self._commands, self._answers):
                os.close(fd)
            self._log.close()
            self._profile.cleanup()


class PdfPrint:
    """A PDF print under way: ``chromium`` (or a Chromium of its own, started now) prints
    ``html`` to a file beside ``pdf`` in a thread while the caller goes on. :meth:`wait`
    renames the print to ``pdf``, so a file at ``pdf`` is always a whole print; leaving the
    ``with`` block without waiting stops the print and removes its partial file. A Chromium of
    its own is stopped when the print ends; a given one is left to whoever started it."""

    def __init__(self, html: Path, pdf: Path, timeout_s: float, chromium: Chromium | None) -> None:
        self.pdf = pdf
        self.aside = pdf.with_name(f".{pdf.stem}.printing.pdf")
        self.timeout_s = timeout_s
        self._own = chromium is None
        self.chromium = Chromium() if chromium is None else chromium
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._print, args=(html,), daemon=True)
        self._thread.start()

    def _print(self, html: Path) -> None:
        try:
            self.chromium.print_pdf(html, self.aside)
        except BaseException as error:  # raised by wait()
            self._error = error

    def __enter__(self) -> PdfPrint:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def wait(self) -> Path:
        """Wait for the print (at most ``timeout_s`` from now) and return ``pdf``."""
        try:
            self._thread.join(self.timeout_s)
            if self._thread.is_alive():
                raise TimeoutError(f"Chromium did not print {self.pdf} in {self.timeout_s:.0f} s")
            if self._error is not None:
                raise self._error
            self.aside.replace(self.pdf)
            return self.pdf
        finally:
            self.close()

    def close(self) -> None:
        """Stop a print still under way (its Chromium is killed), stop a Chromium of its own,
        and remove any partial print."""
        if self._thread.is_alive():
            self.chromium.kill()
            self._thread.join()
        if self._own:
            self.chromium.close()
        self.aside.unlink(missing_ok=True)


class PrintBrowser:
    """The Chromium a run's PDF print uses. ``ionto run`` starts one ahead (:meth:`start`) when
    the investigator report is among the assets it refreshes, so that Chromium's start-up
    overlaps the steps before the report, and closes it after the run. Not started (the Dagster
    UI, a report written outside a run), :attr:`chromium` is None and a print starts a Chromium
    of its own."""

    def __init__(self) -> None:
        self.chromium: Chromium | None = None

    def start(self) -> None:
        """Start a Chromium now, if Chromium is installed and none is started yet."""
        if self.chromium is None and find_chromium() is not None:
            self.chromium = Chromium()

    def close(self) -> None:
        if self.chromium is not None:
            self.chromium.close()
            self.chromium = None


def start_pdf_print(
    html: Path, pdf: Path, timeout_s: float = 120.0, chromium: Chromium | None = None
) -> PdfPrint:
    """Start printing ``html`` to ``pdf`` (A4, the report's ``@page`` margins) with
    ``chromium``, or with a Chromium started for this print; :meth:`PdfPrint.wait` finishes it."""
    return PdfPrint(html, pdf, timeout_s, chromium)


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
