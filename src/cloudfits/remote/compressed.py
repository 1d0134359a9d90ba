"""Tile-compressed images (fpack, ``ZIMAGE = T``), read tile by tile.

A compressed image is a binary table with one row per tile: a descriptor
``(count, offset)`` of the tile's compressed bytes in the heap, plus per-tile
``ZSCALE``/``ZZERO``/``ZBLANK`` where the image is quantized. A section read:

1. reads the descriptor rows once (they are small: a few bytes per tile) and keeps them;
2. works out which tiles the numpy key touches, axis by axis (a strided key skips the
   tiles between its indices);
3. fetches only those tiles' heap bytes, coalesced and in parallel like any other read;
4. hands the bytes to astropy's own decompression
   (``astropy.io.fits.hdu.compressed._tiled_compression``), box of adjacent tiles by
   box, so RICE_1, GZIP_1/2, HCOMPRESS_1, PLIO_1, NOCOMPRESS, quantization with
   SUBTRACTIVE_DITHER_1/2, ZBLANK and the uncompressed fallback tiles come out exactly as
   astropy gives them;
5. scales with astropy's `~astropy.io.fits.CompImageHDU` (BSCALE/BZERO, unsigned
   integers), so values and dtype are those of ``fits.open(...)[n].section[key]``.
"""

from __future__ import annotations

import threading
import warnings
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.hdu.base import BITPIX2DTYPE
from astropy.io.fits.hdu.compressed._compression import CfitsioException
from astropy.io.fits.hdu.compressed._tiled_compression import (
    _column_dtype,
    decompress_image_data_section,
)
from astropy.io.fits.hdu.compressed.compbintable import _CompBinTableHDU
from astropy.utils.exceptions import AstropyWarning

from ..errors import CloudFitsError, FitsFormatError
from ..fetch.spans import merge_ranges
from ..fits.geometry import image_shape
from ..fits.planner import normalize_key
from ..fits.scan import padded

if TYPE_CHECKING:
    from ..fetch.spans import FetchOptions
    from .hdulist import RemoteHDU

__all__ = ["TileCompressedImage"]

_TILE_COLUMNS = ("COMPRESSED_DATA", "GZIP_COMPRESSED_DATA", "UNCOMPRESSED_DATA")
# astropy's HCOMPRESS decoder (cfitsio's) keeps state in C globals: sections read on
# two threads at once (dask's threaded scheduler) would corrupt each other's tiles.
_DECOMPRESSION = threading.Lock()


class _FetchedHeap:
    """The heap bytes of some tiles, answering astropy's ``_get_raw_data`` calls.

    astropy's decompression reads a tile as ``bintable._get_raw_data(count, dtype,
    _data_offset + _theap + offset)``; offsets here are heap offsets, so both are 0.
    """

    _data_offset = 0
    _theap = 0

    def __init__(self, starts: np.ndarray, blocks: list[np.ndarray], heap_size: int) -> None:
        self._starts = starts
        self._blocks = blocks
        self._heap_size = heap_size

    def _get_raw_data(self, shape: Any, code: Any, offset: int) -> np.ndarray:
        dtype = np.dtype(code)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        i = int(np.searchsorted(self._starts, offset, side="right")) - 1
        if i >= 0 and offset + nbytes <= self._starts[i] + self._blocks[i].size:
            local = offset - int(self._starts[i])
            piece: np.ndarray = self._blocks[i][local : local + nbytes].view(dtype).reshape(shape)
            return piece
        if offset == 0 and nbytes == self._heap_size and dtype == np.uint8:
            # astropy asks for the whole heap when a box covers the whole image, then
            # slices the tiles out of it: every tile is among the fetched blocks.
            heap = np.zeros(nbytes, dtype=np.uint8)
            for start, block in zip(self._starts.tolist(), self._blocks, strict=True):
                heap[start : start + block.size] = block[: max(0, nbytes - start)]
            return heap
        raise CloudFitsError(f"heap bytes [{offset}, {offset + nbytes}) were not fetched")


