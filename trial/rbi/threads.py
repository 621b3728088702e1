"""One BLAS thread for the engine's many small matrix products."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread() -> threadpool_limits:
    """A context in which BLAS (OpenBLAS under numpy and scipy) runs on one thread, restored
    after it. The engine's products are small (t x t, p x p, a few hundred rows by p^2): with
    more threads OpenBLAS spends longer handing work out and waiting than computing, and on a
    busy machine its waiting threads spin (the demo's estimands: 4.5 s CPU with two threads,
    1.5 s with one, at a load average of 15; ``benchmarks/rbi.py`` runs with one thread for
    the same reason)."""
    return threadpool_limits(limits=1, user_api="blas")
