"""References of a tile-compressed image: one Zarr chunk per tile, bytes in the heap.

Each chunk's reference is the tile's compressed bytes in the binary table's heap; the
codec ``cloudfits.fits_tile`` (`cloudfits.fits.codecs.FitsTileCodec`) decompresses them
with astropy. Building the references reads the tile table once (a few bytes per tile).

A codec is told a chunk's bytes, not which chunk they are. A tile whose decoding
depends on which it is is "listed": a tile at the image's edge (it is smaller), every
tile of a table with more columns than ``COMPRESSED_DATA`` (quantized tiles have their
own ZSCALE, ZZERO and dither offset; ZBLANK may be per tile), and a tile stored in the
GZIP or uncompressed fallback column. A listed tile's reference asks for a byte count
that no other tile of the image asks for (its own, or a few bytes more, read after it,
or before it at the object's end), and the codec's ``tiles`` table maps that count to
the tile's number, where its bytes start in what was read, their length and its raw
table row. Unlisted tiles are read exactly.
"""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io.fits import Header
from astropy.io.fits.hdu.compressed.compbintable import _CompBinTableHDU
from astropy.utils.exceptions import AstropyWarning

from ..errors import FitsFormatError

if TYPE_CHECKING:
    from ..remote.hdulist import RemoteHDU

__all__ = ["TILE_COLUMNS", "TiledArray", "decoding_cards", "tile_array"]

TILE_COLUMNS = ("COMPRESSED_DATA", "GZIP_COMPRESSED_DATA", "UNCOMPRESSED_DATA")
"""The columns that hold a tile's bytes, in the order astropy tries them."""

_DECODING_KEYWORDS = (
    "XTENSION",
    "BITPIX",
    "NAXIS",
    "PCOUNT",
    "GCOUNT",
    "TFIELDS",
    "TTYPE",
    "TFORM",
    "THEAP",
    "Z",
    "BSCALE",
    "BZERO",
    "BLANK",
)
_ITEMSIZES = {"B": 1, "I": 2, "J": 4, "K": 8, "E": 4, "D": 8}


@dataclass(frozen=True)
class TiledArray:
    """A tile-compressed image as a Zarr array: shape, tile shape, type and codec."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    codec: dict[str, Any]


def decoding_cards(header: Header) -> str:
    """The cards of a compressed image's table header that its decoding needs."""
    kept = Header([card for card in header.cards if card.keyword.startswith(_DECODING_KEYWORDS)])
    return str(kept.tostring())


def _itemsize(header: Header, column: str) -> int:
    for i in range(1, int(header["TFIELDS"]) + 1):
        if str(header.get(f"TTYPE{i}", "")).strip() == column:
            code = str(header[f"TFORM{i}"]).strip().lstrip("0123456789")[1:2]
            if code in _ITEMSIZES:
                return _ITEMSIZES[code]
            raise FitsFormatError(f"TFORM{i} = {header[f'TFORM{i}']!r} is not a tile column")
    raise FitsFormatError(f"no column {column}")


def _payload(row: bytes, fields: Any) -> tuple[str, int, int] | None:
    """The column astropy reads this tile from, with its (count, heap offset)."""
    for name in TILE_COLUMNS:
        if name not in fields:
            continue
        dtype, offset = fields[name][:2]
        count, start = np.frombuffer(row, dtype.base.newbyteorder(">"), count=2, offset=offset)
        if count > 0:
            return name, int(count), int(start)
    return None


def _unique_count(start: int, length: int, size: int, taken: set[int]) -> tuple[int, int] | None:
    """The first byte and byte count of a read of ``length`` bytes at ``start`` whose
    count is not in ``taken``, reading as few extra bytes of the object as it can."""
    for extra in range(size + 1):
        count = length + extra
        if count in taken:
            continue
        if start + count <= size:
            return start, count
        if start - extra >= 0:
            return start - extra, count
    return None


def tile_array(hdu: RemoteHDU, url: str, size: int) -> tuple[TiledArray, dict[str, Any]]:
    """The array and chunk references of a tile-compressed image HDU.

    Parameters
    ----------
    hdu : RemoteHDU
        The HDU; its tile table is read (one request).
    url : str
        The object's URL in the references.
    size : int
        The object's size (no reference reaches past it).
    """
    where = f"{hdu.file.uri}: HDU {hdu.number}"
    image = hdu.compressed
    table = hdu.raw_header
    rowlen, nrows = int(table["NAXIS1"]), int(table["NAXIS2"])
    if nrows != prod(image.n_tiles):
        raise FitsFormatError(
            f"{where}: {nrows} tile rows for {prod(image.n_tiles)} tiles of shape"
            f" {image.tile_shape} over an image of shape {image.shape}"
        )
    body = hdu.file.reader.read_runs(
        hdu.layout.data_offset, np.zeros(1, np.int64), rowlen * nrows, hdu.file.fetch_options
    )
    rows = body.tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        blank = _CompBinTableHDU.fromstring(table.tostring().encode("ascii"))
        fields = blank.columns.dtype.fields
    per_tile = any(name != "COMPRESSED_DATA" for name in fields)
    theap = int(table.get("THEAP", nrows * rowlen))
    heap_start = hdu.layout.data_offset + theap
    heap_end = nrows * rowlen + int(table.get("PCOUNT", 0)) - theap
    itemsizes = {name: _itemsize(table, name) for name in TILE_COLUMNS if name in fields}
    placed = []
    for number in range(nrows):
        row = rows[number * rowlen : (number + 1) * rowlen]
        found = _payload(row, fields)
        if found is None:
            raise FitsFormatError(f"{where}: tile {number} has no bytes in {TILE_COLUMNS}")
        column, count, offset = found
        length = count * itemsizes[column]
        if offset < 0 or offset + length > heap_end:
            raise FitsFormatError(
                f"{where}: tile {number} at heap bytes [{offset}, {offset + length}) is"
                f" outside the heap of {heap_end} bytes (at offset {heap_start})"
            )
        corner = np.unravel_index(number, image.n_tiles)
        edge = any(
            (int(c) + 1) * t > n
            for c, t, n in zip(corner, image.tile_shape, image.shape, strict=True)
        )
        listed = per_tile or edge or column != "COMPRESSED_DATA"
        placed.append((heap_start + offset, length, listed, row))
    taken = {length for _, length, listed, _ in placed if not listed}
    tiles: dict[str, list[Any]] = {}
    refs: dict[str, Any] = {}
    for number, (start, length, listed, row) in enumerate(placed):
        first, count = start, length
        if listed:
            unique = _unique_count(start, length, size, taken)
            if unique is None:
                raise FitsFormatError(f"{where}: no unique read for tile {number}")
            first, count = unique
            taken.add(count)
            row_text = base64.b64encode(row).decode("ascii")
            tiles[str(count)] = [number, start - first, length, row_text]
        grid = np.unravel_index(number, image.n_tiles)
        refs[".".join(str(int(g)) for g in grid)] = [url, first, count]
    codec: dict[str, Any] = {"id": "cloudfits.fits_tile", "header": decoding_cards(table)}
    if tiles:
        codec["tiles"] = tiles
    return TiledArray(image.shape, image.tile_shape, image.dtype, codec), refs
