"""The one streaming pass over a whole-file gzip object that finds its HDUs and seek points.

A gzip object's layout can only be learnt by decompressing it from its start, so the
pass reads every compressed byte once, in order, in parts fetched ahead of use. Each
part goes to two decompressors at once:

* zlib (the standard library's ``gzip`` method), whose output feeds the FITS header
  scan (`cloudfits.fits.scan.scan_fits`, skipping over data) and which checks the gzip
  stream as it goes: a truncated stream, a CRC or length mismatch, a second member
  and trailing bytes are each a `cloudfits.FitsFormatError` naming the object and the
  compressed offset;
* ``indexed_gzip``, on its own thread, which records a seek point every ``spacing``
  decompressed bytes (`cloudfits.remote.seekpoints.GzipSeekPoints`).

Both decompressors release the GIL, so on two cores the pass costs about one
decompression of wall time.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

from ..errors import CloudFitsError, FitsFormatError
from ..fetch.pool import shared_pool
from ..fetch.rangefile import SeekableRaw
from ..fetch.reader import ObjectReader
from ..fetch.stats import ReadStats
from ..fits.scan import HDULayout, scan_fits
from .gzipped import GZIP_MAGIC, GzippedReader
from .seekpoints import DEFAULT_SPACING, WINDOW_SIZE, GzipSeekPoints, spacing_for

__all__ = ["STREAM_PART", "scan_gzip"]

logger = logging.getLogger(__name__)

#: Compressed bytes fetched per request of the pass, and requests kept in flight ahead.
STREAM_PART = 2 * 1024 * 1024
STREAM_AHEAD = 3
_FEED_PARTS = 4  # parts queued for indexed_gzip before the pass waits for it
_PIECE = 1024 * 1024  # most decompressed bytes produced at once
_ZRAN_READ = 1024 * 1024
_TRAILER = 8
_SIGNATURE = b"SIMPLE  ="


class _Feed(SeekableRaw):
    """The compressed stream as ``indexed_gzip`` reads it, fed part by part."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._queue: queue.Queue[memoryview | None] = queue.Queue(_FEED_PARTS)
        self._part = memoryview(b"")
        self._consumed = 0  # bytes handed to the reader so far
        self._position = 0
        self._cancelled = threading.Event()
        self._ended = False
        self.done = threading.Event()

    @property
    def extent(self) -> int:
        return self._size

    def read(self, n: int | None = -1) -> bytes:
        if self._position != self._consumed:
            # A one-way stream: indexed_gzip reads it in order after learning its size.
            raise OSError(f"the stream is at byte {self._consumed}, not {self._position}")
        while not self._part:
            if self._ended or self._cancelled.is_set():
                return b""  # indexed_gzip reads again at the end, looking for more
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                self._ended = True
                return b""
            self._part = item
        count = len(self._part) if n is None or n < 0 else n
        piece = bytes(self._part[:count])
        self._part = self._part[len(piece) :]
        self._consumed += len(piece)
        self._position = self._consumed
        return piece

    def put(self, item: memoryview | None) -> None:
        """Queue a part (None: the end) unless the reader has finished or stopped."""
        while not (self.done.is_set() or self._cancelled.is_set()):
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def cancel(self) -> None:
        self._cancelled.set()


class _SeekPointBuilder(threading.Thread):
    """Runs ``indexed_gzip`` over a `_Feed`, leaving its exported index or its error."""

    def __init__(self, feed: _Feed, spacing: int) -> None:
        super().__init__(name="cloudfits-gzip-index", daemon=True)
        self.feed = feed
        self.spacing = spacing
        self.exported: bytes | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        import indexed_gzip

        try:
            with indexed_gzip.IndexedGzipFile(
                fileobj=self.feed,
                spacing=self.spacing,
                window_size=WINDOW_SIZE,
                # Few, large reads: each one waits for the GIL, which the scan holds.
                readbuf_size=_ZRAN_READ,
                skip_crc_check=True,  # zlib checks the CRC in the other decompressor
            ) as stream:
                stream.build_full_index()
                out = io.BytesIO()
                stream.export_index(fileobj=out)
                self.exported = out.getvalue()
        except (OSError, ValueError) as err:
            self.error = err
        finally:
            self.feed.done.set()


