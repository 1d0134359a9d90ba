"""Scanning objects into index entries: one job description, on a local thread pool.

`build_index` lists the objects once, on the caller's side, then hands them to
`scan_objects`. With the local executor a thread pool scans them side by side (a scan
is a chain of small dependent reads, so it waits on the network, not on the CPU), and
the first object of each size predicts the layout of the others of that size: each of
them is one read of all its header runs at once, verified, and scanned only when the
bytes disagree (`cloudfits.fits.predict`). With
a Dask executor the same `ScanJob` (plain, picklable values) runs as tasks on a cluster
(`cloudfits.scale.executors`, the optional ``dask`` extra).
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import CloudFitsError
from ..fetch.pool import prestart, shared_pool
from ..fetch.reader import ObjectReader
from ..fetch.retry import RetryPolicy
from ..fetch.spans import FetchOptions
from ..fetch.stats import ReadStats, process_stats
from ..fits.predict import header_runs, predictable, verify_prediction
from ..fits.scan import (
    AFTER_DATA_READ,
    BLOCK,
    DEFAULT_SPECULATIVE_READ,
    HDULayout,
    padded,
    scan_fits,
)
from ..providers.base import ObjectInfo, Provider
from ..providers.location import ObjectLocation, ProviderOptions
from ..remote.gzipped import compression_of
from ..remote.gzipstream import scan_gzip
from ..remote.seekpoints import DEFAULT_SPACING, GzipSeekPoints
from ..uri import make_uri, redact_uri
from .entry import FileEntry, IndexFailure
from .learning import PredictionScore, ReadSizes

__all__ = [
    "BAD_EXECUTOR",
    "DEFAULT_SCAN_CONCURRENCY",
    "FAILURES",
    "Errors",
    "Executor",
    "PredictionScore",
    "ReadSizes",
    "ScanJob",
    "ScanResult",
    "check_scan_arguments",
    "is_local",
    "predicted_layouts",
    "scan_locally",
    "scan_object",
    "scan_threads",
]

DEFAULT_SCAN_CONCURRENCY = 128
"""Objects scanned at once by default: the connections a provider pool holds."""
SCAN_THREAD_PREFIX = "cloudfits-index"
"""The names of the scan pools' threads."""
Executor = Any
"""``None``, ``"threads"``, ``"dask"``, a scheduler address or a ``distributed.Client``."""
Errors = Literal["raise", "collect"]
_ONE_AT_A_TIME = FetchOptions(max_concurrency=1)
"""The reads of one object's runs in turn, on the thread that scans it."""

FAILURES: tuple[type[Exception], ...] = (CloudFitsError, OSError)
"""What a scan of one object may fail with and still let the others be indexed: the
cloudfits errors (not found, access denied, malformed FITS, stale, transient past the
retry budget, ...) and operating-system errors of local files. Anything else is a bug
and always propagates."""
BAD_EXECUTOR = (
    "executor must be None, 'threads', 'dask', a Dask scheduler address"
    " ('tcp://HOST:PORT') or a distributed.Client, not {!r}"
)


def scan_object(
    provider: Provider,
    info: ObjectInfo,
    uri: str,
    *,
    stats: ReadStats | None = None,
    speculative: int = DEFAULT_SPECULATIVE_READ,
    gzip_spacing: int = DEFAULT_SPACING,
    after_data: int = AFTER_DATA_READ,
    retry: RetryPolicy | None = None,
) -> tuple[list[HDULayout], GzipSeekPoints | None]:
    """Scan one object's headers (see `cloudfits.fits.scan.scan_fits`).

    A whole-file gzip object, told by its first bytes, is decompressed once from
    start to end (`cloudfits.remote.gzipstream.scan_gzip`); its seek points come back
    with its HDUs, whose offsets are then those of the decompressed bytes.
    """
    counters = [stats] if stats is not None else []
    reader = ObjectReader(
        provider, info.path, uri, counters, etag=info.etag, size=info.size, retry=retry
    )
    first = reader.read(0, min(info.size, padded(max(speculative, BLOCK))))
    if compression_of(first, name=uri) == "gzip":
        return scan_gzip(
            reader,
            info.size,
            name=uri,
            first=first,
            speculative=speculative,
            spacing=gzip_spacing,
            stats=(process_stats, *counters),
        )
    layouts = scan_fits(
        reader.read,
        info.size,
        name=uri,
        speculative=speculative,
        initial=first,
        after_data=after_data,
    )
    return layouts, None


