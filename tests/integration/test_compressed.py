"""Tile-compressed images: every algorithm, exact against astropy, tile by tile."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from hypothesis import HealthCheck, given, settings
from hypothesis.extra.numpy import basic_indices

import cloudfits
from cloudfits.fits.geometry import HDUKind
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

BUCKET = "compressed"
SHAPE = (45, 61)


def _image(kind: str, rng: np.random.Generator, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """Test images: smooth plus noise, in the type asked for."""
    yy, xx = np.indices(shape[-2:])
    smooth = 200 + 30 * np.sin(xx / 7.0) + 20 * np.cos(yy / 5.0)
    base = np.broadcast_to(smooth, shape) + rng.normal(0, 4, shape)
    if kind in ("u1", "i2", "i4", "i8", "u2"):
        return np.round(base).astype(kind)
    data = base.astype(kind)
    data[3, 5] = np.nan
    data[10:14, 20:22] = np.nan
    data[32:, 0:20] = 7.5  # constant tiles: quantizing fails, GZIP fallback
    return data


# (name, data type, compression, options); names are the file names.
CASES: list[tuple[str, str, str, dict[str, Any]]] = []
for _algorithm in ("RICE_1", "GZIP_1", "GZIP_2", "HCOMPRESS_1", "PLIO_1", "NOCOMPRESS"):
    for _kind in ("u1", "i2", "u2", "i4"):
        if (_algorithm, _kind) in (("HCOMPRESS_1", "u1"), ("PLIO_1", "u2")):
            continue  # astropy does not write these
        CASES.append((f"{_algorithm}-{_kind}", _kind, _algorithm, {}))
    if _algorithm == "PLIO_1":
        continue  # integers only
    if _algorithm != "HCOMPRESS_1":  # astropy cannot read back its lossless HCOMPRESS floats
        CASES.append((f"{_algorithm}-f4-lossless", "f4", _algorithm, {"quantize_level": 0.0}))
    for _method, _label in ((-1, "nodither"), (1, "dither1"), (2, "dither2")):
        CASES.append((f"{_algorithm}-f4-{_label}", "f4", _algorithm, {"quantize_method": _method}))
CASES += [
    ("GZIP_1-i8", "i8", "GZIP_1", {}),
    ("GZIP_2-f8-lossless", "f8", "GZIP_2", {"quantize_level": 0.0}),
    ("RICE_1-f8-dither1", "f8", "RICE_1", {"quantize_method": 1}),
    ("HCOMPRESS_1-i4-lossy", "i4", "HCOMPRESS_1", {"hcomp_scale": 2.5, "hcomp_smooth": 1}),
    ("RICE_1-f4-q4", "f4", "RICE_1", {"quantize_level": -0.5, "quantize_method": 2}),
]
CUBE_CASES = [("RICE_1-cube", "i2", "RICE_1"), ("GZIP_2-cube-f4", "f4", "GZIP_2")]
UNCOMPRESSED_CASE = "RICE_1-f4-uncompressed-tiles"


def _with_uncompressed_tiles(source: Path, path: Path) -> None:
    """Rewrite a quantized RICE file so every other tile is stored raw (UNCOMPRESSED_DATA).

    astropy never writes that column, but reads it; cfitsio writes it when a tile can be
    neither quantized nor compressed.
    """
    with fits.open(source) as image, fits.open(source, disable_image_compression=True) as raw:
        data = image[1].data
        table = raw[1]
        tile = (int(table.header["ZTILE2"]), int(table.header["ZTILE1"]))
        rows = len(table.data)
        compressed, uncompressed = [], []
        for row in range(rows):
            i, j = divmod(row, -(-data.shape[1] // tile[1]))
            pixels = data[i * tile[0] : (i + 1) * tile[0], j * tile[1] : (j + 1) * tile[1]]
            original = np.asarray(table.data["COMPRESSED_DATA"][row], dtype=np.uint8)
            if row % 2 or not original.size:  # (the source's GZIP fallback tiles too)
                compressed.append(np.zeros(0, dtype=np.uint8))
                uncompressed.append(np.ascontiguousarray(pixels, dtype=">f4").ravel())
            else:
                compressed.append(original)
                uncompressed.append(np.zeros(0, dtype=">f4"))
        columns = [
            fits.Column("COMPRESSED_DATA", "1PB()", array=compressed),
            fits.Column("UNCOMPRESSED_DATA", "1PE()", array=uncompressed),
            fits.Column("ZSCALE", "1D", array=table.data["ZSCALE"]),
            fits.Column("ZZERO", "1D", array=table.data["ZZERO"]),
        ]
        rebuilt = fits.BinTableHDU.from_columns(columns)
        for card in table.header.cards:
            if card.keyword.startswith("Z") or card.keyword == "EXTNAME":
                rebuilt.header[card.keyword] = (card.value, card.comment)
    fits.HDUList([fits.PrimaryHDU(), rebuilt]).writeto(path)


def _write(directory: Path) -> dict[str, Path]:
    rng = np.random.default_rng(20)
    paths = {}
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", AstropyWarning)
        for name, kind, algorithm, options in CASES:
            data = _image(kind, rng)
            tiles = (16, 16) if algorithm == "HCOMPRESS_1" else (8, 20)
            header = fits.Header([("OBJECT", name)])
            hdu = fits.CompImageHDU(
                data, header, compression_type=algorithm, tile_shape=tiles, **options
            )
            if kind == "u2":
                assert hdu.header["BZERO"] == 32768
            path = directory / f"{name}.fits"
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
            paths[name] = path
        for name, kind, algorithm in CUBE_CASES:
            data = np.stack([_image(kind, rng) for _ in range(5)])
            hdu = fits.CompImageHDU(data, compression_type=algorithm, tile_shape=(2, 8, 16))
            path = directory / f"{name}.fits"
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
            paths[name] = path
        path = directory / f"{UNCOMPRESSED_CASE}.fits"
        _with_uncompressed_tiles(paths["RICE_1-f4-dither1"], path)
        paths[UNCOMPRESSED_CASE] = path
    return paths


@pytest.fixture(scope="module")
def compressed_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _write(tmp_path_factory.mktemp("compressed"))


@pytest.fixture(scope="module", params=["file", "s3"])
def opened(
    request: pytest.FixtureRequest, compressed_files: dict[str, Path]
) -> dict[str, cloudfits.RemoteFITS]:
    """Every test file, opened through file:// or from the local S3 server."""
    if request.param == "file":
        return {name: cloudfits.open(path) for name, path in compressed_files.items()}
    server: S3Server = request.getfixturevalue("s3_server")
    server.create_bucket(BUCKET)
    client = server.client()
    for _name, path in compressed_files.items():
        client.upload_file(str(path), BUCKET, path.name)
    return {name: cloudfits.open(f"s3://{BUCKET}/{name}.fits") for name in compressed_files}


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        yield


