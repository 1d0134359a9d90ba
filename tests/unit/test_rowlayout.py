"""The row type of a plain binary table, told from its cards, is astropy's."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudfits.fits.geometry import HDUKind
from cloudfits.fits.rowlayout import plain_row_type
from cloudfits.remote.tables import column_definitions
from cloudfits.testing.corpus import available, default_dir

from ..conftest import CORPUS, CORPUS_DIR


def _astropy_row_type(header: fits.Header) -> tuple[tuple[str, ...], np.dtype]:
    coldefs = column_definitions(HDUKind.BINTABLE, header)
    return tuple(coldefs.names), np.dtype(coldefs.dtype)


def _binary_table_headers(path: Path) -> list[fits.Header]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            with fits.open(path, lazy_load_hdus=False, ignore_missing_simple=True) as hdus:
                return [h.header.copy() for h in hdus if h.header.get("XTENSION") == "BINTABLE"]
        except Exception:  # a file astropy itself cannot open has no astropy answer
            return []


def _corpus_paths() -> list[Path]:
    paths = [CORPUS_DIR / rel for rel in CORPUS]
    root = default_dir()
    return paths + [root / f.relative for f in available(root)]


def test_plain_tables_of_the_corpora_have_astropys_row_type() -> None:
    seen = {"plain": 0, "astropy": 0}
    for path in _corpus_paths():
        for header in _binary_table_headers(path):
            plain = plain_row_type(header)
            if plain is None:
                seen["astropy"] += 1
                continue
            seen["plain"] += 1
            assert plain == _astropy_row_type(header), path.name
    assert seen["plain"] > 20  # most of astropy's binary tables
    assert seen["astropy"] > 5  # TDIMn, variable-length and compressed tables


_FORMS = st.sampled_from("LXBIJKAEDCM")


@st.composite
def _columns(draw: st.DrawFn) -> list[fits.Column]:
    count = draw(st.integers(1, 8))
    names = draw(
        st.lists(
            st.text("abcXYZ_09", min_size=1, max_size=6),
            min_size=count,
            max_size=count,
            unique_by=str.lower,
        )
    )
    columns = []
    for name in names:
        letter = draw(_FORMS)
        repeat = draw(st.sampled_from(["", "1", "2", "3", "9", "16"]))
        columns.append(fits.Column(name=name, format=f"{repeat}{letter}"))
    return columns


@settings(max_examples=150, deadline=None)
@given(_columns())
def test_generated_plain_tables_have_astropys_row_type(columns: list[fits.Column]) -> None:
    header = fits.BinTableHDU.from_columns(columns, nrows=2).header
    plain = plain_row_type(header)
    assert plain is not None
    assert plain == _astropy_row_type(header)


def _header(**cards: object) -> fits.Header:
    columns = [fits.Column(name="A", format="E"), fits.Column(name="B", format="2J")]
    header = fits.BinTableHDU.from_columns(columns, nrows=3).header
    for key, value in cards.items():
        header[key] = value
    return header


@pytest.mark.parametrize(
    "cards",
    [
        {"TDIM2": "(2,1)"},  # shapes: astropy's
        {"TFORM2": "1PJ(5)"},  # variable-length
        {"TFORM2": "0J", "NAXIS1": 4},  # zero-width
        {"TFORM2": "2j"},  # not as the standard writes it
        {"TFORM2": "2J5"},  # options
        {"TTYPE2": "A"},  # a repeated name
        {"TTYPE2": 7},  # not text
        {"NAXIS1": 16},  # widths that do not add up
        {"TFIELDS": 3},  # a column without cards
    ],
    ids=str,
)
def test_other_tables_are_left_to_astropy(cards: dict[str, object]) -> None:
    assert plain_row_type(_header()) is not None
    assert plain_row_type(_header(**cards)) is None


def test_a_missing_name_is_left_to_astropy() -> None:
    header = _header()
    del header["TTYPE1"]
    assert plain_row_type(header) is None


def test_an_unparsable_card_is_left_to_astropy() -> None:
    text = _header().tostring()
    at = text.index("TFORM1  = ")
    text = text[:at] + "TFORM1  = 'E".ljust(80) + text[at + 80 :]
    assert plain_row_type(fits.Header.fromstring(text)) is None