def predicted_layouts(
    provider: Provider,
    info: ObjectInfo,
    uri: str,
    template: Sequence[HDULayout],
    *,
    stats: ReadStats | None = None,
    speculative: int = DEFAULT_SPECULATIVE_READ,
    retry: RetryPolicy | None = None,
    runs_at_once: bool = True,
) -> list[HDULayout] | None:
    """The layouts of ``info`` read where ``template`` puts its headers, all runs at once
    (or, without ``runs_at_once``, one after another on this thread); None when a scan
    (whose first read is ``speculative`` bytes) would cost no more, or the bytes do not
    bear the prediction out (or the read failed: the scan that follows reports why)."""
    if not predictable(template, info.size, padded(max(speculative, BLOCK))):
        return None
    reader = ObjectReader(
        provider,
        info.path,
        uri,
        [stats] if stats is not None else [],
        etag=info.etag,
        size=info.size,
        retry=retry,
        small_reads=True,
    )
    runs = header_runs(template)
    starts = [a for a, _ in runs]
    ends = [b for _, b in runs]
    try:
        options = FetchOptions() if runs_at_once else _ONE_AT_A_TIME
        chunks = reader.read_ranges(0, np.asarray(starts), np.asarray(ends), options)
    except FAILURES:
        return None
    return verify_prediction(template, info.size, [c.tobytes() for c in chunks])


@dataclass(frozen=True)
class ScanJob:
    """How to scan objects of one source, in any process.

    Attributes
    ----------
    scheme : str
        The source's URI scheme; the provider is looked up by it.
    base : str
        The provider path that indexed paths are made relative to.
    options : dict
        The provider options (picklable; shown by key only).
    same_place : bool
        Whether the data is read from the source itself, so the entries keep the
        objects' ETags and modification times.
    speculative_read : int
        Bytes read at once where a header starts.
    gzip_spacing : int
        Decompressed bytes between the seek points of a whole-file gzip object.
    """

    scheme: str
    base: str
    options: dict[str, Any] = field(default_factory=dict)
    same_place: bool = True
    speculative_read: int = 0
    gzip_spacing: int = DEFAULT_SPACING

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", ProviderOptions(self.options))

    @property
    def location(self) -> ObjectLocation:
        """Where the source is, with its provider options."""
        return ObjectLocation(self.scheme, self.base, self.options)

    def provider(self) -> Provider:
        """The provider for this source (one per process and options, see
        `cloudfits.ProviderRegistry.provider`)."""
        return self.location.provider()

    def uri(self, info: ObjectInfo) -> str:
        """The object's URI, fit for messages."""
        return redact_uri(make_uri(self.scheme, info.path))

    def relative(self, info: ObjectInfo) -> str:
        """The object's path relative to ``base``, as the index holds it."""
        path, base = info.path.replace(os.sep, "/"), self.base.replace(os.sep, "/")
        head = base.rstrip("/")
        rest = path[len(head) + 1 :]
        if head and path.startswith(head + "/") and _plain(rest):
            return rest  # what relpath gives, without its two calls for the working directory
        return posixpath.relpath(path, base)

    def entry(
        self,
        provider: Provider,
        info: ObjectInfo,
        stats: ReadStats | None,
        template: Sequence[HDULayout] | None = None,
        sizes: ReadSizes | None = None,
        score: PredictionScore | None = None,
        retry: RetryPolicy | None = None,
        runs_at_once: bool = True,
    ) -> FileEntry:
        """Scan one object's headers into its index entry (first at the places
        ``template``, another object's layouts, predicts, its runs read at once unless
        ``runs_at_once`` is false; a scan reads as ``sizes``, learned from the objects
        scanned before, says; ``score`` counts the predictions and may stop them;
        ``retry``, every read's budget, by default `RetryPolicy.from_environment`)."""
        uri = self.uri(info)
        hdus: list[HDULayout] | None = None
        gzip = None
        first_read = padded(max(self.speculative_read, BLOCK))
        if (
            template is not None
            and predictable(template, info.size, first_read)
            and (score is None or score.worth_trying)
        ):
            hdus = predicted_layouts(
                provider,
                info,
                uri,
                template,
                stats=stats,
                speculative=self.speculative_read,
                retry=retry,
                runs_at_once=runs_at_once,
            )
            if score is not None:
                score.record(hdus is not None)
        if hdus is None:
            hdus, gzip = scan_object(
                provider,
                info,
                uri,
                stats=stats,
                speculative=sizes.first if sizes else self.speculative_read,
                gzip_spacing=self.gzip_spacing,
                after_data=sizes.after_data if sizes else AFTER_DATA_READ,
                retry=retry,
            )
            if sizes is not None and gzip is None:
                sizes.learn(hdus)
        return FileEntry(
            self.relative(info),
            info.size,
            tuple(hdus),
            info.etag if self.same_place else None,
            info.last_modified if self.same_place else None,
            gzip,
        )

    def failure(self, info: ObjectInfo, err: BaseException) -> IndexFailure:
        """What to report about an object whose scan raised ``err``."""
        return IndexFailure(self.relative(info), self.uri(info), type(err).__name__, str(err))


