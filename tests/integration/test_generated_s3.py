"""The generated-cube S3 server of the full-scale benchmark: a smoke test of what it answers.

Real sockets, boto3 and cloudfits against the server; the bytes are compared with
astropy reading the same cube written to a local file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from botocore.exceptions import ClientError

import cloudfits
from cloudfits.astro.tess import light_curve
from cloudfits.errors import CloudFitsError
from cloudfits.providers.s3 import S3Config
from cloudfits.providers.s3.client import S3Provider
from cloudfits.testing.generated import TESS_SHAPE, GeneratedCube
from cloudfits.testing.proxy import dependent_round_trips
from cloudfits.testing.s3gen import GeneratedS3Server, tess_objects

SMALL = (20, 30, 17, 2)


@pytest.fixture(scope="module")
def server() -> Iterator[GeneratedS3Server]:
    with GeneratedS3Server(tess_objects(5, shape=SMALL), page_size=2) as s:
        yield s


@pytest.fixture
def s3(server: GeneratedS3Server) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_listing_pages_with_continuation(server: GeneratedS3Server, s3: Any) -> None:
    server.reset()
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="tess", Prefix="cubes/"))
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert keys == sorted(server.objects)
    assert len(pages) == 3
    assert len(server.records) == 3
    assert [o["Size"] for p in pages for o in p["Contents"]] == [
        c.size for c in server.objects.values()
    ]
    top = s3.list_objects_v2(Bucket="tess", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["cubes/"]


def test_head_range_etag_and_errors(server: GeneratedS3Server, s3: Any) -> None:
    key, cube = next(iter(server.objects.items()))
    head = s3.head_object(Bucket="tess", Key=key)
    assert head["ContentLength"] == cube.size
    assert head["ETag"].strip('"') == server.etag(key)
    got = s3.get_object(Bucket="tess", Key=key, Range="bytes=5000-6099")
    assert got["ContentRange"] == f"bytes 5000-6099/{cube.size}"
    assert got["Body"].read() == cube.read(5000, 6100)
    tail = s3.get_object(Bucket="tess", Key=key, Range="bytes=-10")
    assert tail["Body"].read() == cube.read(cube.size - 10, cube.size)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="tess", Key=key, Range=f"bytes={cube.size}-")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="tess", Key=key, Range="bytes=0-9", IfMatch='"other"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError):
        s3.head_object(Bucket="tess", Key="cubes/missing.fits")


def test_bytes_are_the_fits_file_astropy_reads(
    server: GeneratedS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cube = list(server.objects.items())[2]
    path = tmp_path / "cube.fits"
    path.write_bytes(cube.read(0, cube.size))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    f = cloudfits.open(f"s3://tess/{key}", endpoint_url=server.endpoint_url)
    key4 = (slice(3, 9), slice(10, 17), slice(None), slice(None))
    with fits.open(path) as hdul:
        assert [h.header.tostring() for h in hdul] == [h.header.tostring() for h in f]
        assert np.array_equal(f[1].section[key4], hdul[1].data[key4])
        assert np.array_equal(cube.pixels(key4), hdul[1].data[key4])
        assert np.array_equal(cube.pixels((4, 5, slice(None), 0)), hdul[1].data[4, 5, :, 0])
        table = f[2].read(columns=["TSTART", "FFI_FILE", "BACKAPP"])
        for name in ("TSTART", "FFI_FILE", "BACKAPP"):
            want = np.asarray(hdul[2].data[name])
            want = np.char.encode(want, "latin-1") if want.dtype.kind == "U" else want
            assert np.array_equal(np.asarray(table[name]), want)  # text as bytes, as Table.read
            assert np.array_equal(cube.column(name), hdul[2].data[name])
        # Column numbers count in the whole table, also when only those are decoded.
        numbered = f[2].read(rows=[5, 1], columns=[54, 0])
        assert numbered.colnames == ["FFI_FILE", "TSTART"]
        assert np.array_equal(numbered["TSTART"], hdul[2].data["TSTART"][[5, 1]])
        names = np.char.encode(hdul[2].data["FFI_FILE"][[5, 1]], "latin-1")
        assert np.array_equal(numbered["FFI_FILE"], names)
    assert [(h.layout.header_offset, h.layout.data_offset, h.layout.data_size) for h in f] == [
        layout[:3] for layout in cube.layout()
    ]


def test_delay_applies_to_every_answer_concurrently(server: GeneratedS3Server, s3: Any) -> None:
    key = next(iter(server.objects))
    server.delay = 0.05
    try:
        server.reset()
        began = time.perf_counter()
        s3.get_object(Bucket="tess", Key=key, Range="bytes=0-0")["Body"].read()
        assert time.perf_counter() - began >= 0.05
        records = server.records
        assert len(records) == 1
        assert records[0].response_bytes == 1
        assert dependent_round_trips(records) == 1
    finally:
        server.delay = 0.0


def test_full_size_layout_is_a_tess_cube() -> None:
    cube = GeneratedCube(7)
    assert cube.shape == TESS_SHAPE
    assert cube.size == 45_522_973_440
    assert [b - a for a, b in cube.header_runs()] == [8640, 11520]
    headers = [fits.Header.fromstring(h.decode("ascii")) for h in cube.headers]
    assert headers[1]["NAXIS4"] == 2078
    assert headers[1]["NAXIS1"] == 2
    assert headers[2]["TFIELDS"] == 55
    assert headers[2]["NAXIS2"] == 1282
    start = cube.data_offset + 4 * ((100 * 2136 + 200) * 1282 * 2)
    raw = np.frombuffer(cube.read(start, start + 1282 * 8), ">f4")
    assert np.array_equal(raw[::2], cube.pixels((100, 200, slice(None), 0)))


def test_indexing_predicts_layouts_and_scans_where_they_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    same = [GeneratedCube(n, SMALL) for n in range(3)]
    other = GeneratedCube(3, (20, 20, 25, 2))  # the same size, its table elsewhere
    assert other.size == same[0].size
    objects = {
        "cubes/a.fits": same[0],
        "cubes/b.fits": same[1],
        "cubes/c.fits": other,
        "cubes/d.fits": same[2],
    }
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with GeneratedS3Server(objects) as server:
        index = cloudfits.build_index("s3://tess/cubes/", endpoint_url=server.endpoint_url)
        records = server.records
    got = {
        e.path: [(h.header_offset, h.data_offset, h.data_size, h.header) for h in e.hdus]
        for e in index.files
    }
    assert got == {key.removeprefix("cubes/"): cube.layout() for key, cube in objects.items()}

    def reads(name: str) -> list[int]:
        return [r.response_bytes for r in records if r.method == "GET" and name in r.target]

    for name, cube in (("b.fits", same[1]), ("d.fits", same[2])):
        assert sorted(reads(name)) == sorted(b - a for a, b in cube.header_runs())
    # c.fits: the predicted read, refused, then a scan of its own.
    assert len(reads("c.fits")) == len(reads("a.fits")) + len(same[0].header_runs())


@pytest.mark.parametrize(("concurrency", "together"), [(2, False), (8, True)])
def test_an_objects_runs_are_read_together_unless_every_scan_thread_is_busy(
    concurrency: int, together: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More objects than scan threads: each object's predicted runs one after the other
    on its thread (the pool is as busy as it can be); fewer: both at once."""
    objects = {f"cubes/{n}.fits": GeneratedCube(n, SMALL) for n in range(6)}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with GeneratedS3Server(objects) as server:
        server.delay = 0.05  # every answer held back, so that reads at once overlap
        index = cloudfits.build_index(
            "s3://tess/cubes/", endpoint_url=server.endpoint_url, concurrency=concurrency
        )
        records = [r for r in server.records if r.method == "GET"]
    assert [e.hdus[-1].header for e in index.files] == [c.layout()[-1][3] for c in objects.values()]
    runs = len(GeneratedCube(0, SMALL).header_runs())
    assert runs == 2
    for key in list(objects)[1:]:  # the first leads: a scan of its own
        mine = sorted(
            (r for r in records if r.target.split("?")[0].endswith(key)), key=lambda r: r.started
        )
        assert len(mine) == runs
        overlap = mine[1].started < mine[0].finished
        assert overlap is together, (key, [(r.started, r.finished) for r in mine])


