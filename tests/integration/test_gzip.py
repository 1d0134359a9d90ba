"""Whole-file gzip (``.fits.gz``): opened, indexed, read at random, against astropy.

Every value is compared with astropy reading the same file; the bad streams (truncated,
CRC, length, deflate data, several members, trailing bytes, not FITS) and the other
compressions each have a test of their error, through ``cloudfits.open`` and
``build_index``.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import cloudfits
from cloudfits import FitsFormatError, IndexFormatError
from cloudfits.index.parquet_gzip import GZIP_POINTS_COLUMN
from cloudfits.index.refs import kerchunk_references

from ..astropy_compare import assert_tables_equal, table_read


def _small_fits(path: Path) -> Path:
    """Three HDUs, about 600 KB: an image, a table and a scaled image."""
    rng = np.random.default_rng(11)
    image = rng.normal(0, 1, (300, 400)).astype(">f4")
    table = Table(
        {
            "ID": np.arange(3000, dtype=np.int32),
            "FLUX": rng.lognormal(0, 1, 3000),
            "NAME": np.array(["a", "bb", "ccc"])[rng.integers(0, 3, 3000)],
        }
    )
    table["FLUX"].unit = "Jy"
    scaled = fits.ImageHDU(rng.integers(0, 4000, (50, 60)).astype(np.int16), name="SCALED")
    scaled.header["BSCALE"], scaled.header["BZERO"] = 2.0, 100.0
    fits.HDUList([fits.PrimaryHDU(image), fits.BinTableHDU(table, name="CAT"), scaled]).writeto(
        path, overwrite=True
    )
    return path


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _small_fits(tmp_path_factory.mktemp("gzip-plain") / "small.fits")


@pytest.fixture(scope="module")
def packed(plain: Path) -> bytes:
    return gzip.compress(plain.read_bytes(), compresslevel=6, mtime=0)


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def _same_as_astropy(f: cloudfits.RemoteFITS, plain: Path) -> None:
    with fits.open(plain) as hdul:
        assert [h.header.tostring() for h in f] == [h.header.tostring() for h in hdul]
        assert np.array_equal(f[0].section[17:40, 300:377], hdul[0].data[17:40, 300:377])
        assert np.array_equal(f[0].section[::7, -3], hdul[0].data[::7, -3])
        assert np.array_equal(f["SCALED"].section[...], hdul["SCALED"].data)
    expected = table_read(plain, 1)
    assert_tables_equal(f["CAT"].read(rows=slice(2990, 3000)), expected[2990:3000])
    assert_tables_equal(f["CAT"].read(columns=["NAME"]), expected[["NAME"]])


def test_open_without_index_is_one_logged_pass(
    plain: Path, packed: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, "small.fits.gz", packed)
    with caplog.at_level(logging.INFO, logger="cloudfits"):
        f = cloudfits.open(path)
    assert f.stats.gzip_passes == 1
    assert f.stats.bytes == len(packed) + 8  # every compressed byte once, and the trailer
    assert any(
        "whole-file gzip" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records
    )
    _same_as_astropy(f, plain)
    assert f.stats.gzip_passes == 1


def test_gzip_is_told_by_content_whatever_the_name(
    plain: Path, packed: bytes, tmp_path: Path
) -> None:
    f = cloudfits.open(_write(tmp_path, "disguised.fits", packed))
    _same_as_astropy(f, plain)


def test_a_folder_of_gzip_files_indexes_and_reads(
    plain: Path, packed: bytes, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    _write(folder, "a.fits.gz", packed)
    _write(folder, "b.evt.gz", packed)
    cloudfits.build_index(folder / "a.fits.gz").save(str(folder / "old-index.json.gz"))
    stats = cloudfits.ReadStats()
    index = cloudfits.build_index(folder, stats=stats)
    assert index.paths == ["a.fits.gz", "b.evt.gz"]  # its own index left out
    assert stats.gzip_passes == 2
    for name in ("index.json", "index.json.gz", "index.parquet"):
        index.save(str(tmp_path / name))
        loaded = cloudfits.load_index(str(tmp_path / name))
        assert loaded.entry("b.evt.gz") == index.entry("b.evt.gz")
        f = loaded.open("b.evt.gz")
        _same_as_astropy(f, plain)
        assert f.stats.gzip_passes == 0


def test_to_dask_of_a_gzip_image(plain: Path, packed: bytes, tmp_path: Path) -> None:
    pytest.importorskip("dask.array")
    _write(tmp_path, "small.fits.gz", packed)
    f = cloudfits.build_index(tmp_path).open("small.fits.gz")
    with fits.open(plain) as hdul:
        assert np.array_equal(f[0].to_dask(chunks=(64, 100)).compute(), hdul[0].data)


def test_kerchunk_references_leave_gzip_out(plain: Path, packed: bytes, tmp_path: Path) -> None:
    shutil.copy(plain, tmp_path / "small.fits")
    _write(tmp_path, "small.fits.gz", packed)
    index = cloudfits.build_index(tmp_path)
    with pytest.warns(cloudfits.CloudFitsWarning, match=r"small\.fits\.gz: whole-file gzip"):
        refs = index.to_kerchunk()["refs"]
    assert any(key.startswith("small.fits/") for key in refs)
    assert not any(key.startswith("small.fits.gz/") for key in refs)
    with pytest.raises(cloudfits.CloudFitsError, match="no byte ranges"):
        kerchunk_references(index, paths=["small.fits.gz"])


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1 :]


BAD_STREAMS = {
    "truncated": (lambda d: d[: len(d) // 2], "truncated gzip stream: it ends at compressed byte"),
    "no-trailer": (lambda d: d[:-5], "truncated gzip stream"),
    "crc": (lambda d: _flip(d, len(d) - 8), r"corrupt gzip: the CRC-32 in its trailer"),
    "length": (lambda d: _flip(d, len(d) - 2), r"corrupt gzip: the length in its trailer"),
    "deflate": (lambda d: _flip(d, 12), "corrupt gzip data near compressed byte"),
    "members": (
        lambda d: d + gzip.compress(b"more", mtime=0),
        "not supported: multi-member gzip .* starts at compressed byte",
    ),
    "trailing": (lambda d: d + b"junk", "4 bytes of trailing data after the gzip stream"),
    "not-fits": (
        lambda d: gzip.compress(b"hello, world\n" * 300, mtime=0),
        "gzip-compressed, but its decompressed bytes do not start a FITS file",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_STREAMS))
def test_bad_gzip_is_a_clear_error_naming_the_object(
    case: str, packed: bytes, tmp_path: Path
) -> None:
    spoil, message = BAD_STREAMS[case]
    path = _write(tmp_path, f"{case}.fits.gz", spoil(packed))
    with pytest.raises(FitsFormatError, match=message) as raised:
        cloudfits.open(path)
    assert str(path) in str(raised.value)
    with pytest.raises(FitsFormatError, match=message) as raised:
        cloudfits.build_index(tmp_path)  # errors="raise": the first bad object, named
    assert f"{case}.fits.gz" in str(raised.value)
    index = cloudfits.build_index(tmp_path, errors="collect")
    assert [(x.path, x.error) for x in index.failures] == [(f"{case}.fits.gz", "FitsFormatError")]


def test_zero_padding_after_the_stream_is_allowed(
    plain: Path, packed: bytes, tmp_path: Path
) -> None:
    path = _write(tmp_path, "padded.fits.gz", packed + bytes(4000))
    with fits.open(path) as hdul:  # astropy reads it too
        assert len(hdul) == 3
    _same_as_astropy(cloudfits.open(path), plain)


def _zip(plain: Path) -> bytes:
    out = plain.parent / "small.zip"
    with zipfile.ZipFile(out, "w") as archive:
        archive.write(plain, "small.fits")
    return out.read_bytes()


UNSUPPORTED = {
    "bzip2": ("small.fits.bz2", lambda p: __import__("bz2").compress(p.read_bytes())),
    "compress": ("small.fits.Z", lambda p: b"\x1f\x9d\x90" + p.read_bytes()[:100]),
    "zip": ("small.fits.zip", _zip),
}


@pytest.mark.parametrize("kind", sorted(UNSUPPORTED))
def test_other_compressions_say_not_supported(kind: str, plain: Path, tmp_path: Path) -> None:
    name, make = UNSUPPORTED[kind]
    path = _write(tmp_path, name, make(plain))
    with pytest.raises(FitsFormatError, match=f"{re.escape(str(path))}: not supported: {kind}"):
        cloudfits.open(path)
    disguised = _write(tmp_path, "disguised.fits", path.read_bytes())
    with pytest.raises(FitsFormatError, match=r"disguised\.fits: not supported"):
        cloudfits.build_index(disguised)


def test_an_edited_gzip_entry_is_refused(packed: bytes, tmp_path: Path) -> None:
    _write(tmp_path, "small.fits.gz", packed)
    document = cloudfits.build_index(tmp_path).to_dict()
    entry = document["files"][0]
    entry["gzip"]["points"][0]["window"] = "AAAA"
    with pytest.raises(IndexFormatError, match=r"small\.fits\.gz.*first point has no window"):
        cloudfits.FitsIndex.from_dict(document)
    entry["gzip"]["points"][0].pop("window")
    entry["gzip"]["uncompressed_size"] = 1000  # the HDUs no longer fit in it
    with pytest.raises(IndexFormatError, match="inconsistent layout"):
        cloudfits.FitsIndex.from_dict(document)
    entry["gzip"]["version"] = 7
    with pytest.raises(IndexFormatError, match="version 7 is not supported"):
        cloudfits.FitsIndex.from_bytes(json.dumps(document).encode())


def test_an_edited_parquet_gzip_column_is_refused(packed: bytes, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _write(tmp_path, "small.fits.gz", packed)
    cloudfits.build_index(tmp_path).save(str(tmp_path / "i.parquet"))
    table = pq.read_table(tmp_path / "i.parquet")
    texts = table.column(GZIP_POINTS_COLUMN).to_pylist()
    texts[0] = texts[0].replace('"version":1', '"version":3')
    spoilt = table.set_column(
        table.schema.get_field_index(GZIP_POINTS_COLUMN),
        GZIP_POINTS_COLUMN,
        pa.array(texts, pa.string()),
    )
    pq.write_table(spoilt.replace_schema_metadata(table.schema.metadata), tmp_path / "bad.parquet")
    loaded = cloudfits.load_index(str(tmp_path / "bad.parquet"))  # layout fine: loads
    with pytest.raises(IndexFormatError, match=r"small\.fits\.gz.*version 3 is not supported"):
        loaded.open("small.fits.gz")


def test_an_index_of_plain_files_only_has_no_gzip_field(plain: Path, tmp_path: Path) -> None:
    shutil.copy(plain, tmp_path / "small.fits")
    document = cloudfits.build_index(tmp_path).to_dict()
    assert "gzip" not in document["files"][0]