class TileCompressedImage:
    """The image inside a tile-compressed binary table HDU.

    Parameters
    ----------
    hdu : RemoteHDU
        The HDU (its ``stored_header`` is the binary table's header).
    """

    def __init__(self, hdu: RemoteHDU) -> None:
        self._hdu = hdu
        self._where = f"{hdu.file.uri}: HDU {hdu.number}"
        self._lock = threading.Lock()
        self._descriptor_rows: Any = None
        raw = hdu.stored_header
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                self._bintable = _CompBinTableHDU.fromstring(raw.tostring().encode("latin-1"))
                self._image = fits.CompImageHDU(bintable=self._bintable)
                self.header: fits.Header = self._image.header
                self.shape: tuple[int, ...] = image_shape(self.header)
                zbitpix = int(raw["ZBITPIX"])
                empty = np.zeros(0, dtype=BITPIX2DTYPE[zbitpix])
                self.dtype: np.dtype[Any] = np.dtype(self._image._scale_data(empty).dtype)
        except (KeyError, ValueError, TypeError, ArithmeticError, IndexError) as err:
            raise FitsFormatError(
                f"{self._where} (header at byte {hdu.layout.header_offset}): not a valid"
                f" compressed image: {err}"
            ) from err
        self.tile_shape: tuple[int, ...] = tuple(int(t) for t in self._image.tile_shape)
        if len(self.tile_shape) != len(self.shape) or any(t < 1 for t in self.tile_shape):
            raise FitsFormatError(
                f"{self._where} (header at byte {hdu.layout.header_offset}): tile shape"
                f" {self.tile_shape} (ZTILEn) for an image of shape {self.shape}"
            )
        self.n_tiles = tuple(-(-n // t) for n, t in zip(self.shape, self.tile_shape, strict=True))
        self.compression_type = str(self._image.compression_type)

    def descriptor_rows(self, options: FetchOptions) -> Any:
        """The tile table's rows without the heap (read once, then kept).

        The table is kept only once every descriptor has been checked to lie inside the
        heap, so one bad answer cannot poison later reads.
        """
        with self._lock:
            if self._descriptor_rows is None:
                rows = self._read_descriptor_rows(options)
                self._check_descriptors(rows)
                self._descriptor_rows = rows
            return self._descriptor_rows

    def _heap_geometry(self) -> tuple[int, int, int]:
        """``(theap, heap_size, heap_end)`` of the tile table, checked."""
        raw = self._hdu.stored_header
        nrows, rowlen = int(raw["NAXIS2"]), int(raw["NAXIS1"])
        theap, heap_size = raw.get("THEAP", nrows * rowlen), raw.get("PCOUNT", 0)
        valid = all(isinstance(v, int) and not isinstance(v, bool) for v in (theap, heap_size))
        if not valid or not nrows * rowlen <= theap <= nrows * rowlen + heap_size:
            raise FitsFormatError(
                f"{self._where} (data at byte {self._hdu.layout.data_offset}): THEAP ="
                f" {theap!r} and PCOUNT = {heap_size!r} do not place the heap after the rows"
            )
        return int(theap), int(heap_size), nrows * rowlen + int(heap_size) - int(theap)

    def _check_descriptors(self, rows_data: Any) -> None:
        heap_end = self._heap_geometry()[2]
        for name in _TILE_COLUMNS:
            if name not in rows_data.dtype.names:
                continue
            itemsize = _column_dtype(rows_data._coldefs, name).itemsize
            desc = np.asarray(rows_data[name], dtype=np.int64).reshape(-1, 2)
            bad = (
                (desc[:, 0] < 0)
                | (desc[:, 1] < 0)
                | (desc[:, 1] + desc[:, 0] * itemsize > heap_end)
            )
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise FitsFormatError(
                    f"{self._where} (data at byte {self._hdu.layout.data_offset}): tile"
                    f" {row}'s {name} descriptor {desc[row].tolist()} points outside the heap"
                    f" of {heap_end} bytes"
                )

    def _read_descriptor_rows(self, options: FetchOptions) -> Any:
        raw = self._hdu.stored_header
        rowlen, nrows = int(raw["NAXIS1"]), int(raw["NAXIS2"])
        if nrows != int(np.prod(self.n_tiles)):
            raise FitsFormatError(
                f"{self._where}: {nrows} tile rows for {int(np.prod(self.n_tiles))} tiles"
                f" of shape {self.tile_shape} over an image of shape {self.shape}"
            )
        reader = self._hdu.file.reader
        body = reader.read_runs(
            self._hdu.layout.data_offset, np.zeros(1, np.int64), rowlen * nrows, options
        )
        fake = raw.copy()
        fake["PCOUNT"] = 0
        fake.remove("THEAP", ignore_missing=True)
        data = body.tobytes()
        blob = fake.tostring().encode("latin-1") + data + b"\0" * (padded(len(data)) - len(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            return _CompBinTableHDU.fromstring(blob).data

    def tiles_for(self, key: Any) -> _TileSelection:
        """The tiles ``key`` touches along each axis, and where its pixels are in them."""
        selections, finish = normalize_key(key, self.shape)
        tiles, starts, positions = [], [], []
        for sel, tile, length in zip(selections, self.tile_shape, self.shape, strict=True):
            index = sel.first + sel.step * np.arange(sel.count, dtype=np.int64)
            touched = np.unique(index // tile)
            sizes = np.minimum(tile, length - touched * tile)
            at = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
            positions.append(at[np.searchsorted(touched, index // tile)] + index % tile)
            tiles.append(touched)
            starts.append(at)
        counts = tuple(s.count for s in selections)
        return _TileSelection(tiles, starts, positions, counts, finish)

    def read(self, key: Any, options: FetchOptions) -> np.ndarray:
        """``data[key]``, as astropy's ``CompImageHDU.section[key]`` gives it."""
        chosen = self.tiles_for(key)
        raw_dtype = BITPIX2DTYPE[int(self._hdu.stored_header["ZBITPIX"])]
        if int(np.prod(chosen.counts)) == 0:
            empty = np.zeros(chosen.counts, dtype=raw_dtype)
            result: np.ndarray = self._image._scale_data(empty)[chosen.finish]
            return result
        rows_data = self.descriptor_rows(options)
        boxes = chosen.boxes()
        heap = self._fetch_tiles(rows_data, boxes, options)
        gathered = np.empty(tuple(int(a[-1]) for a in chosen.starts), dtype=raw_dtype)
        for first, last, at in boxes:
            try:
                with _DECOMPRESSION, warnings.catch_warnings():
                    warnings.simplefilter("ignore", AstropyWarning)
                    box = decompress_image_data_section(
                        rows_data,
                        self.compression_type,
                        self._bintable.header,
                        heap,
                        self.header,
                        np.array(first),
                        np.array(last),
                    )
            except (CfitsioException, ValueError, TypeError, ArithmeticError, IndexError) as err:
                raise FitsFormatError(
                    f"{self._where} (data at byte {self._hdu.layout.data_offset}): tiles"
                    f" {list(first)} to {list(last)} do not decompress"
                    f" ({self.compression_type}): {err}"
                ) from err
            target = tuple(slice(a, a + n) for a, n in zip(at, box.shape, strict=True))
            gathered[target] = box
        picked = gathered[np.ix_(*chosen.positions)]
        scaled: np.ndarray = self._image._scale_data(picked)[chosen.finish]
        return scaled

    def _fetch_tiles(
        self,
        rows_data: Any,
        boxes: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]],
        options: FetchOptions,
    ) -> _FetchedHeap:
        rows = np.concatenate(
            [
                np.ravel_multi_index(
                    np.meshgrid(
                        *[np.arange(a, b + 1) for a, b in zip(first, last, strict=True)],
                        indexing="ij",
                    ),
                    self.n_tiles,
                ).reshape(-1)
                for first, last, _ in boxes
            ]
        )
        starts, ends = [], []
        names = rows_data.dtype.names
        for name in _TILE_COLUMNS:
            if name not in names:
                continue
            itemsize = _column_dtype(rows_data._coldefs, name).itemsize
            desc = np.asarray(rows_data[name], dtype=np.int64).reshape(-1, 2)[rows]
            starts.append(desc[:, 1])
            ends.append(desc[:, 1] + desc[:, 0] * itemsize)
        theap, heap_size, heap_end = self._heap_geometry()
        first_starts, last_ends, _ = merge_ranges(np.concatenate(starts), np.concatenate(ends))
        if first_starts.size and (first_starts[0] < 0 or last_ends.max() > heap_end):
            raise FitsFormatError(
                f"{self._where}: a tile descriptor points outside the heap of {heap_end} bytes"
            )
        blocks = self._hdu.file.reader.read_ranges(
            self._hdu.layout.data_offset + theap, first_starts, last_ends, options
        )
        return _FetchedHeap(first_starts, blocks, heap_size)


class _TileSelection:
    """What a key selects, in tiles.

    Attributes
    ----------
    tiles : list of numpy.ndarray
        The touched tile numbers along each axis, ascending.
    starts : list of numpy.ndarray
        Where each touched tile starts when they are laid end to end along the axis
        (one more entry: the total length).
    positions : list of numpy.ndarray
        Where each selected index is in that layout.
    counts : tuple of int
        Indices selected along each axis.
    finish : tuple
        The index that turns the selection into numpy's result.
    """

    def __init__(
        self,
        tiles: list[np.ndarray],
        starts: list[np.ndarray],
        positions: list[np.ndarray],
        counts: tuple[int, ...],
        finish: tuple[Any, ...],
    ) -> None:
        self.tiles = tiles
        self.starts = starts
        self.positions = positions
        self.counts = counts
        self.finish = finish

    def boxes(self) -> list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
        """Boxes of adjacent touched tiles: first tile, last tile, and where they go."""
        per_axis = [
            [(int(t[a]), int(t[b]), int(s[a])) for a, b in _runs(t)]
            for t, s in zip(self.tiles, self.starts, strict=True)
        ]
        return [
            (tuple(c[0] for c in combo), tuple(c[1] for c in combo), tuple(c[2] for c in combo))
            for combo in product(*per_axis)
        ]


def _runs(touched: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive tile numbers, as (first, last) positions in ``touched``."""
    breaks = np.flatnonzero(np.diff(touched) != 1) + 1
    firsts = np.concatenate(([0], breaks)).astype(np.int64)
    lasts = np.concatenate((breaks, [touched.size])).astype(np.int64) - 1
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))
