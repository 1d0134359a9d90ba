"""``RemoteHDU.to_dask``: lazy dask arrays whose chunks are planned range reads.

Every value is compared with astropy reading the same local file. Requests are
counted by the files' own ``stats`` (in this process) and by ``cloudfits.stats`` on
the workers of a real ``dask.distributed.LocalCluster``.
"""

from __future__ import annotations

import itertools
import pickle
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.fetch import split_parts
from cloudfits.fits.planner import plan_section
from cloudfits.scale.daskarray import RemoteArray, _local, _opened, layout_chunks
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.seaweedfs import S3Server

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

BUCKET = "to-dask"


def _astropy_data(path: Path, hdu: int) -> np.ndarray:
    with fits.open(path) as hdul:
        data = hdul[hdu].data
        native: np.ndarray = data.astype(data.dtype.newbyteorder("="))
    return native


def _images(directory: Path) -> Path:
    """One file of images astropy scales in every way it can."""
    rng = np.random.default_rng(7)
    scaled = rng.integers(-1000, 1000, size=(23, 17, 11), dtype=np.int16)
    scaled[0, 0, :3] = -999
    primary = fits.PrimaryHDU(scaled)
    primary.header["BSCALE"] = 0.5
    primary.header["BZERO"] = 10.0
    primary.header["BLANK"] = -999
    unsigned = fits.ImageHDU(rng.integers(0, 60000, size=(40, 30), dtype=np.uint16), name="U16")
    floats = fits.ImageHDU(rng.standard_normal((9, 31, 7)).astype(">f8"), name="F64")
    compressed = fits.CompImageHDU(
        rng.integers(0, 5000, size=(45, 70)).astype(np.int32),
        name="RICE",
        compression_type="RICE_1",
        tile_shape=(8, 70),
    )
    table = fits.BinTableHDU.from_columns([fits.Column("X", "J", array=np.arange(5))])
    path = directory / "images.fits"
    fits.HDUList([primary, unsigned, floats, compressed, table]).writeto(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _images(tmp_path_factory.mktemp("to-dask"))


@pytest.fixture(scope="module")
def images_s3(s3_server: S3Server, images: Path) -> str:
    s3_server.create_bucket(BUCKET)
    s3_server.client().upload_file(str(images), BUCKET, "dir/images.fits")
    return f"s3://{BUCKET}/dir/images.fits"


@pytest.fixture(scope="module")
def cluster_client(s3_server: S3Server) -> Iterator[Any]:
    """Two worker processes on 127.0.0.1, started after the S3 environment is set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _planned(hdu: cloudfits.RemoteHDU, key: tuple[slice, ...]) -> tuple[int, int]:
    """Requests and bytes the engine plans for ``key`` of an uncompressed image."""
    itemsize = abs(int(hdu.header["BITPIX"])) // 8
    plan = plan_section(hdu.shape, itemsize, key)
    options = hdu.file.fetch_options
    spans = options.spans(plan.run_offsets, plan.run_nbytes)
    requests = sum(len(split_parts(s.start, s.end, options.max_part)) for s in spans)
    return requests, sum(s.end - s.start for s in spans)


def _blocks(x: Any) -> Iterator[tuple[int, ...]]:
    return itertools.product(*(range(n) for n in x.numblocks))


def _block_key(x: Any, index: tuple[int, ...]) -> tuple[slice, ...]:
    starts = [sum(c[:i]) for c, i in zip(x.chunks, index, strict=True)]
    return tuple(slice(s, s + c[i]) for s, c, i in zip(starts, x.chunks, index, strict=True))


# -- values ------------------------------------------------------------------------


def _chunks(kind: str, shape: tuple[int, ...]) -> Any:
    return {
        "default": None,
        "int": 5,
        "auto": "auto",
        "tuple": tuple(max(1, n // 3) for n in shape),
        "uneven": ((1, shape[0] - 4, 3), *(-1,) * (len(shape) - 1)),
        "dict": {0: 4},
    }[kind]


@pytest.mark.parametrize("kind", ["default", "int", "auto", "tuple", "uneven", "dict"])
@pytest.mark.parametrize("where", ["path", "file-uri", "s3"])
def test_values_and_dtype_equal_astropy(
    images: Path, images_s3: str, where: str, kind: str
) -> None:
    uri = {"path": str(images), "file-uri": images.as_uri(), "s3": images_s3}[where]
    f = cloudfits.open(uri)
    for number in (0, 1, 2, 3):  # scaled int16 with BLANK, uint16, float64, RICE_1
        expected = _astropy_data(images, number)
        x = f[number].to_dask(chunks=_chunks(kind, expected.shape))
        assert (x.shape, x.dtype) == (expected.shape, expected.dtype)
        result = x.compute(scheduler="threads")
        assert result.dtype == expected.dtype
        assert result.dtype.isnative
        np.testing.assert_array_equal(result, expected)


def test_scaled_blank_is_nan_as_astropy(images: Path) -> None:
    x = cloudfits.open(images)[0].to_dask(chunks=(2, 5, 11))
    got = x[0, 0].compute()
    assert np.isnan(got[:3]).all()
    np.testing.assert_array_equal(got, _astropy_data(images, 0)[0, 0])


def test_not_an_image(tmp_path: Path) -> None:
    table = fits.BinTableHDU.from_columns([fits.Column("X", "J", array=np.arange(5))])
    groups = fits.GroupsHDU(
        fits.GroupData(np.zeros((3, 2, 2), "f4"), parnames=["P"], pardata=[np.zeros(3)])
    )
    path = tmp_path / "t.fits"
    fits.HDUList([groups, table]).writeto(path)
    f = cloudfits.open(path)
    for hdu in f:
        with pytest.raises(TypeError, match="use read"):
            hdu.to_dask()


def test_missing_dask_names_the_extra(images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"pip install 'cloudfits\[dask\]'"):
        cloudfits.open(images)[0].to_dask()


# -- chunking ----------------------------------------------------------------------


def test_layout_chunks_keep_fast_axes_whole() -> None:
    assert layout_chunks((2000, 256, 256), 4, 2**20) == (4, 256, 256)
    assert layout_chunks((64, 64, 20, 2), 4, 64 * 1024) == (6, 64, 20, 2)
    assert layout_chunks((10, 10), 8, 10**9) == (10, 10)
    assert layout_chunks((3, 5, 7), 8, 8 * 7 * 2) == (1, 2, 7)  # 5 cut into 3 + 2
    assert layout_chunks((3, 1000), 8, 100) == (1, 12)  # a row larger than the target
    assert layout_chunks((45, 70), 4, 8 * 70 * 4 * 3, unit=(8, 70)) == (24, 70)


def test_default_chunks_are_single_runs(images_s3: str, images: Path) -> None:
    with dask.config.set({"array.chunk-size": "4KiB"}):
        f = cloudfits.open(images_s3)
        x = f[0].to_dask()
    assert x.chunks[1:] == ((17,), (11,))
    assert len(x.chunks[0]) > 1
    for index in _blocks(x):
        key = _block_key(x, index)
        before = f.stats.snapshot()
        block = x.blocks[index].compute(scheduler="sync")
        got = f.stats.snapshot()
        requests, nbytes = _planned(f[0], key)
        assert requests == 1  # one contiguous run per chunk
        assert got["requests"] - before["requests"] == requests
        assert got["bytes"] - before["bytes"] == nbytes == block.size * 2
        np.testing.assert_array_equal(block, _astropy_data(images, 0)[key])


def test_every_chunk_makes_exactly_its_planned_requests(images_s3: str) -> None:
    f = cloudfits.open(images_s3, max_gap=0)
    x = f[2].to_dask(chunks=(4, 10, 3))  # cuts the fast axes: many runs per chunk
    for index in _blocks(x):
        key = _block_key(x, index)
        before = f.stats.snapshot()
        x.blocks[index].compute(scheduler="sync")
        got = f.stats.snapshot()
        assert (got["requests"] - before["requests"], got["bytes"] - before["bytes"]) == (
            _planned(f[2], key)
        )


def test_compressed_default_chunks_are_whole_tiles(images_s3: str, images: Path) -> None:
    with dask.config.set({"array.chunk-size": "6KiB"}):
        f = cloudfits.open(images_s3)
        x = f["RICE"].to_dask()
    assert x.chunks == ((16, 16, 13), (70,))  # two 8-row tiles per chunk
    np.testing.assert_array_equal(x.compute(scheduler="sync"), _astropy_data(images, 3))
    before = f.stats.snapshot()
    x.compute(scheduler="sync")
    after = f.stats.snapshot()
    # Once the tile table is in hand, every tile is read by exactly one chunk.
    whole = f["RICE"].read_tile_table(columns=["COMPRESSED_DATA"])
    assert after["bytes"] - before["bytes"] == sum(len(v) for v in whole["COMPRESSED_DATA"])


# -- no request while building -----------------------------------------------------


def test_building_makes_no_request(images_s3: str, tess_bucket: str, tess_cube: Path) -> None:
    index = cloudfits.build_index(tess_bucket + "/")
    f = index.open(tess_cube.name)
    g = cloudfits.open(images_s3)
    process, opened = cloudfits.stats.snapshot(), g.stats.snapshot()
    arrays = [f[1].to_dask(), g[0].to_dask(chunks="auto"), g["RICE"].to_dask(chunks=(9, 7))]
    arrays.append(arrays[0][3:40, :, 2:9].mean(axis=2))
    assert f.stats.requests == 0
    assert g.stats.snapshot() == opened  # the scan of its headers only
    assert cloudfits.stats.snapshot() == process


def test_names_are_deterministic(images: Path, images_s3: str) -> None:
    a = cloudfits.open(images_s3)[0].to_dask()
    b = cloudfits.open(images_s3)[0].to_dask()
    assert a.name == b.name
    assert a.name.startswith("cloudfits-hdu0-")
    assert cloudfits.open(images_s3)[0].to_dask(chunks=4).name != a.name
    assert cloudfits.open(images_s3)[0].to_dask(max_gap=0).name != a.name
    assert cloudfits.open(images)[0].to_dask().name != a.name


# -- distributed -------------------------------------------------------------------


def _worker_requests(client: Any) -> int:
    counts = client.run(lambda: cloudfits.stats.requests)
    return int(sum(counts.values()))


def test_tess_cube_mean_on_local_cluster(
    cluster_client: Any, s3_server: S3Server, tess_bucket: str, tess_cube: Path
) -> None:
    """The acceptance: ``to_dask(...).mean(axis=2)`` on a LocalCluster equals numpy."""
    f = cloudfits.open(f"{tess_bucket}/{tess_cube.name}", endpoint_url=s3_server.endpoint_url)
    opened = f.stats.snapshot()  # the scan of the headers
    with dask.config.set({"array.chunk-size": "64KiB"}):
        x = f[1].to_dask()
    assert x.chunks[1:] == ((64,), (20,), (2,))
    assert len(x.chunks[0]) == 11
    before = _worker_requests(cluster_client)
    mean = x.mean(axis=2).compute(scheduler=cluster_client)
    # One run per chunk, read on the workers; nothing in this process.
    assert _worker_requests(cluster_client) - before == len(x.chunks[0])
    assert f.stats.snapshot() == opened
    data = _astropy_data(tess_cube, 1)
    # Every chunk holds whole frames, so each mean sums the same float32 values in
    # the same order as numpy: equal to the bit.
    np.testing.assert_array_equal(mean, data.mean(axis=2))
    assert mean.dtype == data.mean(axis=2).dtype


def test_index_entries_and_xarray_on_local_cluster(
    cluster_client: Any, tess_bucket: str, tess_cube: Path
) -> None:
    xr = pytest.importorskip("xarray")
    index = cloudfits.build_index(tess_bucket + "/")
    hdu = index.open(tess_cube.name)[1]
    cube = xr.DataArray(hdu.to_dask(chunks=(16, -1, -1, -1)), dims=("y", "x", "frame", "kind"))
    flux = cube.isel(kind=0).max("frame")
    result = flux.compute(scheduler=cluster_client)
    np.testing.assert_array_equal(result.values, _astropy_data(tess_cube, 1)[..., 0].max(axis=2))
    assert result.dims == ("y", "x")


def test_file_uri_on_local_cluster(cluster_client: Any, images: Path) -> None:
    x = cloudfits.open(images.as_uri())["F64"].to_dask(chunks=3)
    np.testing.assert_array_equal(
        x.max(axis=0).compute(scheduler=cluster_client), _astropy_data(images, 2).max(axis=0)
    )


# -- pickling and secrets ----------------------------------------------------------

USER, PASSWORD, TOKEN = "canaryuser", "canary-pass-3e81d0", "canary-token-77a1f2e9"


def test_pickled_graph_holds_no_secret_and_refuses_elsewhere(images: Path) -> None:
    import base64

    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with StaticHTTPServer(images.parent, authorization=f"Basic {basic}") as server:
        host = server.url.split("://", 1)[1]
        f = cloudfits.open(f"http://{USER}:{PASSWORD}@{host}/{images.name}")
        x = f["U16"].to_dask(chunks=(10, 30))
        graph = pickle.dumps((x.dask, dict(x.dask)))
        names = repr(list(x.dask.keys())) + x.name + repr(x)
        for canary in (USER + ":" + PASSWORD, PASSWORD, basic):
            assert canary.encode() not in graph
            assert canary not in names
        # In this process the open file (and its credentials) serves the chunks...
        np.testing.assert_array_equal(x.compute(scheduler="sync"), _astropy_data(images, 1))
        # ... in another, the recipe refuses rather than asking without credentials.
        array = pickle.loads(pickle.dumps(_source_of(x)))
        _local.clear()
        _opened.clear()
        with pytest.raises(cloudfits.CloudFitsError, match="not sent to other processes") as err:
            array[0:2]
        assert PASSWORD not in str(err.value)


def _source_of(x: Any) -> RemoteArray:
    for value in dict(x.dask).values():
        if isinstance(value, RemoteArray):
            return value
        found = getattr(value, "value", None)
        if isinstance(found, RemoteArray):
            return found
    raise AssertionError("no RemoteArray in the graph")


def test_env_credentials_stay_out_of_the_graph(images_s3: str) -> None:
    x = cloudfits.open(images_s3)[0].to_dask()
    graph = pickle.dumps(dict(x.dask))
    source = _source_of(x)
    assert b"AWS_SECRET" not in graph
    assert dict(source.recipe.location.options) == {}
    assert source.recipe.withheld == ()
    # Reopened from the pickle in a fresh cache, it reads the same values.
    array = pickle.loads(pickle.dumps(source))
    _local.clear()
    _opened.clear()
    np.testing.assert_array_equal(array[2:4], x[2:4].compute())
