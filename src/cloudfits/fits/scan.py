"""Walk a FITS object HDU by HDU, reading header bytes only.

The scanner asks a ``read(start, end)`` callable for bytes. It reads speculatively
(a few blocks at a time, so small consecutive headers arrive in one request), then
only what is still missing, and jumps over each HDU's data by computing its size
from the header.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from astropy.io.fits import Header, VerifyError
from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning, AstropyWarning

from ..errors import FitsFormatError
from ..fetch.cost import DEFAULT_COST_MODEL
from .astropy_view import astropy_hdu, data_nbytes
from .cards import CARD, count_card_problem, standard_data_size
from .geometry import data_size
from .headerblocks import (
    BLOCK,
    HeaderBuffer,
    NotAnHDU,
    Reader,
    check_signature,
    padded,
    read_header,
)

__all__ = [
    "BLOCK",
    "CARD",
    "HDULayout",
    "HDUScanner",
    "header_data_size",
    "padded",
    "parse_header",
    "scan_fits",
]

DEFAULT_SPECULATIVE_READ = 16 * BLOCK
DEFAULT_MAX_HEADER_BYTES = 64 * 1024 * 1024
#: Most bytes read where a header starts after a data block: the cost model's
#: break-even (bytes that cost as much as one request), in whole blocks. A read of
#: ``speculative`` bytes there would mostly fetch the next HDU's data.
AFTER_DATA_READ = -(-DEFAULT_COST_MODEL.gap_bytes // BLOCK) * BLOCK


@dataclass(frozen=True)
class HDULayout:
    """Where one HDU lives in its object.

    Attributes
    ----------
    header_offset : int
        Byte offset of the first header card.
    data_offset : int
        Byte offset of the first data byte (the header is padded to 2880 bytes).
    data_size : int
        Bytes of data, without the padding that follows it.
    header : str
        The header cards, 80 characters each, up to and including ``END``.
    """

    header_offset: int
    data_offset: int
    data_size: int
    header: str


def parse_header(text: str, *, where: str) -> Header:
    """Parse header cards with astropy, turning its complaints into `FitsFormatError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            return Header.fromstring(text)
    except Exception as err:  # astropy raises several types for malformed cards
        raise FitsFormatError(f"{where}: malformed header: {err}") from err


def header_data_size(header: Header, *, where: str) -> int:
    """`data_size` of a header, with every complaint about it as a `FitsFormatError`."""
    try:
        return data_size(header)
    except (ValueError, VerifyError) as err:  # astropy parses card values lazily
        raise FitsFormatError(f"{where}: {err}") from err


def scan_fits(
    read: Reader,
    size: int,
    *,
    name: str,
    speculative: int = DEFAULT_SPECULATIVE_READ,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    initial: bytes = b"",
    after_data: int = 0,
) -> list[HDULayout]:
    """Locate every HDU of a FITS object from its headers, as ``fits.open`` does.

    The rules are astropy's (``HDUList`` reading one HDU after another); where astropy
    warns and goes on, so does this, with the same warning category and a message
    naming the object, the HDU and the offset.

    Parameters
    ----------
    read : callable
        ``read(start, end)`` returns the object's bytes ``[start, end)``.
    size : int
        The object's size in bytes.
    name : str
        The object's name, used in messages.
    speculative : int
        Bytes to read at once when a header starts (rounded up to whole blocks).
    max_header_bytes : int
        Largest header accepted; a larger one is taken as malformed input.
    initial : bytes
        The object's first bytes, when they were read already (they are not read
        again).
    after_data : int
        Bytes to read at once where a header starts after a data block (0: as
        ``speculative``). Indexing passes `AFTER_DATA_READ`, the cost model's
        break-even, to spare the data of small HDUs; `cloudfits.open` keeps the
        speculative read, one round trip rather than two for a long header.

    Returns
    -------
    list of HDULayout

    Raises
    ------
    FitsFormatError
        Where astropy cannot open the object, or where data that a header announces
        is missing; the message names the object, the HDU number and the byte offset.
    """
    scanner = HDUScanner(
        read,
        size,
        name=name,
        speculative=speculative,
        max_header_bytes=max_header_bytes,
        initial=initial,
        after_data=after_data,
    )
    while scanner.step() is not None:
        pass
    return scanner.layouts


class HDUScanner:
    """`scan_fits` one HDU at a time, so that a reader can stop where a request is due.

    Construction checks the first card (it reads the first bytes when ``initial``
    does not hold them); each `step` finds one more HDU. `in_hand` tells whether the
    next step can start without a request: ``cloudfits.open`` scans what its first
    read holds and leaves the headers after a large data block until they are asked
    for. The parameters are those of `scan_fits`.
    """

    def __init__(
        self,
        read: Reader,
        size: int,
        *,
        name: str,
        speculative: int = DEFAULT_SPECULATIVE_READ,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        initial: bytes = b"",
        after_data: int = 0,
    ) -> None:
        self._buffer = HeaderBuffer(
            read, size, padded(max(speculative, BLOCK)), initial, padded(after_data)
        )
        self._size = size
        self._name = name
        self._limit = max_header_bytes
        self._offset = 0
        self.layouts: list[HDULayout] = []
        """The HDUs found so far, in order."""
        self.done = False
        """True once the last HDU is found (or the scan stopped where astropy stops)."""
        check_signature(self._buffer, size, name=name)

    @property
    def in_hand(self) -> bool:
        """Whether the next header's first block is already read (False when done)."""
        end = min(self._offset + BLOCK, self._size)
        return not self.done and self._buffer.holds(self._offset, end)

    def step(self) -> HDULayout | None:
        """Find the next HDU; None when there is none (then `done` is True).

        Raises
        ------
        FitsFormatError
            As `scan_fits` does; the scan is then over (`done`).
        """
        if self.done:
            return None
        try:
            layout = self._next()
        except Exception:
            self.done = True
            raise
        if layout is None:
            self.done = True
            return None
        self.layouts.append(layout)
        self._offset = layout.data_offset + padded(layout.data_size)
        if self._offset >= self._size:
            self.done = True
        return layout

    def _next(self) -> HDULayout | None:
        buffer, size, name, offset = self._buffer, self._size, self._name, self._offset
        number = len(self.layouts)
        where = f"{name}: HDU {number} at byte {offset}"
        try:
            found = read_header(buffer, offset, size, where=where, limit=self._limit)
            if found is None:
                return None
            text, data_offset = found
            # A standard header's size cards give astropy's size; astropy itself
            # sizes the others, so its rules, and its diagnosis, are the ones applied.
            raw = text.encode("latin-1")
            problem = count_card_problem(raw)
            if problem is not None:
                raise FitsFormatError(f"{where}: malformed header: {problem}")
            quick = standard_data_size(raw)
            if quick is None:
                hdu = astropy_hdu(text, where=where, quiet=True)
                quick = data_nbytes(hdu, size - data_offset, where=where)
            nbytes = quick
        except NotAnHDU as err:
            if number == 0:
                raise FitsFormatError(f"{where}: {err}") from err
            warnings.warn(
                f"{where}: {err}; there may be extra bytes after the last HDU, or the"
                " object is corrupted: the HDUs before this one are read",
                VerifyWarning,
                stacklevel=4,
            )
            return None
        except FitsFormatError as err:
            cause = err.__cause__
            if number == 0 or not isinstance(cause, (ValueError, VerifyError)):
                raise
            warnings.warn(
                f"{where}: {cause}; the HDUs before this one are read", VerifyWarning, stacklevel=4
            )
            return None
        end = data_offset + nbytes
        if end > size:
            raise FitsFormatError(
                f"{where}: data [{data_offset}, {end}) runs past the end of the object"
                f" ({size} bytes): truncated file?"
            )
        if data_offset + padded(nbytes) > size:
            warnings.warn(
                f"{name}: File may have been truncated: actual file length ({size}) is"
                f" smaller than the expected size ({data_offset + padded(nbytes)}); HDU"
                f" {number} lacks {data_offset + padded(nbytes) - size} bytes of padding",
                AstropyUserWarning,
                stacklevel=4,
            )
        return HDULayout(offset, data_offset, nbytes, text)
