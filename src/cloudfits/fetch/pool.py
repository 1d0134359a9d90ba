"""The process's long-lived thread pools, on which every read's parts run at once."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["POOL_THREAD_PREFIX", "prestart", "prestart_soon", "run_together", "shared_pool"]

POOL_THREAD_PREFIX = "cloudfits"

_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
_inherited: list[ThreadPoolExecutor] = []
"""A forked child's pools of its parent, whose threads it does not have (kept, unused)."""


def shared_pool(workers: int, prefix: str = POOL_THREAD_PREFIX) -> ThreadPoolExecutor:
    """The process's long-lived thread pool of ``workers`` threads named ``prefix``
    (made on first use).

    Threads start only when work arrives, so an idle pool costs nothing. A process
    forked from this one starts its own pools: a pool does not survive a fork (the
    child has none of its threads, and work given to it would wait forever).
    """
    with _pools_lock:
        pool = _pools.get((prefix, workers))
        if pool is None:
            pool = _pools[prefix, workers] = ThreadPoolExecutor(workers, thread_name_prefix=prefix)
        return pool


def _forget_pools_in_child() -> None:
    global _pools_lock
    _pools_lock = threading.Lock()  # it may have been held by a thread the child lacks
    _inherited.extend(_pools.values())
    _pools.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_pools_in_child)


def prestart(pool: ThreadPoolExecutor, count: int) -> None:
    """Make sure ``pool`` has ``count`` threads running before work is submitted.

    A thread pool starts a thread per submission while none is idle, and each start
    waits for the new thread to take the GIL; when the first threads are already busy
    that costs up to a switch interval (5 ms) per thread, so the last of 50 jobs would
    start a quarter of a second late. Starting them all first, while idle, takes a
    fraction of a millisecond each.
    """
    count = min(count, pool._max_workers)
    if len(getattr(pool, "_threads", ())) >= count:
        return
    if threading.current_thread().name.startswith(POOL_THREAD_PREFIX):
        return  # called from a pool thread: it holds a slot the barrier would wait for
    barrier = threading.Barrier(count + 1)

    def wait() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=1)

    for _ in range(count):
        pool.submit(wait)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=1)


def prestart_soon(pool: ThreadPoolExecutor, count: int) -> None:
    """`prestart` on a thread of its own, returning at once.

    For a caller about to wait for an answer: the pool's threads start meanwhile
    (a fresh process spends milliseconds on each), so the reads that follow the
    answer leave together instead of one thread start after another.
    """
    if len(getattr(pool, "_threads", ())) >= min(count, pool._max_workers):
        return
    threading.Thread(
        target=_prestart_quietly, args=(pool, count), name="pool-warm-up", daemon=True
    ).start()


def _prestart_quietly(pool: ThreadPoolExecutor, count: int) -> None:
    """`prestart`, where a pool or interpreter that shuts down meanwhile ends it."""
    with contextlib.suppress(RuntimeError):  # "cannot schedule new futures after shutdown"
        prestart(pool, count)


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run independent reads at once and return their results in order.

    The first call runs on this thread, each other one on a thread of its own (not
    a pool thread: a read waits for its parts on the shared pool, and a pool thread
    waiting for the pool could starve it), so that their requests leave together:
    one wave of round trips instead of one per call. Every call is finished before
    this returns or raises; the first error, in the order of ``calls``, is raised.
    """
    if len(calls) <= 1:
        return [call() for call in calls]
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)

    def run(number: int) -> None:
        try:
            results[number] = calls[number]()
        except BaseException as err:  # raised in the caller's thread below
            errors[number] = err

    threads = [
        threading.Thread(target=run, args=(n,), name=f"read-together-{n}", daemon=True)
        for n in range(1, len(calls))
    ]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results
