"""The range engine: cost model, coalescing, reads into the output, per-column table runs."""

from __future__ import annotations

import itertools
import math
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
from cloudfits.fetch import (
    DEFAULT_MAX_GAP,
    DEFAULT_MAX_PART,
    FetchOptions,
    ObjectReader,
    coalesce,
    shared_pool,
    split_parts,
)
from cloudfits.fetch.cost import DEFAULT_COST_MODEL, CostModel
from cloudfits.providers.file import FileConfig, FileProvider
from cloudfits.remote.colruns import cell_runs, cheaper_by_columns, column_groups
from cloudfits.testing.proxy import RequestRecord, dependent_round_trips

from ..conftest import CORPUS, CORPUS_DIR


def _as_bytes(values: object) -> object:
    """Text as Table.read gives it (bytes): cloudfits returns text columns that way."""
    array = np.asarray(values)
    return np.char.encode(array, "latin-1") if array.dtype.kind == "U" else array


@pytest.fixture(autouse=True)
def _quiet_astropy() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", cloudfits.CloudFitsWarning)
        yield


# ----------------------------------------------------------------------------- cost model


def test_defaults_come_from_the_cost_model() -> None:
    model = CostModel()
    # S3: $0.0004 per 1,000 GETs, $0.09 per GB: one request costs as much as 4,444 bytes.
    assert model.gap_bytes == 4444 == DEFAULT_MAX_GAP
    # A part transfers for four request latencies: 4 * 0.03 s * 50 MB/s.
    assert model.part_bytes == 6_000_000 == DEFAULT_MAX_PART
    assert FetchOptions().cost == DEFAULT_COST_MODEL
    assert CostModel(request_price=1e-6, byte_price=1e-9).gap_bytes == 1000


def test_seconds_counts_waves_and_parallel_transfer() -> None:
    model = CostModel(request_seconds=0.02, bandwidth=1e6)
    assert model.seconds(0, 0, 8) == 0.0
    assert model.seconds(8, 8_000, 8) == pytest.approx(0.02 + 0.001)  # one wave, 8 lanes
    assert model.seconds(9, 9_000, 8) == pytest.approx(0.04 + 9_000 / 8e6)  # two waves
    requests = np.array([1, 8, 9, 17])
    nbytes = np.array([1_000, 8_000, 9_000, 17_000])
    expected = [model.seconds(int(r), int(b), 8) for r, b in zip(requests, nbytes, strict=True)]
    assert model.seconds_array(requests, nbytes, 8) == pytest.approx(expected)


def test_fetch_options_overrides_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFITS_MAX_GAP", "10")
    monkeypatch.setenv("CLOUDFITS_MAX_CONCURRENCY", "3")
    options = FetchOptions.from_environment()
    assert (options.max_gap, options.max_part, options.max_concurrency) == (10, DEFAULT_MAX_PART, 3)
    assert options.updated(max_part=5).max_part == 5
    assert options.updated() is options
    with pytest.raises(ValueError, match="max_concurrency"):
        options.updated(max_concurrency=0)


def test_many_runs_merge_when_waves_cost_more_than_gaps() -> None:
    # 100 runs of 100 bytes, 10 kB apart: above max_gap, but 100 requests at a
    # concurrency of 10 are 10 round trips; 10 kB is 0.2 ms at 50 MB/s, a round trip 30 ms.
    offsets = np.arange(100, dtype=np.int64) * 10_100
    plain = coalesce(offsets, 100, DEFAULT_MAX_GAP)
    assert len(plain) == 100
    merged = coalesce(offsets, 100, DEFAULT_MAX_GAP, max_concurrency=10)
    assert len(merged) <= 10
    cost = DEFAULT_COST_MODEL
    assert cost.seconds(len(merged), sum(s.end - s.start for s in merged), 10) < cost.seconds(
        100, 100 * 100, 10
    )
    # Gaps of 100 MB are never worth a round trip: nothing more is merged.
    far = np.arange(100, dtype=np.int64) * 100_000_000
    assert len(coalesce(far, 100, DEFAULT_MAX_GAP, max_concurrency=10)) == 100
    # Within one wave nothing beyond max_gap is merged.
    assert len(coalesce(offsets[:10], 100, DEFAULT_MAX_GAP, max_concurrency=10)) == 10


