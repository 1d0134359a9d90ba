"""TESS target-pixel cutouts: the same file as astrocut's, from far fewer bytes."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

import cloudfits
from cloudfits.astro.tess import tess_cutout
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

astrocut = pytest.importorskip("astrocut")

from astrocut import TessCubeCutout  # noqa: E402
from astrocut.cube_cutout import CubeCutout  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        warnings.simplefilter("ignore", astrocut.exceptions.DataWarning)
        yield


def _sky(cube: Path, x: float, y: float) -> SkyCoord:
    """The sky position of pixel (x, y) of the cube, by the WCS astrocut uses."""
    with fits.open(cube) as hdul:
        wcs = CubeCutout.parse_table_wcs(hdul[2].data, "CTYPE2", "DEC--TAN-SIP")
    sky: SkyCoord = wcs.pixel_to_world(x, y)
    return sky


def _astrocut(source: str, where: SkyCoord, size: int | tuple[int, int]) -> fits.HDUList:
    made = TessCubeCutout([source], where, size)
    hdulist: fits.HDUList = made.tpf_cutouts[0]
    return hdulist


def assert_same_tpf(ours: fits.HDUList, theirs: fits.HDUList) -> None:
    assert [h.name for h in ours] == ["PRIMARY", "PIXELS", "APERTURE"]
    diff = fits.FITSDiff(ours, theirs)
    assert diff.identical, diff.report()
    for name in ("FLUX", "FLUX_ERR"):
        got, want = ours[1].data[name], theirs[1].data[name]
        assert got.tobytes() == want.tobytes(), name


@pytest.mark.parametrize(
    ("x", "y", "size"),
    [(30.3, 20.7, 7), (10.0, 50.0, (5, 9)), (1.2, 62.6, 6), (40.5, 40.5, 1)],
    ids=["inside", "rectangle", "corner", "one-pixel"],
)
def test_cutout_equals_astrocuts(tess_cube: Path, x: float, y: float, size: int) -> None:
    where = _sky(tess_cube, x, y)
    f = cloudfits.open(tess_cube)
    ours = tess_cutout(f, where, size)
    assert_same_tpf(ours, _astrocut(str(tess_cube), where, size))
    with fits.open(tess_cube) as hdul:
        frames = hdul[1].shape[2]
    assert len(ours[1].data) == frames


def test_cutout_off_the_cube_is_an_error(tess_cube: Path) -> None:
    where = _sky(tess_cube, 500.0, 500.0)
    with pytest.raises(cloudfits.CloudFitsError, match="does not overlap the cube"):
        tess_cutout(cloudfits.open(tess_cube), where, 5)


def test_not_a_cube(tmp_path: Path) -> None:
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(path)
    with pytest.raises(cloudfits.FitsFormatError, match="not a TESS cube"):
        tess_cutout(cloudfits.open(path), SkyCoord(10, 10, unit="deg"), 3)


@pytest.mark.s3
def test_cutout_from_s3_reads_far_less_than_astrocut(
    tess_bucket: str,
    tess_cube: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    where = _sky(tess_cube, 30.3, 20.7)
    uri = f"{tess_bucket}/{tess_cube.name}"
    with RecordingProxy(s3_server.endpoint_url) as proxy:
        f = cloudfits.open(uri, endpoint_url=proxy.url)
        assert len(f) == 3  # the headers, the table's after the cube included, read now
        proxy.reset()
        ours = tess_cutout(f, where, 7)
        our_requests, our_bytes = proxy.request_count, proxy.response_bytes_total
        proxy.reset()
        # astrocut reads s3:// through fsspec (s3fs), unsigned, from the endpoint the
        # environment names: here the same proxy.
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        theirs = _astrocut(uri, where, 7)
        their_requests, their_bytes = proxy.request_count, proxy.response_bytes_total
    assert_same_tpf(ours, theirs)
    with fits.open(tess_cube) as hdul:
        table_bytes = hdul[2]._data_size
        pixel_bytes = 7 * 7 * hdul[1].shape[2] * 2 * 4
    assert our_bytes < table_bytes + pixel_bytes + 7 * 4096
    assert our_bytes < their_bytes
    print(
        f"\nTESS 7x7 cutout of a {tess_cube.stat().st_size}-byte cube: cloudfits"
        f" {our_requests} requests, {our_bytes} bytes; astrocut (s3fs)"
        f" {their_requests} requests, {their_bytes} bytes"
    )
