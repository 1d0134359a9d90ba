"""``cloudfits.open``: a FITS object by URI, its headers scanned on the spot."""

from __future__ import annotations

import os
from typing import Any

from astropy.io.fits import Header

from ..fetch.pool import prestart_soon, shared_pool
from ..fetch.reader import ObjectReader
from ..fetch.stats import ReadStats, process_stats
from ..fits.scan import DEFAULT_SPECULATIVE_READ, HDUScanner, padded
from ..providers.location import ObjectLocation
from .gzipped import GzippedReader, compression_of
from .gzipstream import scan_gzip
from .hdulist import RemoteFITS, split_fetch_options

__all__ = ["getdata", "getheader", "open"]

#: Pool threads started while ``open`` waits for its first answers: enough for the
#: runs of a cutout of 16 image rows to leave at once.
OPEN_THREADS = 16


def open(uri: str | os.PathLike[str], **options: Any) -> RemoteFITS:
    """Open a FITS object by URI, scanning its headers (no index needed).

    Parameters
    ----------
    uri : str or os.PathLike
        ``s3://bucket/key.fits``, ``https://host/file.fits``, a local path, ...
    **options
        Provider options (``requester_pays=True``, ``endpoint_url=...``), the fetch
        options ``max_gap``, ``max_part``, ``max_concurrency``, and
        ``speculative_read`` (bytes read at once where a header starts).

    Notes
    -----
    The object's size (``head``) and its first ``speculative_read`` bytes are
    requested at once: one round trip. The headers in those bytes are scanned now;
    a header after a data block beyond them is read when it is first needed (an HDU
    past those found, ``len(f)``, ``f.info()``, a name not found yet), as astropy
    reads HDUs lazily: a section read of HDU 1 of a TESS cube starts after one round
    trip, and the table header, 45 GB on, costs one more only when it is used.
    Errors and warnings about those later headers come when they are read.

    A whole-file gzip object (told by its first bytes, whatever its name) is
    decompressed once from start to end to find its HDUs and seek points, which is
    logged (``INFO``) and counted in ``stats.gzip_passes``; later reads fetch only the
    compressed bytes they need. An index keeps the seek points, so that opening from
    it needs no such pass (see :doc:`/index-format`).
    """
    fetch_options, options = split_fetch_options(dict(options))
    speculative = int(options.pop("speculative_read", DEFAULT_SPECULATIVE_READ))
    location = ObjectLocation.from_uri(uri, **options)
    provider, path, shown = location.provider(), location.path, location.uri
    stats = ReadStats()
    reader = ObjectReader(provider, path, shown, [stats])
    # One round trip for the size and the first headers: both requests at once, and
    # the pool's threads started while they travel, for the data read that follows.
    pool = shared_pool(fetch_options.max_concurrency)
    head = pool.submit(provider.head, path)
    prestart_soon(pool, OPEN_THREADS)
    try:
        first = reader.read_prefix(0, padded(speculative))
    finally:
        info = head.result()
    # The first answer named a version (where the provider reports its answers); when
    # head() describes another, the object was replaced in between (or that answer
    # lied): read again, checked against head(), so that headers and data are of one
    # version.
    known = reader.known
    agrees = (known.size is None or known.size == info.size) and (
        known.etag is None or info.etag is None or known.etag == info.etag
    )
    known.size, known.etag = info.size, info.etag
    if not agrees:
        first = reader.read_prefix(0, min(padded(speculative), info.size))
    if compression_of(first, name=shown) == "gzip":
        layouts, points = scan_gzip(
            reader,
            info.size,
            name=shown,
            first=first,
            speculative=speculative,
            stats=(process_stats, stats),
            workers=fetch_options.max_concurrency,
        )
        reader = GzippedReader(reader, points, info.size)
        scanner = None
    else:
        # The headers the first read holds are scanned now; those after a data block
        # (a TESS cube's table, 45 GB on) when an HDU beyond is asked for, so that a
        # read of HDU 1 starts right away.
        scanner = HDUScanner(
            reader.read, info.size, name=shown, speculative=speculative, initial=first
        )
        while scanner.in_hand:
            scanner.step()
        layouts = scanner.layouts
    return RemoteFITS(
        reader,
        layouts,
        uri=shown,
        size=info.size,
        etag=info.etag,
        fetch_options=fetch_options,
        stats=stats,
        location=location,
        scanner=scanner,
    )


def getheader(
    uri: str | os.PathLike[str], ext: int | str | tuple[str, int] = 0, **options: Any
) -> Header:
    """The header of one HDU, as `astropy.io.fits.getheader` gives it (headers only read).

    Parameters
    ----------
    uri : str or os.PathLike
        The FITS object, as for `open`.
    ext : int, str or (str, int)
        The HDU: number, EXTNAME or ``(EXTNAME, EXTVER)``.
    **options
        As for `open`.
    """
    header: Header = open(uri, **options)[ext].header
    return header


def getdata(
    uri: str | os.PathLike[str], ext: int | str | tuple[str, int] | None = None, **options: Any
) -> Any:
    """All the data of one HDU, as `astropy.io.fits.getdata` gives it: this reads it whole.

    Parameters
    ----------
    uri : str or os.PathLike
        The FITS object, as for `open`.
    ext : int, str or (str, int), optional
        The HDU; by default the first with data, as astropy chooses.
    **options
        As for `open`.

    Returns
    -------
    numpy.ndarray or astropy.table.Table
        An image's array, or a table's rows.
    """
    f = open(uri, **options)
    if ext is None:
        ext = next((h.number for h in f if h.size > 0), 0)
    return f[ext].read()