def _same(got: np.ndarray, expected: np.ndarray) -> None:
    expected = np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype.newbyteorder("=")
    assert got.dtype.isnative
    assert (
        got.tobytes() == np.ascontiguousarray(expected, expected.dtype.newbyteorder("=")).tobytes()
    )


ALL_NAMES = [c[0] for c in CASES] + [c[0] for c in CUBE_CASES] + [UNCOMPRESSED_CASE]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_random_sections_equal_astropys(
    opened: dict[str, cloudfits.RemoteFITS], compressed_files: dict[str, Path], name: str
) -> None:
    hdu = opened[name][1]
    assert hdu.kind is HDUKind.COMPRESSED_IMAGE
    with fits.open(compressed_files[name]) as hdul:
        expected_hdu = hdul[1]
        assert isinstance(expected_hdu, fits.CompImageHDU)
        assert hdu.header.tostring() == expected_hdu.header.tostring()
        whole = expected_hdu.data
        assert hdu.shape == whole.shape
        assert hdu.dtype == whole.dtype.newbyteorder("=")
        _same(hdu.section[...], whole)
        section = expected_hdu.section

        @settings(
            max_examples=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(basic_indices(whole.shape, allow_newaxis=True, allow_ellipsis=True))
        def check(key: Any) -> None:
            got = hdu.section[key]
            _same(got, whole[key])
            items = key if isinstance(key, tuple) else (key,)
            if all(item is not None for item in items):  # astropy's section: no newaxis
                _same(got, section[key])

        check()


def test_the_cases_cover_every_feature(compressed_files: dict[str, Path]) -> None:
    algorithms, methods, columns, blanks, fallbacks = set(), set(), set(), 0, 0
    for path in compressed_files.values():
        with fits.open(path, disable_image_compression=True) as hdul:
            table = hdul[1]
            algorithms.add(table.header["ZCMPTYPE"])
            quantized = "ZSCALE" in table.columns.names
            methods.add(table.header.get("ZQUANTIZ", "NO_DITHER" if quantized else "-"))
            columns |= set(table.columns.names)
            blanks += "ZBLANK" in table.header
            if "GZIP_COMPRESSED_DATA" in table.columns.names:
                fallback = table.data["GZIP_COMPRESSED_DATA"]
                fallbacks += any(len(cell) for cell in fallback)
    assert algorithms == {"RICE_1", "GZIP_1", "GZIP_2", "HCOMPRESS_1", "PLIO_1", "NOCOMPRESS"}
    assert {"NO_DITHER", "SUBTRACTIVE_DITHER_1", "SUBTRACTIVE_DITHER_2"} <= methods
    assert {"ZSCALE", "ZZERO", "GZIP_COMPRESSED_DATA", "UNCOMPRESSED_DATA"} <= columns
    assert blanks > 0
    assert fallbacks >= 8  # quantized files with tiles stored losslessly instead


def test_tile_table_is_read_once(compressed_files: dict[str, Path]) -> None:
    f = cloudfits.open(compressed_files["RICE_1-i2"])
    hdu = f[1]
    f.reset_stats()  # opening scanned the headers
    hdu.section[0:8, 0:20]  # one tile
    first = f.stats.snapshot()
    assert first["requests"] == 2  # the tile table, then the tile
    hdu.section[8:16, 20:40]
    assert f.stats.requests == first["requests"] + 1


def test_headers_need_no_request(compressed_files: dict[str, Path]) -> None:
    f = cloudfits.open(compressed_files["GZIP_1-i2"])
    before = f.stats.snapshot()
    hdu = f[1]
    assert hdu.header["NAXIS1"] == SHAPE[1]
    assert hdu.raw_header["ZNAXIS1"] == SHAPE[1]
    assert hdu.shape == SHAPE
    assert hdu.dtype == np.dtype("i2")
    assert hdu.compressed.tile_shape == (8, 20)
    assert f.stats.snapshot() == before


def _big_rice(path: Path) -> np.ndarray:
    rng = np.random.default_rng(4)
    data = (1000 + rng.normal(0, 30, (4000, 4000))).astype(np.int16)
    hdu = fits.CompImageHDU(data, compression_type="RICE_1", tile_shape=(100, 100))
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return data


@pytest.mark.s3
def test_a_small_section_of_a_big_image_fetches_only_its_tiles(
    tmp_path: Path, s3_server: S3Server
) -> None:
    path = tmp_path / "big-rice.fits"
    data = _big_rice(path)
    s3_server.create_bucket("big")
    s3_server.client().upload_file(str(path), "big", "big-rice.fits")
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        f = cloudfits.open("s3://big/big-rice.fits", endpoint_url=proxy.url)
        hdu = f[1]
        proxy.reset()
        f.reset_stats()
        key = (slice(1250, 1350), slice(2030, 2130))  # 2 x 2 tiles
        got = hdu.section[key]
        np.testing.assert_array_equal(got, data[key])
        table = hdu.compressed.descriptor_rows(f.fetch_options)
        descriptors = np.asarray(table["COMPRESSED_DATA"]).reshape(-1, 2)
        rows = [12 * 40 + 20, 12 * 40 + 21, 13 * 40 + 20, 13 * 40 + 21]
        tile_bytes = int(descriptors[rows, 0].sum())
        table_bytes = 1600 * int(hdu.raw_header["NAXIS1"])
        wire = proxy.response_bytes_total
        assert f.stats.bytes == wire
        # The tile table, then the four tiles: two runs of two tiles adjacent in the heap.
        assert wire == table_bytes + tile_bytes
        assert proxy.request_count == 3
        assert wire < hdu.size / 50
        print(
            f"\n100x100 of 4000x4000 RICE_1 (100x100 tiles): 4 of 1600 tiles,"
            f" {proxy.request_count} requests, {wire} bytes ({table_bytes} tile table +"
            f" {tile_bytes} tiles) of {hdu.size} bytes in the HDU"
        )


def test_a_strided_key_skips_the_tiles_between(compressed_files: dict[str, Path]) -> None:
    f = cloudfits.open(compressed_files["RICE_1-i2"], max_gap=0)
    hdu = f[1]
    table = hdu.compressed.descriptor_rows(f.fetch_options)  # tiles of 8 x 20 pixels
    sizes = np.asarray(table["COMPRESSED_DATA"]).reshape(-1, 2)[:, 0]
    f.reset_stats()
    got = hdu.section[0:45:16, 3]  # rows 0, 16, 32: tile rows 0, 2, 4 of column 0
    with fits.open(compressed_files["RICE_1-i2"]) as hdul:
        np.testing.assert_array_equal(got, hdul[1].data[0:45:16, 3])
    assert f.stats.requests == 3
    assert f.stats.bytes == int(sizes[[0, 2 * 4, 4 * 4]].sum())
