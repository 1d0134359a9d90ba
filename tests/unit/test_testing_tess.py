"""Tests of the synthetic TESS FFIs and the MAST-style cubes built from them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

pytest.importorskip("astrocut")

from cloudfits.testing.tess import cube_from_ffis, make_ffis, make_tess_cube

FFI_NAME = re.compile(r"^tess\d{13}-s0022-4-4-\d{4}-s_ffic\.fits$")


# astropy fills MJD-OBS/MJD-END from DATE-OBS/DATE-END when it reads a WCS, as for real FFIs.
@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_ffis_look_like_spoc_ffis(tmp_path: Path) -> None:
    ffis = make_ffis(tmp_path, n_frames=3, shape=(12, 20), seed=5)
    assert len(ffis) == 3
    assert [p.name for p in ffis] == sorted(p.name for p in ffis)
    tstarts = []
    for path in ffis:
        assert FFI_NAME.match(path.name), path.name
        with fits.open(path) as hdul:
            assert len(hdul) == 3
            assert hdul[0].data is None
            assert hdul[1].header["EXTNAME"] == "CAMERA.CCD 4.4 cal"
            assert hdul[2].header["EXTNAME"] == "CAMERA.CCD 4.4 uncert"
            for ext in (1, 2):
                assert hdul[ext].header["BITPIX"] == -32
                assert hdul[ext].data.shape == (12, 20)
            science = hdul[1].header
            for key in ("TSTART", "TSTOP", "DATE-OBS", "DATE-END", "CAMERA", "CCD"):
                assert key in science
            assert science["TSTOP"] > science["TSTART"]
            assert science["WCSAXES"] == 2
            wcs = WCS(science)
            assert wcs.has_celestial
            # SPOC FFIs have a TAN projection with SIP distortions, and astrocut's cube
            # cutouts look for CTYPE2 = 'DEC--TAN-SIP' to find a frame with a WCS.
            assert list(wcs.wcs.ctype) == ["RA---TAN-SIP", "DEC--TAN-SIP"]
            assert wcs.sip is not None
            assert (wcs.sip.a_order, wcs.sip.b_order) == (3, 3)
            assert (wcs.sip.ap_order, wcs.sip.bp_order) == (3, 3)
            # The inverse polynomials (AP, BP) undo the forward ones (A, B) over the image.
            pix = np.stack(np.meshgrid(np.arange(20.0), np.arange(12.0)), -1).reshape(-1, 2)
            back = wcs.sip_foc2pix(wcs.sip_pix2foc(pix, 0), 0)
            np.testing.assert_allclose(back, pix, atol=1e-6)
            sky = wcs.pixel_to_world(10, 6)
            assert sky.dec.deg > 50  # camera 4 of sector 22 looks at the northern CVZ
            assert np.all(hdul[2].data > 0)
            assert isinstance(hdul[0].header["FFIINDEX"], int)
            tstarts.append(science["TSTART"])
    assert np.all(np.diff(tstarts) > 0)


def test_ffis_are_deterministic_and_have_stars(tmp_path: Path) -> None:
    first = make_ffis(tmp_path / "a", n_frames=2, shape=(32, 32), seed=1)
    again = make_ffis(tmp_path / "b", n_frames=2, shape=(32, 32), seed=1)
    other = make_ffis(tmp_path / "c", n_frames=2, shape=(32, 32), seed=2)
    for a, b, c in zip(first, again, other, strict=True):
        image = fits.getdata(a, 1)
        np.testing.assert_array_equal(image, fits.getdata(b, 1))
        assert not np.array_equal(image, fits.getdata(c, 1))
        # Stars stand far above the background.
        assert image.max() > 5 * np.median(image)
    # Noise differs between frames of one sequence.
    assert not np.array_equal(fits.getdata(first[0], 1), fits.getdata(first[1], 1))


def test_make_ffis_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_frames"):
        make_ffis(tmp_path, n_frames=0)
    with pytest.raises(ValueError, match="camera"):
        make_ffis(tmp_path, n_frames=1, camera=5)


def test_cube_has_mast_layout(tmp_path: Path) -> None:
    rows, cols, n_frames = 12, 20, 6
    cube = make_tess_cube(tmp_path, n_frames=n_frames, shape=(rows, cols))
    assert cube == tmp_path / "tess-s0022-4-4-cube.fits"
    # The FFIs were made in a temporary subdirectory and removed.
    assert list(tmp_path.iterdir()) == [cube]
    with fits.open(cube) as hdul:
        assert len(hdul) == 3
        assert isinstance(hdul[0], fits.PrimaryHDU)
        assert isinstance(hdul[1], fits.ImageHDU)
        assert isinstance(hdul[2], fits.BinTableHDU)

        primary = hdul[0].header
        assert primary["NAXIS"] == 0
        assert (primary["SECTOR"], primary["CAMERA"], primary["CCD"]) == (22, 4, 4)
        assert primary["ORIGIN"] == "STScI/MAST"

        image = hdul[1].header
        assert image["BITPIX"] == -32
        assert image["NAXIS"] == 4
        assert (image["NAXIS1"], image["NAXIS2"], image["NAXIS3"], image["NAXIS4"]) == (
            2,
            n_frames,
            cols,
            rows,
        )
        data = hdul[1].data
        assert data.shape == (rows, cols, n_frames, 2)
        assert data.dtype == np.dtype(">f4")
        assert np.all(data[..., 1] > 0)  # the uncertainty plane
        assert np.all(np.isfinite(data))

        table = hdul[2].data
        assert len(table) == n_frames
        assert "TSTART" in table.columns.names
        assert hdul[2].columns["TSTART"].format == "D"
        assert np.all(np.diff(table["TSTART"]) > 0)
        assert np.all(table["TSTOP"] > table["TSTART"])
        assert primary["TSTOP"] == table["TSTOP"][-1]
        assert all(FFI_NAME.match(name) for name in table["FFI_FILE"])


@pytest.mark.parametrize("max_memory_gb", [2.0, 1e-6])
def test_cube_frames_are_the_ffi_images(tmp_path: Path, max_memory_gb: float) -> None:
    ffis = make_ffis(tmp_path / "ffis", n_frames=5, shape=(10, 14), seed=7)
    # CubeFactory orders the FFIs by TSTART, whatever order they are given in; a tiny
    # memory budget makes it fill the cube a few rows at a time.
    cube = cube_from_ffis(
        ffis[::-1], tmp_path / "cube.fits", sector=22, max_memory_gb=max_memory_gb
    )
    with fits.open(cube) as hdul:
        data = hdul[1].data
        table = hdul[2].data
        for k, path in enumerate(ffis):
            with fits.open(path) as ffi:
                np.testing.assert_array_equal(data[:, :, k, 0], ffi[1].data)
                np.testing.assert_array_equal(data[:, :, k, 1], ffi[2].data)
                assert table["TSTART"][k] == ffi[1].header["TSTART"]
                assert table["CRVAL1"][k] == ffi[1].header["CRVAL1"]
                assert table["FFI_FILE"][k] == path.name


def test_make_tess_cube_holds_make_ffis_images(tmp_path: Path) -> None:
    kwargs = {"n_frames": 4, "shape": (9, 11), "sector": 5, "camera": 2, "ccd": 3, "seed": 3}
    cube = make_tess_cube(tmp_path / "cube", name="custom.fits", **kwargs)
    assert cube.name == "custom.fits"
    ffis = make_ffis(tmp_path / "ffis", **kwargs)
    with fits.open(cube) as hdul:
        assert hdul[0].header["SECTOR"] == 5
        assert [str(name) for name in hdul[2].data["FFI_FILE"]] == [p.name for p in ffis]
        for k, path in enumerate(ffis):
            np.testing.assert_array_equal(hdul[1].data[:, :, k, 0], fits.getdata(path, 1))
            np.testing.assert_array_equal(hdul[1].data[:, :, k, 1], fits.getdata(path, 2))


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
@pytest.mark.filterwarnings("ignore:Card is too long:astropy.io.fits.verify.VerifyWarning")
@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_astrocut_cuts_the_cube(tmp_path: Path) -> None:
    # TessCubeCutout is astrocut 1.x's cube cutout API (CutoutFactory.cube_cut and
    # cube_cut only remain for backwards compatibility).
    from astrocut import TessCubeCutout

    cube = make_tess_cube(tmp_path, n_frames=4, shape=(24, 30))
    ffis = make_ffis(tmp_path / "ffis", n_frames=4, shape=(24, 30))
    wcs = WCS(fits.getheader(ffis[0], 1))
    with fits.open(cube) as hdul:
        cube_data = hdul[1].data.copy()
    center = wcs.pixel_to_world(14, 10)
    cutout = TessCubeCutout(str(cube), center, 5)
    # The 0-based CCD (= cube) column and row of the cutout's first pixel.
    (lims,) = [c.cutout_lims for c in cutout.cutouts]
    col0, row0 = int(lims[0, 0]), int(lims[1, 0])
    (tpf,) = cutout.write_as_tpf(output_dir=tmp_path, output_file="tpf.fits")
    assert Path(tpf) == tmp_path / "tpf.fits"
    with fits.open(tpf) as out:
        assert out[0].header["FFIINDEX"] == fits.getval(ffis[0], "FFIINDEX", 0)
        pixels = out["PIXELS"]
        flux = pixels.data["FLUX"]
        flux_err = pixels.data["FLUX_ERR"]
        assert flux.shape == (4, 5, 5)
        np.testing.assert_array_equal(out["APERTURE"].data, 1)  # all inside the CCD
        # astrocut placed the cutout with the TAN-SIP WCS of the FFI named by WCS_FFI,
        # read from the cube's table: the centre is within half a pixel of the middle.
        (wcs_ffi,) = [p for p in ffis if p.name == pixels.header["WCS_FFI"]]
        x, y = WCS(fits.getheader(wcs_ffi, 1)).world_to_pixel(center)
        assert (col0, row0) == (round(x - 2.5), round(y - 2.5))
        # astrocut < 1.0 also gave the column's physical WCS (the 1-based CCD pixel of
        # the first column and row); astrocut 1.x no longer writes it.
        n = pixels.columns.names.index("FLUX") + 1
        if f"1CRV{n}P" in pixels.header:
            assert pixels.header[f"1CRV{n}P"] - 1 == col0
            assert pixels.header[f"2CRV{n}P"] - 1 == row0
    expected = np.moveaxis(cube_data[row0 : row0 + 5, col0 : col0 + 5, :, 0], 2, 0)
    np.testing.assert_array_equal(flux, expected)
    expected_err = np.moveaxis(cube_data[row0 : row0 + 5, col0 : col0 + 5, :, 1], 2, 0)
    np.testing.assert_array_equal(flux_err, expected_err)
