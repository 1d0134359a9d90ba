"""Header blocks of a FITS object, read as astropy reads them.

`HeaderBuffer` holds the bytes read so far where a header starts; `read_header`
finds the cards up to END with the rules of astropy's two header parsers (the fast
one, and the lenient one it falls back to), with astropy's warnings;
`check_signature` is astropy's test of the first card. `cloudfits.fits.scan` walks
the HDUs with them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

from astropy.io.fits.header import HEADER_END_RE
from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning

from ..errors import FitsFormatError
from .cards import CARD, END_CARD, end_card_index

__all__ = ["BLOCK", "HeaderBuffer", "NotAnHDU", "check_signature", "padded", "read_header"]

BLOCK = 2880
FITS_SIGNATURE = b"SIMPLE  =                    T"

Reader = Callable[[int, int], bytes]


def padded(size: int) -> int:
    """``size`` rounded up to whole 2880-byte blocks."""
    return -(-size // BLOCK) * BLOCK


class HeaderBuffer:
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

    def holds(self, start: int, end: int) -> bool:
        """Whether bytes ``[start, end)`` are held (no request needed to get them)."""
        return self._start <= start and end <= self._start + len(self._data)

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


class NotAnHDU(Exception):
    """What astropy takes as the end of the HDUs (a ValueError while reading a header)."""


def check_signature(buffer: HeaderBuffer, size: int, *, name: str) -> None:
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


def _strict_header(
    buffer: HeaderBuffer, offset: int, size: int, *, where: str, limit: int
) -> bytes:
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


def read_header(
    buffer: HeaderBuffer, offset: int, size: int, *, where: str, limit: int
) -> tuple[str, int] | None:
    """The header text at ``offset`` (cards up to END) and where its data starts.

    None where astropy stops without complaint: nothing left, or only zero bytes
    (with astropy's warning). `NotAnHDU` where astropy stops with a warning.
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
        raise NotAnHDU(f"Header size is not multiple of {BLOCK}: {len(raw)}")
    if end < 0:
        raise FitsFormatError(
            f"{where}: header has no END card before the end of the object ({size} bytes)"
        )
    return raw[: end + CARD].decode("latin-1"), offset + len(raw)


def _lenient_header(
    buffer: HeaderBuffer, offset: int, size: int, *, where: str, limit: int
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