class _Parts:
    """The object's compressed bytes in order, fetched ``STREAM_AHEAD`` parts ahead."""

    def __init__(self, reader: ObjectReader, size: int, first: bytes, workers: int) -> None:
        self._reader = reader
        self._size = size
        self._first = first[:size]
        self._next = len(self._first)
        self._pool = shared_pool(workers)
        self._ahead: deque[Future[bytes]] = deque()

    def _submit(self) -> None:
        while len(self._ahead) < STREAM_AHEAD and self._next < self._size:
            end = min(self._size, self._next + STREAM_PART)
            self._ahead.append(self._pool.submit(self._reader.read, self._next, end))
            self._next = end

    def __iter__(self) -> Iterator[memoryview]:
        self._submit()
        if self._first:
            yield memoryview(self._first)
        while self._ahead:
            part = self._ahead.popleft().result()
            self._submit()
            yield memoryview(part)

    def close(self) -> None:
        for future in self._ahead:
            future.cancel()


class _Inflater:
    """Decompresses the parts in order for the header scan, checking the gzip stream.

    `read` serves ``[start, end)`` of the decompressed bytes for ascending ``start``
    (the scan's order), dropping what lies before; `drain` decompresses the rest.
    """

    def __init__(self, parts: Iterator[memoryview], feed: _Feed, name: str, size: int) -> None:
        self._parts = parts
        self._feed = feed
        self._name = name
        self._size = size
        self._zlib = zlib.decompressobj(wbits=31)
        self._tail = memoryview(b"")  # compressed bytes not yet decompressed
        self._consumed = 0  # compressed bytes taken from the parts
        self._held = bytearray()
        self._held_start = 0
        self.total = 0  # decompressed bytes produced so far

    def _next_part(self) -> memoryview | None:
        part = next(self._parts, None)
        if part is not None:
            self._feed.put(part)
            self._consumed += len(part)
        return part

    def _more(self) -> bool:
        """Decompress some more into ``_held``; False once the stream has ended."""
        while True:
            if self._zlib.eof:
                self._check_padding(self._tail)
                part = self._next_part()
                if part is None:
                    return False
                self._tail = part
                continue
            if not self._tail:
                part = self._next_part()
                if part is None:
                    raise FitsFormatError(
                        f"{self._name}: truncated gzip stream: it ends at compressed byte"
                        f" {self._consumed} before its end ({self.total} bytes decompressed)"
                    )
                self._tail = part
            at = self._consumed - len(self._tail)
            try:
                out = self._zlib.decompress(self._tail, _PIECE)
            except zlib.error as err:
                raise self._broken(err, at) from None
            rest = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
            self._tail = memoryview(rest)
            if out:
                self.total += len(out)
                self._held += out
                return True

    def _broken(self, err: zlib.error, at: int) -> FitsFormatError:
        text = str(err)
        checks = (("incorrect data check", "CRC-32"), ("incorrect length check", "length"))
        for check, what in checks:
            if check in text:
                return FitsFormatError(
                    f"{self._name}: corrupt gzip: the {what} in its trailer (compressed bytes"
                    f" [{self._size - _TRAILER}, {self._size})) does not match the"
                    " decompressed data"
                )
        return FitsFormatError(
            f"{self._name}: corrupt gzip data near compressed byte {at}"
            f" (after {self.total} decompressed bytes): {text}"
        )

    def _check_padding(self, rest: memoryview) -> None:
        """Bytes after the gzip member: zero padding is allowed (as Python's gzip does)."""
        data = bytes(rest)
        kept = data.lstrip(b"\0")
        if not kept:
            return
        at = self._consumed - len(data) + len(data) - len(kept)
        if kept[:2] == GZIP_MAGIC or kept == GZIP_MAGIC[:1]:
            raise FitsFormatError(
                f"{self._name}: not supported: multi-member gzip (a second gzip member starts"
                f" at compressed byte {at}, after {self.total} decompressed bytes);"
                " recompress it as one member (gunzip, then gzip)"
            )
        raise FitsFormatError(
            f"{self._name}: {self._size - at} bytes of trailing data after the gzip stream,"
            f" at compressed byte {at}"
        )

    def read(self, start: int, end: int) -> bytes:
        if start < self._held_start:
            raise RuntimeError(f"the stream is past byte {start}")
        while True:
            drop = min(start, self._held_start + len(self._held)) - self._held_start
            if drop:
                del self._held[:drop]
                self._held_start += drop
            if self._held_start + len(self._held) >= end or not self._more():
                break
        return bytes(self._held[start - self._held_start : end - self._held_start])

    def drain(self) -> int:
        """Decompress to the end of the stream; the decompressed size."""
        while self._more():
            self._held_start += len(self._held)
            self._held.clear()
        return self.total


