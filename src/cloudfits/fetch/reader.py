"""The retrying, checking reader of one object: runs and ranges in, exact bytes out.

`ObjectReader.read_runs` fetches a plan's ascending runs (coalesced and split by
`cloudfits.fetch.spans`) straight into one output buffer; every part of a read is in
flight at once on the shared pool of `cloudfits.fetch.pool` (at most
``max_concurrency`` per read), and bytes are read straight into the output buffer where
the provider declares `~cloudfits.providers.base.SupportsRangeInto`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import CloudFitsError, CloudFitsWarning, RangeResponseError
from ..providers.base import (
    Provider,
    SupportsReadRange,
    range_into,
    read_range_of,
    small_reads_of,
)
from .checks import Known, check_answer
from .pool import prestart, shared_pool
from .retry import RETRYABLE_ERRORS, RetryPolicy
from .spans import FetchOptions, Span, merge_ranges, run_lengths, split_parts
from .stats import ReadStats, process_stats

__all__ = ["ObjectReader"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


Job = tuple[int, int, memoryview]


class ObjectReader:
    """Reads byte ranges of one object through a provider, counting every request.

    Every read is exact or fails: where the provider reports what it received
    (``read_range``), every answer is checked against the known size and ETag
    (`cloudfits.fetch.checks`), else its length is; each attempt ends by
    `RetryPolicy.attempt_deadline`; transient failures (`cloudfits.TransientProviderError`,
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
    size : int, optional
        The object's size, which every answer must agree with.
    retry : RetryPolicy, optional
        The retry budget of each read (default: `RetryPolicy.from_environment`).
    small_reads : bool
        Try the provider's cheaper transport for small reads first, where it has one
        (`cloudfits.providers.base.SupportsSmallReads`; its answers are checked the
        same way). Indexing asks for it for its header reads.
    """

    def __init__(
        self,
        provider: Provider,
        path: str,
        uri: str,
        stats: Sequence[ReadStats] = (),
        *,
        etag: str | None = None,
        size: int | None = None,
        retry: RetryPolicy | None = None,
        small_reads: bool = False,
    ) -> None:
        self.provider = provider
        self._into = range_into(provider)
        self._checked_reads = read_range_of(provider)
        self._small = small_reads_of(provider) if small_reads else None
        self.path = path
        self.uri = uri
        self.known = Known(size, etag)
        self.retry = retry or RetryPolicy.from_environment()
        self._stats = (process_stats, *stats)
        self._warned_whole = False

    @property
    def etag(self) -> str | None:
        """The version every answer must come from (learnt from the first answer)."""
        return self.known.etag

    @etag.setter
    def etag(self, value: str | None) -> None:
        self.known.etag = value

    def _provider_kwargs(self) -> dict[str, Any]:
        return {"etag": self.etag} if self.etag is not None else {}

    def _record(self, nbytes: int) -> None:
        for stats in self._stats:
            stats.record(nbytes)

    def _attempts(self, start: int, end: int, once: Callable[[float], T]) -> T:
        """``once(deadline)``, retried on transient errors within the retry budget.

        No attempt starts, or goes on, past the policy's deadline.
        """
        policy = self.retry
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return once(policy.attempt_deadline(end - start, started))
            except RETRYABLE_ERRORS as err:
                delay = policy.backoff(attempt)
                late = time.monotonic() + delay >= started + policy.deadline
                if policy.gives_up(attempt, started) or late:
                    if attempt == 1:
                        raise
                    raise type(err)(f"{err} (gave up after {attempt} attempts)") from err
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
        if self._into is not None or self._checked_reads is not None:
            buffer = bytearray(end - start)
            self._fetch_into(start, end, memoryview(buffer))
            return bytes(buffer)

        def once(deadline: float) -> bytes:
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
        into, checked = self._into, self._checked_reads

        def once(deadline: float) -> bytes:
            if checked is not None:
                buffer = bytearray(end - start)
                got = self._checked(checked, start, memoryview(buffer), deadline)
                return bytes(buffer[:got])
            if into is not None:
                buffer = bytearray(end - start)
                view = memoryview(buffer)
                got = int(into.get_range_into(self.path, start, view, **self._provider_kwargs()))
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
        into, checked = self._into, self._checked_reads
        if into is None and checked is None:
            target[:] = self.read(start, end)
            return

        def once(deadline: float) -> None:
            if checked is not None:
                got = self._checked(checked, start, target, deadline)
            else:
                assert into is not None
                got = int(into.get_range_into(self.path, start, target, **self._provider_kwargs()))
                self._record(got)
            if got != end - start:
                raise self._short(start, end, got)

        self._attempts(start, end, once)

    def _checked(
        self, provider: SupportsReadRange, start: int, out: memoryview, deadline: float
    ) -> int:
        """One attempt through a provider that reports its answer, checked (`check_answer`)."""
        answer = None
        if self._small is not None:
            answer = self._small.read_small(
                self.path, start, out, etag=self.known.etag, deadline=deadline
            )
        if answer is None:
            answer = provider.read_range(
                self.path, start, out, etag=self.known.etag, deadline=deadline
            )
        self._record(answer.received + answer.skipped)
        if answer.status == 200 and answer.received and not self._warned_whole:
            self._warned_whole = True
            warnings.warn(
                f"{self.uri}: the server ignores Range requests and sends the object from"
                f" its start: a read of bytes [{start}, {start + len(out)}) fetched"
                f" {answer.received + answer.skipped:,} bytes; every read will cost as"
                " much (serve the file from a server that honours Range)",
                CloudFitsWarning,
                stacklevel=3,
            )
        return check_answer(answer, start, start + len(out), self.known, uri=self.uri)

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
        lengths = run_lengths(offsets, run_nbytes)
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
        firsts, lasts, block_of = merge_ranges(starts, ends, options.max_gap)
        buffers = [
            np.empty(b - a, dtype=np.uint8)
            for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True)
        ]
        jobs = [
            (base + a, base + b, buffer.data[a - first : b - first])
            for first, last, buffer in zip(firsts.tolist(), lasts.tolist(), buffers, strict=True)
            for a, b in split_parts(first, last, options.max_part)
        ]
        self._run_jobs(jobs, options.max_concurrency)
        out = []
        for start, end, block in zip(
            starts.tolist(), ends.tolist(), block_of.tolist(), strict=True
        ):
            if block < 0:
                out.append(np.zeros(0, dtype=np.uint8))
            else:
                first = int(firsts[block])
                out.append(buffers[block][start - first : end - first])
        return out

    def _run_jobs(self, jobs: list[Job], concurrency: int) -> None:
        if len(jobs) <= 1 or concurrency <= 1:
            for job in jobs:
                self._fetch_into(*job)
            return
        # The caller reads the first part itself instead of waiting idle: one thread
        # hand-over fewer per read, and one more request in flight than the pool holds.
        pool = shared_pool(concurrency)
        prestart(pool, len(jobs) - 1)
        futures: list[Future[None]] = [pool.submit(self._fetch_into, *job) for job in jobs[1:]]
        errors: list[BaseException | None] = [None]
        try:
            self._fetch_into(*jobs[0])
        except Exception as err:  # raised below, once the other parts have ended
            errors[0] = err
        errors += [f.exception() for f in futures]
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
        steps = np.diff(rel)
        if steps.size and np.all(steps == steps[0]):
            # Evenly spaced runs (one plane of interleaved planes, a column of a
            # table): one strided copy, no index array of every byte.
            step = int(steps[0])
            first = int(rel[0])
            dest[:] = as_strided(
                scratch[first:], shape=dest.shape, strides=(step, 1), writeable=False
            )
        else:
            dest[:] = scratch[rel[:, None] + np.arange(n)]
        return
    for start, length, pos in zip(
        rel.tolist(), run_lengths.tolist(), positions[a:b].tolist(), strict=True
    ):
        out[pos : pos + length] = scratch[start : start + length]
