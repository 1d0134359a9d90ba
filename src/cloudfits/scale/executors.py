"""Where an indexing scan runs: a local thread pool, or tasks on a Dask cluster.

`build_index` lists the objects once, on the caller's side, then hands them to
`scan_objects`. With the local executor a thread pool scans them side by side (a scan
is a chain of small dependent reads, so it waits on the network, not on the CPU).
With Dask the objects are cut into batches, one task per batch; each task rebuilds
the provider on its worker from the URI scheme and the provider options (a
`ScanJob`, which pickles), scans its batch on the worker process's scan pool (shared
by the tasks running there at once) and sends back plain `FileEntry` and
`IndexFailure` values. ``dask`` and ``distributed`` are imported only when a Dask
executor is asked for (``pip install 'cloudfits[dask]'``).
"""

from __future__ import annotations

import math
import os
import pickle
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import CloudFitsError
from ..fetch.stats import ReadStats, process_stats
from ..index.entry import FileEntry, IndexFailure
from ..index.scanning import (
    BAD_EXECUTOR,
    DEFAULT_SCAN_CONCURRENCY,
    FAILURES,
    Errors,
    Executor,
    ScanJob,
    ScanResult,
    check_scan_arguments,
    is_local,
    scan_locally,
    scan_object,
    scan_threads,
)
from ..providers.base import ObjectInfo, Provider

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
    "scan_on_dask",
]

INSTALL_HINT = "pip install 'cloudfits[dask]'"
TASKS_PER_THREAD = 4
"""Dask tasks per worker thread: enough to even out slow batches and to move the
progress bar, few enough that the per-task overhead stays small."""
MAX_BATCH = 256


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
    gzip_passes : int
        Streaming passes over whole-file gzip objects made by the task.
    """

    entries: list[FileEntry]
    failures: list[IndexFailure]
    error: Exception | None
    requests: int
    bytes: int
    pid: int
    gzip_passes: int = 0


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
    outcomes = scan_threads(
        job,
        job.provider(),
        objects,
        concurrency=concurrency,
        stats=stats,
        on_scanned=None,
        catch=True,
    )
    result = BatchResult([], [], None, stats.requests, stats.bytes, os.getpid(), stats.gzip_passes)
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
        raise ValueError(BAD_EXECUTOR.format(executor))
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


def scan_on_dask(
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
                        counter.add(done.requests, done.bytes, done.gzip_passes)
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
    concurrency: int = DEFAULT_SCAN_CONCURRENCY,
    batch_size: int | None = None,
    errors: Errors = "raise",
    stats: ReadStats | None = None,
    on_scanned: Callable[[ObjectInfo], None] | None = None,
) -> ScanResult:
    """Scan ``objects`` with ``executor`` (see `cloudfits.build_index`).

    ``provider`` is the caller's provider for the local executor (the one that listed
    the objects); Dask workers build their own from ``job``.
    """
    check_scan_arguments(executor, batch_size, errors)
    if is_local(executor):
        return scan_locally(
            job,
            objects,
            provider=provider,
            concurrency=concurrency,
            errors=errors,
            stats=stats,
            on_scanned=on_scanned,
        )
    return scan_on_dask(
        job,
        objects,
        executor,
        concurrency=concurrency,
        batch_size=batch_size,
        errors=errors,
        stats=stats,
        on_scanned=on_scanned,
    )
