"""``cloudfits cutout``, run as a command."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

import cloudfits

astrocut = pytest.importorskip("astrocut")
pytest.importorskip("matplotlib")

from astrocut import TessCubeCutout  # noqa: E402
from astrocut.cube_cutout import CubeCutout  # noqa: E402

SRC = Path(cloudfits.__file__).parent.parent


def _cloudfits(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "cloudfits", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, checked to decode as an image."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    assert raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        assert image.size == (width, height)
        low, high = image.convert("L").getextrema()
        assert high - low > 100  # not a blank picture
    return width, height


def _cube_position(cube: Path, x: float, y: float) -> tuple[float, float]:
    with fits.open(cube) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        wcs = CubeCutout.parse_table_wcs(hdul[2].data, "CTYPE2", "DEC--TAN-SIP")
    sky = wcs.pixel_to_world(x, y)
    return float(sky.ra.deg), float(sky.dec.deg)


def _check_tpf(out: Path, cube: Path, ra: float, dec: float, size: int) -> None:
    """The file equals astrocut's own cutout of the local cube, written the same way."""
    expected = out.with_name("astrocut-" + out.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TessCubeCutout([str(cube)], f"{ra} {dec}", size).tpf_cutouts[0].writeto(expected)
    diff = fits.FITSDiff(str(out), str(expected))
    assert diff.identical, diff.report()


def test_cutout_of_a_local_cube_with_png(tess_cube: Path, tmp_path: Path) -> None:
    ra, dec = _cube_position(tess_cube, 30.3, 20.7)
    out, png = tmp_path / "tpf.fits", tmp_path / "tpf.png"
    done = _cloudfits(
        "cutout", str(tess_cube), "--ra", str(ra), "--dec", str(dec), "--size", "9",
        "-o", str(out), "--png", str(png),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "requests" in done.stdout
    _check_tpf(out, tess_cube, ra, dec, 9)
    assert _png_size(png) == (500, 420)


@pytest.mark.s3
def test_cutout_of_a_cube_in_s3(tess_bucket: str, tess_cube: Path, tmp_path: Path) -> None:
    ra, dec = _cube_position(tess_cube, 12.0, 40.0)
    out = tmp_path / "s3.fits"
    uri = f"{tess_bucket}/{tess_cube.name}"
    done = _cloudfits(
        "cutout", uri, "--ra", str(ra), "--dec", str(dec), "--size", "5", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    _check_tpf(out, tess_cube, ra, dec, 5)
    again = _cloudfits(
        "cutout", uri, "--ra", str(ra), "--dec", str(dec), "--size", "5", "-o", str(out)
    )
    assert again.returncode == 2  # a usage error, found before any byte is read
    assert "exists" in again.stderr
    assert "--overwrite" in again.stderr


def test_cutout_of_a_2d_image(tmp_path: Path) -> None:
    from cloudfits.testing.tess import make_ffis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (ffi,) = make_ffis(tmp_path, n_frames=1, shape=(80, 90), seed=2)
        with fits.open(ffi) as hdul:
            data, wcs = hdul[1].data, WCS(hdul[1].header)
    sky = wcs.pixel_to_world(40.0, 33.0)
    out, png = tmp_path / "cut.fits", tmp_path / "cut.png"
    done = _cloudfits(
        "cutout", str(ffi), "--ra", str(sky.ra.deg), "--dec", str(sky.dec.deg),
        "--size", "15", "-o", str(out), "--png", str(png),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = Cutout2D(data, sky, 15, wcs=wcs)
    with fits.open(out) as got:
        np.testing.assert_array_equal(got[0].data, expected.data)
        written = WCS(got[0].header).to_header_string(relax=True)
        assert written == expected.wcs.to_header_string(relax=True)  # SIP kept
    assert _png_size(png) == (500, 420)


def test_cutout_errors(tess_cube: Path, tmp_path: Path) -> None:
    ra, dec = _cube_position(tess_cube, 900.0, 900.0)
    out = tmp_path / "none.fits"
    done = _cloudfits(
        "cutout", str(tess_cube), "--ra", str(ra), "--dec", str(dec), "--size", "5", "-o", str(out)
    )
    assert done.returncode == 1
    assert "does not overlap" in done.stderr
    assert not out.exists()
    usage = _cloudfits("cutout", str(tess_cube), "--dec", "3", "--size", "5", "-o", str(out))
    assert usage.returncode == 2
    assert "--ra" in usage.stderr
