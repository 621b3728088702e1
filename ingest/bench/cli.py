"""``ionto capture ibu|balance`` and ``ionto emulate ibu|balance``.

``add_bench_commands(subparsers)`` registers both on the ``ionto`` parser; ``python -m
ingest.bench.cli ...`` runs them alone (the clinic PC needs nothing else). SIGINT and SIGTERM
stop a capture cleanly with exit 0 after everything received is written. A capture whose port
never answers (a wrong ``--port``, a unit not plugged in) exits 2 after ``--wait`` seconds
with one line; a port lost after the first connection is retried for ever.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, TypeAlias

from ingest.bench.transport import NoDeviceError, SerialSettings

DEFAULT_CONNECT_WAIT_S = 60.0
NO_DEVICE_EXIT = 2

if TYPE_CHECKING:
    from ingest.bench.emulators.balance import BalanceEmulator
    from ingest.bench.emulators.ibu import IbuEmulator
    from ingest.bench.emulators.lines import PtyLine, TcpLine

Line: TypeAlias = "PtyLine | TcpLine"
Emulator: TypeAlias = "IbuEmulator | BalanceEmulator"


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        logging.getLogger("ingest.bench").info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _capture_ibu(args: argparse.Namespace) -> int:
    from ingest.bench.ibu_capture import IbuCapture, IbuTiming

    _logging(args.verbose)
    stop = threading.Event()
    _stop_on_signals(stop)
    capture = IbuCapture(
        args.port,
        args.out,
        settings=SerialSettings(baudrate=args.baud),
        timing=IbuTiming().scaled(args.time_scale),
        discover=args.discover,
        stop_event=stop,
        connect_wait=args.wait,
    )
    try:
        code = capture.run()
    except NoDeviceError as exc:
        return _no_device(exc)
    logging.getLogger("ingest.bench").info("stopped: %s", capture.stats)
    return code


def _capture_balance(args: argparse.Namespace) -> int:
    from ingest.bench.balance_capture import BalanceCapture, BalanceTiming, WorklistError
    from study import load_study

    _logging(args.verbose)
    stop = threading.Event()
    _stop_on_signals(stop)
    settings = SerialSettings(
        baudrate=args.baud,
        xonxoff=args.handshake == "xonxoff",
        rtscts=args.handshake == "rtscts",
        read_timeout=0.05,
    )
    study = load_study(args.study)
    capture = BalanceCapture(
        args.port,
        args.out,
        args.operator,
        regions=[r.code for r in study.regions],
        sides=study.sides,
        worklist=args.worklist,
        settings=settings,
        timing=BalanceTiming().scaled(args.time_scale),
        stop_event=stop,
        discover=args.discover,
        connect_wait=args.wait,
    )
    try:
        return capture.run()
    except WorklistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NoDeviceError as exc:
        return _no_device(exc)


def _no_device(exc: NoDeviceError) -> int:
    print(f"ionto capture: {exc}", file=sys.stderr)
    return NO_DEVICE_EXIT


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_CONNECT_WAIT_S,
        metavar="SECONDS",
        help="give up (exit 2) if the port does not answer within this many seconds of the "
        "start (default %(default)g); once connected, a lost port is retried for ever",
    )


def _serve(args: argparse.Namespace, build: Callable[[Line], Emulator]) -> int:
    from ingest.bench.emulators.lines import PtyLine, TcpLine

    line: Line = PtyLine(args.link) if args.pty else TcpLine(args.tcp)
    emulator = build(line)
    stop = emulator.stop_event
    _stop_on_signals(stop)
    print(f"emulated unit on {line.name}", flush=True)
    emulator.run()
    return 0


def _emulate_ibu(args: argparse.Namespace) -> int:
    from ingest.bench.emulators.ibu import IbuEmulator, IbuScenario

    scenario = IbuScenario.load(args.scenario) if args.scenario else IbuScenario()
    speed = args.speed or scenario.speed or 1.0
    return _serve(
        args, lambda line: IbuEmulator(line, scenario, speed, args.record, args.pace_baud)
    )


def _emulate_balance(args: argparse.Namespace) -> int:
    from ingest.bench.emulators.balance import BalanceEmulator, BalanceScenario

    scenario = BalanceScenario.load(args.scenario) if args.scenario else BalanceScenario()
    speed = args.speed or scenario.speed or 1.0
    return _serve(args, lambda line: BalanceEmulator(line, scenario, speed))


def add_bench_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``capture`` (ibu, balance) and ``emulate`` (ibu, balance) on ``subparsers``."""
    capture = subparsers.add_parser("capture", help="capture a bench unit to the landing area")
    cap_sub = capture.add_subparsers(dest="device", required=True)

    ibu = cap_sub.add_parser("ibu", help="stream an IBU-1 iontophoresis unit")
    ibu.add_argument("--port", required=True, help="device path (by-id link) or pyserial URL")
    ibu.add_argument("--out", required=True, help="output folder (raw landing area)")
    ibu.add_argument("--baud", type=int, default=115200)
    ibu.add_argument(
        "--discover",
        action="append",
        default=None,
        help="where to look for the unit if its port comes back under another name: a glob "
        "of device paths or a URL (repeatable; default: the system's serial ports)",
    )
    ibu.add_argument(
        "--time-scale", type=float, default=1.0, help="divide the driver's timers (emulators)"
    )
    _add_wait(ibu)
    ibu.add_argument("-v", "--verbose", action="store_true")
    ibu.set_defaults(func=_capture_ibu)

    bal = cap_sub.add_parser("balance", help="weigh filter papers on an MT-SICS balance")
    bal.add_argument("--port", required=True, help="device path (by-id link) or pyserial URL")
    bal.add_argument("--out", required=True, help="output folder (raw landing area)")
    bal.add_argument("--operator", required=True, help="who weighs (recorded with each paper)")
    bal.add_argument("--worklist", help="CSV: paper_id,subject_id,visit,region,side,phase")
    bal.add_argument(
        "--study",
        default=None,
        help="study configuration YAML or shipped example name: the regions and sides offered "
        "(default: the bundled ion301)",
    )
    bal.add_argument("--baud", type=int, default=9600)
    bal.add_argument("--handshake", choices=("none", "xonxoff", "rtscts"), default="none")
    bal.add_argument(
        "--discover",
        action="append",
        default=None,
        help="where to look for the balance (by its I4 serial) if its port comes back under "
        "another name (repeatable; default: the system's serial ports)",
    )
    bal.add_argument("--time-scale", type=float, default=1.0)
    _add_wait(bal)
    bal.add_argument("-v", "--verbose", action="store_true")
    bal.set_defaults(func=_capture_balance)

    emulate = subparsers.add_parser("emulate", help="run an emulated bench unit")
    emu_sub = emulate.add_subparsers(dest="device", required=True)
    for name, func in (("ibu", _emulate_ibu), ("balance", _emulate_balance)):
        p = emu_sub.add_parser(name, help=f"emulated {name} on a pty or a TCP port")
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal")
        where.add_argument("--tcp", type=int, metavar="PORT", help="serve socket://:PORT")
        p.add_argument("--link", help="with --pty: keep a symlink to the pty at this path")
        p.add_argument("--scenario", help="YAML scenario (faults, sessions, operator)")
        p.add_argument("--speed", type=float, help="time-acceleration factor")
        if name == "ibu":
            p.add_argument("--record", help="append every generated frame here (JSON lines)")
            p.add_argument("--pace-baud", type=int, help="pace output like a UART at this baud")
        p.set_defaults(func=func)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ionto", description="bench capture and emulators")
    add_bench_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
