"""Walk a FITS object HDU by HDU, reading header bytes only.

The scanner asks a ``read(start, end)`` callable for bytes. It reads speculatively
(a few blocks at a time, so small consecutive headers arrive in one request), then
only what is still missing, and jumps over each HDU's data by computing its size
from the header.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from astropy.io.fits import Header, VerifyError
from astropy.io.fits.header import HEADER_END_RE
from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning, AstropyWarning

from ..errors import FitsFormatError
from ..fetch.cost import DEFAULT_COST_MODEL
from .astropy_view import astropy_hdu, data_nbytes
from .cards import END_CARD, count_card_problem, end_card_index, standard_data_size
from .geometry import data_size

__all__ = [
    "BLOCK",
    "CARD",
    "HDULayout",
    "header_data_size",
    "padded",
    "parse_header",
    "scan_fits",
]

BLOCK = 2880
CARD = 80
FITS_SIGNATURE = b"SIMPLE  =                    T"
DEFAULT_SPECULATIVE_READ = 16 * BLOCK
DEFAULT_MAX_HEADER_BYTES = 64 * 1024 * 1024
#: Most bytes read where a header starts after a data block: the cost model's
#: break-even (bytes that cost as much as one request), in whole blocks. A read of
#: ``speculative`` bytes there would mostly fetch the next HDU's data.
AFTER_DATA_READ = -(-DEFAULT_COST_MODEL.gap_bytes // BLOCK) * BLOCK

Reader = Callable[[int, int], bytes]


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


def padded(size: int) -> int:
    """``size`` rounded up to whole 2880-byte blocks."""
    return -(-size // BLOCK) * BLOCK


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


class _Buffer:
    """Bytes read so far from one place in the object, extended on demand.

    A request that starts inside what is held is answered by appending what is
    missing, at least doubling the held bytes, so a long header costs few requests
    and no byte is fetched twice.
    """

    def __init__(
        self, read: Reader, size: int, speculative: int, initial: bytes = b"", after_data: int = 0
    ) -> None:
        self._read = read
        self._size = size
        self._speculative = speculative
        self._after_data = min(after_data or speculative, speculative)
        self._start = 0
        self._data = initial[:size]

    def get(self, start: int, end: int, *, where: str) -> bytes:
        end = min(end, self._size)
        have_end = self._start + len(self._data)
        if not (self._start <= start and end <= have_end):
            if self._start <= start <= have_end and self._data:
                want = max(end - have_end, len(self._data), self._speculative)
                self._data += self._fetch(have_end, have_end + want, where=where)
            else:
                self._start = start
                # The object's start gets the speculative read; a header after a data
                # block gets ``after_data`` (the cost model's break-even when indexing).
                ahead = (
                    self._speculative if start == 0 else min(self._speculative, self._after_data)
                )
                self._data = self._fetch(start, max(end, start + ahead), where=where)
        return self._data[start - self._start : end - self._start]

    def _fetch(self, start: int, end: int, *, where: str) -> bytes:
        end = min(end, self._size)
        data = self._read(start, end)
        if len(data) != end - start:
            raise FitsFormatError(
                f"{where}: asked for bytes [{start}, {end}) and got {len(data)} bytes"
            )
        return data


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
    buffer = _Buffer(read, size, padded(max(speculative, BLOCK)), initial, padded(after_data))
    _check_signature(buffer, size, name=name)
    layouts: list[HDULayout] = []
    offset = 0
    while offset < size:
        number = len(layouts)
        where = f"{name}: HDU {number} at byte {offset}"
        try:
            found = _read_header(buffer, offset, size, where=where, limit=max_header_bytes)
            if found is None:
                break
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
        except _NotAnHDU as err:
            if number == 0:
                raise FitsFormatError(f"{where}: {err}") from err
            warnings.warn(
                f"{where}: {err}; there may be extra bytes after the last HDU, or the"
                " object is corrupted: the HDUs before this one are read",
                VerifyWarning,
                stacklevel=2,
            )
            break
        except FitsFormatError as err:
            cause = err.__cause__
            if number == 0 or not isinstance(cause, (ValueError, VerifyError)):
                raise
            warnings.warn(
                f"{where}: {cause}; the HDUs before this one are read", VerifyWarning, stacklevel=2
            )
            break
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
                stacklevel=2,
            )
        layouts.append(HDULayout(offset, data_offset, nbytes, text))
        offset = data_offset + padded(nbytes)
    return layouts


class _NotAnHDU(Exception):
    """What astropy takes as the end of the HDUs (a ValueError while reading a header)."""


def _check_signature(buffer: _Buffer, size: int, *, name: str) -> None:
    """astropy's test of the first card (``HDUList._readfrom``)."""
    where = f"{name}: HDU 0 at byte 0"
    if size == 0:
        raise FitsFormatError(f"{where}: the object is empty")
    first = buffer.get(0, min(CARD, size), where=where)
    if first[:29] == FITS_SIGNATURE[:29] and first[29:30] in (b"T", b"F"):
        return
    if re.match(rb"SIMPLE\s*=\s*[T|F]", first):
        warnings.warn(
            f"{where}: Found a SIMPLE card but its format doesn't respect the FITS Standard",
            VerifyWarning,
            stacklevel=3,
        )
        return
    raise FitsFormatError(
        f"{where}: no SIMPLE card found, this object does not appear to be a FITS file"
        f" (it starts with {first[:20]!r})"
    )


