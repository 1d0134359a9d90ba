"""Walk a FITS object HDU by HDU, reading header bytes only.

The scanner asks a ``read(start, end)`` callable for bytes. It reads speculatively
(a few blocks at a time, so small consecutive headers arrive in one request), then
only what is still missing, and jumps over each HDU's data by computing its size
from the header.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from astropy.io.fits import Header, VerifyError
from astropy.utils.exceptions import AstropyWarning

from ..errors import CloudFitsWarning, FitsFormatError
from .cards import end_card_index, first_unprintable, quick_data_size
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
DEFAULT_SPECULATIVE_READ = 16 * BLOCK
DEFAULT_MAX_HEADER_BYTES = 64 * 1024 * 1024

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


def _end_card_index(block: bytes) -> int:
    """Index of the END card (``END`` and 77 blanks) within a 2880-byte block, or -1."""
    return end_card_index(block)


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

    def __init__(self, read: Reader, size: int, speculative: int, initial: bytes = b"") -> None:
        self._read = read
        self._size = size
        self._speculative = speculative
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
                self._data = self._fetch(start, max(end, start + self._speculative), where=where)
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
) -> list[HDULayout]:
    """Locate every HDU of a FITS object from its headers.

    Parameters
    ----------
    read : callable
        ``read(start, end)`` returns the object's bytes ``[start, end)``.
    size : int
        The object's size in bytes.
    name : str
        The object's name, used in error messages.
    speculative : int
        Bytes to read at once when a header starts (rounded up to whole blocks).
    max_header_bytes : int
        Largest header accepted; a larger one is taken as malformed input.
    initial : bytes
        The object's first bytes, when they were read already (they are not read
        again).

    Returns
    -------
    list of HDULayout

    Raises
    ------
    FitsFormatError
        When the object is truncated or a header is malformed; the message names the
        object, the HDU number and the byte offset.
    """
    buffer = _Buffer(read, size, padded(max(speculative, BLOCK)), initial)
    layouts: list[HDULayout] = []
    offset = 0
    if size < BLOCK:
        raise FitsFormatError(
            f"{name}: HDU 0 at byte 0: the object has {size} bytes, less than one"
            f" {BLOCK}-byte FITS block"
        )
    while offset < size:
        number = len(layouts)
        where = f"{name}: HDU {number} at byte {offset}"
        if number > 0 and _is_trailing_padding(buffer, offset, size, name=name, where=where):
            break
        layout = _scan_one(buffer, offset, size, number, where=where, limit=max_header_bytes)
        layouts.append(layout)
        offset = layout.data_offset + padded(layout.data_size)
    if offset > size:
        # Every data byte is there, but not the padding after them: astropy warns of
        # a truncated file, and so do we (the data read the same).
        warnings.warn(
            f"{name}: the object ({size} bytes) ends {offset - size} bytes before the end"
            f" of the padding of HDU {len(layouts) - 1}: truncated file?",
            CloudFitsWarning,
            stacklevel=2,
        )
    return layouts


def _is_trailing_padding(buffer: _Buffer, offset: int, size: int, *, name: str, where: str) -> bool:
    """True where the bytes after the last HDU are not another extension."""
    head = buffer.get(offset, min(offset + BLOCK, size), where=where)
    if head.startswith(b"XTENSION=") or b"XTENSION=".startswith(head):
        return False  # an extension, perhaps truncated: scan it (and report truncation)
    if head.strip(b"\0") and head.strip(b" "):
        warnings.warn(
            f"{name}: {size - offset} bytes at byte {offset} after the last HDU are not an"
            " extension and are ignored",
            CloudFitsWarning,
            stacklevel=4,
        )
    return True


def _scan_one(
    buffer: _Buffer, offset: int, size: int, number: int, *, where: str, limit: int
) -> HDULayout:
    first = b"SIMPLE  =" if number == 0 else b"XTENSION="
    block_start = offset
    while True:
        if block_start + BLOCK > size:
            raise FitsFormatError(
                f"{where}: header has no END card before the end of the object ({size} bytes)"
            )
        if block_start - offset >= limit:
            raise FitsFormatError(f"{where}: header longer than {limit} bytes without END")
        block = buffer.get(block_start, block_start + BLOCK, where=where)
        if block_start == offset and not block.startswith(first):
            raise FitsFormatError(
                f"{where}: expected the header to start with {first.decode()!r},"
                f" found {block[:20]!r}"
            )
        end = _end_card_index(block)
        if end >= 0:
            break
        block_start += BLOCK
    raw = buffer.get(offset, block_start + end + CARD, where=where)
    bad = first_unprintable(raw)
    if bad is not None:
        raise FitsFormatError(
            f"{where}: header byte {offset + bad} is not printable ASCII ({raw[bad]:#04x})"
        )
    text = raw.decode("ascii")
    # The mandatory cards give the size; astropy parses the header only when they
    # are unusual, so that its diagnosis is the one reported.
    nbytes = quick_data_size(raw)
    if nbytes is None:
        nbytes = header_data_size(parse_header(text, where=where), where=where)
    data_offset = block_start + BLOCK
    if data_offset + nbytes > size:
        raise FitsFormatError(
            f"{where}: data [{data_offset}, {data_offset + nbytes}) runs past the end of"
            f" the object ({size} bytes): truncated file?"
        )
    return HDULayout(offset, data_offset, nbytes, text)
