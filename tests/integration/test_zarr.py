"""Kerchunk references of an index, read by xarray's zarr engine from the local S3 server.

Every comparison is against astropy reading the same local file: values bit for bit,
and dtypes (in native byte order). xarray runs with its defaults, as the docs' recipe
shows it: consolidated metadata, masking and scaling on.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

import cloudfits
from cloudfits.cli import main
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

from ..conftest import CORPUS, CORPUS_DIR
from .test_compressed import ALL_NAMES, _write

xr = pytest.importorskip("xarray")
pytest.importorskip("zarr")
pytest.importorskip("s3fs")

BUCKET = "zarr"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", cloudfits.CloudFitsWarning)
        # zarr 3 warns that the FITS codecs are not in the Zarr v3 specification.
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr")
        yield


def _open(refs: Any, group: str, endpoint_url: str, **kwargs: Any) -> Any:
    """The docs' recipe: xarray's defaults, the references' own consolidated metadata."""
    remote = {
        "endpoint_url": endpoint_url,
        "key": "test",
        "secret": "test",
        "asynchronous": True,
    }
    storage = {"fo": refs, "remote_protocol": "s3", "remote_options": remote}
    with warnings.catch_warnings():
        # No fallback to listing the store: the consolidated metadata must be there.
        warnings.simplefilter("error", RuntimeWarning)
        return xr.open_dataset(
            "reference://",
            engine="zarr",
            group=group,
            backend_kwargs={"storage_options": storage},
            **kwargs,
        )


def _same(got: Any, expected: Any) -> None:
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype.newbyteorder("=")
    native = np.ascontiguousarray(expected, expected.dtype.newbyteorder("="))
    assert got.tobytes() == native.tobytes()


def _images(path: Path) -> dict[str, np.ndarray]:
    """Every image HDU with data, as astropy reads it (tile-compressed ones decompressed)."""
    with fits.open(path, memmap=False) as hdul:
        return {
            f"hdu{n}": np.array(hdu.data)
            for n, hdu in enumerate(hdul)
            if hdu.is_image and hdu.data is not None and hdu.data.size
        }


def _upload(server: S3Server, prefix: str, paths: list[Path]) -> cloudfits.FitsIndex:
    server.create_bucket(BUCKET)
    client = server.client()
    for path in paths:
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.name}")
    return cloudfits.build_index(f"s3://{BUCKET}/{prefix}/")


@pytest.fixture(scope="module")
def corpus_refs(corpus_uri: str) -> tuple[cloudfits.FitsIndex, dict[str, Any]]:
    index = cloudfits.build_index(corpus_uri + "/")
    return index, index.to_kerchunk()


@pytest.mark.parametrize("rel", CORPUS)
def test_every_corpus_image_equals_astropys(
    corpus_refs: tuple[cloudfits.FitsIndex, dict[str, Any]], s3_server: S3Server, rel: str
) -> None:
    _, refs = corpus_refs
    expected = _images(CORPUS_DIR / rel)
    ds = _open(refs, rel, s3_server.endpoint_url)
    assert sorted(ds.data_vars) == sorted(expected)
    for name, data in expected.items():
        variable = ds[name]
        assert "_FillValue" not in variable.encoding
        assert variable.dims == tuple(f"{name}_naxis{i}" for i in range(data.ndim, 0, -1))
        _same(variable.values, data)


def test_the_corpus_has_tile_compressed_and_scaled_images(
    corpus_refs: tuple[cloudfits.FitsIndex, dict[str, Any]],
) -> None:
    _, refs = corpus_refs
    arrays = [json.loads(v) for k, v in refs["refs"].items() if k.endswith("/.zarray")]
    codecs = [a["filters"][0] for a in arrays]
    assert sum(c["id"] == "cloudfits.fits_tile" for c in codecs) == 4
    assert any(c["id"] == "cloudfits.fits_image" and c["bscale"] != 1 for c in codecs)
    assert all(a["fill_value"] is None for a in arrays)
    groups = json.loads(refs["refs"][".zmetadata"])["metadata"]
    assert {k.rsplit("/", 1)[0] for k in groups if k.endswith("/.zgroup")} >= set(CORPUS)


@pytest.fixture(scope="module")
def tile_index(
    s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Path], dict[str, Any]]:
    paths = _write(tmp_path_factory.mktemp("zarr-tiles"))
    index = _upload(s3_server, "tiles", list(paths.values()))
    return paths, index.to_kerchunk()


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_tile_compression_equals_astropys(
    tile_index: tuple[dict[str, Path], dict[str, Any]], s3_server: S3Server, name: str
) -> None:
    paths, refs = tile_index
    ds = _open(refs, f"{name}.fits", s3_server.endpoint_url)
    _same(ds["hdu1"].values, _images(paths[name])["hdu1"])


def _scaled_files(directory: Path) -> list[Path]:
    rng = np.random.default_rng(7)
    made = []

    def write(name: str, hdus: list[Any]) -> None:
        path = directory / name
        fits.HDUList(hdus).writeto(path)
        made.append(path)

    u16 = rng.integers(0, 65536, (37, 29), dtype=np.uint16)
    write("uint16.fits", [fits.PrimaryHDU(u16)])
    assert fits.getheader(directory / "uint16.fits")["BZERO"] == 32768
    raw = rng.integers(-3000, 3000, (4, 23, 31)).astype(">i2")
    raw[1, 2, 3:9] = -32768
    hdu = fits.ImageHDU(raw, name="SCI")
    hdu.header["BSCALE"], hdu.header["BZERO"], hdu.header["BLANK"] = 0.125, 1000.0, -32768
    big_i4 = fits.ImageHDU(rng.integers(-(2**30), 2**30, (5, 7)).astype(">i4"))
    big_i4.header["BSCALE"], big_i4.header["BZERO"] = 3.5, -2.0
    write("bscale_blank.fits", [fits.PrimaryHDU(), hdu, big_i4])
    cube = rng.normal(size=(9, 41, 19)).astype(">f8")
    write("big_endian_cube.fits", [fits.PrimaryHDU(cube), fits.ImageHDU(cube.astype(">f4"))])
    signed = fits.PrimaryHDU(rng.integers(-128, 128, (6, 6)).astype("i1"))
    write("int8.fits", [signed])
    return made