runs_strategy = st.lists(
    st.tuples(st.integers(0, 20_000), st.integers(1, 3_000)), min_size=1, max_size=60
)


def _layout(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    offsets, lengths, position = [], [], 0
    for gap, length in pairs:
        position += gap
        offsets.append(position)
        lengths.append(length)
        position += length
    return np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64)


@settings(max_examples=150, deadline=None)
@given(
    pairs=runs_strategy,
    max_gap=st.integers(0, 10_000),
    concurrency=st.none() | st.integers(1, 16),
)
def test_coalesce_covers_every_run_once(
    pairs: list[tuple[int, int]], max_gap: int, concurrency: int | None
) -> None:
    offsets, lengths = _layout(pairs)
    spans = coalesce(offsets, lengths, max_gap, max_concurrency=concurrency)
    assert spans[0].first_run == 0
    assert spans[-1].last_run == offsets.size
    for a, b in itertools.pairwise(spans):
        assert a.last_run == b.first_run
        assert a.end < b.start
    for span in spans:
        assert span.start == offsets[span.first_run]
        assert span.end == offsets[span.last_run - 1] + lengths[span.last_run - 1]
    if concurrency is None:
        assert all(b.start - a.end >= max_gap for a, b in itertools.pairwise(spans))
    else:
        cost = DEFAULT_COST_MODEL
        plain = coalesce(offsets, lengths, max_gap)
        size = sum(s.end - s.start for s in spans)
        plain_size = sum(s.end - s.start for s in plain)
        assert len(spans) <= len(plain)
        assert cost.seconds(len(spans), size, concurrency) <= cost.seconds(
            len(plain), plain_size, concurrency
        )


@settings(deadline=None)
@given(start=st.integers(0, 10**9), length=st.integers(0, 10**7), part=st.integers(100, 10**6))
def test_split_parts_are_near_equal_and_cover_the_span(start: int, length: int, part: int) -> None:
    parts = split_parts(start, start + length, part)
    assert len(parts) == math.ceil(length / part)
    if parts:
        assert parts[0][0] == start
        assert parts[-1][1] == start + length
        sizes = [b - a for a, b in parts]
        assert max(sizes) <= part
        assert max(sizes) - min(sizes) <= 1
        assert all(p[1] == q[0] for p, q in itertools.pairwise(parts))


def test_shared_pool_is_long_lived() -> None:
    assert shared_pool(5) is shared_pool(5)
    assert shared_pool(5) is not shared_pool(6)


# ----------------------------------------------------------------------------- reads


class GetRangeOnly:
    """The file provider without ``get_range_into``: the engine must fall back."""

    def __init__(self, provider: FileProvider) -> None:
        self._provider = provider

    def get_range(self, path: str, start: int, end: int) -> bytes:
        return self._provider.get_range(path, start, end)


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("blob") / "blob.bin"
    data = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    return path, data


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 5_000), st.integers(1, 4_000)), min_size=1, max_size=40
    ),
    max_gap=st.integers(0, 6_000),
    max_part=st.integers(1, 9_000),
    concurrency=st.integers(1, 8),
    into=st.booleans(),
)
def test_read_runs_assembles_exactly(
    blob: tuple[Path, bytes],
    pairs: list[tuple[int, int]],
    max_gap: int,
    max_part: int,
    concurrency: int,
    into: bool,
) -> None:
    path, data = blob
    offsets, lengths = _layout(pairs)
    if int(offsets[-1] + lengths[-1]) > len(data):
        return
    provider: Any = FileProvider(FileConfig())
    if not into:
        provider = GetRangeOnly(provider)
    reader = ObjectReader(provider, str(path), str(path))
    options = FetchOptions(max_gap=max_gap, max_part=max_part, max_concurrency=concurrency)
    got = reader.read_runs(0, offsets, lengths, options)
    expected = b"".join(data[o : o + n] for o, n in zip(offsets, lengths, strict=True))
    assert got.tobytes() == expected


