"""Building, loading and fetching indexes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import CloudFitsError
from ..fetch.reader import ObjectReader
from ..fetch.stats import ReadStats
from ..fits.scan import DEFAULT_SPECULATIVE_READ
from ..providers.base import ObjectInfo, Provider
from ..providers.location import ObjectLocation
from ..providers.registry import get_registry
from ..remote.seekpoints import DEFAULT_SPACING
from ..uri import is_local_uri, is_uri, make_uri, redact_uri, split_uri
from . import parquet_store
from .core import FitsIndex
from .formats import SNIFF_BYTES, IndexFormat, check_index_head, index_suffixes, is_parquet_name
from .json_schema import MAX_INDEX_BYTES
from .scanning import (
    DEFAULT_SCAN_CONCURRENCY,
    Executor,
    ScanJob,
    check_scan_arguments,
    is_local,
    scan_locally,
    scan_object,
)

__all__ = [
    "DEFAULT_INDEX_NAME",
    "FITS_SUFFIXES",
    "IndexSource",
    "build_index",
    "download_index",
    "find_fits_objects",
    "load_index",
    "scan_object",
]

DEFAULT_INDEX_NAME = "cloudfits-index.json"
#: ``.gz`` takes in whole-file gzip of any FITS name (``.fits.gz``, ``.evt.gz``, ...);
#: gzip is told by content, and cloudfits' own ``.json.gz`` indexes are left out.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fz", ".gz")


@dataclass(frozen=True)
class IndexSource:
    """The FITS objects an indexing run would scan, found by listing only.

    Attributes
    ----------
    uri : str
        The source as given.
    scheme : str
        Its URI scheme (``"file"`` for local paths).
    base : str
        The provider path that indexed paths are made relative to.
    provider : Provider
        The provider serving the source.
    objects : list of ObjectInfo
        The objects to scan, in path order.
    options : dict
        The provider options the source was listed with (Dask workers rebuild the
        provider from them; never shown in ``repr``).
    """

    uri: str
    scheme: str
    base: str
    provider: Provider
    objects: list[ObjectInfo]
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def base_uri(self) -> str:
        """``base`` as a URI (a local directory stays a path)."""
        return make_uri(self.scheme, self.base)


def find_fits_objects(
    source: str | os.PathLike[str],
    *,
    suffixes: Iterable[str] = FITS_SUFFIXES,
    **options: Any,
) -> IndexSource:
    """List the FITS objects below ``source`` without reading any of them.

    Parameters
    ----------
    source : str or os.PathLike
        As for `build_index`.
    suffixes : iterable of str
        Name endings (case-insensitive) of the objects to keep.
    **options
        Options of the source's provider.

    Returns
    -------
    IndexSource

    Raises
    ------
    CloudFitsError
        When no object below ``source`` has one of the ``suffixes``.
    """
    text = os.fspath(source)
    scheme, path = split_uri(text)
    location = ObjectLocation(scheme, path, options)
    provider = location.provider()
    base, objects = location.spec.list_source(provider, path)
    wanted = tuple(s.lower() for s in suffixes)
    indexes = index_suffixes()
    objects = [
        o
        for o in objects
        if o.path.lower().endswith(wanted) and not o.path.lower().endswith(indexes)
    ]
    if not objects:
        raise CloudFitsError(f"no FITS objects ({', '.join(wanted)}) found under {text!r}")
    return IndexSource(text, scheme, base, provider, objects, dict(options))


def build_index(
    source: str | os.PathLike[str] | IndexSource,
    data_uri: str | None = None,
    *,
    suffixes: Iterable[str] = FITS_SUFFIXES,
    concurrency: int = DEFAULT_SCAN_CONCURRENCY,
    speculative_read: int = DEFAULT_SPECULATIVE_READ,
    stats: ReadStats | None = None,
    on_scanned: Callable[[ObjectInfo], None] | None = None,
    executor: Executor = None,
    errors: Literal["raise", "collect"] = "raise",
    batch_size: int | None = None,
    gzip_spacing: int = DEFAULT_SPACING,
    **options: Any,
) -> FitsIndex:
    """Index FITS objects by reading their headers only.

    The objects are listed once, here; then their headers are scanned by ``executor``:
    a local thread pool, or tasks on a Dask cluster (see :doc:`scale-indexing`). The
    index is the same whichever executor scans. A whole-file gzip object (told by its
    first bytes) is the exception to "headers only": it is decompressed once, from
    start to end, and its seek points are kept in the index, so that later reads
    fetch only the compressed bytes they need (see :doc:`index-format`).

    Parameters
    ----------
    source : str or os.PathLike
        A local file or directory (searched recursively), or a remote prefix such as
        ``"s3://bucket/prefix/"``: every object below it whose name ends in one of
        ``suffixes`` is indexed. Or what `find_fits_objects` found (then
        ``suffixes`` and the provider ``options`` are those it was given).
    data_uri : str, optional
        Where the data will be read from, when that is not ``source``: for example a
        local copy of files that live at ``s3://stpubdata/tess/public/mast``. Paths
        in the index are relative to it.
    suffixes : iterable of str
        Name endings (case-insensitive) of the objects to index.
    concurrency : int
        Objects scanned at once (each scan is a chain of dependent reads, one per
        header not covered by an earlier read, so the objects run side by side). On
        Dask, objects scanned at once in each worker process (the tasks running
        there at once share its scan pool).
    speculative_read : int
        Bytes read at once where a header starts.
    stats : ReadStats, optional
        Counts the requests and bytes of the scan (on Dask, those of every worker).
    on_scanned : callable, optional
        Called with each object's `ObjectInfo` once its headers are scanned (or its
        scan failed, with ``errors="collect"``), for progress reports: from a worker
        thread with the local executor; on Dask, in this process as each task's
        results arrive.
    executor : None, str or distributed.Client
        Where the scans run. ``None`` or ``"threads"``: a thread pool in this process.
        ``"dask"``: the current Dask client (``distributed.get_client()``, or the
        scheduler of the Dask configuration ``scheduler-address``). A scheduler
        address such as ``"tcp://127.0.0.1:8786"``, or a ``distributed.Client``:
        that cluster. Dask needs ``pip install 'cloudfits[dask]'``, and the workers
        must reach the source (and find its credentials where this process does).
    errors : {"raise", "collect"}
        ``"raise"``: the first object that cannot be indexed raises its error.
        ``"collect"``: such objects (not found, access denied, malformed FITS, changed
        since listed, transient errors past the retry budget, ...) are recorded in
        the index's ``failures`` as `IndexFailure` values, and the others indexed.
    batch_size : int, optional
        On Dask, objects per task (by default, enough for about four tasks per worker
        thread, at most 256).
    gzip_spacing : int
        Decompressed bytes between the seek points of a whole-file gzip object (1 MiB
        by default; more for objects over 1 GiB). A read fetches at most the compressed
        bytes of one such stretch beyond what it needs; each point adds its 32 KiB
        window, compressed, to the index.
    **options
        Options of the source's provider (``requester_pays=True``, ``endpoint_url=``, ...).

    Returns
    -------
    FitsIndex
        With ``failures`` sorted by path (empty unless ``errors="collect"``).
    """
    if isinstance(source, IndexSource):
        found = source
    else:
        found = find_fits_objects(source, suffixes=suffixes, **options)
    same_place = data_uri is None
    if data_uri is None:
        data_uri = found.base_uri
    elif not is_uri(data_uri):
        data_uri = os.path.abspath(data_uri)
    # An index is a shared document: it never holds credentials.
    data_uri = redact_uri(data_uri)
    job = ScanJob(
        found.scheme, found.base, found.options, same_place, speculative_read, gzip_spacing
    )
    check_scan_arguments(executor, batch_size, errors)
    if is_local(executor):
        result = scan_locally(
            job,
            found.objects,
            provider=found.provider,
            concurrency=concurrency,
            errors=errors,
            stats=stats,
            on_scanned=on_scanned,
        )
    else:
        from ..scale.executors import scan_on_dask  # the optional dask extra

        result = scan_on_dask(
            job,
            found.objects,
            executor,
            concurrency=concurrency,
            batch_size=batch_size,
            errors=errors,
            stats=stats,
            on_scanned=on_scanned,
        )
    index = FitsIndex(data_uri, result.entries)
    index.failures = sorted(result.failures, key=lambda f: f.path)
    return index


def load_index(
    uri: str | os.PathLike[str],
    *,
    data_options: dict[str, Any] | None = None,
    allow_local: bool = False,
    **options: Any,
) -> FitsIndex:
    """Read an index from any provider.

    Parameters
    ----------
    uri : str or os.PathLike
        Where the index is: ``s3://bucket/cloudfits-index.json``, ``https://...``, a path.
        A name ending in ``.parquet`` is a version 2 index, read with range requests
        (its footer and layout columns; headers when a file is opened). Any other
        name is read whole: version 1 (JSON, or gzip), or version 2 found by content.
    data_options : dict, optional
        Provider options for reading the indexed files (``{"requester_pays": True}``),
        used by `FitsIndex.open` when it is given none.
    allow_local : bool
        Let an index read from a store that is not local name local data (a local
        path, ``localhost``, a loopback, link-local or private address). Without it
        such an index is refused when a file is opened: an index is untrusted input.
        An index read from a local path or a local server may always name local data.
    **options
        Options of the index's provider, for reading the index only: they never reach
        the data, whose host the index names (see :ref:`scope-of-options`).
    """
    text = os.fspath(uri)
    shown = redact_uri(text)
    provider, path = get_registry().for_uri(text, **options)
    info = provider.head(path)
    reader = ObjectReader(provider, path, shown, etag=info.etag, size=info.size)
    head = b"" if is_parquet_name(text) else reader.read(0, min(info.size, SNIFF_BYTES))
    if is_parquet_name(text) or (
        check_index_head(head, info.size, source=shown, limit=MAX_INDEX_BYTES)
        is IndexFormat.PARQUET
    ):
        # Version 2: the footer and the layout columns now, the rest when needed.
        fields, entries = parquet_store.decode(reader, info.size, source=shown)
        index = FitsIndex.from_source(fields, entries)
    else:
        rest = reader.read(len(head), info.size) if info.size > len(head) else b""
        index = FitsIndex.from_bytes(head + rest, source=shown)
    index.uri = text
    index.options = dict(options)
    index.data_options = dict(data_options or {})
    index.foreign = not is_local_uri(text)
    index.allow_local = allow_local
    return index


def download_index(
    bucket: str,
    *,
    provider: str = "s3",
    name: str = DEFAULT_INDEX_NAME,
    data_options: dict[str, Any] | None = None,
    allow_local: bool = False,
    **options: Any,
) -> FitsIndex:
    """Load the index stored as ``name`` in a bucket (the ``cloud-fits`` tutorial's form).

    Parameters
    ----------
    bucket : str
        A bare bucket name, such as ``"tess-fits-cloud-index"``.
    provider : str
        The provider that owns the bucket (``"s3"``, ``"spaces"``, ``"gcs"``, ...).
    name : str
        The index object's name in the bucket.
    data_options : dict, optional
        Provider options for the indexed files, as for `load_index`.
    allow_local : bool
        Let the index name local data, as for `load_index`.
    **options
        Options of the index's provider, for the index only, as for `load_index`.
    """
    spec = get_registry().by_name(provider)
    uri = spec.uri_for_bucket(bucket, spec.make_config(options)).rstrip("/") + "/" + name
    return load_index(uri, data_options=data_options, allow_local=allow_local, **options)
