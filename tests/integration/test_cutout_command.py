"""``cloudfits cutout`` as a new user meets it: checks before reads, edges, errors, cards.

A synthetic TESS full-frame image (2-D, with a celestial WCS) on the local disk; the
command runs in-process, and `cloudfits.stats` tells whether anything was read.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

import cloudfits
from cloudfits.cli import main

pytest.importorskip("astrocut")


@pytest.fixture(scope="module")
def ffi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cloudfits.testing.tess import make_ffis

    directory = tmp_path_factory.mktemp("ffi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (path,) = make_ffis(directory, n_frames=1, shape=(80, 90), seed=3)
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["OBJECT"] = "TIC 12345"
        hdul[1].header["EXPTIME"] = (1800.0, "seconds")
        hdul[1].header["FILTER"] = "TESS"
    return path


def _sky(path: Path, x: float, y: float) -> tuple[str, str]:
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sky = WCS(hdul[1].header).pixel_to_world(x, y)
    return str(sky.ra.deg), str(sky.dec.deg)


def _cutout(path: Path, out: Path, ra: str, dec: str, size: str, *extra: str) -> int:
    args = ["cutout", str(path), "--ra", ra, "--dec", dec, "--size", size, "-o", str(out)]
    return main([*args, *extra])


def test_an_existing_output_is_refused_before_any_read(
    ffi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exists.fits"
    out.write_bytes(b"keep me")
    ra, dec = _sky(ffi, 40, 30)
    before = cloudfits.stats.copy()
    assert _cutout(ffi, out, ra, dec, "10") == 2
    assert (cloudfits.stats - before).requests == 0
    err = capsys.readouterr().err
    assert "--overwrite" in err
    assert "overwrite=True" not in err
    assert out.read_bytes() == b"keep me"
    assert _cutout(ffi, out, ra, dec, "10", "--overwrite") == 0


def test_a_cutout_at_an_edge_reports_its_real_size(
    ffi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "edge.fits"
    ra, dec = _sky(ffi, 85, 40)  # 4 pixels from the right edge of 90
    assert _cutout(ffi, out, ra, dec, "20") == 0
    with fits.open(out) as got:
        rows, columns = got[0].data.shape
    assert (rows, columns) != (20, 20)
    assert f"({columns}x{rows} pixels, cut at the edge)" in capsys.readouterr().out


def test_off_the_image_says_so(
    ffi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ra, dec = _sky(ffi, 5000, 5000)
    assert _cutout(ffi, tmp_path / "off.fits", ra, dec, "10") == 1
    err = capsys.readouterr().err
    assert "off the image" in err
    assert "(90x80 pixels)" in err
    assert not (tmp_path / "off.fits").exists()


@pytest.mark.parametrize(("dec", "size", "word"), [("10", "0", "--size"), ("95", "5", "--dec")])
def test_bad_numbers_are_usage_errors(
    dec: str, size: str, word: str, ffi: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cutout(ffi, tmp_path / "bad.fits", "10", dec, size) == 2
    assert word in capsys.readouterr().err


def test_the_output_keeps_object_exptime_and_filter(ffi: Path, tmp_path: Path) -> None:
    out = tmp_path / "cards.fits"
    ra, dec = _sky(ffi, 40, 30)
    assert _cutout(ffi, out, ra, dec, "12") == 0
    with fits.open(out) as got, fits.open(ffi) as local:
        header = got[0].header
        assert header["OBJECT"] == "TIC 12345"
        assert header["EXPTIME"] == 1800.0
        assert header["FILTER"] == "TESS"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(local[1].header)
            expected = Cutout2D(local[1].data, wcs.pixel_to_world(40, 30), 12, wcs=wcs)
        np.testing.assert_array_equal(got[0].data, expected.data)


def test_index_spares_the_header_scan(ffi: Path, tmp_path: Path) -> None:
    index_uri = str(tmp_path / "ffi.json")
    cloudfits.build_index(str(ffi.parent)).save(index_uri)
    ra, dec = _sky(ffi, 40, 30)
    spent = []
    for extra in ((), ("--index", index_uri)):
        before = cloudfits.stats.copy()
        assert _cutout(ffi, tmp_path / f"i{len(extra)}.fits", ra, dec, "12", *extra) == 0
        spent.append(cloudfits.stats - before)
    scanned, indexed = spent
    assert indexed.bytes < scanned.bytes, spent
    with fits.open(tmp_path / "i0.fits") as a, fits.open(tmp_path / "i2.fits") as b:
        np.testing.assert_array_equal(a[0].data, b[0].data)
