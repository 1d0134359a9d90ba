"""The fast structural header reading agrees with astropy, or defers to it."""

from __future__ import annotations

import re
import warnings
from math import prod
from typing import Any

import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from hypothesis import given
from hypothesis import strategies as st

from cloudfits.fits.cards import end_card_index, first_unprintable, quick_data_size
from cloudfits.fits.geometry import data_size
from cloudfits.testing.generated import GeneratedCube

from ..conftest import CORPUS, CORPUS_DIR


def _raw_headers(path: str) -> list[bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        with fits.open(path) as hdul:
            return [h.header.tostring(padding=False).encode("ascii") for h in hdul]


@pytest.mark.parametrize("rel", CORPUS)
def test_quick_data_size_equals_astropy_or_defers(rel: str) -> None:
    for raw in _raw_headers(str(CORPUS_DIR / rel)):
        quick = quick_data_size(raw)
        header = fits.Header.fromstring(raw.decode("ascii"))
        if quick is None:
            assert "GROUPS" in header or header.get("NAXIS", 0) > 0, rel
        else:
            assert quick == data_size(header), rel


def test_the_tess_layout_is_read_quickly() -> None:
    for raw, (_, _, size, text) in zip(
        GeneratedCube(1).headers, GeneratedCube(1).layout(), strict=True
    ):
        assert quick_data_size(raw[: len(text)]) == size


@pytest.mark.parametrize(
    ("card", "why"),
    [
        ("NAXIS1  =                 1e3", "not an integer"),
        ("NAXIS1  =                  -10", "negative"),
        ("BITPIX  =                    7", "not a BITPIX"),
        ("NAXIS   =                 1000", "too many axes"),
        ("NAXIS1    200", "no value indicator"),
        ("GROUPS  =                    T", "random groups"),
        ("NAXIS2  =                   10", "a repeated card"),
    ],
)
def test_unusual_cards_defer_to_astropy(card: str, why: str) -> None:
    header = fits.Header([("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2)])
    header["NAXIS1"], header["NAXIS2"] = 100, 10
    cards = [c.image for c in header.cards]
    key = card[:8].rstrip()
    if why == "a repeated card" or not any(c[:8].rstrip() == key for c in cards):
        cards.append(card.ljust(80))
    else:
        cards = [card.ljust(80) if c[:8].rstrip() == key else c for c in cards]
    raw = "".join(cards).encode("ascii") + b"END".ljust(80)
    assert quick_data_size(raw) is None, why


@given(st.binary(min_size=0, max_size=400))
def test_first_unprintable_matches_the_byte_loop(raw: bytes) -> None:
    expected = next((i for i, b in enumerate(raw) if not 32 <= b <= 126), None)
    assert first_unprintable(raw) == expected


def test_end_card_only_at_card_boundaries() -> None:
    end = b"END".ljust(80)
    block = b" " * 40 + end + b" " * 40 + end
    assert end_card_index(block) == 160
    assert end_card_index(b" " * 80) == -1


def _quick_data_size_card_by_card(raw: bytes) -> int | None:
    """`quick_data_size` as it read headers before: one card after another."""
    found: dict[bytes, bytes] = {}
    for i in range(0, len(raw), 80):
        key = raw[i : i + 8].rstrip(b" ")
        if key in {b"BITPIX", b"NAXIS", b"PCOUNT", b"GCOUNT", b"GROUPS"} or key.startswith(
            b"NAXIS"
        ):
            if key in found or raw[i + 8 : i + 10] != b"= ":
                return None
            found[key] = raw[i + 10 : i + 80]
    if b"GROUPS" in found:
        return None
    values: dict[bytes, int] = {}
    for key, text in found.items():
        match = re.fullmatch(rb" *([+-]?[0-9]{1,20}) *(?:/.*)?", text)
        if match is None:
            return None
        values[key] = int(match.group(1))
    bits, naxis = values.get(b"BITPIX"), values.get(b"NAXIS")
    if bits not in {8, 16, 32, 64, -32, -64} or naxis is None or not 0 <= naxis <= 999:
        return None
    lengths = [values.get(b"NAXIS%d" % i, -1) for i in range(1, naxis + 1)]
    pcount, gcount = values.get(b"PCOUNT", 0), values.get(b"GCOUNT", 1)
    if min(lengths, default=0) < 0 or pcount < 0 or gcount < 0:
        return None
    return abs(bits) // 8 * gcount * (pcount + prod(lengths)) if lengths else 0


def _card(key: str, value: object) -> bytes:
    return f"{key:<8}= {value!s:>20}".ljust(80).encode("ascii")


_EXTRA_CARDS = [
    _card("EXTNAME", "'SCI'"),
    _card("XNAXIS", 5),
    _card("NAXISA", 5),
    _card("NAXIS1", 4),  # once more: astropy decides
    _card("BITPIXEL", 16),
    b"COMMENT NAXIS1  =                    9 is text here".ljust(80),
    b"HISTORY GCOUNT  =                    9".ljust(80),
    b"NAXIS2    10".ljust(80),  # no value indicator
]


@given(
    st.sampled_from([8, 16, -32, 64, 7]),
    st.lists(st.integers(1, 20), max_size=3),
    st.sampled_from([None, 0, 7, -1]),
    st.sampled_from([None, 1, 3]),
    st.lists(st.sampled_from(_EXTRA_CARDS), max_size=3),
    st.randoms(use_true_random=False),
    st.sampled_from([b"", b"", b"END".ljust(80), b"NAXIS", b"x" * 11]),
)
def test_the_keyword_search_gives_what_reading_every_card_gave(
    bitpix: int,
    lengths: list[int],
    pcount: int | None,
    gcount: int | None,
    extra: list[bytes],
    order: Any,
    tail: bytes,
) -> None:
    cards = [_card("BITPIX", bitpix), _card("NAXIS", len(lengths))]
    cards += [_card(f"NAXIS{i}", n) for i, n in enumerate(lengths, 1)]
    cards += [_card(k, v) for k, v in (("PCOUNT", pcount), ("GCOUNT", gcount)) if v is not None]
    cards += extra
    order.shuffle(cards)
    raw = _card("SIMPLE", "T") + b"".join(cards) + tail
    assert quick_data_size(raw) == _quick_data_size_card_by_card(raw)


def test_the_keyword_search_sizes_a_standard_header() -> None:
    header = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2)])
    header["NAXIS1"], header["NAXIS2"] = 100, 10
    header["COMMENT"] = "NAXIS1  =                 1000 in a comment is no size card"
    raw = header.tostring(padding=False).encode("ascii")
    assert quick_data_size(raw) == _quick_data_size_card_by_card(raw) == 4000
