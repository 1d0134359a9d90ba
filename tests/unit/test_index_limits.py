"""An index that cloudfits writes always loads; a data object is never taken for one.

Item 1 and item 2 of the issue "a new user's day": a ``.json.gz`` index of many short,
alike headers compresses far more than the first bound allowed; and a FITS object (or
any large object) named where an index is expected must be recognised from its first
bytes, not downloaded whole.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest
from astropy.io import fits

import cloudfits
from cloudfits.cli import main
from cloudfits.errors import IndexFormatError
from cloudfits.fits.scan import HDULayout, padded
from cloudfits.index.core import FileEntry, FitsIndex


def test_a_json_gz_index_of_many_short_headers_loads(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    directory.mkdir()
    fits.PrimaryHDU().writeto(directory / "a.fits")
    one = cloudfits.build_index(str(directory)).files[0]
    entries = [dataclasses.replace(one, path=f"d/{i:06d}.fits") for i in range(20_000)]
    index = FitsIndex(str(directory), entries)
    raw = index.to_bytes()
    ratio = len(raw) / len(index.to_bytes(compress=True))
    assert ratio > 100  # what the first bound (24 times) refused
    uri = str(tmp_path / "many.json.gz")
    index.save(uri)
    loaded = cloudfits.load_index(uri)
    assert len(loaded) == 20_000
    assert loaded.files[123].hdus == one.hdus


def test_an_index_that_would_not_load_is_refused_before_it_is_written(tmp_path: Path) -> None:
    blank = " " * 80
    text = blank * 80_000 + "SIMPLE  =                    T".ljust(80) + "END".ljust(80)
    layout = HDULayout(0, padded(len(text)), 0, text)
    index = FitsIndex(str(tmp_path), [FileEntry("a.fits", padded(len(text)), (layout,))])
    assert len(gzip.compress(index.to_bytes())) * 256 < len(index.to_bytes())
    uri = tmp_path / "blank.json.gz"
    with pytest.raises(IndexFormatError, match=r"save it as \.json or \.parquet"):
        index.save(str(uri))
    assert not uri.exists()
    index.save(str(tmp_path / "blank.json"))  # uncompressed, it loads
    assert len(cloudfits.load_index(str(tmp_path / "blank.json"))) == 1


def _sparse(path: Path, head: bytes, size: int) -> Path:
    """A file of ``size`` bytes that starts with ``head`` (sparse: no disk used)."""
    with path.open("wb") as out:
        out.write(head)
        out.truncate(size)
    return path


CUBE_SIZE = 44 * 1000**3  # a TESS cube


@pytest.mark.parametrize(
    ("name", "head", "message"),
    [
        ("cube.fits", fits.PrimaryHDU().header.tostring().encode(), "a FITS file"),
        ("cube.json", fits.PrimaryHDU().header.tostring().encode(), "a FITS file"),
        ("huge.json", b'{"format": "cloudfits-index", ', "more than an index document"),
        ("noise.json.gz", b"\x00\x01\x02" * 100, "not an index"),
    ],
)
def test_a_data_object_named_as_an_index_costs_one_small_read(
    name: str, head: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _sparse(tmp_path / name, head, CUBE_SIZE)
    before = cloudfits.stats.copy()
    with pytest.raises(IndexFormatError, match=message) as caught:
        cloudfits.load_index(str(path))
    assert str(path) in str(caught.value)
    spent = cloudfits.stats - before
    assert spent.bytes <= 64 * 1024, spent
    for args in (["verify", str(path)], ["info", str(tmp_path / "x.fits"), "--index", str(path)]):
        before = cloudfits.stats.copy()
        assert main(args) == 1
        assert message in capsys.readouterr().err
        assert (cloudfits.stats - before).bytes <= 64 * 1024
