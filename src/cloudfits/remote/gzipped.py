"""Whole-file gzip (``.fits.gz``): random access to the decompressed bytes.

`GzippedReader` answers the reads of a `RemoteFITS` (ranges of the FITS file, that is,
of the decompressed stream) from the seek points of the object (`GzipSeekPoints`):
each wanted range is cut at the points; for every stretch between two points that it
touches, the compressed bytes from the point before it are fetched through the range
engine (all stretches at once, adjacent ones in one request), and decompressed from
that point by ``indexed_gzip`` (which restores the inflate state from the point's
window), the stretches in parallel. A read therefore costs the compressed bytes of
what it needs plus at most one stretch, never the whole object.

`compression_of` tells a gzip object by its magic bytes, whatever its name, and turns
the other compressions astropy may meet (bzip2, ``compress``'s ``.Z``, zip, xz, zstd)
into a clear "not supported" error.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import CloudFitsError, FitsFormatError
from ..fetch.rangefile import SeekableRaw
from ..fetch.reader import ObjectReader
from ..fetch.spans import FetchOptions, merge_ranges
from ..fetch.stats import ReadStats
from ..providers.location import ObjectLocation
from .seekpoints import GzipSeekPoints

__all__ = ["GZIP_MAGIC", "GzippedReader", "compression_of", "reader_for"]

GZIP_MAGIC = b"\x1f\x8b"
_UNSUPPORTED = (
    (b"BZh", "bzip2 compression"),
    (b"\x1f\x9d", "compress (.Z) compression"),
    (b"\x1f\xa0", "compress (LZH) compression"),
    (b"PK\x03\x04", "zip archives"),
    (b"PK\x05\x06", "zip archives"),
    (b"\xfd7zXZ\x00", "xz compression"),
    (b"\x28\xb5\x2f\xfd", "zstd compression"),
    (b"7z\xbc\xaf\x27\x1c", "7-zip archives"),
)
_READ_BUFFER = 1 << 16
# A stretch read only in part fetches its estimated compressed share, this much more
# (compression varies within a stretch), and the rest of the stretch when short.
_ESTIMATE_MARGIN = 1.25
_ESTIMATE_SLACK = 16 * 1024
_inflate_pool: ThreadPoolExecutor | None = None
_inflate_pool_lock = threading.Lock()


def compression_of(head: bytes, *, name: str) -> str | None:
    """``"gzip"`` when ``head`` (an object's first bytes) starts a gzip stream, else None.

    Raises
    ------
    FitsFormatError
        "not supported: ..." for bzip2, ``.Z``, zip, xz, zstd and 7-zip data, naming
        the object.
    """
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    for magic, what in _UNSUPPORTED:
        if head.startswith(magic):
            raise FitsFormatError(
                f"{name}: not supported: {what} (cloudfits reads FITS files, tile-compressed"
                " FITS and whole-file gzip; decompress it, or recompress it with gzip)"
            )
    return None


def reader_for(
    location: ObjectLocation,
    stats: Sequence[ReadStats],
    *,
    etag: str | None,
    gzip: GzipSeekPoints | None,
    size: int,
) -> ObjectReader:
    """The reader of the FITS bytes of an object: an `ObjectReader`, or a
    `GzippedReader` over one for a whole-file gzip object with seek points ``gzip``."""
    reader = ObjectReader(
        location.provider(), location.path, location.uri, stats, etag=etag, size=size
    )
    return reader if gzip is None else GzippedReader(reader, gzip, size)


def _pool() -> ThreadPoolExecutor:
    """The process's pool of decompressing threads (one per core; they release the GIL)."""
    global _inflate_pool
    with _inflate_pool_lock:
        if _inflate_pool is None:
            workers = max(1, min(8, os.cpu_count() or 1))
            _inflate_pool = ThreadPoolExecutor(workers, thread_name_prefix="cloudfits-gunzip")
        return _inflate_pool


class _SpanFile(SeekableRaw):
    """The compressed object as ``indexed_gzip`` sees it: the bytes fetched for one
    stretch, and one more exact request when decompression runs past them.

    Reads return what is held from the position on (a short read at its end), so that
    the decompressor asks for more only when it needs more.
    """

    def __init__(
        self, reader: ObjectReader, size: int, start: int, data: np.ndarray, bound: int
    ) -> None:
        super().__init__()
        self._reader = reader
        self._size = size
        self._start = start
        self._data = data.data.cast("B")
        self._bound = bound
        self._position = 0
        self.error: BaseException | None = None

    @property
    def extent(self) -> int:
        return self._size

    def read(self, n: int | None = -1) -> bytes:
        at = self._position
        if at >= self._size:
            return b""
        held_end = self._start + len(self._data)
        if not self._start <= at < held_end:
            self._refill(at)
        offset = at - self._start
        count = len(self._data) - offset if n is None or n < 0 else n
        piece = bytes(self._data[offset : offset + count])
        self._position += len(piece)
        return piece

    def _refill(self, at: int) -> None:
        # Past the stretch's bound, decompression is reading the next stretch: fetch
        # generously, as it will go on.
        end = min(self._size, max(self._bound, at + 4 * _READ_BUFFER))
        try:
            data = self._reader.read(at, end)
        except BaseException as err:
            self.error = err  # the decompressor reports only that its read failed
            raise
        self._start, self._data = at, memoryview(data)


class GzippedReader(ObjectReader):
    """Reads ranges of the decompressed bytes of a whole-file gzip object.

    It offers what `ObjectReader` offers (``read``, ``read_prefix``, ``read_runs``,
    ``read_ranges``), in decompressed offsets, so that every part of `RemoteFITS`
    reads a gzip object as it reads a plain one. The requests and bytes it makes are
    those of compressed bytes, counted like any read.

    Parameters
    ----------
    compressed : ObjectReader
        Reads the object's (compressed) bytes, pinned to its ETag.
    points : GzipSeekPoints
        The object's seek points.
    compressed_size : int
        The object's size.
    """

    def __init__(
        self, compressed: ObjectReader, points: GzipSeekPoints, compressed_size: int
    ) -> None:
        super().__init__(
            compressed.provider,
            compressed.path,
            compressed.uri,
            etag=compressed.etag,
            retry=compressed.retry,
        )
        self._stats = compressed._stats
        self.known = compressed.known  # the object's version, learnt by either
        self.compressed = compressed
        self.points = points
        self.compressed_size = compressed_size

    @property
    def size(self) -> int:
        """Bytes of the decompressed stream."""
        return self.points.uncompressed_size

    def read(self, start: int, end: int) -> bytes:
        """Decompressed bytes ``[start, end)``, exactly."""
        if end <= start:
            return b""
        options = FetchOptions.from_environment()
        return self.read_ranges(0, np.array([start]), np.array([end]), options)[0].tobytes()

    def read_prefix(self, start: int, end: int) -> bytes:
        """Decompressed bytes ``[start, end)``, or fewer where the stream ends first."""
        return self.read(start, min(end, self.size))

    def read_runs(
        self,
        base: int,
        run_offsets: np.ndarray,
        run_nbytes: int | np.ndarray,
        options: FetchOptions,
    ) -> np.ndarray:
        """Ascending runs at ``base + run_offsets`` of the decompressed bytes, one after
        another in one new byte array (as `ObjectReader.read_runs`)."""
        offsets = np.asarray(run_offsets, dtype=np.int64).reshape(-1) + base
        lengths = np.broadcast_to(np.asarray(run_nbytes, dtype=np.int64), offsets.shape)
        pieces = self.read_ranges(0, offsets, offsets + lengths, options)
        if not pieces:
            return np.empty(0, dtype=np.uint8)
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0].copy()

    def read_ranges(
        self, base: int, starts: np.ndarray, ends: np.ndarray, options: FetchOptions
    ) -> list[np.ndarray]:
        """Decompressed ranges ``base + [starts[i], ends[i])``, in any order, possibly
        overlapping; one byte array per range (as `ObjectReader.read_ranges`)."""
        starts = np.asarray(starts, dtype=np.int64).reshape(-1) + base
        ends = np.asarray(ends, dtype=np.int64).reshape(-1) + base
        wanted = ends > starts
        if np.any(wanted & ((starts < 0) | (ends > self.size))):
            bad = int(np.argmax(wanted & ((starts < 0) | (ends > self.size))))
            raise FitsFormatError(
                f"{self.uri}: bytes [{starts[bad]}, {ends[bad]}) are outside the"
                f" {self.size} decompressed bytes of the object"
            )
        firsts, lasts, block_of = merge_ranges(starts, ends)
        stretches = self._stretches(firsts.tolist(), lasts.tolist())
        decompressed = self._decompress(stretches, options)
        blocks = [
            self._assemble(a, b, decompressed)
            for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True)
        ]
        out = []
        ranges = zip(starts.tolist(), ends.tolist(), block_of.tolist(), strict=True)
        for start, end, block in ranges:
            if block < 0:
                out.append(np.zeros(0, dtype=np.uint8))
            else:
                first = int(firsts[block])
                out.append(blocks[block][start - first : end - first])
        return out

    # -- planning ----------------------------------------------------------------------

    def _stretches(self, firsts: Sequence[int], lasts: Sequence[int]) -> dict[int, list[int]]:
        """For each stretch (numbered by the point that starts it) that the blocks touch,
        the decompressed ``[lo, hi)`` wanted from it."""
        points = self.points
        wanted: dict[int, list[int]] = {}
        for a, b in zip(firsts, lasts, strict=True):
            for k in range(points.segment_of(a), points.segment_of(b - 1) + 1):
                lo = max(a, points.points[k].uncompressed)
                hi = min(b, points.segment_end(k))
                if k in wanted:
                    wanted[k] = [min(wanted[k][0], lo), max(wanted[k][1], hi)]
                else:
                    wanted[k] = [lo, hi]
        return wanted

    def _compressed_span(self, k: int, hi: int) -> tuple[int, int, int]:
        """``(start, end, bound)`` of the compressed bytes to fetch for stretch ``k`` up
        to decompressed ``hi``: an estimate when only its beginning is wanted; ``bound``
        is where the stretch's compressed bytes surely end."""
        points = self.points
        point = points.points[k]
        # Decompression from the stream's start reads the gzip header first.
        start = 0 if k == 0 else point.first_byte
        bound = points.points[k + 1].compressed if k + 1 < len(points) else self.compressed_size
        length = points.segment_end(k) - point.uncompressed
        share = (hi - point.uncompressed) / length if length else 1.0
        estimate = start + int((bound - start) * share * _ESTIMATE_MARGIN) + _ESTIMATE_SLACK
        return start, min(bound, estimate), bound

    # -- decompressing -----------------------------------------------------------------

    def _decompress(
        self, stretches: dict[int, list[int]], options: FetchOptions
    ) -> dict[int, tuple[int, np.ndarray]]:
        if not stretches:
            return {}
        order = sorted(stretches)
        spans = [self._compressed_span(k, stretches[k][1]) for k in order]
        fetched = self.compressed.read_ranges(
            0,
            np.array([s for s, _, _ in spans], dtype=np.int64),
            np.array([e for _, e, _ in spans], dtype=np.int64),
            options,
        )
        jobs = [
            (k, start, data, bound)
            for k, (start, _, bound), data in zip(order, spans, fetched, strict=True)
        ]
        if len(jobs) == 1:
            results = [self._inflate(*jobs[0], *stretches[jobs[0][0]])]
        else:
            futures = [_pool().submit(self._inflate, *job, *stretches[job[0]]) for job in jobs]
            errors = [f.exception() for f in futures]
            first = next((e for e in errors if e is not None), None)
            if first is not None:
                raise first
            results = [f.result() for f in futures]
        return {k: (stretches[k][0], array) for k, array in zip(order, results, strict=True)}

    def _inflate(
        self, k: int, start: int, data: np.ndarray, bound: int, lo: int, hi: int
    ) -> np.ndarray:
        """Decompressed bytes ``[lo, hi)`` of stretch ``k``, from its point on."""
        import indexed_gzip

        where = f"{self.uri}: gzip stretch from compressed byte {start} (seek point {k})"
        span = _SpanFile(self.compressed, self.compressed_size, start, data, bound)
        out = np.empty(hi - lo, dtype=np.uint8)
        try:
            with indexed_gzip.IndexedGzipFile(
                fileobj=span,
                auto_build=False,
                skip_crc_check=True,
                readbuf_size=_READ_BUFFER,
                buffer_size=_READ_BUFFER,
            ) as stream:
                index = self.points.zran_index(k, self.compressed_size, where=self.uri)
                stream.import_index(fileobj=io.BytesIO(index))
                raw: Any = stream.raw
                raw.seek(lo)
                view = out.data.cast("B")
                done = 0
                while done < out.size:
                    got = raw.readinto(view[done:])
                    if not got:
                        break
                    done += got
        except CloudFitsError:
            raise
        except (OSError, ValueError) as err:
            if span.error is not None:
                raise span.error from None
            raise FitsFormatError(f"{where}: does not decompress: {err}") from None
        if done != out.size:
            raise FitsFormatError(
                f"{where}: decompressed {done} bytes where {out.size} were expected"
                f" (decompressed bytes [{lo}, {hi})): truncated or replaced object?"
            )
        return out

    @staticmethod
    def _assemble(a: int, b: int, decompressed: dict[int, tuple[int, np.ndarray]]) -> np.ndarray:
        """Decompressed block ``[a, b)`` from the stretches that hold it."""
        pieces = []
        for lo, array in decompressed.values():
            hi = lo + array.size
            if lo < b and a < hi:
                pieces.append((lo, array[max(a, lo) - lo : min(b, hi) - lo]))
        pieces.sort(key=lambda p: p[0])
        if len(pieces) == 1:
            return pieces[0][1]
        return np.concatenate([p for _, p in pieces])
