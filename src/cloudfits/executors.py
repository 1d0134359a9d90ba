"""Where an indexing scan runs: a local thread pool, or tasks on a Dask cluster.

`build_index` lists the objects once, on the caller's side, then hands them to
`scan_objects`. With the local executor a thread pool scans them side by side (a scan
is a chain of small dependent reads, so it waits on the network, not on the CPU).
With Dask the objects are cut into batches, one task per batch; each task rebuilds
the provider on its worker from the URI scheme and the provider options (a
`ScanJob`, which pickles), scans its batch with a small thread pool and sends back
plain `FileEntry` and `IndexFailure` values. ``dask`` and ``distributed`` are imported
only when a Dask executor is asked for (``pip install 'cloudfits[dask]'``).
"""

from __future__ import annotations

import math
import os
import pickle
import posixpath
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .accounting import ReadStats, process_stats
from .errors import CloudFitsError
from .fetcher import ObjectReader, prestart
from .index import FileEntry, IndexFailure
from .plugins import get_registry
from .providers.base import ObjectInfo, Provider
from .scan import DEFAULT_SPECULATIVE_READ, HDULayout, scan_fits
from .uri import redact_uri

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "FAILURES",
    "INSTALL_HINT",
    "BatchResult",
    "Executor",
    "ScanJob",
    "ScanResult",
    "dask_client",
    "scan_batch",
    "scan_object",
    "scan_objects",
]

Executor = Any
"""``None``, ``"threads"``, ``"dask"``, a scheduler address or a ``distributed.Client``."""
Errors = Literal["raise", "collect"]

FAILURES: tuple[type[Exception], ...] = (CloudFitsError, OSError)
"""What a scan of one object may fail with and still let the others be indexed: the
cloudfits errors (not found, access denied, malformed FITS, stale, transient past the
retry budget, ...) and operating-system errors of local files. Anything else is a bug
and always propagates."""
INSTALL_HINT = "pip install 'cloudfits[dask]'"
TASKS_PER_THREAD = 4
"""Dask tasks per worker thread: enough to even out slow batches and to move the
progress bar, few enough that the per-task overhead stays small."""
MAX_BATCH = 256
_BAD_EXECUTOR = (
    "executor must be None, 'threads', 'dask', a Dask scheduler address"
    " ('tcp://HOST:PORT') or a distributed.Client, not {!r}"
)


class _ProviderOptions(dict[str, Any]):
    """Provider options whose ``repr`` shows the keys only, in case one holds a secret
    (a task's arguments can end up in a worker's log)."""

    def __repr__(self) -> str:
        return f"<provider options: {', '.join(sorted(self)) or 'none'}>"


def scan_object(
    provider: Provider,
    info: ObjectInfo,
    uri: str,
    *,
    stats: ReadStats | None = None,
    speculative: int = DEFAULT_SPECULATIVE_READ,
) -> list[HDULayout]:
    """Scan one object's headers (see `cloudfits.scan.scan_fits`)."""
    reader = ObjectReader(
        provider, info.path, uri, [stats] if stats is not None else [], etag=info.etag
    )
    return scan_fits(reader.read, info.size, name=uri, speculative=speculative)


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
    """

    scheme: str
    base: str
    options: dict[str, Any] = field(default_factory=dict)
    same_place: bool = True
    speculative_read: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _ProviderOptions(self.options))

    def provider(self) -> Provider:
        """The provider for this source (one per process and options, see
        `cloudfits.ProviderRegistry.provider`)."""
        registry = get_registry()
        return registry.provider(registry.by_scheme(self.scheme), self.scheme, self.options)

    def uri(self, info: ObjectInfo) -> str:
        """The object's URI, fit for messages."""
        return redact_uri(info.path if self.scheme == "file" else f"{self.scheme}://{info.path}")

    def relative(self, info: ObjectInfo) -> str:
        """The object's path relative to ``base``, as the index holds it."""
        return posixpath.relpath(info.path.replace(os.sep, "/"), self.base.replace(os.sep, "/"))

    def entry(self, provider: Provider, info: ObjectInfo, stats: ReadStats | None) -> FileEntry:
        """Scan one object's headers into its index entry."""
        uri = self.uri(info)
        hdus = scan_object(provider, info, uri, stats=stats, speculative=self.speculative_read)
        return FileEntry(
            self.relative(info),
            info.size,
            tuple(hdus),
            info.etag if self.same_place else None,
            info.last_modified if self.same_place else None,
        )

    def failure(self, info: ObjectInfo, err: BaseException) -> IndexFailure:
        """What to report about an object whose scan raised ``err``."""
        return IndexFailure(self.relative(info), self.uri(info), type(err).__name__, str(err))


@dataclass
class ScanResult:
    """What a scan found: entries and failures, in no particular order."""

    entries: list[FileEntry] = field(default_factory=list)
    failures: list[IndexFailure] = field(default_factory=list)


