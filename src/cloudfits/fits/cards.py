"""Fast structural reading of raw header bytes: printable check, END card, data size.

Scanning an archive reads hundreds of headers per second, and astropy's
``Header.fromstring`` costs more than the network wait of one of them. What a scan
needs from a header is only where it ends and how many data bytes follow, which the
mandatory cards say; these functions read them from the raw bytes directly. Anything
unusual (a missing or repeated size card, a value that is not a plain integer, random
groups) makes `quick_data_size` answer ``None``, and the caller asks astropy, whose
answer, or error message, is then the one given.
"""

from __future__ import annotations

import re
from math import prod

import numpy as np

__all__ = [
    "END_CARD",
    "STANDARD_FIRST_CARDS",
    "count_card_problem",
    "end_card_index",
    "first_unprintable",
    "quick_data_size",
    "standard_data_size",
    "standard_kind",
]

CARD = 80
END_CARD = b"END" + b" " * 77
_PRINTABLE = bytes(range(32, 127))
_BITPIX = {8, 16, 32, 64, -32, -64}
_MAX_NAXIS = 999
_INTEGER = re.compile(rb" *([+-]?[0-9]{1,20}) *(?:/.*)?")
_COUNT_CARD = re.compile(rb"(?i)(NAXIS|TFIELDS) {0,3}= *([+-]?[0-9]+)")
_TEXT_SIZE_CARD = re.compile(rb"(?i)(BITPIX|NAXIS[0-9]{0,3}|PCOUNT|GCOUNT) *= *'")
_SIZE_KEYS = {b"BITPIX", b"NAXIS", b"PCOUNT", b"GCOUNT", b"GROUPS"}
_SIZE_PROBES = tuple(sorted(_SIZE_KEYS))
"""The size keywords, searched for in the keyword column (in a fixed order)."""
STANDARD_FIRST_CARDS = {
    b"SIMPLE  =                    T": "primary",
    b"XTENSION= 'IMAGE   '": "image",
    b"XTENSION= 'BINTABLE'": "bintable",
    b"XTENSION= 'TABLE   '": "table",
}
"""First cards for which astropy picks the HDU's class by that card alone and sizes
its data by the formula of `quick_data_size`, with the kind of HDU each gives (the
value of a `cloudfits.fits.geometry.HDUKind`); any other HDU is sized by astropy."""
_STANDARD_FIRST_CARDS = tuple(STANDARD_FIRST_CARDS)


def standard_kind(raw: bytes) -> str | None:
    """The kind of HDU (an `HDUKind` value) of a header starting with one of the
    `STANDARD_FIRST_CARDS`, or None."""
    return next((k for first, k in STANDARD_FIRST_CARDS.items() if raw.startswith(first)), None)


def first_unprintable(raw: bytes) -> int | None:
    """Index of the first byte outside printable ASCII (32 to 126), or None."""
    if not raw.translate(None, _PRINTABLE):
        return None
    return next(i for i, b in enumerate(raw) if not 32 <= b <= 126)


