"""Kerchunk references and the FITS codecs, without a server (local files only)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

import cloudfits
from cloudfits.index.refs import contiguous_chunks, header_attributes, remote_url

numcodecs = pytest.importorskip("numcodecs")

OPTIONAL = ("zarr", "kerchunk", "fsspec", "virtualizarr", "s3fs", "fastparquet")


def test_import_cloudfits_loads_none_of_the_zarr_extra() -> None:
    # astropy.io.fits imports numcodecs itself when it is installed; cloudfits adds nothing.
    probe = (
        "import sys\nimport astropy.io.fits\nbefore = set(sys.modules)\nimport cloudfits\n"
        "import cloudfits.index.refs\n"
        f"print(','.join(m for m in set(sys.modules) - before if m.split('.')[0] in {OPTIONAL!r}"
        " or m.startswith('numcodecs')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("shape", "itemsize", "limit", "expected"),
    [
        ((100, 2048), 4, 512 * 1024, (64, 2048)),
        ((10, 300, 2048), 8, 512 * 1024, (1, 32, 2048)),
        ((5, 7), 4, 10**6, (5, 7)),
        ((3, 4), 8, 1, (1, 1)),
        ((2, 2, 1000), 4, 3000, (1, 1, 750)),
    ],
)
def test_chunks_are_contiguous_runs(
    shape: tuple[int, ...], itemsize: int, limit: int, expected: tuple[int, ...]
) -> None:
    chunks = contiguous_chunks(shape, itemsize, limit)
    assert chunks == expected
    assert np.prod(chunks) * itemsize <= max(limit, itemsize)
    # One chunk is one run: whole trailing axes after the first axis that is cut.
    cut = next((i for i, c in enumerate(chunks) if c != 1), len(shape) - 1)
    assert chunks[cut + 1 :] == shape[cut + 1 :]


def test_remote_urls_name_no_credentials(tmp_path: Path) -> None:
    assert remote_url("s3://bucket/dir", "a.fits") == "s3://bucket/dir/a.fits"
    assert remote_url(str(tmp_path), "x/a.fits") == f"file://{tmp_path}/x/a.fits"
    assert remote_url("https://user:pw@example.org/d", "a.fits") == "https://example.org/d/a.fits"
    with pytest.raises(ValueError, match="no fsspec protocol reads libcloud"):
        remote_url("libcloud+s3://bucket/d", "a.fits")


def test_header_attributes_are_json_and_not_decoded_by_xarray() -> None:
    header = fits.Header([("EXPTIME", 12.5), ("FLAG", True), ("NAME", "x")])
    header["COMMENT"] = "one"
    header["COMMENT"] = "two"
    header["CPLX"] = 1 + 2j
    attrs = header_attributes(header)
    assert attrs["COMMENT"] == "one\ntwo"
    assert attrs["CPLX"] == "(1+2j)"
    assert json.loads(json.dumps(attrs, allow_nan=False)) == attrs


def test_the_image_codec_pads_a_short_chunk_and_refuses_wrong_bytes() -> None:
    codec = numcodecs.get_codec(
        {
            "id": "cloudfits.fits_image",
            "raw": ">i2",
            "dtype": "<u2",
            "bzero": 32768,
            "unsigned": True,
            "items": 4,
        }
    )
    raw = np.array([-32768, 0, 32767], dtype=">i2").tobytes()
    assert codec.decode(raw).tolist() == [0, 32768, 65535, 32768]  # padded with raw 0
    assert numcodecs.get_codec(codec.get_config()) == codec
    with pytest.raises(ValueError, match="not whole >i2 values"):
        codec.decode(raw + b"\0")
    with pytest.raises(ValueError, match="of a chunk of 4"):
        codec.decode(raw * 2)
    with pytest.raises(NotImplementedError, match="decodes FITS data"):
        codec.encode(np.zeros(4, "u2"))


def test_a_tile_pointing_outside_the_heap_is_an_error_naming_file_and_hdu(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.fits"
    data = np.arange(400, dtype="i2").reshape(20, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, tile_shape=(5, 20))]).writeto(path)
    index = cloudfits.build_index(path)
    layout = index.files[0].hdus[1]
    raw = bytearray(path.read_bytes())
    # The first row's descriptor: (count, offset) as big-endian int32; push the offset out.
    raw[layout.data_offset + 4 : layout.data_offset + 8] = (10**6).to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    index = cloudfits.build_index(path)
    with pytest.raises(cloudfits.FitsFormatError, match=r"bad\.fits: HDU 1: tile 0 .* outside"):
        index.to_kerchunk()


def test_tile_decoding_on_many_threads_gives_astropys_tiles(tmp_path: Path) -> None:
    """astropy's HCOMPRESS decoder is not thread-safe; zarr and dask decode on threads."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    data = rng.integers(0, 4000, (48, 64)).astype("i2")
    path = tmp_path / "h.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        hdu = fits.CompImageHDU(data, compression_type="HCOMPRESS_1", tile_shape=(16, 16))
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    index = cloudfits.build_index(path)
    refs = index.to_kerchunk()["refs"]
    codec = numcodecs.get_codec(json.loads(refs["h.fits/hdu1/.zarray"])["filters"][0])
    raw = path.read_bytes()
    chunks = {k.rsplit("/", 1)[1]: v for k, v in refs.items() if k.startswith("h.fits/hdu1/")}
    tiles = {k: raw[v[1] : v[1] + v[2]] for k, v in chunks.items() if isinstance(v, list)}
    section = index.open("h.fits")[1].section
    keys = [
        (slice(i, i + 16), slice(j, j + 16)) for i in range(0, 48, 16) for j in range(0, 64, 16)
    ]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(40):
            decoded = pool.map(lambda k: (k, codec.decode(tiles[k])), list(tiles))
            for key, values in decoded:
                i, j = (int(n) * 16 for n in key.split("."))
                assert values.reshape(16, 16).tolist() == data[i : i + 16, j : j + 16].tolist()
            for key, got in zip(keys, pool.map(section.__getitem__, keys), strict=True):
                assert got.tolist() == data[key].tolist()
