"""The engine's BLAS limit: one thread inside the context, the previous count after it."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from trial.rbi.threads import one_blas_thread


def _blas_threads() -> list[int]:
    return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


def test_one_blas_thread_limits_blas_and_restores_it() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before and all(n == 2 for n in before)
        with one_blas_thread():
            assert all(n == 1 for n in _blas_threads())
        assert _blas_threads() == before
