"""The fast structural header reading agrees with astropy, or defers to it."""

from __future__ import annotations

import warnings

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