def _size_guess(trailer: bytes, size: int) -> int:
    """The decompressed size the trailer's ISIZE (size modulo 2**32) most likely means:
    the smallest that is not less than what the compressed bytes could hold."""
    isize = int.from_bytes(trailer[4:8], "little")
    floor = size - size // 1000 - 1024  # stored blocks add 5 bytes per 64 KiB
    k = max(0, -(-(floor - isize) // (1 << 32)))
    return isize + k * (1 << 32)


def scan_gzip(
    reader: ObjectReader,
    size: int,
    *,
    name: str,
    first: bytes = b"",
    speculative: int,
    spacing: int = DEFAULT_SPACING,
    stats: Sequence[ReadStats] = (),
    workers: int = 8,
) -> tuple[list[HDULayout], GzipSeekPoints]:
    """Find the HDUs and the seek points of a whole-file gzip object in one pass.

    Parameters
    ----------
    reader : ObjectReader
        Reads the object's compressed bytes (pinned to its ETag).
    size : int
        The object's size.
    name : str
        Its URI, for messages.
    first : bytes
        Its first bytes, when already read.
    speculative : int
        Bytes the header scan reads at once (see `cloudfits.fits.scan.scan_fits`).
    spacing : int
        Decompressed bytes between seek points (more for objects above 1 GiB, see
        `cloudfits.remote.seekpoints.spacing_for`).
    stats : sequence of ReadStats
        Counters whose ``gzip_passes`` the pass adds to.
    workers : int
        Requests in flight at once (at most `STREAM_AHEAD` are used).

    Raises
    ------
    FitsFormatError
        For a stream that is truncated, corrupt, of several members or followed by
        data, or whose decompressed bytes are not FITS; naming the object and offset.
    """
    if size < 18:
        raise FitsFormatError(f"{name}: truncated gzip stream: {size} bytes")
    tail = first[size - _TRAILER : size] if len(first) >= size else b""
    trailer = tail or reader.read(size - _TRAILER, size)
    guess = _size_guess(trailer, size)
    feed = _Feed(size)
    # Trailing zero padding hides the trailer: never plan on more than 64:1.
    builder = _SeekPointBuilder(feed, spacing_for(min(guess, 64 * size), spacing))
    parts = _Parts(reader, size, first, workers)
    inflater = _Inflater(iter(parts), feed, name, size)
    for counter in stats:
        counter.record_pass()
    logger.info(
        "%s: whole-file gzip: decompressing all %d bytes once to find its HDUs and seek"
        " points (an index keeps them)",
        name,
        size,
    )
    builder.start()
    scan_error: FitsFormatError | None = None
    try:
        head = inflater.read(0, len(_SIGNATURE))
        if head != _SIGNATURE:
            raise FitsFormatError(
                f"{name}: gzip-compressed, but its decompressed bytes do not start a FITS"
                f" file (they start with {head!r})"
            )
        try:
            layouts = scan_fits(inflater.read, guess, name=name, speculative=speculative)
        except FitsFormatError as err:
            scan_error = err  # unless the size guess was wrong: known at the end
        total = inflater.drain()
        feed.put(None)
        builder.join()
    except BaseException:
        feed.cancel()
        parts.close()
        builder.join()
        raise
    if builder.error is not None or builder.exported is None:
        raise FitsFormatError(f"{name}: the gzip seek points could not be built: {builder.error}")
    points = GzipSeekPoints.from_zran(builder.exported, where=name)
    if points.uncompressed_size != total:
        raise CloudFitsError(
            f"{name}: the seek points cover {points.uncompressed_size} bytes, the stream"
            f" has {total}"
        )
    if total != guess:
        # Over 4 GiB the trailer's size is ambiguous: scan again with the true size.
        logger.info("%s: %d bytes decompressed, not %d: headers scanned again", name, total, guess)
        again = GzippedReader(reader, points, size)
        return scan_fits(again.read, total, name=name, speculative=speculative), points
    if scan_error is not None:
        raise scan_error
    return layouts, points
