"""Variable-length array (P and Q) columns: only the heap bytes of the rows read."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cloudfits
from cloudfits.fetch import merge_ranges
from cloudfits.testing.seaweedfs import S3Server

from ..astropy_compare import assert_tables_equal

NROWS = 300


def _columns(rng: np.random.Generator) -> list[fits.Column]:
    lengths = rng.integers(0, 40, NROWS)
    lengths[::17] = 0
    return [
        fits.Column("ID", "J", array=np.arange(NROWS)),
        fits.Column(
            "FLUX", "PE()", unit="Jy", array=[rng.normal(size=n).astype("f4") for n in lengths]
        ),
        fits.Column("WAVE", "QD()", array=[rng.normal(size=n // 2) for n in lengths]),
        fits.Column("COUNTS", "PJ()", array=[rng.integers(-9, 9, n % 7) for n in lengths]),
        fits.Column("SHORT", "QI()", array=[rng.integers(-9, 9, n % 5) for n in lengths]),
        fits.Column("FLAGS", "PL()", array=[rng.random(n % 3) > 0.5 for n in lengths]),
        fits.Column("BYTES", "PB()", array=[rng.integers(0, 255, n % 4) for n in lengths]),
        fits.Column("NAME", "PA()", array=[f"source-{i}" * (i % 3) for i in range(NROWS)]),
        fits.Column("CPLX", "PM()", array=[rng.normal(size=n % 3) + 1j for n in lengths]),
    ]


@pytest.fixture(scope="module")
def vla_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vla") / "vla.fits"
    rng = np.random.default_rng(3)
    table = fits.BinTableHDU.from_columns(_columns(rng), name="SPECTRA")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


@pytest.fixture(scope="module", params=["file", "s3"])
def vla_hdu(request: pytest.FixtureRequest, vla_file: Path) -> cloudfits.RemoteHDU:
    if request.param == "file":
        return cloudfits.open(vla_file)[1]
    server: S3Server = request.getfixturevalue("s3_server")
    server.create_bucket("vla")
    server.client().upload_file(str(vla_file), "vla", "vla.fits")
    return cloudfits.open("s3://vla/vla.fits")[1]


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        yield


def _expected(path: Path) -> Table:
    with fits.open(path) as hdul:
        return Table.read(hdul[1])


def test_rows_under_random_selections(vla_hdu: cloudfits.RemoteHDU, vla_file: Path) -> None:
    expected = _expected(vla_file)
    assert_tables_equal(vla_hdu.read(), expected)
    names = expected.colnames

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        rows=st.one_of(
            st.builds(
                slice,
                st.integers(-NROWS, NROWS) | st.none(),
                st.integers(-NROWS, NROWS) | st.none(),
                st.integers(-40, 40).filter(bool) | st.none(),
            ),
            st.lists(st.integers(-NROWS, NROWS - 1), max_size=30),
        ),
        columns=st.none() | st.lists(st.sampled_from(names), min_size=1, unique=True),
    )
    def check(rows: Any, columns: list[str] | None) -> None:
        got = vla_hdu.read(rows=rows, columns=columns)
        selector = rows if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        want = expected[selector]
        if columns is not None:
            want = want[columns]
        assert_tables_equal(got, want)

    check()


def test_a_few_rows_fetch_only_their_heap_bytes(vla_file: Path) -> None:
    f = cloudfits.open(vla_file)
    hdu = f[1]
    with fits.open(vla_file) as hdul:
        heap = int(hdul[1].header["PCOUNT"])
        rowlen = int(hdul[1].header["NAXIS1"])
        expected = Table.read(hdul[1])[[5, 250]]
    f.reset_stats()
    got = hdu.read(rows=[5, 250], max_gap=0)  # no gap bridged: exactly the bytes needed
    assert_tables_equal(got, expected)
    row_heap = sum(
        np.asarray(got[name][i]).nbytes
        for name in ("FLUX", "WAVE", "COUNTS", "SHORT", "FLAGS", "BYTES", "CPLX")
        for i in range(2)
    ) + sum(np.asarray(got["NAME"][i]).size for i in range(2))  # one byte per character
    assert f.stats.bytes == 2 * rowlen + row_heap
    f.reset_stats()
    assert_tables_equal(hdu.read(rows=[5, 250]), expected)
    assert f.stats.bytes < heap / 3  # gaps under max_gap are bridged


def test_shared_and_bad_descriptors(tmp_path: Path) -> None:
    """Rows may share heap bytes; a descriptor past the heap is an error, not garbage."""
    path = tmp_path / "shared.fits"
    table = fits.BinTableHDU.from_columns(
        [fits.Column("X", "PJ()", array=[np.arange(n, dtype="i4") for n in (3, 5, 2, 4)])]
    )
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with fits.open(path) as hdul:
        data_offset = hdul[1]._data_offset
        heap_size = int(hdul[1].header["PCOUNT"])
    raw = bytearray(path.read_bytes())
    # Row 2 points into the middle of row 1's elements.
    raw[data_offset + 16 : data_offset + 24] = np.array([3, 12 + 4], dtype=">i4").tobytes()
    path.write_bytes(bytes(raw))
    with fits.open(path) as hdul:
        expected = Table.read(hdul[1])
    assert list(expected["X"][2]) == [1, 2, 3]
    hdu = cloudfits.open(path)[1]
    for rows in ([2], [1, 2], [2, 1, 0], [3, 2]):
        assert_tables_equal(hdu.read(rows=rows), expected[rows])

    raw[data_offset + 16 : data_offset + 24] = np.array([3, heap_size - 4], dtype=">i4").tobytes()
    path.write_bytes(bytes(raw))
    with pytest.raises(cloudfits.FitsFormatError, match="outside the heap"):
        cloudfits.open(path)[1].read(rows=[2])


def test_merge_ranges() -> None:
    starts = np.array([10, 0, 5, 30, 20, 40], dtype=np.int64)
    ends = np.array([15, 5, 8, 35, 30, 40], dtype=np.int64)
    merged = merge_ranges(starts, ends)
    assert merged[0].tolist() == [0, 10, 20]
    assert merged[1].tolist() == [8, 15, 35]
