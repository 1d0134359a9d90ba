"""numcodecs codecs that decode FITS image bytes into astropy's values.

Two codecs, registered under numcodecs' ``numcodecs.codecs`` entry point group so that
zarr finds them by their ``id`` when it reads the metadata of a reference file system:

``cloudfits.fits_image``
    Raw big-endian image bytes to the values and type astropy gives: byte order,
    BSCALE/BZERO, BLANK to NaN, unsigned integers through BZERO (the same code as a
    cloudfits section read). A chunk at the end of the image is shorter than a full
    zarr chunk; it is padded with zeros, and zarr drops the padding.
``cloudfits.fits_tile``
    One tile of a tile-compressed image (RICE_1, GZIP_1, GZIP_2, HCOMPRESS_1, PLIO_1,
    NOCOMPRESS, quantized or not) to its pixels, decompressed by astropy's own
    ``decompress_image_data_section`` on a one-tile table and scaled by
    `~astropy.io.fits.CompImageHDU`, then padded to the full tile shape.

A codec sees only a chunk's bytes, not which chunk it is. Where a tile's decoding
depends on which tile it is (a tile at the image's edge is smaller; a quantized tile has
its own ZSCALE and ZZERO and dither offset; a tile stored in the GZIP or uncompressed
fallback column), the references ask for a byte count that no other tile of the image
asks for (a few bytes more or fewer than the tile's, read from around it), and the
codec's ``tiles`` table says, by that count, which tile it is. Both codecs decode only.
"""

from __future__ import annotations

import base64
import threading
import warnings
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.hdu.base import BITPIX2DTYPE
from astropy.io.fits.hdu.compressed._tiled_compression import (
    _column_dtype,
    decompress_image_data_section,
)
from astropy.io.fits.hdu.compressed.compbintable import _CompBinTableHDU
from astropy.utils.exceptions import AstropyWarning
from numcodecs.abc import Codec

from .geometry import ImageScaling, scale_image

__all__ = ["FitsImageCodec", "FitsTileCodec", "TILE_COLUMNS"]

TILE_COLUMNS = ("COMPRESSED_DATA", "GZIP_COMPRESSED_DATA", "UNCOMPRESSED_DATA")
"""The binary-table columns that hold a tile's bytes, in astropy's order of precedence."""


_NOTES = ("", "COMMENT", "HISTORY")
# astropy's HCOMPRESS decoder (cfitsio's) keeps state in C globals: two threads
# decoding at once corrupt each other's tiles. zarr decodes chunks on threads.
_DECOMPRESSION = threading.Lock()


class _OneTile:
    """One row of a tile table, as astropy's decompression reads a `FITS_rec`."""

    def __init__(self, coldefs: Any, values: dict[str, np.ndarray]) -> None:
        self._coldefs = coldefs
        self.dtype = coldefs.dtype
        self._values = values

    def __getitem__(self, name: str) -> np.ndarray:
        return self._values[name]


class _Heap:
    """The heap of a one-tile table: the tile's bytes, at heap offset 0."""

    _data_offset = 0
    _theap = 0

    def __init__(self, data: np.ndarray) -> None:
        self._data = data

    def _get_raw_data(self, shape: Any, code: Any, offset: int) -> np.ndarray:
        dtype = np.dtype(code)
        count = int(np.prod(shape))
        piece: np.ndarray = self._data[offset : offset + count * dtype.itemsize].view(dtype)
        shaped: np.ndarray = piece.reshape(shape)
        return shaped


def _decode_only(codec: Codec) -> NotImplementedError:
    return NotImplementedError(f"{codec.codec_id} decodes FITS data; it does not encode")


