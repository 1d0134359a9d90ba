"""Finding an HDU of a `RemoteFITS` by number, EXTNAME or ``(EXTNAME, EXTVER)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import IndexFormatError
from ..fits.astropy_view import data_nbytes

if TYPE_CHECKING:
    from .hdulist import RemoteFITS, RemoteHDU

__all__ = ["check_layout", "has_hdu", "hdu_number", "no_data_reason"]


def hdu_number(f: RemoteFITS, key: int | str | tuple[str, int]) -> int:
    """The number of the HDU that ``key`` names, as `astropy.io.fits.HDUList` finds it.

    Raises
    ------
    IndexError
        For a number out of range.
    KeyError
        For a name (or name and version) that no HDU has.
    """
    if isinstance(key, (int, np.integer)):
        number = int(key)
        if number >= 0 and f.scanned(number + 1):
            return number  # the scan went no further than this HDU
        count = len(f)
        if not -count <= number < count:
            raise IndexError(f"{f.uri} has {count} HDU{'' if count == 1 else 's'}; no HDU {number}")
        return number % count
    name, ver = (key, None) if isinstance(key, str) else key
    for hdu in f:  # the first match, scanning no further (as astropy's HDUList)
        if hdu.name.upper() == str(name).upper() and (ver is None or hdu.ver == ver):
            return hdu.number
    raise KeyError(f"{f.uri} has no HDU named {key!r}")


def has_hdu(f: RemoteFITS, key: object) -> bool:
    """Whether ``key`` names an HDU of ``f`` (False for keys of other kinds)."""
    valid = isinstance(key, (int, np.integer, str)) or (
        isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)
    )
    if not valid or isinstance(key, bool):
        return False
    try:
        hdu_number(f, key)  # type: ignore[arg-type]
    except (IndexError, KeyError):
        return False
    return True


def no_data_reason(hdu: RemoteHDU) -> str:
    """Why a `RemoteHDU` has no ``.data``, and what to use instead."""
    return (
        f"{hdu!r} has no .data: that would read all {hdu.size:,} data bytes at once;"
        " read part of an image with .section[...] (or all of it with .read()), table"
        " rows with .read(rows=, columns=), or a whole HDU with cloudfits.getdata"
    )


def check_layout(hdu: RemoteHDU) -> None:
    """Refuse to read when the indexed layout disagrees with the header (an edited index)."""
    layout = hdu.layout
    where = f"{hdu.file.uri}: HDU {hdu.number} at byte {layout.header_offset}"
    view = hdu._standard_view
    expected = (
        view[1]
        if view is not None
        else data_nbytes(hdu._astropy, hdu.file.size - layout.data_offset, where=where)
    )
    if expected != layout.data_size:
        raise IndexFormatError(
            f"{where}: the index says {layout.data_size} data bytes, the header says {expected}"
        )
