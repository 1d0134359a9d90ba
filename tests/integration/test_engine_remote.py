"""Round trips on the wire: cutouts, ``open`` without an index, indexing many objects."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.testing.proxy import RecordingProxy, RequestRecord, dependent_round_trips
from cloudfits.testing.seaweedfs import S3Server

pytestmark = pytest.mark.s3

DELAY = 0.05


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[RecordingProxy]:
    with RecordingProxy(s3_server.endpoint_url, delay=DELAY) as p:
        yield p


def _in_flight(records: list[RequestRecord]) -> int:
    """Most requests the proxy held at one moment."""
    return max(sum(r.started <= q.started < r.finished for r in records) for q in records)


def test_cutout_is_one_round_trip_of_exact_runs(
    tess_bucket: str, tess_cube: Path, proxy: RecordingProxy
) -> None:
    index = cloudfits.build_index(tess_cube.parent, data_uri=tess_bucket)
    f = index.open(tess_cube.name, endpoint_url=proxy.url)
    proxy.reset()
    got = f[1].section[10:16, 20:26, :, :]
    records = proxy.records
    with fits.open(tess_cube) as hdul:
        expected = hdul[1].data[10:16, 20:26, :, :]
    assert np.array_equal(got, expected)
    assert len(records) == 6  # one run per image row
    assert sum(r.response_bytes for r in records) == expected.nbytes
    assert dependent_round_trips(records) == 1


def test_open_without_index_takes_one_round_trip_then_one_per_read(
    tess_bucket: str, tess_cube: Path, proxy: RecordingProxy
) -> None:
    """``head`` and the first headers at once; the table header after the cube when used."""
    proxy.reset()
    f = cloudfits.open(f"{tess_bucket}/{tess_cube.name}", endpoint_url=proxy.url)
    records = proxy.records
    assert dependent_round_trips(records) == 1
    assert {r.method for r in records} == {"HEAD", "GET"}
    with fits.open(tess_cube) as hdul:
        proxy.reset()
        assert np.array_equal(f[1].section[3, 4], hdul[1].data[3, 4])
        assert dependent_round_trips(proxy.records) == 1
        proxy.reset()
        assert [h.header.tostring() for h in f] == [h.header.tostring() for h in hdul]
        assert dependent_round_trips(proxy.records) == 1  # the table header


def test_open_small_object(tmp_path: Path, s3_server: S3Server, proxy: RecordingProxy) -> None:
    """An object smaller than the speculative read opens in one round trip."""
    path = tmp_path / "small.fits"
    fits.HDUList([fits.PrimaryHDU(np.arange(10.0)), fits.ImageHDU(np.ones((3, 3)))]).writeto(path)
    s3_server.create_bucket("engine-small")
    s3_server.client().upload_file(str(path), "engine-small", "small.fits")
    proxy.reset()
    f = cloudfits.open("s3://engine-small/small.fits", endpoint_url=proxy.url)
    assert dependent_round_trips(proxy.records) == 1
    assert len(f) == 2
    assert np.array_equal(f[1].section[...], np.ones((3, 3)))


def test_many_objects_are_indexed_concurrently(
    tmp_path: Path, s3_server: S3Server, proxy: RecordingProxy
) -> None:
    objects, hdus = 12, 3
    s3_server.create_bucket("engine-many")
    client = s3_server.client()
    rng = np.random.default_rng(5)
    for i in range(objects):
        path = tmp_path / f"obj{i:02d}.fits"
        images = [rng.normal(size=(128, 128)).astype("f4") for _ in range(hdus)]
        hdul = fits.HDUList([fits.PrimaryHDU(images[0]), *(fits.ImageHDU(im) for im in images[1:])])
        hdul.writeto(path)
        client.upload_file(str(path), "engine-many", path.name)
    proxy.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = cloudfits.build_index("s3://engine-many/", endpoint_url=proxy.url)
    records = proxy.records
    assert len(index.files) == objects
    assert all(len(entry.hdus) == hdus for entry in index.files)
    gets = [r for r in records if r.method == "GET" and "list-type" not in r.target]
    assert len(gets) == objects * hdus  # one read per HDU: each header is 64 kB after the last
    assert all(r.response_bytes < 64 * 1024 for r in gets)
    # One listing, then one round trip per HDU, the objects side by side.
    assert dependent_round_trips(records) <= 1 + hdus + 1
    # Side by side, counted from the requests themselves (not by the wall clock).
    assert _in_flight(records) >= objects // 2
