"""The summary rows of ``info()``, as astropy's ``HDUList.info`` prints them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from ..fits.geometry import HDUKind, axis_lengths, card_value

if TYPE_CHECKING:
    from .hdulist import RemoteFITS, RemoteHDU

__all__ = ["hdu_repr", "hdu_summary", "print_info"]

_TYPE_NAMES = {
    HDUKind.PRIMARY: "PrimaryHDU",
    HDUKind.IMAGE: "ImageHDU",
    HDUKind.GROUPS: "GroupsHDU",
    HDUKind.BINTABLE: "BinTableHDU",
    HDUKind.TABLE: "TableHDU",
    HDUKind.COMPRESSED_IMAGE: "CompImageHDU",
}

# astropy's HDUList.info row layout.
_INFO_ROW = "{:3d}  {:10}  {:3} {:11}  {:5d}   {}   {}   {}"


def hdu_summary(hdu: RemoteHDU) -> tuple[int, str, Any, str, int, Any, str, str]:
    """``(number, name, ver, type, cards, dimensions, format, groups)`` of one HDU.

    Images show the type in the file and, when BSCALE/BZERO apply, what it rescales to;
    random groups their group count.
    """
    header = hdu.header
    extra = ""
    if hdu.kind.is_table:
        names = hdu.columns
        dims: Any = f"{hdu.shape[0]}R x {len(names)}C"
        forms = [str(card_value(header, f"TFORM{i}", "")) for i in range(1, len(names) + 1)]
        fmt = "[" + ", ".join(forms) + "]"
    else:
        naxes = axis_lengths(header)  # FitsFormatError for a hostile header
        scaling = hdu._scaling()
        fmt = scaling.raw_dtype.name if naxes and all(naxes) else ""
        if hdu.kind is HDUKind.GROUPS:
            naxes = naxes[1:]
            fmt = scaling.dtype.name if naxes and all(naxes) else ""
            groups, params = card_value(header, "GCOUNT", 1), card_value(header, "PCOUNT", 0)
            extra = f"{groups} Groups  {params} Parameters"
        elif fmt and (scaling.bscale != 1 or scaling.bzero != 0):
            rescaled = scaling.dtype if scaling.raw_dtype.kind != "f" else None
            if rescaled is not None:
                fmt += f" (rescales to {rescaled.name})"
        dims = tuple(naxes)
    return (
        hdu.number,
        hdu.name,
        card_value(header, "EXTVER", 1),  # as astropy shows it, even when not an integer
        _TYPE_NAMES.get(hdu.kind) or type(hdu._astropy).__name__,
        len(header),
        dims,
        fmt,
        extra,
    )


def hdu_repr(hdu: RemoteHDU) -> str:
    """``<RemoteHDU 1 'SCI' (image (64, 56) float32) of s3://...>``."""
    name = f" {hdu.name!r}" if hdu.name else ""
    try:
        what = f"{hdu.kind.value} {hdu.shape} {hdu.dtype}"
    except (ValueError, TypeError, KeyError):  # a malformed header still has a repr
        what = hdu.kind.value
    return f"<RemoteHDU {hdu.number}{name} ({what}) of {hdu.file.uri}>"


def print_info(fits: RemoteFITS, output: TextIO | bool | None) -> list[tuple[Any, ...]] | None:
    """Print the summary of every HDU (or return the rows, with ``output=False``)."""
    rows = [hdu.summary() for hdu in fits.hdus]
    if output is False:
        return rows
    stream = sys.stdout if output is None or output is True else output
    stream.write(f"Filename: {fits.uri}\n")
    stream.write("No.    Name      Ver    Type      Cards   Dimensions   Format\n")
    for row in rows:
        stream.write(_INFO_ROW.format(*row) + "\n")
    return None
