"""Seek points of a whole-file gzip object: where decompression can start again.

A gzip object can only be decompressed from its start, unless one kept, at some
places of the stream, the state the decompressor had there: the bit position in the
compressed bytes where a deflate block begins, the matching offset in the decompressed
bytes, and the 32 KiB of output before it (the window that later back-references may
reach into). That is the zran method of zlib's ``examples/zran.c``; `indexed_gzip`
implements it, and cloudfits keeps the points it finds (`GzipSeekPoints`) in the index,
so that a later read fetches only the compressed bytes from the nearest point before
the wanted ones.

The points come from ``indexed_gzip``'s exported index (`GzipSeekPoints.from_zran`), and
go back to it one point at a time (`GzipSeekPoints.zran_index`), so that a reader can
resume decompression with nothing but the compressed bytes after that point. In an
index document they are a plain JSON object (`GzipSeekPoints.to_dict`), checked as
untrusted input when read (`GzipSeekPoints.from_dict`).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import struct
import zlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ..errors import IndexFormatError

__all__ = [
    "DEFAULT_SPACING",
    "MAX_SEEK_POINTS",
    "MAX_WINDOW_TEXT",
    "MIN_SPACING",
    "SEEK_POINTS_VERSION",
    "WINDOW_SIZE",
    "GzipSeekPoints",
    "SeekPoint",
    "spacing_for",
]

#: The format version of the ``gzip`` field of an index entry.
SEEK_POINTS_VERSION = 1
#: Bytes of output kept with each point: deflate's back-references reach 32 KiB.
WINDOW_SIZE = 32768
#: Decompressed bytes between seek points, by default. A read costs at most the
#: compressed bytes of one such stretch beyond what it needs.
DEFAULT_SPACING = 1 << 20
#: Least spacing (``indexed_gzip`` needs more than the window between points).
MIN_SPACING = 2 * WINDOW_SIZE
#: Most seek points of one object; the spacing grows for objects larger than
#: ``MAX_SEEK_POINTS * DEFAULT_SPACING`` so that the windows stay bounded.
MAX_SEEK_POINTS = 1024
#: Longest base64 text of one compressed window (32 KiB that do not compress at all
#: take 32,778 bytes in zlib's format).
MAX_WINDOW_TEXT = 4 * (WINDOW_SIZE + 1024) // 3
_OFFSET_LIMIT = 1 << 62
_ZRAN_MAGIC = b"GZIDX"
_ZRAN_VERSION = 1
_ZRAN_HEADER = struct.Struct("<5sBBQQIII")
_ZRAN_POINT = struct.Struct("<QQBB")


def spacing_for(uncompressed_size: int, spacing: int = DEFAULT_SPACING) -> int:
    """The spacing to index an object with: ``spacing``, or more for a large object,
    so that it has at most `MAX_SEEK_POINTS` points (the windows of more would be
    more index than the reads they save are worth)."""
    if spacing < MIN_SPACING:
        raise ValueError(f"the seek point spacing must be at least {MIN_SPACING} bytes")
    return max(spacing, -(-uncompressed_size // (MAX_SEEK_POINTS - 1)))


@dataclass(frozen=True)
class SeekPoint:
    """A place where decompression can start.

    Attributes
    ----------
    compressed : int
        Offset of the first compressed byte wholly after the point.
    bits : int
        How many high bits of the byte before ``compressed`` belong after the point
        (0 to 7; 0 when the point is on a byte boundary).
    uncompressed : int
        Offset of the point in the decompressed bytes.
    window : bytes
        The `WINDOW_SIZE` decompressed bytes before the point, zlib-compressed; empty
        for the first point (the start of the deflate stream).
    """

    compressed: int
    bits: int
    uncompressed: int
    window: bytes = b""

    @property
    def first_byte(self) -> int:
        """The first compressed byte decompression from this point reads."""
        return self.compressed - (1 if self.bits else 0)


@dataclass(frozen=True)
class GzipSeekPoints:
    """The seek points of one gzip object, and its decompressed size.

    Attributes
    ----------
    uncompressed_size : int
        Bytes of the decompressed stream (the FITS file).
    spacing : int
        Decompressed bytes asked for between points (a point sits at the first deflate
        block boundary after that many bytes).
    points : tuple of SeekPoint
        In stream order; the first is the start of the deflate stream.
    """

    uncompressed_size: int
    spacing: int
    points: tuple[SeekPoint, ...]

    @cached_property
    def _starts(self) -> list[int]:
        return [p.uncompressed for p in self.points]

    def __len__(self) -> int:
        return len(self.points)

    def segment_of(self, offset: int) -> int:
        """The number of the last point at or before decompressed ``offset``."""
        return bisect.bisect_right(self._starts, offset) - 1

    def segment_end(self, k: int) -> int:
        """Where segment ``k`` (from point ``k`` to the next) ends in the decompressed bytes."""
        after = k + 1
        return (
            self.points[after].uncompressed if after < len(self.points) else self.uncompressed_size
        )

    def window(self, k: int, *, where: str) -> bytes:
        """The decompressed window of point ``k``, checked."""
        try:
            inflater = zlib.decompressobj()
            window = inflater.decompress(self.points[k].window, WINDOW_SIZE + 1)
        except zlib.error as err:
            raise IndexFormatError(f"{where}: gzip seek point {k}: broken window: {err}") from None
        if len(window) != WINDOW_SIZE or not inflater.eof:
            raise IndexFormatError(
                f"{where}: gzip seek point {k}: the window must hold {WINDOW_SIZE} bytes"
            )
        return window

    # -- indexed_gzip's exported index -------------------------------------------------

    @classmethod
    def from_zran(cls, data: bytes, *, where: str) -> GzipSeekPoints:
        """The points of an index exported by ``indexed_gzip`` (its ``GZIDX`` format 1).

        A point at the very end of the stream (where nothing is left to read) is dropped,
        and beyond `MAX_SEEK_POINTS` every other point, as often as needed.
        """
        try:
            magic, version, _, _, usize, spacing, wsize, count = _ZRAN_HEADER.unpack_from(data)
        except struct.error:
            raise ValueError(f"{where}: the exported gzip index is truncated") from None
        if magic != _ZRAN_MAGIC or version != _ZRAN_VERSION or wsize != WINDOW_SIZE:
            raise ValueError(f"{where}: unexpected exported gzip index {magic!r} {version}")
        at = _ZRAN_HEADER.size + count * _ZRAN_POINT.size
        points = []
        for i in range(count):
            c, u, bits, has_window = _ZRAN_POINT.unpack_from(data, _ZRAN_HEADER.size + 18 * i)
            window = b""
            if has_window:
                window = zlib.compress(data[at : at + WINDOW_SIZE], 6)
                at += WINDOW_SIZE
            if u < usize or i == 0:
                points.append(SeekPoint(c, bits, u, window))
        while len(points) > MAX_SEEK_POINTS:
            points = points[::2]
            spacing *= 2
        return cls(usize, spacing, tuple(points))

    def zran_index(self, k: int, compressed_size: int, *, where: str) -> bytes:
        """An ``indexed_gzip`` index holding point ``k`` only, followed by the next point
        without its window (which only bounds what the first one covers)."""
        point = self.points[k]
        if k + 1 < len(self.points):
            after = self.points[k + 1]
            end = (after.compressed, after.uncompressed, after.bits)
        else:
            end = (compressed_size, self.uncompressed_size, 0)
        header = _ZRAN_HEADER.pack(
            _ZRAN_MAGIC,
            _ZRAN_VERSION,
            0,
            compressed_size,
            self.uncompressed_size,
            self.spacing,
            WINDOW_SIZE,
            2,
        )
        has_window = 1 if point.window else 0
        first = _ZRAN_POINT.pack(point.compressed, point.uncompressed, point.bits, has_window)
        window = self.window(k, where=where) if has_window else b""
        return header + first + _ZRAN_POINT.pack(*end, 0) + window

    # -- the index document ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The ``gzip`` field of an index entry."""
        points: list[dict[str, Any]] = []
        for p in self.points:
            point: dict[str, Any] = {
                "compressed": p.compressed,
                "bits": p.bits,
                "uncompressed": p.uncompressed,
            }
            if p.window:
                point["window"] = base64.b64encode(p.window).decode("ascii")
            points.append(point)
        return {
            "version": SEEK_POINTS_VERSION,
            "uncompressed_size": self.uncompressed_size,
            "spacing": self.spacing,
            "window_size": WINDOW_SIZE,
            "points": points,
        }

    @classmethod
    def from_dict(cls, raw: Any, *, size: int, where: str) -> GzipSeekPoints:
        """Check the ``gzip`` field of an entry for an object of ``size`` bytes.

        Raises
        ------
        IndexFormatError
            Naming ``where`` and the point, for a field of another version, a window
            that is not base64 of the right length, points out of order or outside the
            object, or more than `MAX_SEEK_POINTS` of them.
        """
        where = f"{where}: gzip"
        if not isinstance(raw, dict):
            raise IndexFormatError(f"{where}: must be an object")
        version = raw.get("version")
        if type(version) is not int or version != SEEK_POINTS_VERSION:
            raise IndexFormatError(
                f"{where}: seek points version {version!r} is not supported (this cloudfits"
                f" reads version {SEEK_POINTS_VERSION}); upgrade cloudfits"
            )
        if raw.get("window_size") != WINDOW_SIZE:
            raise IndexFormatError(f"{where}: 'window_size' must be {WINDOW_SIZE}")
        usize = _offset(raw, "uncompressed_size", where)
        spacing = _offset(raw, "spacing", where)
        if spacing < MIN_SPACING:
            raise IndexFormatError(f"{where}: 'spacing' must be at least {MIN_SPACING}")
        listed = raw.get("points")
        if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_SEEK_POINTS:
            raise IndexFormatError(f"{where}: 'points' must list 1 to {MAX_SEEK_POINTS} points")
        points = tuple(_point(p, f"{where}: point {i}", first=i == 0) for i, p in enumerate(listed))
        previous = points[0]
        if previous.uncompressed != 0 or not 10 <= previous.compressed <= size:
            raise IndexFormatError(
                f"{where}: point 0 must be the start of the deflate stream (uncompressed 0,"
                f" compressed after the gzip header, inside the object of {size} bytes)"
            )
        for i, point in enumerate(points[1:], start=1):
            if not (
                previous.compressed < point.compressed <= size
                and previous.uncompressed < point.uncompressed < usize
            ):
                raise IndexFormatError(
                    f"{where}: point {i} (compressed {point.compressed}, uncompressed"
                    f" {point.uncompressed}) must follow point {i - 1} and lie inside the"
                    f" object ({size} bytes, {usize} decompressed)"
                )
            previous = point
        return cls(usize, spacing, points)