def _check_into(provider: Any, path: str, data: bytes) -> None:
    """``get_range_into`` agrees with ``get_range`` and fills the caller's buffer in place."""
    size = len(data)
    for start, length in ((0, 1), (0, 2880), (1_000, 50_000), (size - 10, 10), (size - 10, 100)):
        buffer = bytearray(b"\xee" * length)
        view = memoryview(buffer)
        got = provider.get_range_into(path, start, view)
        want = data[start : start + length]
        assert got == len(want)
        assert bytes(buffer[:got]) == want
        assert bytes(buffer[got:]) == b"\xee" * (length - got)  # nothing beyond the end
        assert provider.get_range(path, start, start + length) == want
    assert provider.get_range_into(path, size, memoryview(bytearray(10))) == 0
    assert provider.get_range_into(path, 5, memoryview(bytearray(0))) == 0
    # Many reads in a row: connections return to the pool in a usable state.
    for k in range(30):
        buffer = bytearray(1000)
        assert provider.get_range_into(path, k * 1000, memoryview(buffer)) == 1000
        assert bytes(buffer) == data[k * 1000 : (k + 1) * 1000]


def test_readinto_file(blob: tuple[Path, bytes]) -> None:
    path, data = blob
    _check_into(FileProvider(FileConfig()), str(path), data)


@pytest.mark.s3
def test_readinto_s3(blob: tuple[Path, bytes], s3_server: Any) -> None:
    _, data = blob
    s3_server.create_bucket("engine")
    s3_server.client().put_object(Bucket="engine", Key="blob.bin", Body=data)
    provider, key = cloudfits.get_registry().for_uri("s3://engine/blob.bin")
    _check_into(provider, key, data)


def test_readinto_https(blob: tuple[Path, bytes]) -> None:
    from cloudfits.testing.http import StaticHTTPServer

    path, data = blob
    with StaticHTTPServer(path.parent) as server:
        provider, rel = cloudfits.get_registry().for_uri(f"{server.url}/{path.name}")
        _check_into(provider, rel, data)
    with StaticHTTPServer(path.parent, ignore_ranges=True) as server:
        provider, rel = cloudfits.get_registry().for_uri(f"{server.url}/{path.name}")
        buffer = bytearray(100)
        assert provider.get_range_into(rel, 1_000, memoryview(buffer)) == 100
        assert bytes(buffer) == data[1_000:1_100]


# ----------------------------------------------------------------------------- tables


def _bintables() -> list[tuple[str, int]]:
    cases = []
    for rel in CORPUS:
        with fits.open(CORPUS_DIR / rel, disable_image_compression=True) as hdul:
            for number, hdu in enumerate(hdul):
                if type(hdu) is fits.BinTableHDU and hdu.data is not None and len(hdu.columns):
                    heap = any(str(c.format).lstrip("0123456789")[:1] in "PQ" for c in hdu.columns)
                    if not heap and len(hdu.data):
                        cases.append((rel, number))
    return cases


BINTABLES = _bintables()


@pytest.mark.parametrize(("rel", "number"), BINTABLES)
def test_column_runs_equal_astropy(rel: str, number: int) -> None:
    """Per-column runs decode to astropy's values, and fetch only the columns' bytes."""
    with fits.open(CORPUS_DIR / rel, disable_image_compression=True) as hdul:
        try:
            expected = Table.read(hdul[number])
        except (TypeError, ValueError):
            expected = Table(hdul[number].data)
        widths = {name: hdul[number].data.dtype[name].itemsize for name in expected.colnames}
    f = cloudfits.open(CORPUS_DIR / rel)
    hdu = f[number]
    names = expected.colnames
    n = len(expected)

    @settings(max_examples=15, deadline=None)
    @given(
        columns=st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True),
        rows=st.none() | st.lists(st.integers(0, n - 1), min_size=1, max_size=n),
    )
    def check(columns: list[str], rows: list[int] | None) -> None:
        before = f.stats.bytes
        # A huge concurrency makes per-column runs cost one wave, like whole rows.
        got = hdu.read(rows=rows, columns=columns, max_gap=0, max_concurrency=100_000)
        want = expected if rows is None else expected[np.asarray(rows)]
        for name in columns:
            assert (
                np.array_equal(
                    np.ma.getdata(got[name]), _as_bytes(np.ma.getdata(want[name])), equal_nan=True
                )
                if got[name].dtype.kind in "fc"
                else np.array_equal(np.ma.getdata(got[name]), _as_bytes(np.ma.getdata(want[name])))
            ), name
            assert got[name].unit == want[name].unit
        nrows = n if rows is None else len(set(rows))
        fetched = f.stats.bytes - before
        row_bytes = nrows * int(hdu.header["NAXIS1"])
        column_bytes = nrows * sum(widths[c] for c in columns)
        # Zero-width columns have no bytes to fetch alone: whole rows are read.
        assert fetched == (min(row_bytes, column_bytes) if column_bytes else row_bytes)

    check()


