"""What a FITS header says about its data: kind, size, shape, type and scaling.

Everything here is a pure function of a header. The data size of an HDU is
``|BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn)``, with NAXIS1 left out of
the product for random groups; that is what lets an index locate every HDU by its
headers alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np
from astropy.io.fits import Header, VerifyError

from ..errors import FitsFormatError

__all__ = [
    "BITPIX_DTYPES",
    "HDUKind",
    "ImageScaling",
    "card_value",
    "data_size",
    "hdu_kind",
    "image_scaling",
    "image_shape",
    "int_card",
    "scale_image",
]

BITPIX_DTYPES: dict[int, str] = {8: "u1", 16: "i2", 32: "i4", 64: "i8", -32: "f4", -64: "f8"}
"""Numpy type codes of each BITPIX (big-endian in the file)."""

MAX_NAXIS = 999


class HDUKind(str, enum.Enum):
    """The kinds of HDU cloudfits tells apart."""

    PRIMARY = "primary"
    IMAGE = "image"
    GROUPS = "groups"
    BINTABLE = "bintable"
    TABLE = "table"
    COMPRESSED_IMAGE = "compressed_image"
    NONSTANDARD = "nonstandard"
    """An unknown extension, a primary HDU with ``SIMPLE = F`` or a corrupted one:
    astropy gives its data as raw bytes, and so does cloudfits (a 1-D uint8 array)."""

    @property
    def is_image(self) -> bool:
        """Images (tile-compressed ones included) and raw bytes, read with ``section``."""
        return self in (
            HDUKind.PRIMARY,
            HDUKind.IMAGE,
            HDUKind.COMPRESSED_IMAGE,
            HDUKind.NONSTANDARD,
        )

    @property
    def is_table(self) -> bool:
        """Tables; a tile-compressed image is stored as one but is not counted here."""
        return self in (HDUKind.BINTABLE, HDUKind.TABLE)

    @property
    def is_compressed(self) -> bool:
        return self is HDUKind.COMPRESSED_IMAGE


def card_value(header: Header, key: str, default: Any = None) -> Any:
    """``header.get(key, default)``, with a card astropy cannot parse as `FitsFormatError`.

    astropy parses card values lazily, so a malformed card surfaces only when read.
    """
    try:
        return header.get(key, default)
    except (VerifyError, ValueError) as err:
        raise FitsFormatError(f"card {key}: {err}") from err


def hdu_kind(header: Header) -> HDUKind:
    """Classify an HDU by its first card, as astropy does.

    ``SIMPLE`` first makes a primary (or random-groups) HDU, ``XTENSION`` first the
    extension it names; a ``SIMPLE`` card further down (as in Fermi LAT extensions)
    changes nothing. `cloudfits.astropy_view.hdu_kind_of` gives the same answer from
    astropy's own classes (this function serves callers that have only a header).
    """
    first = header.cards[0].keyword if len(header) else ""
    if first == "SIMPLE":
        if card_value(header, "GROUPS") is True:
            return HDUKind.GROUPS
        return HDUKind.PRIMARY if card_value(header, "SIMPLE") else HDUKind.NONSTANDARD
    if first != "XTENSION":
        return HDUKind.NONSTANDARD
    xtension = card_value(header, "XTENSION", "")
    xtension = xtension.rstrip() if isinstance(xtension, str) else xtension
    if xtension == "IMAGE":
        return HDUKind.IMAGE
    if xtension in ("BINTABLE", "A3DTABLE"):
        return HDUKind.COMPRESSED_IMAGE if card_value(header, "ZIMAGE") else HDUKind.BINTABLE
    if xtension == "TABLE":
        return HDUKind.TABLE
    return HDUKind.NONSTANDARD


def int_card(header: Header, key: str, default: int | None = None) -> int:
    """An integer card's value; `FitsFormatError` when it is missing or not an integer."""
    value = card_value(header, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FitsFormatError(f"{key} must be an integer, not {value!r}")
    return int(value)


def axis_lengths(header: Header) -> list[int]:
    """NAXIS1..NAXISn in FITS order, validated."""
    naxis = int_card(header, "NAXIS")
    if not 0 <= naxis <= MAX_NAXIS:
        raise FitsFormatError(f"NAXIS = {naxis} is outside 0..{MAX_NAXIS}")
    lengths = [int_card(header, f"NAXIS{i}") for i in range(1, naxis + 1)]
    for i, n in enumerate(lengths, 1):
        if n < 0:
            raise FitsFormatError(f"NAXIS{i} = {n} is negative")
    return lengths


def bitpix(header: Header) -> int:
    value = int_card(header, "BITPIX")
    if value not in BITPIX_DTYPES:
        raise FitsFormatError(f"BITPIX = {value} is not one of {sorted(BITPIX_DTYPES)}")
    return value


def data_size(header: Header) -> int:
    """Bytes of data that follow this header, without the padding to 2880 bytes.

    Raises
    ------
    FitsFormatError
        When a keyword the size depends on is missing, of the wrong type or out of range.
    """
    bits = bitpix(header)
    lengths = axis_lengths(header)
    if not lengths:
        return 0
    groups = hdu_kind(header) is HDUKind.GROUPS
    pcount = int_card(header, "PCOUNT", 0)
    gcount = int_card(header, "GCOUNT", 1)
    if pcount < 0 or gcount < 0:
        raise FitsFormatError(f"PCOUNT = {pcount}, GCOUNT = {gcount}: must not be negative")
    elements = prod(lengths[1:]) if groups else prod(lengths)
    return abs(bits) // 8 * gcount * (pcount + elements)


def image_shape(header: Header) -> tuple[int, ...]:
    """Numpy shape (C order: NAXISn first) of an image HDU."""
    return tuple(reversed(axis_lengths(header)))


@dataclass(frozen=True)
class ImageScaling:
    """How raw image values become the values astropy presents.

    Attributes
    ----------
    raw_dtype : numpy.dtype
        The type in the file (big-endian).
    dtype : numpy.dtype
        The type of the values returned (native byte order).
    bscale, bzero : float or int
        The BSCALE and BZERO cards (1 and 0 when absent).
    blank : int or None
        The BLANK value that becomes NaN, when it applies.
    unsigned : bool
        True when BZERO encodes unsigned integers (or signed bytes), which are
        converted exactly rather than scaled to floating point.
    """

    raw_dtype: np.dtype[np.generic]
    dtype: np.dtype[np.generic]
    bscale: float | int
    bzero: float | int
    blank: int | None
    unsigned: bool

    @property
    def is_identity(self) -> bool:
        return self.bscale == 1 and self.bzero == 0 and self.blank is None


def _number(header: Header, key: str, default: float | int, where: str) -> Any:
    """A card that must be a number (BSCALE, BZERO), as `FitsFormatError` if not."""
    value = card_value(header, key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise FitsFormatError(f"{where}card {key} = {value!r} is not a number")
    return value


def image_scaling(header: Header, *, where: str = "") -> ImageScaling:
    """Derive the scaling astropy applies to an image HDU's data.

    ``where`` (such as ``"s3://b/a.fits: HDU 1 at byte 2880: "``) starts the message of
    a malformed card's `FitsFormatError`.
    """
    bits = bitpix(header)
    raw = np.dtype(">" + BITPIX_DTYPES[bits])
    native = raw.newbyteorder("=")
    bscale = _number(header, "BSCALE", 1, where)
    bzero = _number(header, "BZERO", 0, where)
    blank = card_value(header, "BLANK")
    if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)) or bits < 0:
        blank = None
    if bscale == 1 and bzero == 0 and blank is None:
        return ImageScaling(raw, native, bscale, bzero, None, False)
    if bscale == 1 and bzero != 0:
        if bits == 8 and bzero == -128:
            return ImageScaling(raw, np.dtype("i1"), bscale, bzero, blank, True)
        if bits > 8 and bzero == 1 << (bits - 1):
            return ImageScaling(raw, np.dtype(f"u{bits // 8}"), bscale, bzero, blank, True)
    dtype: np.dtype[Any]
    if bits > 16:
        dtype = np.dtype("f8")
    elif bits > 0:
        dtype = np.dtype("f4")
    else:
        dtype = native
    return ImageScaling(raw, dtype, bscale, bzero, blank, False)


def scale_image(raw: np.ndarray, scaling: ImageScaling) -> np.ndarray:
    """Turn raw big-endian values into astropy's values, in native byte order.

    ``raw`` is consumed: it is byte-swapped in place when it can be.
    """
    if raw.dtype.isnative:
        native = raw
    else:
        native = raw.byteswap(inplace=True).view(raw.dtype.newbyteorder("="))
    if scaling.is_identity:
        return native
    if scaling.unsigned:
        # Flipping the sign bit is exactly "subtract BZERO" for these encodings.
        unsigned = native.view(native.dtype.str.replace("i", "u"))
        unsigned ^= np.array(1 << (native.dtype.itemsize * 8 - 1), dtype=unsigned.dtype)
        result: np.ndarray = unsigned.view(scaling.dtype)
        return result
    blanks = native == scaling.blank if scaling.blank is not None else None
    data = native if native.dtype == scaling.dtype else native.astype(scaling.dtype)
    if scaling.bscale != 1:
        np.multiply(data, scaling.bscale, data)
    if scaling.bzero != 0:
        data += scaling.bzero
    # astropy applies BLANK only when it is non-zero; keep its values exactly.
    if scaling.blank and blanks is not None:
        data[blanks] = np.nan
    return data