def _scan_threads(
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
    place of their entries instead of raising."""

    def one(info: ObjectInfo) -> FileEntry | Exception:
        result: FileEntry | Exception
        try:
            result = job.entry(provider, info, stats)
        except FAILURES as err:
            if not catch:
                raise
            result = err
        if on_scanned is not None:
            on_scanned(info)
        return result

    workers = max(1, min(concurrency, len(objects)))
    with ThreadPoolExecutor(workers, thread_name_prefix="cloudfits-index") as pool:
        prestart(pool, len(objects))
        return list(pool.map(one, objects))


@dataclass
class BatchResult:
    """What one Dask task sends back (plain, picklable data).

    Attributes
    ----------
    entries, failures : list
        The batch's entries and, with ``errors="collect"``, its failures.
    error : Exception or None
        With ``errors="raise"``, the batch's first failure.
    requests, bytes : int
        Requests made and bytes received by the task.
    pid : int
        The worker's process id.
    """

    entries: list[FileEntry]
    failures: list[IndexFailure]
    error: Exception | None
    requests: int
    bytes: int
    pid: int


def _portable(err: Exception) -> Exception:
    """``err``, or a plain `CloudFitsError` with its text when it does not pickle."""
    try:
        pickle.loads(pickle.dumps(err))
    except (pickle.PickleError, TypeError, AttributeError, ValueError):
        return CloudFitsError(f"{type(err).__name__}: {err}")
    return err


def scan_batch(
    job: ScanJob, objects: Sequence[ObjectInfo], concurrency: int, errors: Errors
) -> BatchResult:
    """The Dask task: scan one batch of objects on a worker.

    Each object's failure is caught, so a bad object never loses the good ones of its
    batch; with ``errors="raise"`` the first is sent back to be raised by the caller.
    """
    stats = ReadStats()
    outcomes = _scan_threads(
        job,
        job.provider(),
        objects,
        concurrency=concurrency,
        stats=stats,
        on_scanned=None,
        catch=True,
    )
    result = BatchResult([], [], None, stats.requests, stats.bytes, os.getpid())
    for info, outcome in zip(objects, outcomes, strict=True):
        if isinstance(outcome, FileEntry):
            result.entries.append(outcome)
        elif errors == "raise":
            result.error = result.error or _portable(outcome)
        else:
            result.failures.append(job.failure(info, outcome))
    return result


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as err:
        raise CloudFitsError(
            f"indexing on Dask needs dask.distributed, which is not installed: {INSTALL_HINT}"
        ) from err
    return distributed


def dask_client(executor: Executor) -> tuple[Client, bool]:
    """The Dask client to index with, and whether this call created it (to close it).

    Parameters
    ----------
    executor : str or distributed.Client
        ``"dask"`` (the current client, else the scheduler named by the Dask
        configuration ``scheduler-address`` / ``DASK_SCHEDULER_ADDRESS``), a scheduler
        address such as ``"tcp://127.0.0.1:8786"``, or a client.
    """
    distributed = _import_distributed()
    if isinstance(executor, distributed.Client):
        return executor, False
    if not isinstance(executor, str):
        raise ValueError(_BAD_EXECUTOR.format(executor))
    if executor == "dask":
        try:
            return distributed.get_client(), False
        except ValueError:
            import dask

            address = dask.config.get("scheduler-address", None)
            if not address:
                raise CloudFitsError(
                    "executor='dask' found no Dask client: create a distributed.Client"
                    " first, pass a scheduler address (executor='tcp://HOST:PORT',"
                    " cloudfits-index --dask-scheduler ADDRESS) or set"
                    " DASK_SCHEDULER_ADDRESS"
                ) from None
            executor = address
    return distributed.Client(executor, set_as_default=False), True


def _batches(objects: Sequence[ObjectInfo], threads: int, size: int | None) -> list[list[Any]]:
    if size is None:
        tasks = max(1, min(len(objects), threads * TASKS_PER_THREAD))
        size = min(MAX_BATCH, math.ceil(len(objects) / tasks))
    return [list(objects[i : i + size]) for i in range(0, len(objects), size)]


def _scan_dask(
    job: ScanJob,
    objects: Sequence[ObjectInfo],
    executor: Executor,
    *,
    concurrency: int,
    batch_size: int | None,
    errors: Errors,
    stats: ReadStats | None,
    on_scanned: Callable[[ObjectInfo], None] | None,
) -> ScanResult:
    distributed = _import_distributed()
    client: Any  # distributed's Client is only partly typed
    client, owned = dask_client(executor)
    try:
        threads = sum(client.nthreads().values()) or 1
        batches = _batches(objects, threads, batch_size)
        token = uuid.uuid4().hex[:12]
        futures = {
            client.submit(
                scan_batch,
                job,
                batch,
                min(concurrency, len(batch)),
                errors,
                key=f"cloudfits-index-{token}-{n}",
                pure=False,
            ): batch
            for n, batch in enumerate(batches)
        }
        result = ScanResult()
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                done: BatchResult = future.result()
                for counter in (stats, process_stats if done.pid != os.getpid() else None):
                    if counter is not None:
                        counter.add(done.requests, done.bytes)
                if done.error is not None:
                    raise done.error
                result.entries.extend(done.entries)
                result.failures.extend(done.failures)
                if on_scanned is not None:
                    for info in futures[future]:
                        on_scanned(info)
        finally:
            client.cancel([f for f in futures if not f.done()])  # after a failure
        return result
    finally:
        if owned:
            client.close()


def scan_objects(
    job: ScanJob,
    objects: Sequence[ObjectInfo],
    *,
    provider: Provider | None = None,
    executor: Executor = None,
    concurrency: int = 64,
    batch_size: int | None = None,
    errors: Errors = "raise",
    stats: ReadStats | None = None,
    on_scanned: Callable[[ObjectInfo], None] | None = None,
) -> ScanResult:
    """Scan ``objects`` with ``executor`` (see `cloudfits.build_index`).

    ``provider`` is the caller's provider for the local executor (the one that listed
    the objects); Dask workers build their own from ``job``.
    """
    if errors not in ("raise", "collect"):
        raise ValueError(f"errors must be 'raise' or 'collect', not {errors!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}")
    if executor is None or executor == "threads":
        outcomes = _scan_threads(
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
    if isinstance(executor, str) and executor != "dask" and "://" not in executor:
        raise ValueError(_BAD_EXECUTOR.format(executor))
    return _scan_dask(
        job,
        objects,
        executor,
        concurrency=concurrency,
        batch_size=batch_size,
        errors=errors,
        stats=stats,
        on_scanned=on_scanned,
    )
