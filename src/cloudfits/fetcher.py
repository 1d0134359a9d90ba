"""Fetch planned byte runs: coalesce, split, fetch in parallel, verify, assemble.

The sizes follow the cost model of `cloudfits.cost`: runs closer than ``max_gap``
bytes are fetched as one request (the gap is cheaper than a request), more gaps are
merged when there are more requests than ``max_concurrency`` and merging shortens the
estimated wall time, and spans longer than ``max_part`` are split so that their
parts arrive in parallel. Every part of a read is in flight at once on a long-lived
pool (at most ``max_concurrency`` per read), and bytes are read straight into the
output buffer where the provider offers ``get_range_into``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from .accounting import ReadStats, process_stats
from .cost import DEFAULT_COST_MODEL, CostModel
from .errors import CloudFitsError, RangeResponseError
from .providers.base import Provider
from .retry import RETRYABLE_ERRORS, RetryPolicy

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_GAP",
    "DEFAULT_MAX_PART",
    "FetchOptions",
    "ObjectReader",
    "Span",
    "coalesce",
    "prestart",
    "shared_pool",
    "split_parts",
]

DEFAULT_MAX_GAP = DEFAULT_COST_MODEL.gap_bytes
DEFAULT_MAX_PART = DEFAULT_COST_MODEL.part_bytes
DEFAULT_MAX_CONCURRENCY = 32

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class FetchOptions:
    """Tuning of the range engine (see `cloudfits.cost` for where the defaults come from).

    Attributes
    ----------
    max_gap : int
        Runs separated by fewer bytes than this are fetched in one request
        (environment variable ``CLOUDFITS_MAX_GAP``; default 4,444, the bytes that
        cost as much as one request).
    max_part : int
        Longest single request in bytes; longer spans are split into parallel parts
        (``CLOUDFITS_MAX_PART``; default 6,000,000).
    max_concurrency : int
        Most requests in flight at once for one read (``CLOUDFITS_MAX_CONCURRENCY``;
        default 32). Provider connection pools hold 64 connections by default.
    cost : CostModel
        The model used to decide on merging beyond ``max_gap``.
    """

    max_gap: int = DEFAULT_MAX_GAP
    max_part: int = DEFAULT_MAX_PART
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    cost: CostModel = field(default=DEFAULT_COST_MODEL, compare=False)

    @classmethod
    def from_environment(cls) -> FetchOptions:
        """Defaults, overridden by the ``CLOUDFITS_*`` environment variables."""
        values: dict[str, Any] = {}
        for name, var in (
            ("max_gap", "CLOUDFITS_MAX_GAP"),
            ("max_part", "CLOUDFITS_MAX_PART"),
            ("max_concurrency", "CLOUDFITS_MAX_CONCURRENCY"),
        ):
            if var in os.environ:
                values[name] = int(os.environ[var])
        return cls(**values).validated()

    def updated(
        self,
        *,
        max_gap: int | None = None,
        max_part: int | None = None,
        max_concurrency: int | None = None,
    ) -> FetchOptions:
        """A copy with the given values replaced (``None`` keeps the current one)."""
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("max_gap", max_gap),
                ("max_part", max_part),
                ("max_concurrency", max_concurrency),
            )
            if v is not None
        }
        return replace(self, **changes).validated() if changes else self

    def spans(self, offsets: np.ndarray, lengths: int | np.ndarray) -> list[Span]:
        """`coalesce` the runs at ``offsets`` with these options."""
        return coalesce(
            offsets,
            lengths,
            self.max_gap,
            max_concurrency=self.max_concurrency,
            cost=self.cost,
        )

    def validated(self) -> FetchOptions:
        """Return ``self``, or raise ``ValueError`` when a value is out of range."""
        if self.max_gap < 0 or self.max_part < 1 or self.max_concurrency < 1:
            raise ValueError(
                f"invalid fetch options {self}: max_gap >= 0, max_part >= 1,"
                " max_concurrency >= 1 are required"
            )
        return self


@dataclass(frozen=True)
class Span:
    """Runs ``first_run`` to ``last_run`` (exclusive), fetched as bytes ``[start, end)``."""

    start: int
    end: int
    first_run: int
    last_run: int


def _lengths(run_offsets: np.ndarray, run_nbytes: int | np.ndarray) -> np.ndarray:
    lengths = np.broadcast_to(np.asarray(run_nbytes, dtype=np.int64), run_offsets.shape)
    return np.ascontiguousarray(lengths)


def coalesce(
    run_offsets: np.ndarray,
    run_nbytes: int | np.ndarray,
    max_gap: int,
    *,
    max_concurrency: int | None = None,
    cost: CostModel = DEFAULT_COST_MODEL,
) -> list[Span]:
    """Group ascending, non-overlapping runs into spans fetched by one request each.

    Runs whose gap is smaller than ``max_gap`` (or zero) are merged. When
    ``max_concurrency`` is given and more spans than that remain, the smallest
    remaining gaps are merged too, as many as minimise `CostModel.seconds`.
    """
    offsets = np.asarray(run_offsets, dtype=np.int64)
    lengths = _lengths(offsets, run_nbytes)
    keep = lengths > 0
    if not np.all(keep):
        raise ValueError("coalesce needs runs of at least one byte")
    if offsets.size == 0:
        return []
    ends = offsets + lengths
    gaps = offsets[1:] - ends[:-1]
    if np.any(gaps < 0):
        raise ValueError("runs must be ascending and must not overlap")
    split = (gaps > 0) & (gaps >= max_gap)
    if max_concurrency is not None and int(split.sum()) + 1 > max_concurrency:
        candidates = np.flatnonzero(split)
        order = candidates[np.argsort(gaps[candidates], kind="stable")]
        extra = np.concatenate(([0], np.cumsum(gaps[order])))
        base = int(np.sum(ends[-1:] - offsets[:1])) - int(gaps[split].sum())
        requests = candidates.size + 1 - np.arange(candidates.size + 1)
        estimates = cost.seconds_array(requests, base + extra, max_concurrency)
        best = int(np.argmin(estimates))
        split[order[:best]] = False
    breaks = np.flatnonzero(split) + 1
    firsts = np.concatenate(([0], breaks)).tolist()
    lasts = [*breaks.tolist(), int(offsets.size)]
    return [
        Span(int(offsets[a]), int(ends[b - 1]), a, b) for a, b in zip(firsts, lasts, strict=True)
    ]


def split_parts(start: int, end: int, max_part: int) -> list[tuple[int, int]]:
    """Cut ``[start, end)`` into pieces of at most ``max_part`` bytes, of near-equal size."""
    if end <= start:
        return []
    count = -(-(end - start) // max_part)
    bounds = [start + (end - start) * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


_THREAD_PREFIX = "cloudfits"
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def shared_pool(workers: int) -> ThreadPoolExecutor:
    """The process's long-lived thread pool of ``workers`` threads (made on first use).

    Threads start only when work arrives, so an idle pool costs nothing.
    """
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix=_THREAD_PREFIX)
        return pool


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
    if threading.current_thread().name.startswith(_THREAD_PREFIX):
        return  # called from a pool thread: it holds a slot the barrier would wait for
    barrier = threading.Barrier(count + 1)

    def wait() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=1)

    for _ in range(count):
        pool.submit(wait)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=1)


Job = tuple[int, int, memoryview]


class ObjectReader:
    """Reads byte ranges of one object through a provider, counting every request.

    Every read is exact or fails: the length of each answer is checked (providers
    check ``Content-Range``), and transient failures (`cloudfits.TransientProviderError`,
    `cloudfits.RangeResponseError`) are retried under ``retry``, with jittered
    exponential backoff; other errors end the read at once.

    Parameters
    ----------
    provider : Provider
        The provider serving the object.
    path : str
        The object's path for that provider.
    uri : str
        The object's URI, used in messages.
    stats : sequence of ReadStats
        Counters to update besides the process-wide one.
    etag : str, optional
        The version of the object the reads must come from; passed to the provider,
        which raises `cloudfits.StaleIndexError` when the object changed.
    retry : RetryPolicy, optional
        The retry budget of each read (default: `RetryPolicy.from_environment`).
    """

    def __init__(
        self,
        provider: Provider,
        path: str,
        uri: str,
        stats: Sequence[ReadStats] = (),
        *,
        etag: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.provider = provider
        self.path = path
        self.uri = uri
        self.etag = etag
        self.retry = retry or RetryPolicy.from_environment()
        self._stats = (process_stats, *stats)

    def _provider_kwargs(self) -> dict[str, Any]:
        return {"etag": self.etag} if self.etag is not None else {}

    def _record(self, nbytes: int) -> None:
        for stats in self._stats:
            stats.record(nbytes)

    def _attempts(self, start: int, end: int, once: Callable[[], T]) -> T:
        """``once()``, retried on transient errors within the retry budget."""
        policy = self.retry
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return once()
            except RETRYABLE_ERRORS as err:
                if policy.gives_up(attempt, started):
                    if attempt == 1:
                        raise
                    raise type(err)(f"{err} (gave up after {attempt} attempts)") from err
                delay = policy.backoff(attempt)
                logger.debug(
                    "%s: bytes [%d, %d), attempt %d failed (%s); retrying in %.2f s",
                    self.uri,
                    start,
                    end,
                    attempt,
                    type(err).__name__,
                    delay,
                )
                time.sleep(delay)

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, exactly, or an error; never fewer or other bytes.

        Raises
        ------
        RangeResponseError
            When every attempt answered with the wrong bytes.
        TransientProviderError
            When the store kept failing past the retry budget.
        StaleIndexError
            When the object is no longer the version pinned by ``etag``.
        """
        if end <= start:
            return b""
        if getattr(self.provider, "get_range_into", None) is not None:
            buffer = bytearray(end - start)
            self._fetch_into(start, end, memoryview(buffer))
            return bytes(buffer)

        def once() -> bytes:
            data = self.provider.get_range(self.path, start, end, **self._provider_kwargs())
            self._record(len(data))
            if len(data) != end - start:
                raise self._short(start, end, len(data))
            return data

        return self._attempts(start, end, once)

    def read_prefix(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, or fewer where the object ends first (one request).

        For speculative reads made before the object's size is known; transient
        failures are retried like any read.
        """
        if end <= start:
            return b""
        into = getattr(self.provider, "get_range_into", None)

        def once() -> bytes:
            if into is not None:
                buffer = bytearray(end - start)
                got = int(into(self.path, start, memoryview(buffer), **self._provider_kwargs()))
                self._record(got)
                return bytes(buffer[:got])
            data = self.provider.get_range(self.path, start, end, **self._provider_kwargs())
            self._record(len(data))
            return data

        return self._attempts(start, end, once)

    def _short(self, start: int, end: int, got: int) -> RangeResponseError:
        return RangeResponseError(f"{self.uri}: bytes [{start}, {end}) answered with {got} bytes")

    def _fetch_into(self, start: int, end: int, target: memoryview) -> None:
        """Fill ``target`` with bytes ``[start, end)`` exactly: the single-range fetch.

        A failed attempt may leave ``target`` partly written; the next one rewrites it
        whole, and a read that gives up raises, so no partial buffer is ever returned.
        """
        into = getattr(self.provider, "get_range_into", None)
        if into is None:
            target[:] = self.read(start, end)
            return

        def once() -> None:
            got = int(into(self.path, start, target, **self._provider_kwargs()))
            self._record(got)
            if got != end - start:
                raise self._short(start, end, got)

        self._attempts(start, end, once)

    def read_runs(
        self,
        base: int,
        run_offsets: np.ndarray,
        run_nbytes: int | np.ndarray,
        options: FetchOptions,
    ) -> np.ndarray:
        """Fetch ascending runs at ``base + run_offsets`` into one new byte array.

        ``run_nbytes`` is one length for all runs or one per run. The runs land one
        after another in the result, in order.
        """
        offsets = np.asarray(run_offsets, dtype=np.int64)
        lengths = _lengths(offsets, run_nbytes)
        positions = np.concatenate(([0], np.cumsum(lengths)))
        out = np.empty(int(positions[-1]), dtype=np.uint8)
        if out.size == 0:
            return out
        spans = options.spans(offsets, lengths)
        jobs: list[Job] = []
        scatters: list[tuple[Span, np.ndarray]] = []
        view = out.data.cast("B")
        for span in spans:
            nbytes = span.end - span.start
            first, last = int(positions[span.first_run]), int(positions[span.last_run])
            if nbytes == last - first:
                target = view[first:last]  # no gaps: the span's bytes are the output's
            else:
                scratch = np.empty(nbytes, dtype=np.uint8)
                scatters.append((span, scratch))
                target = scratch.data.cast("B")
            for a, b in split_parts(span.start, span.end, options.max_part):
                jobs.append((base + a, base + b, target[a - span.start : b - span.start]))
        self._run_jobs(jobs, options.max_concurrency)
        for span, scratch in scatters:
            _scatter(out, positions, offsets, lengths, span, scratch)
        return out

    def read_ranges(
        self, base: int, starts: np.ndarray, ends: np.ndarray, options: FetchOptions
    ) -> list[np.ndarray]:
        """Fetch byte ranges of any lengths at ``base + [starts[i], ends[i])``.

        Ranges may overlap and come in any order; those closer than ``max_gap`` are
        fetched as one request (split above ``max_part``), all in parallel. Returns one
        byte array per range, in the order given (views of shared buffers).
        """
        starts = np.asarray(starts, dtype=np.int64).reshape(-1)
        ends = np.asarray(ends, dtype=np.int64).reshape(-1)
        order = np.argsort(starts, kind="stable")
        blocks: list[tuple[int, int]] = []  # merged [start, end), ascending
        for i in order.tolist():
            start, end = int(starts[i]), int(ends[i])
            if end <= start:
                continue
            if blocks and start - blocks[-1][1] < max(options.max_gap, 1):
                blocks[-1] = (blocks[-1][0], max(blocks[-1][1], end))
            else:
                blocks.append((start, end))
        buffers = [np.empty(b - a, dtype=np.uint8) for a, b in blocks]
        jobs = [
            (base + a, base + b, buffer.data[a - first : b - first])
            for (first, last), buffer in zip(blocks, buffers, strict=True)
            for a, b in split_parts(first, last, options.max_part)
        ]
        self._run_jobs(jobs, options.max_concurrency)
        block_starts = np.array([a for a, _ in blocks], dtype=np.int64)
        found = np.searchsorted(block_starts, starts, side="right") - 1
        out = []
        for start, end, block in zip(starts.tolist(), ends.tolist(), found.tolist(), strict=True):
            if end <= start:
                out.append(np.zeros(0, dtype=np.uint8))
            else:
                first = blocks[block][0]
                out.append(buffers[block][start - first : end - first])
        return out

    def _run_jobs(self, jobs: list[Job], concurrency: int) -> None:
        if len(jobs) <= 1 or concurrency <= 1:
            for job in jobs:
                self._fetch_into(*job)
            return
        pool = shared_pool(concurrency)
        prestart(pool, len(jobs))
        futures: list[Future[None]] = [pool.submit(self._fetch_into, *job) for job in jobs]
        errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            if isinstance(first, CloudFitsError):
                raise first
            raise CloudFitsError(f"{self.uri}: read failed: {first}") from first


def _scatter(
    out: np.ndarray,
    positions: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    span: Span,
    scratch: np.ndarray,
) -> None:
    """Copy the runs of a gapped span from ``scratch`` to their places in ``out``."""
    a, b = span.first_run, span.last_run
    rel = offsets[a:b] - span.start
    run_lengths = lengths[a:b]
    if np.all(run_lengths == run_lengths[0]) and run_lengths[0] < 1024:
        n = int(run_lengths[0])
        dest = out[int(positions[a]) : int(positions[b])].reshape(-1, n)
        dest[:] = scratch[rel[:, None] + np.arange(n)]
        return
    for start, length, pos in zip(
        rel.tolist(), run_lengths.tolist(), positions[a:b].tolist(), strict=True
    ):
        out[pos : pos + length] = scratch[start : start + length]
