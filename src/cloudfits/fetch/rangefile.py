"""A read-only file over an object in a store, for readers such as pyarrow's Parquet.

pyarrow reads a Python file object one ``seek`` + ``read`` at a time, under a lock: one
dependent round trip per column chunk. `RangeFile` lets the caller say first which
byte ranges the next step needs (`RangeFile.prefetch`): they are fetched together, in
parallel and coalesced, by cloudfits' range engine, then served from memory. A read
outside them is still answered, with one exact range request of its own (never wrong
bytes: every read goes through `cloudfits.fetch.reader.ObjectReader`, pinned to the ETag).
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterable

import numpy as np

from .reader import ObjectReader
from .spans import FetchOptions

__all__ = ["RangeFile", "SeekableRaw"]


class SeekableRaw(io.RawIOBase):
    """A read-only, seekable raw file of `extent` bytes: the position bookkeeping that
    every such view shares (reading is the subclass's)."""

    _position = 0

    @property
    def extent(self) -> int:
        """The file's length in bytes (where ``SEEK_END`` points)."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        """What the file is, for messages."""
        return type(self).__name__

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.extent}[whence]
        if base + offset < 0:
            raise ValueError(f"{self.name}: seek to a negative position")
        self._position = base + offset
        return self._position


class RangeFile(SeekableRaw):
    """Seekable, read-only view of ``size`` bytes read through ``reader``.

    Parameters
    ----------
    reader : ObjectReader or None
        Reads the object's bytes; None when ``data`` holds all of them.
    size : int
        The object's size in bytes.
    data : bytes, optional
        The whole object, already in memory.
    options : FetchOptions, optional
        Coalescing and concurrency of `prefetch`.
    """

    def __init__(
        self,
        reader: ObjectReader | None,
        size: int,
        *,
        data: bytes | None = None,
        options: FetchOptions | None = None,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.size = size
        self.options = options or FetchOptions.from_environment()
        self._position = 0
        self._starts: list[int] = []
        self._chunks: list[bytes | memoryview] = []
        if data is not None:
            self._starts, self._chunks = [0], [memoryview(data)]

    @property
    def name(self) -> str:
        """The object's URI, for messages."""
        return self.reader.uri if self.reader is not None else "<bytes>"

    @property
    def extent(self) -> int:
        return self.size

    def _cached(self, start: int, end: int) -> memoryview | None:
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and start - self._starts[i] + (end - start) <= len(self._chunks[i]):
            at = start - self._starts[i]
            return memoryview(self._chunks[i])[at : at + end - start]
        return None

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        """Fill ``buffer`` from the current position; fewer bytes only at the end."""
        start = min(self._position, self.size)
        end = min(start + len(buffer), self.size)
        view = self._cached(start, end)
        if view is None:
            if self.reader is None:
                raise OSError(f"{self.name}: bytes [{start}, {end}) are not in memory")
            view = memoryview(self.reader.read(start, end))
        memoryview(buffer).cast("B")[: end - start] = view
        self._position = end
        return end - start

    def prefetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Fetch the byte ranges ``[start, end)`` not yet in memory, all at once."""
        wanted = sorted(
            (max(0, a), min(b, self.size))
            for a, b in ranges
            if min(b, self.size) > max(0, a) and self._cached(max(0, a), min(b, self.size)) is None
        )
        if not wanted:
            return
        if self.reader is None:
            raise OSError(f"{self.name}: cannot fetch bytes that are not in memory")
        merged: list[tuple[int, int]] = []
        for a, b in wanted:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        starts = np.array([a for a, _ in merged], dtype=np.int64)
        ends = np.array([b for _, b in merged], dtype=np.int64)
        arrays = self.reader.read_ranges(0, starts, ends, self.options)
        for (a, _), array in zip(merged, arrays, strict=True):
            i = bisect.bisect_right(self._starts, a)
            self._starts.insert(i, a)
            self._chunks.insert(i, array.data.cast("B"))

    def clear(self) -> None:
        """Drop every byte held in memory (later reads fetch again)."""
        if self.reader is not None:
            self._starts, self._chunks = [], []