def _find_end(block: bytes, *, where: str) -> tuple[int, bytes]:
    """astropy's search for END in one block (``Header._find_end_card``), with its warnings.

    Returns the END card's offset in the block (-1 if none) and the block with an
    invalid END card replaced by a valid one.
    """
    for match in HEADER_END_RE.finditer(block):
        at = match.start()
        if at % CARD:
            continue
        if match.group("invalid"):
            trailing = block[at + 3 : at + CARD - 3].rstrip()
            if trailing:
                message = (
                    f"Unexpected bytes trailing END keyword: {repr(trailing).lstrip('b')};"
                    " these bytes will be replaced with spaces on write."
                )
            else:
                message = (
                    "Missing padding to end of the FITS block after the END keyword;"
                    " additional spaces will be appended to the file upon writing to pad"
                    f" out to {BLOCK} bytes."
                )
            warnings.warn(f"{where}: {message}", AstropyUserWarning, stacklevel=5)
            block = block[:at] + END_CARD + block[at + CARD :]
        return at, block
    return -1, block


def _strict_header(buffer: _Buffer, offset: int, size: int, *, where: str, limit: int) -> bytes:
    """The header blocks up to an exact END card, as astropy's fast parser reads them
    (``_utils.parse_header``); empty where that parser gives up (a short block, a
    non-ASCII byte, no END before the end of the object) and astropy reads again."""
    blocks: list[bytes] = []
    start = offset
    while start + BLOCK <= size:
        if start - offset >= limit:
            raise FitsFormatError(f"{where}: header longer than {limit} bytes without END")
        block = buffer.get(start, start + BLOCK, where=where)
        if not block.isascii():
            return b""
        blocks.append(block)
        start += BLOCK
        if end_card_index(block) >= 0:
            return b"".join(blocks)
    return b""


def _read_header(
    buffer: _Buffer, offset: int, size: int, *, where: str, limit: int
) -> tuple[str, int] | None:
    """The header text at ``offset`` (cards up to END) and where its data starts.

    None where astropy stops without complaint: nothing left, or only zero bytes
    (with astropy's warning). `_NotAnHDU` where astropy stops with a warning.
    """
    raw = _strict_header(buffer, offset, size, where=where, limit=limit)
    if raw:
        blocks = [raw]
        end = end_card_index(raw)
        is_eof = False
    else:
        blocks, end = _lenient_header(buffer, offset, size, where=where, limit=limit)
        raw = b"".join(blocks)
        is_eof = end < 0
        end = end if end < 0 else len(raw) - len(blocks[-1]) + end
    if raw.endswith(b"\0"):
        if is_eof and not raw.strip(b"\0"):
            warnings.warn(
                f"{where}: Unexpected extra padding at the end of the file ({len(raw)} zero"
                " bytes). This padding may not be preserved when saving changes.",
                AstropyUserWarning,
                stacklevel=3,
            )
            return None
        warnings.warn(
            f"{where}: Header block contains null bytes instead of spaces for padding, and"
            " is not FITS-compliant. Nulls may be replaced with spaces upon writing.",
            AstropyUserWarning,
            stacklevel=3,
        )
    if len(raw) % BLOCK:
        raise _NotAnHDU(f"Header size is not multiple of {BLOCK}: {len(raw)}")
    if end < 0:
        raise FitsFormatError(
            f"{where}: header has no END card before the end of the object ({size} bytes)"
        )
    return raw[: end + CARD].decode("latin-1"), offset + len(raw)


def _lenient_header(
    buffer: _Buffer, offset: int, size: int, *, where: str, limit: int
) -> tuple[list[bytes], int]:
    """The blocks astropy's full parser reads (``Header._from_blocks``), the last one
    possibly short, and the END card's offset in the last block (-1: none)."""
    blocks: list[bytes] = []
    start = offset
    end = -1
    while start < size:
        if start - offset >= limit:
            raise FitsFormatError(f"{where}: header longer than {limit} bytes without END")
        block = buffer.get(start, min(start + BLOCK, size), where=where)
        end, block = _find_end(block, where=where)
        blocks.append(block)
        start += len(block)
        if end >= 0:
            break
    return blocks, end
