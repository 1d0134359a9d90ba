"""Byte-exact against astropy on every FITS file astropy ships.

Through file://, s3:// and, when the cloudfits-gcs and cloudfits-azure plugins are
installed, gs:// and az:// (skipped with the reason otherwise).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import basic_indices

import cloudfits
from cloudfits.fits.geometry import HDUKind

from ..astropy_compare import assert_tables_equal, same_values, table_read
from ..conftest import CORPUS, CORPUS_DIR

TRANSPORTS = ["file", "s3", "gs", "az"]
CORPUS_URI_FIXTURES = {"s3": "corpus_uri", "gs": "gcs_corpus_uri", "az": "azure_corpus_uri"}


@pytest.fixture(scope="module", params=TRANSPORTS)
def corpus_index(request: pytest.FixtureRequest) -> cloudfits.FitsIndex:
    """The corpus indexed locally (file://) or remotely from a local server."""
    if request.param == "file":
        return cloudfits.build_index(CORPUS_DIR)
    uri = request.getfixturevalue(CORPUS_URI_FIXTURES[request.param])
    return cloudfits.build_index(uri + "/")


@pytest.fixture(autouse=True)
def _quiet_astropy() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", cloudfits.CloudFitsWarning)
        yield


def _astropy(rel: str, *, compressed: bool = False) -> fits.HDUList:
    """The file as astropy opens it: tile-compressed images as tables, or as images."""
    return fits.open(CORPUS_DIR / rel, disable_image_compression=not compressed, memmap=False)


def _hdus(index: cloudfits.FitsIndex) -> Iterator[tuple[str, int, cloudfits.RemoteHDU]]:
    for rel in CORPUS:
        f = index.open(rel)
        for hdu in f:
            yield rel, hdu.number, hdu


def test_every_corpus_file_is_indexed(corpus_index: cloudfits.FitsIndex) -> None:
    assert sorted(corpus_index.paths) == CORPUS
    for rel in CORPUS:
        with _astropy(rel) as hdul:
            assert len(corpus_index.open(rel)) == len(hdul), rel


def test_every_header_equals_astropys(corpus_index: cloudfits.FitsIndex) -> None:
    """``header`` is the header astropy presents (``fits.open(path)[n].header``, its
    repairs included); ``raw_header`` the cards at the bytes astropy located."""
    before = cloudfits.stats.requests
    compared = 0
    for rel, number, hdu in _hdus(corpus_index):
        with _astropy(rel) as hdul:
            start, end = hdul[number]._header_offset, hdul[number]._data_offset
            raw = (CORPUS_DIR / rel).read_bytes()[start:end].decode("latin-1")
            stored = fits.Header.fromstring(raw)
            assert hdu.raw_header.tostring() == stored.tostring(), (rel, number)
            assert list(hdu.raw_header.items()) == list(stored.items()), (rel, number)
            if not hdu.kind.is_compressed:
                presented = hdul[number].header
                assert hdu.header.tostring() == presented.tostring(), (rel, number)
                assert list(hdu.header.items()) == list(presented.items()), (rel, number)
        if hdu.kind.is_compressed:
            with _astropy(rel, compressed=True) as hdul:
                assert isinstance(hdul[number], fits.CompImageHDU)
                assert hdu.header.tostring() == hdul[number].header.tostring(), (rel, number)
        compared += 1
    assert compared > 60
    assert cloudfits.stats.requests == before, "headers come from the index, not the store"


def test_every_image_in_full(corpus_index: cloudfits.FitsIndex) -> None:
    compared = 0
    for rel, number, hdu in _hdus(corpus_index):
        if not hdu.kind.is_image or not hdu.shape:
            continue
        with _astropy(rel, compressed=hdu.kind.is_compressed) as hdul:
            expected = hdul[number].data
            got = hdu.section[...]
            assert got.dtype == expected.dtype.newbyteorder("="), (rel, number)
            assert got.dtype.isnative
            assert same_values(got, expected), (rel, number)
            assert hdu.shape == expected.shape
            assert hdu.dtype == got.dtype
        compared += 1
    assert compared >= 10


def _hdu_cases(wanted: Callable[[Any], bool], *, compressed: bool = False) -> list[tuple[str, int]]:
    """(file, HDU number) of every corpus HDU that astropy opens as ``wanted`` says."""
    cases = []
    for rel in CORPUS:
        with _astropy(rel, compressed=compressed) as hdul:
            cases.extend((rel, number) for number, h in enumerate(hdul) if wanted(h))
    return cases


def _is_image(h: Any) -> bool:
    image = isinstance(h, (fits.PrimaryHDU, fits.ImageHDU))
    return image and not isinstance(h, fits.GroupsHDU) and bool(h.header.get("NAXIS"))


def _is_table(h: Any) -> bool:
    table = isinstance(h, (fits.BinTableHDU, fits.TableHDU, fits.GroupsHDU))
    return table and h.data is not None


def _is_compressed_image(h: Any) -> bool:
    return isinstance(h, fits.CompImageHDU) and bool(h.header.get("NAXIS"))


IMAGE_CASES = _hdu_cases(_is_image)
COMPRESSED_CASES = _hdu_cases(_is_compressed_image, compressed=True)


def test_the_corpus_has_compressed_images() -> None:
    assert len(COMPRESSED_CASES) >= 4
    algorithms = set()
    for rel, number in COMPRESSED_CASES:
        with _astropy(rel, compressed=True) as hdul:
            algorithms.add(hdul[number].compression_type)
    assert "RICE_1" in algorithms  # the other algorithms: tests/test_compressed.py


@pytest.mark.parametrize(("rel", "number"), IMAGE_CASES + COMPRESSED_CASES)
def test_images_under_random_keys(corpus_index: cloudfits.FitsIndex, rel: str, number: int) -> None:
    hdu = corpus_index.open(rel)[number]
    with _astropy(rel, compressed=hdu.kind.is_compressed) as hdul:
        data = hdul[number].data

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(basic_indices(data.shape, allow_newaxis=True, allow_ellipsis=True))
    def check(key: Any) -> None:
        got = hdu.section[key]
        expected = data[key]
        assert np.shape(got) == np.shape(expected)
        assert same_values(got, expected)
        assert got.dtype == np.asarray(expected).dtype.newbyteorder("=")

    check()


TABLE_CASES = _hdu_cases(_is_table)


@pytest.mark.parametrize(("rel", "number"), TABLE_CASES)
def test_tables_rows_and_columns(corpus_index: cloudfits.FitsIndex, rel: str, number: int) -> None:
    hdu = corpus_index.open(rel)[number]
    expected = table_read(CORPUS_DIR / rel, number)
    read = hdu.read_tile_table if hdu.kind.is_compressed else hdu.read
    if not hdu.kind.is_compressed:
        assert hdu.shape == (len(expected),)
    assert_tables_equal(read(), expected)
    n = len(expected)
    if n == 0:
        return
    names = expected.colnames

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        rows=st.one_of(
            st.builds(
                slice,
                st.integers(-n - 1, n + 1) | st.none(),
                st.integers(-n - 1, n + 1) | st.none(),
                st.integers(-3, 3).filter(bool) | st.none(),
            ),
            st.lists(st.integers(-n, n - 1), max_size=2 * n + 1),
            st.lists(st.booleans(), min_size=n, max_size=n),
        ),
        columns=st.none() | st.lists(st.sampled_from(names), min_size=1, unique=True),
    )
    def check(rows: Any, columns: list[str] | None) -> None:
        got = read(rows=rows, columns=columns)
        selector = rows if isinstance(rows, slice) else np.asarray(rows, dtype=None)
        if isinstance(rows, list) and rows and isinstance(rows[0], bool):
            selector = np.asarray(rows, dtype=bool)
        elif isinstance(rows, list):
            selector = np.asarray(rows, dtype=np.int64)
        want = expected[selector]
        if columns is not None:
            want = want[columns]
        assert_tables_equal(got, want)

    check()