def test_open_and_a_cutout_take_two_round_trips_and_the_rest_comes_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cloudfits.open`` + a section of HDU 1: the first headers, then the pixels; the
    table header after the image is read when an HDU beyond those found is asked for."""
    cube = GeneratedCube(4, (40, 50, 17, 2))  # the table header is beyond the first read
    path = tmp_path / "cube.fits"
    path.write_bytes(cube.read(0, cube.size))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    key = (slice(5, 15), slice(20, 30), slice(None), slice(None))
    with GeneratedS3Server({"cubes/c.fits": cube}) as server, fits.open(path) as hdul:
        # Long enough that the client's work between two waves (and this process's
        # server threads, which share its interpreter) never makes a wave look like two.
        server.delay = 0.25
        f = cloudfits.open("s3://tess/cubes/c.fits", endpoint_url=server.endpoint_url)
        assert repr(f).endswith("(at least 2 HDUs)>")
        got = f[1].section[key]
        assert dependent_round_trips(server.records) == 2
        assert np.array_equal(got, hdul[1].data[key])
        assert f[0].header.tostring() == hdul[0].header.tostring()  # EXTEND as astropy's
        assert f["PRIMARY"].number == 0
        assert dependent_round_trips(server.records) == 2
        server.reset()
        server.delay = 0.05
        assert len(f) == len(hdul) == 3
        records = server.records
        assert dependent_round_trips(records) == 1, records  # the table header
        server.reset()
        assert f.info(output=False) == hdul.info(output=False)
        assert [h.header.tostring() for h in f] == [h.header.tostring() for h in hdul]
        assert f[-1].number == 2
        assert f[2].read(columns=["TSTART"])["TSTART"].tolist() == hdul[2].data["TSTART"].tolist()
        assert [r.method for r in server.records] == ["GET"]  # the table read only
    with GeneratedS3Server({"cubes/c.fits": cube}) as server:
        f = cloudfits.open("s3://tess/cubes/c.fits", endpoint_url=server.endpoint_url)
        assert f[2].name == hdul[2].name  # by number: scanned as far as HDU 2
        f = cloudfits.open("s3://tess/cubes/c.fits", endpoint_url=server.endpoint_url)
        assert "EXTNAME" not in f[1].header or f[f[1].name].number == 1
        with pytest.raises(IndexError):
            f[3]
        with pytest.raises(KeyError):
            f["NOSUCH"]


def test_a_light_curve_is_one_wave_of_requests_and_astropys_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cube = GeneratedCube(5, (30, 40, 23, 2))
    path = tmp_path / "cube.fits"
    path.write_bytes(cube.read(0, cube.size))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    columns = ["TSTART", "TSTOP", "FFI_FILE", "DQUALITY"]
    with GeneratedS3Server({"cubes/c.fits": cube}) as server:
        index = cloudfits.build_index("s3://tess/cubes/", endpoint_url=server.endpoint_url)
        f = index.open("c.fits", endpoint_url=server.endpoint_url)
        server.reset()
        server.delay = 0.25  # far above the client's work between two requests
        curve = light_curve(f, 7, 11, columns)
        records = server.records
        server.delay = 0.0
        assert light_curve(f, 0, 0, columns=[]).colnames == ["FLUX", "FLUX_ERR"]
    assert len(records) == 2
    assert dependent_round_trips(records) == 1
    want = Table.read(path, hdu=2)
    with fits.open(path) as hdul:
        flux = hdul[1].data[7, 11, :, 0]
        flux_err = hdul[1].data[7, 11, :, 1]
    assert curve.colnames == [*columns, "FLUX", "FLUX_ERR"]
    for name in columns:
        assert curve[name].dtype == want[name].dtype
        assert np.array_equal(curve[name], want[name])
        assert curve[name].unit == want[name].unit
    assert curve["FLUX"].dtype == flux.dtype.newbyteorder("=")
    assert np.array_equal(curve["FLUX"], flux)
    assert np.array_equal(curve["FLUX_ERR"], flux_err)
    with pytest.raises(cloudfits.FitsFormatError, match="not a TESS cube"):
        light_curve(_not_a_cube(tmp_path), 0, 0)


def _not_a_cube(tmp_path: Path) -> cloudfits.RemoteFITS:
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((3, 3))).writeto(path)
    return cloudfits.open(path)


def test_any_range_is_the_same_bytes_as_the_whole_object() -> None:
    """Ranges across every boundary of the layout (headers, image, table rows) are
    slices of the whole object, so a read of headers alone needs no table rows."""
    cube = GeneratedCube(3, SMALL)
    whole = GeneratedCube(3, SMALL).read(0, cube.size)
    edges = [0, cube.image_offset, cube.data_offset, cube.table_offset]
    edges += [cube.table_data_offset, cube.size]
    rng = np.random.default_rng(7)
    spans = [(max(0, e - 3), min(cube.size, e + 5)) for e in edges]
    spans += [tuple(sorted(rng.integers(0, cube.size + 1, 2))) for _ in range(200)]
    for a, b in spans:
        assert cube.read(int(a), int(b)) == whole[a:b], (a, b)
    header_only = GeneratedCube(4, SMALL)
    header_only.read(cube.table_offset, cube.table_data_offset)
    assert "_table_data" not in header_only.__dict__


def test_the_s3_provider_follows_the_listing_pages(server: GeneratedS3Server) -> None:
    """Each page asked for with the token of the one before: all keys, one request each."""
    provider = S3Provider(S3Config(endpoint_url=server.endpoint_url, anonymous=True))
    server.reset()
    found = list(provider.list("tess/cubes/"))
    assert [o.path for o in found] == [f"tess/{key}" for key in sorted(server.objects)]
    assert [o.size for o in found] == [server.objects[key].size for key in sorted(server.objects)]
    assert [o.etag for o in found] == [server.etag(key) for key in sorted(server.objects)]
    assert len(server.records) == 3  # 5 keys in pages of 2


class _TokenLoop(GeneratedS3Server):
    """Answers every listing with its first page, and so the same token every time."""

    def _listing(self, query: dict[str, str]) -> str:
        return super()._listing({**query, "continuation-token": "", "start-after": ""})


def test_a_listing_token_given_twice_ends_the_listing_with_an_error() -> None:
    with _TokenLoop(tess_objects(5, shape=SMALL), page_size=2) as looping:
        provider = S3Provider(S3Config(endpoint_url=looping.endpoint_url, anonymous=True))
        with pytest.raises(CloudFitsError, match="twice") as err:
            list(provider.list("tess/cubes/"))
        assert "s3://tess/cubes/" in str(err.value)
        assert len(looping.records) == 2


class _TokenCycle(GeneratedS3Server):
    """Answers the third page's request with the first page: tokens A, B, then A again."""

    def _listing(self, query: dict[str, str]) -> str:
        if query.get("continuation-token") == sorted(self.objects)[3]:
            query = {**query, "continuation-token": ""}
        return super()._listing(query)


def test_a_cycle_of_listing_tokens_ends_the_listing_with_an_error() -> None:
    with _TokenCycle(tess_objects(5, shape=SMALL), page_size=2) as cycling:
        provider = S3Provider(S3Config(endpoint_url=cycling.endpoint_url, anonymous=True))
        with pytest.raises(CloudFitsError, match="twice"):
            list(provider.list("tess/cubes/"))
        assert len(cycling.records) == 3