def count_card_problem(raw: bytes) -> str | None:
    """What is wrong with a size or count card of the header ``raw``, or None.

    astropy builds one list entry per axis or column that these cards announce, before
    anything else is checked: ``NAXIS = 1000000000000`` makes ``fits.open`` loop and
    allocate until the machine runs out of memory. The standard allows at most 999 of
    either, so a larger count is refused before astropy sees the header (a negative
    one astropy reads as none, and so does cloudfits). Likewise a size card that holds
    a string (``GCOUNT = 'IMAGE'``): astropy multiplies it by the others, which repeats
    the string as many times as the data has bytes, before the sum fails.
    """
    naxis = 0
    texts: list[tuple[int, str]] = []
    for i in range(0, len(raw), CARD):
        text = _TEXT_SIZE_CARD.match(raw, i, i + CARD)
        if text is not None:
            texts.append((i // CARD + 1, text.group(1).upper().decode()))
            continue
        match = _COUNT_CARD.match(raw, i, i + CARD)
        if match is None:
            continue
        count = int(match.group(2))
        key = match.group(1).upper().decode()
        if count > _MAX_NAXIS:
            return (
                f"{key} = {count} at card {i // CARD + 1}: the standard allows at most {_MAX_NAXIS}"
            )
        if key == "NAXIS":
            naxis = count
    for number, key in texts:
        # astropy multiplies the size cards' values: a string repeats itself
        # BITPIX * NAXIS1 * ... times (gigabytes) before the sum fails. An axis
        # beyond NAXIS takes no part, as for astropy.
        if key.startswith("NAXIS") and key != "NAXIS" and int(key[5:]) > naxis:
            continue
        return f"{key} holds a string at card {number}: a size card must be a number"
    return None


def end_card_index(raw: bytes, start: int = 0) -> int:
    """Offset of the first END card (``END`` and 77 blanks) at a card boundary, or -1."""
    at = raw.find(END_CARD, start)
    while at >= 0 and at % CARD:
        at = raw.find(END_CARD, at + 1)
    return at


def quick_data_size(raw: bytes) -> int | None:
    """Data bytes after the header ``raw`` (cards up to END), or None to ask astropy.

    ``|BITPIX| / 8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn)``, from the cards'
    fixed-format integer values.
    """
    found: dict[bytes, bytes] = {}
    for i in _size_card_offsets(raw):
        key = raw[i : i + 8].rstrip(b" ")
        if key in _SIZE_KEYS or key.startswith(b"NAXIS"):
            if key in found or raw[i + 8 : i + 10] != b"= ":
                return None
            found[key] = raw[i + 10 : i + CARD]
    if b"GROUPS" in found:
        return None
    values: dict[bytes, int] = {}
    for key, text in found.items():
        match = _INTEGER.fullmatch(text)
        if match is None:
            return None
        values[key] = int(match.group(1))
    bits = values.get(b"BITPIX")
    naxis = values.get(b"NAXIS")
    if bits not in _BITPIX or naxis is None or not 0 <= naxis <= _MAX_NAXIS:
        return None
    lengths = [values.get(b"NAXIS%d" % i, -1) for i in range(1, naxis + 1)]
    pcount, gcount = values.get(b"PCOUNT", 0), values.get(b"GCOUNT", 1)
    if min(lengths, default=0) < 0 or pcount < 0 or gcount < 0:
        return None
    if not lengths:
        return 0
    return abs(bits) // 8 * gcount * (pcount + prod(lengths))


def _size_card_offsets(raw: bytes) -> list[int] | range:
    """Offsets of the cards of ``raw`` whose keyword starts like a size card's.

    The keywords (the first 8 bytes of each card) are gathered into one short string
    and searched there, which costs a few microseconds where a loop over every card of
    a long header costs tens; a header that ends in a part of a card shorter than a
    keyword has every card looked at.
    """
    if 0 < len(raw) % CARD < 8:
        return range(0, len(raw), CARD)
    keys = np.frombuffer(raw, dtype="S8", count=len(raw) // 8)[:: CARD // 8].tobytes()
    offsets = []
    for probe in _SIZE_PROBES:
        at = keys.find(probe)
        while at >= 0:
            if not at % 8:
                offsets.append(at // 8 * CARD)
            at = keys.find(probe, at + 1)
    return offsets


def standard_data_size(raw: bytes) -> int | None:
    """`quick_data_size` of a printable header whose first card makes astropy size it by
    that formula (``SIMPLE = T``, or an ``IMAGE``, ``BINTABLE`` or ``TABLE`` extension in
    fixed format); None to ask astropy."""
    if not raw.startswith(_STANDARD_FIRST_CARDS) or first_unprintable(raw) is not None:
        return None
    return quick_data_size(raw)