class FitsImageCodec(Codec):  # type: ignore[misc]
    """Raw FITS image bytes to astropy's values, in native byte order.

    Parameters
    ----------
    raw : str
        The type in the file, for example ``">i2"``.
    dtype : str
        The type of the values, as astropy gives them (``"<u2"``, ``"<f4"``, ...).
    bscale, bzero : float or int
        The BSCALE and BZERO cards.
    blank : int or None
        The BLANK value that becomes NaN, where astropy applies it.
    unsigned : bool
        BZERO encodes unsigned integers (or signed bytes): converted exactly.
    items : int
        Values in a full chunk; shorter input is padded to it.
    """

    codec_id = "cloudfits.fits_image"

    def __init__(
        self,
        raw: str,
        dtype: str,
        bscale: float = 1,
        bzero: float = 0,
        blank: int | None = None,
        unsigned: bool = False,
        items: int = 0,
    ) -> None:
        self.raw = raw
        self.dtype = dtype
        self.bscale = bscale
        self.bzero = bzero
        self.blank = blank
        self.unsigned = unsigned
        self.items = items
        self._scaling = ImageScaling(np.dtype(raw), np.dtype(dtype), bscale, bzero, blank, unsigned)

    def decode(self, buf: Any, out: Any = None) -> np.ndarray:
        data = memoryview(buf).cast("B")
        itemsize = self._scaling.raw_dtype.itemsize
        if len(data) % itemsize or len(data) > self.items * itemsize:
            raise ValueError(
                f"{self.codec_id}: {len(data)} bytes are not whole {self.raw} values"
                f" of a chunk of {self.items}"
            )
        raw = np.zeros(self.items, dtype=self._scaling.raw_dtype)
        raw.view(np.uint8)[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        values = scale_image(raw, self._scaling)
        if out is not None:
            np.copyto(np.asarray(out).reshape(-1).view(values.dtype), values)
            return out  # type: ignore[no-any-return]
        return values

    def encode(self, buf: Any) -> Any:
        raise _decode_only(self)

    def get_config(self) -> dict[str, Any]:
        return {
            "id": self.codec_id,
            "raw": self.raw,
            "dtype": self.dtype,
            "bscale": self.bscale,
            "bzero": self.bzero,
            "blank": self.blank,
            "unsigned": self.unsigned,
            "items": self.items,
        }


class FitsTileCodec(Codec):  # type: ignore[misc]
    """One tile of a tile-compressed FITS image to its pixels, as astropy gives them.

    Parameters
    ----------
    header : str
        The cards of the compressed image's binary-table header that decoding needs.
    tiles : dict, optional
        By the byte count its references ask for, each tile whose decoding depends on
        which tile it is: ``[tile number, bytes to skip, bytes of the tile, raw table
        row (base64)]``. A count not in it is an interior tile of the nominal shape
        stored in ``COMPRESSED_DATA``.
    """

    codec_id = "cloudfits.fits_tile"

    def __init__(self, header: str, tiles: dict[str, list[Any]] | None = None) -> None:
        self.header = header
        self.tiles = tiles or {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            self._table_header = fits.Header.fromstring(header)
            bintable = _CompBinTableHDU.fromstring(self._table_header.tostring().encode("ascii"))
            self._image = fits.CompImageHDU(bintable=bintable)
            self._image_header = self._image.header
        raw = self._table_header
        naxis = int(raw["ZNAXIS"])
        self._shape = tuple(int(raw[f"ZNAXIS{i}"]) for i in range(naxis, 0, -1))
        self._tile_shape = tuple(int(t) for t in self._image.tile_shape)
        self._grid = tuple(-(-n // t) for n, t in zip(self._shape, self._tile_shape, strict=True))
        self._raw_dtype = np.dtype(BITPIX2DTYPE[int(raw["ZBITPIX"])])
        self.dtype = self._image._scale_data(np.zeros(0, self._raw_dtype)).dtype
        self._fields = bintable.columns.dtype.fields
        self._payload_itemsize = _column_dtype(bintable.columns, "COMPRESSED_DATA").itemsize
        self._coldefs = bintable.columns
        # astropy's decompression reads headers by key only: plain dicts are much faster.
        self._cards = {c.keyword: c.value for c in raw.cards if c.keyword not in _NOTES}
        self._cards.pop("THEAP", None)
        self._image_cards = {
            k: self._image_header[k] for k in ("BLANK",) if k in self._image_header
        }

    def _tile_extent(self, number: int) -> tuple[int, ...]:
        corner = np.unravel_index(number, self._grid)
        return tuple(
            min(t, n - int(c) * t)
            for c, t, n in zip(corner, self._tile_shape, self._shape, strict=True)
        )

    def _row_values(self, payload: int, row: bytes | None) -> dict[str, np.ndarray]:
        """The tile's table row as astropy reads it, its payload at heap offset 0."""
        if row is None:
            count = payload // self._payload_itemsize
            return {"COMPRESSED_DATA": np.array([[count, 0]], dtype=np.int64)}
        values = {}
        for name, (dtype, offset, *_) in self._fields.items():
            raw = np.frombuffer(row, dtype=dtype.newbyteorder(">"), count=1, offset=offset)
            values[name] = raw.astype(dtype.base.newbyteorder("="))
        for name in TILE_COLUMNS:
            if name in values and values[name][0, 0] > 0:
                values[name][0, 1] = 0
                return values
        raise ValueError(f"{self.codec_id}: a tile row has no bytes in {TILE_COLUMNS}")

    def decode(self, buf: Any, out: Any = None) -> np.ndarray:
        data = memoryview(buf).cast("B")
        known = self.tiles.get(str(len(data)))
        header = dict(self._cards)
        if known is None:
            row = None
            extent = self._tile_shape
        else:
            number, skip, size, row_text = known
            data = data[skip : skip + size]
            row = base64.b64decode(row_text)
            extent = self._tile_extent(int(number))
            header["ZDITHER0"] = int(header.get("ZDITHER0", 0)) + int(number)
        header["NAXIS2"] = 1
        header["PCOUNT"] = len(data)
        for axis, length in enumerate(reversed(extent), 1):
            header[f"ZNAXIS{axis}"] = length
            header[f"ZTILE{axis}"] = length
        one_tile = _OneTile(self._coldefs, self._row_values(len(data), row))
        corner = np.zeros(len(extent), dtype=int)
        with _DECOMPRESSION, warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            pixels = decompress_image_data_section(
                one_tile,
                str(header["ZCMPTYPE"]),
                header,
                _Heap(np.frombuffer(data, dtype=np.uint8)),
                self._image_cards,
                corner,
                corner,
            )
            values = self._image._scale_data(pixels)
        full = np.zeros(self._tile_shape, dtype=self.dtype)
        full[tuple(slice(0, n) for n in values.shape)] = values
        result = full.reshape(-1)
        if out is not None:
            np.copyto(np.asarray(out).reshape(-1).view(result.dtype), result)
            return out  # type: ignore[no-any-return]
        return result

    def encode(self, buf: Any) -> Any:
        raise _decode_only(self)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"id": self.codec_id, "header": self.header}
        if self.tiles:
            config["tiles"] = self.tiles
        return config
