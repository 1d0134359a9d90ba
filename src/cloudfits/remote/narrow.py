"""Decode only the wanted columns of a binary table.

astropy builds a column object per column of a table HDU, whatever is read from it: a
light curve's two columns of a 55-column TESS table cost about 60 ms of CPU, most of it
for the 53 columns nobody asked for. When the wanted columns are plain fixed-width
fields, their bytes are packed into narrower rows and decoded under a header that
describes those columns only (their own TTYPE/TFORM/TUNIT/TNULL/TSCAL/TZERO/TDISP/TDIM
cards, renumbered), so astropy decodes them exactly as it would in the whole table.
Any other column keyword (a column WCS, TLMIN, ...) leaves the whole table to astropy.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.lib import recfunctions

from ..fits.cards import CARD

__all__ = ["narrow_rows"]

_COLUMN_CARD = re.compile(r"(TTYPE|TFORM|TUNIT|TNULL|TSCAL|TZERO|TDISP|TDIM)([0-9]+)")
# Other keywords that belong to one column (their meaning would be lost if renumbered
# by rule): TLMIN/TLMAX/TDMIN/TDMAX/TCTYP/... and the iCTYPn forms of column WCS.
_OTHER_COLUMN_CARD = re.compile(r"(T[A-Z]{2,4}[0-9]+|[0-9]+[A-Z]{2,5}[0-9]+[A-Z]?)")


def narrow_rows(
    header_text: str, row_dtype: np.dtype, columns: list[int], body: np.ndarray, nrows: int
) -> tuple[str, bytes] | None:
    """The header and data of a table of only ``columns`` (numbers from 0).

    ``row_dtype`` is astropy's record type of the whole row, one field per column;
    ``body`` holds ``nrows`` whole rows (bytes outside the wanted fields may be zero).
    Returns None when the header has column keywords this cannot carry over, or when
    the wanted columns are all of zero width (astropy counts the rows of a table of
    zero-byte rows as none).
    """
    names = list(row_dtype.names or ())
    keep = sorted({c + 1 for c in columns})
    renumber = {old: new for new, old in enumerate(keep, start=1)}
    cards = []
    for i in range(0, len(header_text), CARD):
        card = header_text[i : i + CARD]
        key = card[:8].rstrip()
        match = _COLUMN_CARD.fullmatch(key)
        if match is not None:
            number = int(match.group(2))
            if number in renumber:
                cards.append(f"{match.group(1)}{renumber[number]}".ljust(8) + card[8:])
            continue
        if _OTHER_COLUMN_CARD.fullmatch(key) or key == "THEAP":
            return None
        cards.append(card)
    rows = np.frombuffer(body, dtype=row_dtype, count=nrows)
    packed = recfunctions.repack_fields(rows[[names[n - 1] for n in keep]])
    width = packed.dtype.itemsize
    if width == 0 and nrows:
        return None
    values = {"NAXIS1": width, "NAXIS2": nrows, "PCOUNT": 0, "TFIELDS": len(keep)}
    for number, card in enumerate(cards):
        key = card[:8].rstrip()
        if key in values:
            cards[number] = f"{key:<8}= {values[key]:>20}".ljust(CARD)
    return "".join(cards), packed.tobytes()
