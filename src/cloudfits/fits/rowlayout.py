"""The row type of a plain binary table, from its TTYPEn and TFORMn cards.

astropy builds its column definitions (``ColDefs``) through an HDU made of the
header, some 6 ms for the 55 columns of a TESS cube's frame table, before a read of
two of its columns can be planned. For a table of fixed-width columns without TDIMn
cards, the row type astropy gives is a pure function of each column's name, repeat
count and type letter, made here in a fraction of that time. Anything else (variable-
length or zero-width columns, TDIMn shapes, missing or repeated names, widths that do
not add up to NAXIS1, a card astropy cannot parse) answers None, and astropy decides.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from astropy.io.fits.verify import VerifyError

__all__ = ["ELEMENT_BYTES", "plain_row_type"]

# astropy's row type of each letter (ColDefs.dtype: native byte order).
_ELEMENT_TYPES = {
    "L": "i1",
    "B": "u1",
    "I": "i2",
    "J": "i4",
    "K": "i8",
    "E": "f4",
    "D": "f8",
    "C": "c8",
    "M": "c16",
}

ELEMENT_BYTES = {"A": 1, **{letter: np.dtype(t).itemsize for letter, t in _ELEMENT_TYPES.items()}}
"""Bytes per element of each TFORM type letter (X, bits, is counted apart)."""

# A repeat count and a type letter, as the standard writes a fixed-width TFORM.
_TFORM = re.compile(r"([0-9]*)([LXBIJKAEDCM])")


def plain_row_type(header: Any) -> tuple[tuple[str, ...], np.dtype[Any]] | None:
    """Column names and astropy's row type of a plain binary table, or None.

    Parameters
    ----------
    header : astropy.io.fits.Header
        A BINTABLE header.
    """
    if any(key.startswith("TDIM") for key in header):
        return None
    try:
        count, rowlen = header.get("TFIELDS"), header.get("NAXIS1")
        if not (_is_count(count) and _is_count(rowlen)):
            return None
        names: list[str] = []
        formats: list[Any] = []
        offset = 0
        for number in range(1, count + 1):
            name, form = header.get(f"TTYPE{number}"), header.get(f"TFORM{number}")
            if not (isinstance(name, str) and name and isinstance(form, str)):
                return None
            element = _element(form)
            if element is None:
                return None
            names.append(name)
            formats.append(element)
            offset += element.itemsize
    except (VerifyError, ValueError):  # a card astropy cannot parse: its definitions say how
        return None
    if offset != rowlen or len(set(names)) != len(names):
        return None
    return tuple(names), np.dtype({"names": names, "formats": formats})


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _element(form: str) -> np.dtype[Any] | None:
    """astropy's type of one cell of TFORM ``form``; None for any but a plain form."""
    match = _TFORM.fullmatch(form)
    if match is None:
        return None
    repeat = int(match[1]) if match[1] else 1
    letter = match[2]
    if repeat == 0:
        return None
    if letter == "A":
        return np.dtype(f"S{repeat}")
    if letter == "X":
        return np.dtype(("u1", ((repeat + 7) // 8,)))
    element = np.dtype(_ELEMENT_TYPES[letter])
    return element if repeat == 1 else np.dtype((element, (repeat,)))
