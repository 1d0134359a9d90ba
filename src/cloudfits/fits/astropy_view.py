"""What astropy makes of one HDU's header: its class, its data size, the header it shows.

cloudfits is exactly as lenient as astropy, so these answers come from astropy itself:
the header text is handed to astropy's HDU machinery (``_BaseHDU.readfrom``, the code
``fits.open`` runs for every HDU) with the data left unread. That picks the HDU class by
the first card, as astropy does (``SIMPLE`` makes a primary or random-groups HDU,
``XTENSION`` the extension type, case-sensitive; an unknown extension or ``SIMPLE = F``
is non-standard), sizes the data the way that class does, and applies the changes a
class makes to its header (random groups gain ``NAXIS1 = 0``). `presented_header` adds
the one change ``HDUList`` makes (``EXTEND = T`` in a primary header followed by
extensions).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from astropy.io import fits
from astropy.io.fits.hdu.base import NonstandardExtHDU, _BaseHDU, _CorruptedHDU, _NonstandardHDU
from astropy.utils.exceptions import AstropyUserWarning, AstropyWarning

from ..errors import FitsFormatError
from .cards import count_card_problem, standard_data_size, standard_kind
from .geometry import HDUKind

__all__ = [
    "BLOCK",
    "astropy_hdu",
    "data_nbytes",
    "hdu_kind_of",
    "presented_header",
    "standard_view",
]

BLOCK = 2880
_REST_OF_OBJECT = (_NonstandardHDU, _CorruptedHDU)
"""Classes whose data, for astropy, is everything after their header."""


def astropy_hdu(text: str, *, where: str, quiet: bool = False) -> Any:
    """The astropy HDU that ``fits.open`` makes of this header, its data not read.

    Parameters
    ----------
    text : str
        The header cards up to and including ``END`` (the header bytes, Latin-1).
    where : str
        The object, HDU and offset, for messages.
    quiet : bool
        Hide astropy's warnings about cards (a scan does; they come back when the
        header is used, as in astropy).

    Raises
    ------
    FitsFormatError
        When astropy cannot make an HDU of the header; the cause is chained.
    """
    blob = text.encode("latin-1")
    blob += b" " * (-len(blob) % BLOCK)
    problem = count_card_problem(blob)
    if problem is not None:
        raise FitsFormatError(f"{where}: malformed header: {problem}")
    try:
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore", AstropyWarning)
            # The buffer holds the header alone: astropy's "truncated" warning about the
            # missing data says nothing about the file (the scan checks the real size).
            warnings.filterwarnings("ignore", "File may have been truncated", AstropyUserWarning)
            # readfrom, not fromstring: fits.open's path, whose fast parser sizes the
            # data by the last of duplicated structural cards.
            return _BaseHDU.readfrom(io.BytesIO(blob), uint=True)
    except Exception as err:  # astropy signals a bad header with half a dozen types
        raise FitsFormatError(f"{where}: malformed header: {err}") from err


def standard_view(text: str) -> tuple[HDUKind, int] | None:
    """`hdu_kind_of` and `data_nbytes` of the HDU astropy makes of a standard header,
    without making it; None to ask astropy.

    Standard: printable, fixed-format size cards and a first card for which astropy
    picks its class by that card alone and sizes the data by the formula
    (`cloudfits.fits.cards.standard_data_size`), no random groups, no count astropy
    would choke on (`count_card_problem`), and for a binary table no ``ZIMAGE`` card
    anywhere (a tile-compressed image, or a header astropy may take for one, is left
    to astropy). For these, building astropy's HDU costs about half a millisecond and
    tells nothing more.
    """
    blob = text.encode("latin-1")
    name = standard_kind(blob)
    if name is None:
        return None
    kind = HDUKind(name)
    if kind is HDUKind.BINTABLE and b"ZIMAGE" in blob.upper():
        return None
    nbytes = standard_data_size(blob)
    if nbytes is None or count_card_problem(blob) is not None:
        return None
    return kind, nbytes


def hdu_kind_of(hdu: Any) -> HDUKind:
    """The `HDUKind` of an astropy HDU (a tile-compressed image as astropy opens it)."""
    if isinstance(hdu, fits.GroupsHDU):
        return HDUKind.GROUPS
    if isinstance(hdu, fits.PrimaryHDU):
        return HDUKind.PRIMARY
    if isinstance(hdu, fits.ImageHDU):
        return HDUKind.IMAGE
    if isinstance(hdu, fits.BinTableHDU):
        if fits.CompImageHDU.match_header(hdu.header):
            return HDUKind.COMPRESSED_IMAGE
        return HDUKind.BINTABLE
    if isinstance(hdu, fits.TableHDU):
        return HDUKind.TABLE
    return HDUKind.NONSTANDARD


def data_nbytes(hdu: Any, remaining: int, *, where: str) -> int:
    """Bytes of data after this header, as astropy counts them (without padding).

    ``remaining`` is the number of bytes after the header: a non-standard primary
    HDU (``SIMPLE = F``) or a corrupted one owns all of them.

    Raises
    ------
    FitsFormatError
        When astropy cannot size the data (the cause is chained: a `ValueError` is
        what astropy takes as the end of the HDUs), or the size is negative.
    """
    if isinstance(hdu, _REST_OF_OBJECT):
        return max(remaining, 0)
    try:
        size = hdu.size
    except Exception as err:  # astropy reads the size cards lazily, of any type
        raise FitsFormatError(f"{where}: cannot size the data: {err}") from err
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        # astropy takes a negative size and reads the next header inside this HDU's
        # data; an index of such an object would be wrong, so it is refused.
        raise FitsFormatError(
            f"{where}: the header gives a data size of {size!r} bytes ({_size_cards(hdu.header)})"
        )
    return size


def _size_cards(header: fits.Header) -> str:
    """The cards a data size is computed from, as they are in the header."""
    keys = ["BITPIX", "NAXIS", *(f"NAXIS{i}" for i in range(1, 1000)), "PCOUNT", "GCOUNT"]
    return ", ".join(f"{key} = {header[key]!r}" for key in keys if key in header)


def presented_header(hdu: Any, number: int, count: int) -> fits.Header:
    """The header astropy shows for HDU ``number`` of a file of ``count`` HDUs.

    The HDU's own header, with ``HDUList.update_extend``'s rule applied to a primary
    header: where extensions follow, ``EXTEND`` becomes ``T``, inserted after the last
    ``NAXISn`` when it is missing.
    """
    header: fits.Header = hdu.header
    if number != 0 or count < 2 or not isinstance(hdu, fits.PrimaryHDU):
        return header
    if "EXTEND" in header:
        if not header["EXTEND"]:
            header = header.copy()
            header["EXTEND"] = True
        return header
    header = header.copy()
    naxis = header.get("NAXIS", 0)
    after = f"NAXIS{naxis}" if isinstance(naxis, int) and naxis else "NAXIS"
    if after in header:
        header.set("EXTEND", True, after=after)
    else:  # no (or no last) NAXIS card: astropy's rule has nothing to go after
        header["EXTEND"] = True
    return header


def is_nonstandard(hdu: Any) -> bool:
    """True for the HDUs whose data astropy gives as raw bytes."""
    return isinstance(hdu, (NonstandardExtHDU, *_REST_OF_OBJECT))