def _plain(path: str) -> bool:
    """Whether ``path`` has no empty, ``.`` or ``..`` part (``relpath`` would change it)."""
    return bool(path) and all(part not in ("", ".", "..") for part in path.split("/"))


@dataclass
class ScanResult:
    """What a scan found: entries and failures, in no particular order."""

    entries: list[FileEntry] = field(default_factory=list)
    failures: list[IndexFailure] = field(default_factory=list)


def scan_threads(
    job: ScanJob,
    provider: Provider,
    objects: Sequence[ObjectInfo],
    *,
    concurrency: int,
    stats: ReadStats | None,
    on_scanned: Callable[[ObjectInfo], None] | None,
    catch: bool,
) -> list[FileEntry | Exception]:
    """Scan ``objects`` on a local thread pool; with ``catch``, failures come back in
    place of their entries instead of raising.

    The first object of each size leads: the others of that size wait for its layout
    and are read where it predicts. A leader is submitted before its followers and
    never waits, so the pool cannot fill with waiting followers.
    """
    first_of_size: dict[int, int] = {}
    leader_of: dict[int, int] = {}
    for number, info in enumerate(objects):
        leader = first_of_size.setdefault(info.size, number)
        if leader != number:
            leader_of[number] = leader
    done = {leader: threading.Event() for leader in set(leader_of.values())}
    templates: dict[int, tuple[HDULayout, ...]] = {}
    sizes = ReadSizes(job.speculative_read)
    score = PredictionScore()
    retry = RetryPolicy.from_environment()  # once for the scan, not once per reader
    workers = max(1, min(concurrency, len(objects)))
    # With more objects than threads, every thread has objects waiting: the scan is as
    # parallel as it can be, and reading an object's runs on other threads as well
    # would only add hand-overs (some 80 us of CPU each, with 64 threads at the lock).
    runs_at_once = len(objects) <= workers

    def one(number: int) -> FileEntry | Exception:
        info = objects[number]
        result: FileEntry | Exception | None = None
        template = None
        if number in leader_of:
            done[leader_of[number]].wait()
            template = templates.get(leader_of[number])
        try:
            result = job.entry(provider, info, stats, template, sizes, score, retry, runs_at_once)
        except FAILURES as err:
            if not catch:
                raise
            result = err
        finally:
            if number in done:  # followers wake whatever happened
                # Decompressed offsets say nothing of where another object's bytes lie.
                if isinstance(result, FileEntry) and result.gzip is None:
                    templates[number] = result.hdus
                done[number].set()
        if on_scanned is not None:
            on_scanned(info)
        return result

    if threading.current_thread().name.startswith(SCAN_THREAD_PREFIX):
        # A scan started from a scan (an ``on_scanned`` that indexes): the long-lived
        # pool may be full of threads waiting for this one, so it gets a pool of its own.
        with ThreadPoolExecutor(workers, thread_name_prefix=SCAN_THREAD_PREFIX) as own:
            return list(own.map(one, range(len(objects))))
    # The process's long-lived scan pool: starting and ending 128 threads costs some
    # 20 ms of CPU, once per process instead of once per scan. A follower waits only for
    # its leader, submitted before it, so scans sharing the pool cannot block each other.
    pool = shared_pool(max(1, concurrency), SCAN_THREAD_PREFIX)
    prestart(pool, workers)
    return list(pool.map(one, range(len(objects))))


def check_scan_arguments(executor: Executor, batch_size: int | None, errors: Errors) -> None:
    """Raise `ValueError` for an executor, batch size or error policy that is not one."""
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors must be 'raise' or 'collect', not {errors!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}")
    if isinstance(executor, str) and executor not in ("threads", "dask") and "://" not in executor:
        raise ValueError(BAD_EXECUTOR.format(executor))


def is_local(executor: Executor) -> bool:
    """Whether ``executor`` asks for the local thread pool (``None`` or ``"threads"``)."""
    return executor is None or executor == "threads"


def scan_locally(
    job: ScanJob,
    objects: Sequence[ObjectInfo],
    *,
    provider: Provider | None = None,
    concurrency: int = DEFAULT_SCAN_CONCURRENCY,
    errors: Errors = "raise",
    stats: ReadStats | None = None,
    on_scanned: Callable[[ObjectInfo], None] | None = None,
) -> ScanResult:
    """Scan ``objects`` on a local thread pool (see `cloudfits.build_index`).

    ``provider`` is the caller's provider (the one that listed the objects).
    """
    check_scan_arguments(None, None, errors)
    outcomes = scan_threads(
        job,
        provider or job.provider(),
        objects,
        concurrency=concurrency,
        stats=stats,
        on_scanned=on_scanned,
        catch=errors == "collect",
    )
    result = ScanResult()
    for info, outcome in zip(objects, outcomes, strict=True):
        if isinstance(outcome, FileEntry):
            result.entries.append(outcome)
        else:
            result.failures.append(job.failure(info, outcome))
    return result