def test_scaled_and_big_endian_images_equal_astropys(s3_server: S3Server, tmp_path: Path) -> None:
    chunk_bytes = 1000  # several chunks per image, the last one short (default: the corpus)
    paths = _scaled_files(tmp_path)
    index = _upload(s3_server, "scaled", paths)
    refs = index.to_kerchunk(chunk_bytes=chunk_bytes)
    for path in paths:
        ds = _open(refs, path.name, s3_server.endpoint_url)
        for name, data in _images(path).items():
            _same(ds[name].values, data)
            if chunk_bytes < data.nbytes:  # several chunks, the last one short
                assert ds[name].encoding["chunks"] != data.shape
    blanked = _open(refs, "bscale_blank.fits", s3_server.endpoint_url)["hdu1"].values
    assert blanked.dtype == np.float32
    assert np.isnan(blanked[1, 2, 3:9]).all()
    assert np.isnan(blanked).sum() == 6


def test_a_small_slice_of_a_large_image_reads_a_small_part(
    s3_server: S3Server, tmp_path: Path
) -> None:
    data = np.random.default_rng(3).normal(size=(2048, 4096)).astype(">f4")  # 32 MiB
    path = tmp_path / "large.fits"
    fits.PrimaryHDU(data).writeto(path)
    index = _upload(s3_server, "large", [path])
    refs = index.to_kerchunk()
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        ds = _open(refs, "large.fits", proxy.url)
        assert proxy.request_count == 0  # the metadata is in the references
        worst = 0
        for rows, cols in ((slice(1000, 1010), slice(2000, 2010)), (slice(59, 69), slice(0, 10))):
            proxy.reset()
            _same(ds["hdu0"][rows, cols].values, data[rows, cols])
            worst = max(worst, proxy.response_bytes_total)
    assert worst <= 0.05 * data.nbytes, worst


def test_a_dask_mean_over_a_tess_cube_equals_numpys(
    s3_server: S3Server, tess_bucket: str, tess_cube: Path
) -> None:
    pytest.importorskip("dask")
    index = cloudfits.build_index(tess_bucket + "/")
    refs = index.to_kerchunk(chunk_bytes=64 * 1024)
    ds = _open(refs, tess_cube.name, s3_server.endpoint_url, chunks={})
    cube = ds["hdu1"]
    assert cube.chunks is not None
    assert len(cube.chunks[0]) > 1
    with fits.open(tess_cube) as hdul:
        expected = np.asarray(hdul[1].data)
    got = float(cube.mean(dtype="f8").compute())
    assert got == pytest.approx(float(np.mean(expected, dtype="f8")), rel=1e-12)
    per_pixel = cube.mean(dim=cube.dims[2], dtype="f8").values
    np.testing.assert_allclose(per_pixel, expected.mean(axis=2, dtype="f8"), rtol=1e-12)


@pytest.mark.parametrize("name", ["refs.json", "refs.parq"])
def test_cloudfits_refs_writes_json_and_parquet(
    s3_server: S3Server, corpus_uri: str, tmp_path: Path, name: str
) -> None:
    pytest.importorskip("fastparquet")
    index_path = tmp_path / "index.json"
    cloudfits.build_index(corpus_uri + "/").save(str(index_path))
    out = tmp_path / name
    chosen = ["compressed_image.fits", "scale.fits"]
    assert main(["refs", str(index_path), "-o", str(out), *(f"--path={p}" for p in chosen)]) == 0
    for rel in chosen:
        ds = _open(str(out), rel, s3_server.endpoint_url)
        for name, data in _images(CORPUS_DIR / rel).items():
            _same(ds[name].values, data)


def test_virtualizarr_reads_an_indexed_file_as_manifest_arrays(
    tile_index: tuple[dict[str, Path], dict[str, Any]], s3_server: S3Server
) -> None:
    pytest.importorskip("virtualizarr")
    obstore = pytest.importorskip("obstore.store")
    from obspec_utils.registry import ObjectStoreRegistry
    from virtualizarr import open_virtual_dataset
    from virtualizarr.manifests import ManifestArray

    from cloudfits.virtualizarr import CloudFitsParser

    paths, _ = tile_index
    index = cloudfits.build_index(f"s3://{BUCKET}/tiles/")
    store = obstore.S3Store(
        BUCKET,
        endpoint=s3_server.endpoint_url,
        access_key_id="test",
        secret_access_key="test",
        region="us-east-1",
        client_options={"allow_http": True},
    )
    registry = ObjectStoreRegistry({f"s3://{BUCKET}": store})
    parser = CloudFitsParser(index)
    for name in ("RICE_1-f4-dither1", "GZIP_2-cube-f4", "PLIO_1-i2"):
        url = f"s3://{BUCKET}/tiles/{name}.fits"
        vds = open_virtual_dataset(url, registry=registry, parser=parser)
        assert isinstance(vds["hdu1"].data, ManifestArray)
        ds = xr.open_zarr(parser(url, registry), consolidated=False, zarr_format=3)
        _same(ds["hdu1"].values, _images(paths[name])["hdu1"])
    with pytest.raises(KeyError, match="not a file of the index"):
        parser(f"s3://{BUCKET}/elsewhere/a.fits", registry)