def test_column_runs_only_when_no_more_waves(tmp_path: Path) -> None:
    """Wide rows, few columns: per-column runs; many rows past the concurrency: rows."""
    n, m = 40, 2_000
    columns = [
        fits.Column("ID", "K", array=np.arange(n)),
        fits.Column("FLUX", f"{m}E", array=np.ones((n, m), "f4")),
        fits.Column("IVAR", f"{m}E", array=np.full((n, m), 2, "f4")),
        fits.Column("SKY", f"{m}E", array=np.zeros((n, m), "f4")),
    ]
    path = tmp_path / "wide.fits"
    fits.BinTableHDU.from_columns(columns).writeto(path)
    f = cloudfits.open(path)
    hdu = f[1]
    groups = column_groups(hdu, ["FLUX", "IVAR"], int(hdu.header["NAXIS1"]))
    assert groups == [(8, 8 + 2 * 4 * m)]  # adjacent columns form one run per row
    offsets, lengths = cell_runs(np.arange(3), 100, [(0, 8), (20, 30)])
    assert offsets.tolist() == [0, 20, 100, 120, 200, 220]
    assert lengths.tolist() == [8, 10] * 3
    rows = np.arange(n)
    rowlen = int(hdu.header["NAXIS1"])
    assert groups is not None
    assert cheaper_by_columns(rows, rowlen, groups, FetchOptions(max_concurrency=64))
    # Every column: nothing to save, whole rows.
    every = column_groups(hdu, hdu.columns, rowlen)
    assert every == [(0, rowlen)]
    assert not cheaper_by_columns(rows, rowlen, every, FetchOptions())
    # 40 runs at a concurrency of 8: the cost model merges the 8 kB gaps (0.2 ms of
    # transfer each) rather than wait for five waves; still fewer bytes than rows.
    before = f.stats.snapshot()
    hdu.read(columns=["FLUX"], max_concurrency=8)
    after = f.stats.snapshot()
    assert after["requests"] - before["requests"] <= 8
    assert n * 4 * m <= after["bytes"] - before["bytes"] < n * rowlen
    before = f.stats.snapshot()
    table = hdu.read(columns=["IVAR", "FLUX"], max_concurrency=64)
    after = f.stats.snapshot()
    assert after["bytes"] - before["bytes"] == n * 2 * 4 * m
    assert after["requests"] - before["requests"] == n
    assert table.colnames == ["IVAR", "FLUX"]
    assert np.all(table["FLUX"] == 1)
    assert np.all(table["IVAR"] == 2)


# ----------------------------------------------------------------------------- round trips


def _record(started: float, finished: float) -> RequestRecord:
    return RequestRecord("GET", "/", {}, 206, 0, 0, started, finished)


def test_dependent_round_trips_counts_chains() -> None:
    assert dependent_round_trips([]) == 0
    together = [_record(0.0, 1.0), _record(0.1, 1.1), _record(0.2, 0.9)]
    assert dependent_round_trips(together) == 1
    chain = [*together, _record(1.2, 2.0), _record(2.1, 3.0)]
    assert dependent_round_trips(chain) == 3


def test_prestart_starts_the_threads_first() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cloudfits.fetch import prestart

    with ThreadPoolExecutor(6) as pool:
        prestart(pool, 4)
        assert len(pool._threads) == 4
        prestart(pool, 100)  # no more than the pool's size
        assert len(pool._threads) == 6
        assert list(pool.map(lambda x: x * 2, range(10))) == [x * 2 for x in range(10)]