def _offset(raw: dict[str, Any], key: str, where: str) -> int:
    value = raw.get(key)
    if type(value) is not int or not 0 <= value < _OFFSET_LIMIT:
        raise IndexFormatError(f"{where}: {key!r} must be a non-negative integer")
    return value


def _point(raw: Any, where: str, *, first: bool) -> SeekPoint:
    if not isinstance(raw, dict):
        raise IndexFormatError(f"{where}: must be an object")
    compressed = _offset(raw, "compressed", where)
    uncompressed = _offset(raw, "uncompressed", where)
    bits = raw.get("bits")
    if type(bits) is not int or not 0 <= bits <= 7 or (bits and compressed == 0):
        raise IndexFormatError(f"{where}: 'bits' must be an integer from 0 to 7")
    text = raw.get("window")
    if first:
        if text is not None or bits:
            raise IndexFormatError(f"{where}: the first point has no window and no bits")
        return SeekPoint(compressed, 0, uncompressed)
    if not isinstance(text, str) or not 0 < len(text) <= MAX_WINDOW_TEXT:
        raise IndexFormatError(
            f"{where}: 'window' must be the base64 text of a compressed window"
            f" (at most {MAX_WINDOW_TEXT} characters)"
        )
    try:
        window = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise IndexFormatError(f"{where}: 'window' is not base64") from None
    return SeekPoint(compressed, bits, uncompressed, window)