def test_cell_and_column_access(corpus_index: cloudfits.FitsIndex) -> None:
    hdu = corpus_index.open("table.fits")[1]
    expected = table_read(CORPUS_DIR / "table.fits", 1)
    assert hdu[0, "V_mag"] == expected["V_mag"][0]
    assert hdu[1, 0] == expected[expected.colnames[0]][1]
    assert list(hdu["target"]) == list(expected["target"])
    assert_tables_equal(hdu[0:2], expected[0:2])
    assert hdu.kind is HDUKind.BINTABLE


def test_compressed_images_keep_their_tile_table(corpus_index: cloudfits.FitsIndex) -> None:
    hdu = corpus_index.open("comp.fits")[1]
    assert hdu.kind is HDUKind.COMPRESSED_IMAGE
    with _astropy("comp.fits") as hdul:
        expected = Table.read(hdul[1])
    assert_tables_equal(hdu.read_tile_table(rows=slice(0, 5)), expected[0:5])
    assert hdu.columns == expected.colnames
    with pytest.raises(TypeError, match="read_tile_table"):
        hdu.read(rows=[0])
    with _astropy("comp.fits", compressed=True) as hdul:
        image = hdul[1].data
    got = hdu.read()
    assert got.dtype == image.dtype.newbyteorder("=")
    assert same_values(got, image)
