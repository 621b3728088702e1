"""One BLAS thread for the engine's many small matrix products."""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cache
from typing import Any

from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    """The BLAS libraries loaded when the engine first runs (numpy's and scipy's OpenBLAS),
    found once: looking them up costs milliseconds, a limit through them microseconds."""
    return ThreadpoolController()


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which BLAS runs on one thread, restored after it. The engine's products are
    small (t x t, p x p, a few hundred rows by p^2): with more threads OpenBLAS spends longer
    handing work out and waiting than computing, and on a busy machine its waiting threads spin
    (the demo's estimands: 4.5 s CPU with two threads, 1.5 s with one, at a load average of
    15; ``benchmarks/rbi.py`` runs with one thread for the same reason). Its results are
    therefore the same whatever thread count the caller's process has."""
    return _controller().limit(limits=1, user_api="blas")
