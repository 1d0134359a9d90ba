"""WCS from the index and sky cutouts of 2-D images, plain and tile-compressed."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

import cloudfits
from cloudfits.testing.seaweedfs import S3Server

SHAPE = (120, 160)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        yield


@pytest.fixture(scope="module")
def sky_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A TESS-like FFI (TAN-SIP WCS), and its science image tile-compressed."""
    from cloudfits.testing.tess import make_ffis

    directory = tmp_path_factory.mktemp("sky")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (ffi,) = make_ffis(directory, n_frames=1, shape=SHAPE, seed=9)
    with fits.open(ffi) as hdul:
        header, data = hdul[1].header, hdul[1].data
        compressed = fits.CompImageHDU(
            data, header, compression_type="RICE_1", tile_shape=(16, 16), quantize_method=2
        )
        path = directory / "compressed.fits"
        fits.HDUList([fits.PrimaryHDU(), compressed]).writeto(path)
    return {"plain": ffi, "compressed": path}


@pytest.fixture(scope="module", params=["file", "s3"])
def sky_hdus(
    request: pytest.FixtureRequest, sky_files: dict[str, Path]
) -> dict[str, cloudfits.RemoteHDU]:
    if request.param == "file":
        return {k: cloudfits.open(p)[1] for k, p in sky_files.items()}
    server: S3Server = request.getfixturevalue("s3_server")
    server.create_bucket("sky")
    for path in sky_files.values():
        server.client().upload_file(str(path), "sky", path.name)
    return {k: cloudfits.open(f"s3://sky/{p.name}")[1] for k, p in sky_files.items()}


def _astropy_hdu(path: Path) -> fits.HDUList:
    return fits.open(path)


@pytest.mark.parametrize("which", ["plain", "compressed"])
def test_wcs_comes_from_the_index(
    sky_hdus: dict[str, cloudfits.RemoteHDU], sky_files: dict[str, Path], which: str
) -> None:
    hdu = sky_hdus[which]
    before = hdu.file.stats.snapshot()
    with _astropy_hdu(sky_files[which]) as hdul:
        expected = WCS(hdul[1].header)
    assert hdu.wcs.to_header_string() == expected.to_header_string()
    assert hdu.wcs.sip is not None
    assert hdu.file.stats.snapshot() == before


@pytest.mark.parametrize("which", ["plain", "compressed"])
@pytest.mark.parametrize(
    ("x", "y", "size", "mode"),
    [
        (80.2, 60.7, 11, "trim"),
        (3.0, 4.0, (9, 15), "trim"),
        (158.0, 118.5, 12, "partial"),
        (50.0, 30.0, (1, 40), "strict"),
    ],
)
def test_cutout_equals_astropys(
    sky_hdus: dict[str, cloudfits.RemoteHDU],
    sky_files: dict[str, Path],
    which: str,
    x: float,
    y: float,
    size: int | tuple[int, int],
    mode: str,
) -> None:
    hdu = sky_hdus[which]
    with _astropy_hdu(sky_files[which]) as hdul:
        data, wcs = hdul[1].data, WCS(hdul[1].header)
    position = wcs.pixel_to_world(x, y)
    assert isinstance(position, SkyCoord)
    for where in (position, (x, y)):
        hdu.file.reset_stats()
        got = hdu.cutout(where, size, mode=mode)
        expected = Cutout2D(data, where, size, wcs=wcs, mode=mode)
        assert isinstance(got, Cutout2D)
        native = expected.data.dtype.newbyteorder("=")
        assert got.data.dtype == native  # cloudfits returns native byte order
        assert got.data.tobytes() == expected.data.astype(native).tobytes()
        assert got.bbox_original == expected.bbox_original
        assert got.wcs.to_header_string() == expected.wcs.to_header_string()
        assert got.position_original == expected.position_original
        if which == "plain":
            rows = expected.data.shape[0]
            assert hdu.file.stats.bytes <= rows * SHAPE[1] * 4
        else:
            assert hdu.file.stats.bytes < hdu.size / 3


def test_cutouts_need_2d_images(tmp_path: Path) -> None:
    path = tmp_path / "cube.fits"
    table = fits.BinTableHDU.from_columns([fits.Column("A", "J", array=[1, 2])])
    fits.HDUList([fits.PrimaryHDU(np.zeros((3, 4, 5), dtype="f4")), table]).writeto(path)
    f = cloudfits.open(path)
    with pytest.raises(TypeError, match="2-D image"):
        f[0].cutout((2, 2), 2)
    with pytest.raises(TypeError, match="only images have a WCS"):
        _ = f[1].wcs
    flat = tmp_path / "flat.fits"
    fits.PrimaryHDU(np.arange(30.0).reshape(5, 6)).writeto(flat)
    image = cloudfits.open(flat)[0]
    assert not image.wcs.has_celestial
    with pytest.raises(ValueError, match="wcs must be input"):
        image.cutout(SkyCoord(1, 2, unit="deg"), 2)
    assert image.cutout((2, 2), 3).data.tolist() == [[7, 8, 9], [13, 14, 15], [19, 20, 21]]
