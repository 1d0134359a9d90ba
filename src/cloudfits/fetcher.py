"""Fetch planned byte runs: coalesce, split, fetch in parallel, verify, assemble.

Cost model for the defaults: a request costs about as much as a few kilobytes of
transfer (on S3, a GET costs $0.0004 per 1,000 and egress $0.09 per GB, so one
request is the price of ~4.4 kB), so runs closer than `max_gap` bytes are fetched as
one request and the gap is thrown away. Spans longer than `max_part` are split so that
their parts arrive in parallel. All parts of a read are in flight at once, up to
`max_concurrency`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from .accounting import ReadStats, process_stats
from .errors import CloudFitsError, RangeResponseError
from .providers.base import Provider
from .retry import RETRYABLE_ERRORS, RetryPolicy

__all__ = ["FetchOptions", "ObjectReader", "Span", "coalesce", "split_parts"]

DEFAULT_MAX_GAP = 4096
DEFAULT_MAX_PART = 8 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 16

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchOptions:
    """Tuning of the range engine.

    Attributes
    ----------
    max_gap : int
        Runs separated by fewer bytes than this are fetched in one request
        (environment variable ``CLOUDFITS_MAX_GAP``).
    max_part : int
        Longest single request in bytes; longer spans are split into parallel parts
        (``CLOUDFITS_MAX_PART``).
    max_concurrency : int
        Most requests in flight at once for one read (``CLOUDFITS_MAX_CONCURRENCY``).
    """

    max_gap: int = DEFAULT_MAX_GAP
    max_part: int = DEFAULT_MAX_PART
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    @classmethod
    def from_environment(cls) -> FetchOptions:
        """Defaults, overridden by the ``CLOUDFITS_*`` environment variables."""
        values = {}
        for field, var in (
            ("max_gap", "CLOUDFITS_MAX_GAP"),
            ("max_part", "CLOUDFITS_MAX_PART"),
            ("max_concurrency", "CLOUDFITS_MAX_CONCURRENCY"),
        ):
            if var in os.environ:
                values[field] = int(os.environ[var])
        return cls(**values).validated()

    def updated(
        self,
        *,
        max_gap: int | None = None,
        max_part: int | None = None,
        max_concurrency: int | None = None,
    ) -> FetchOptions:
        """A copy with the given values replaced (``None`` keeps the current one)."""
        changes = {
            k: v
            for k, v in (
                ("max_gap", max_gap),
                ("max_part", max_part),
                ("max_concurrency", max_concurrency),
            )
            if v is not None
        }
        return replace(self, **changes).validated() if changes else self

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


def coalesce(run_offsets: np.ndarray, run_nbytes: int, max_gap: int) -> list[Span]:
    """Group ascending, equal-length runs whose gaps are smaller than ``max_gap``."""
    if run_offsets.size == 0 or run_nbytes == 0:
        return []
    gaps = run_offsets[1:] - (run_offsets[:-1] + run_nbytes)
    # Adjacent runs always merge: that wastes nothing.
    breaks = np.flatnonzero((gaps > 0) & (gaps >= max_gap)) + 1
    firsts = np.concatenate(([0], breaks)).tolist()
    lasts = [*breaks.tolist(), int(run_offsets.size)]
    return [
        Span(int(run_offsets[a]), int(run_offsets[b - 1]) + run_nbytes, a, b)
        for a, b in zip(firsts, lasts, strict=False)
    ]


def split_parts(start: int, end: int, max_part: int) -> list[tuple[int, int]]:
    """Cut ``[start, end)`` into pieces of at most ``max_part`` bytes."""
    return [(a, min(a + max_part, end)) for a in range(start, end, max_part)]


class ObjectReader:
    """Reads byte ranges of one object through a provider, counting every request.

    Every read is exact or fails: the length of each answer is checked (providers
    check ``Content-Range``), and transient failures are retried under ``retry``.

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
        The entity tag the object had when it was indexed: every read is pinned to it,
        and a changed object raises `cloudfits.StaleIndexError`.
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

    def _get(self, start: int, end: int) -> bytes:
        if self.etag is None:
            return self.provider.get_range(self.path, start, end)
        return self.provider.get_range(self.path, start, end, etag=self.etag)

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
        policy = self.retry
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                data = self._get(start, end)
                for stats in self._stats:
                    stats.record(len(data))
                if len(data) != end - start:
                    raise RangeResponseError(
                        f"{self.uri}: bytes [{start}, {end}) answered with {len(data)} bytes"
                    )
                return data
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

    def read_runs(
        self, base: int, run_offsets: np.ndarray, run_nbytes: int, options: FetchOptions
    ) -> np.ndarray:
        """Fetch equal-length runs at ``base + run_offsets`` into one new byte array.

        Run ``i`` lands at ``[i * run_nbytes, (i + 1) * run_nbytes)`` of the result.
        """
        out = np.empty(int(run_offsets.size) * run_nbytes, dtype=np.uint8)
        spans = coalesce(run_offsets, run_nbytes, options.max_gap)
        jobs: list[tuple[int, int, memoryview]] = []
        scatters: list[tuple[Span, np.ndarray]] = []
        view = out.data
        for span in spans:
            nbytes = span.end - span.start
            if nbytes == (span.last_run - span.first_run) * run_nbytes:
                # No gaps: the span's bytes are exactly the output's bytes.
                target = view[span.first_run * run_nbytes : span.last_run * run_nbytes]
            else:
                scratch = np.empty(nbytes, dtype=np.uint8)
                scatters.append((span, scratch))
                target = scratch.data
            for a, b in split_parts(span.start, span.end, options.max_part):
                jobs.append((base + a, base + b, target[a - span.start : b - span.start]))
        self._run_jobs(jobs, options.max_concurrency)
        for span, scratch in scatters:
            rel = run_offsets[span.first_run : span.last_run] - span.start
            dest = out[span.first_run * run_nbytes : span.last_run * run_nbytes]
            dest = dest.reshape(-1, run_nbytes)
            if run_nbytes >= 1024:
                for row, offset in enumerate(rel.tolist()):
                    dest[row] = scratch[offset : offset + run_nbytes]
            else:
                dest[:] = scratch[rel[:, None] + np.arange(run_nbytes)]
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

    def _fetch_into(self, start: int, end: int, target: memoryview) -> None:
        target[:] = self.read(start, end)

    def _run_jobs(self, jobs: list[tuple[int, int, memoryview]], concurrency: int) -> None:
        if len(jobs) <= 1 or concurrency <= 1:
            for start, end, target in jobs:
                self._fetch_into(start, end, target)
            return
        with ThreadPoolExecutor(max_workers=min(concurrency, len(jobs))) as pool:
            futures = [pool.submit(self._fetch_into, *job) for job in jobs]
            errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            if isinstance(first, CloudFitsError):
                raise first
            raise CloudFitsError(f"{self.uri}: read failed: {first}") from first
