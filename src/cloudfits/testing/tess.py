"""Synthetic TESS full-frame images and the FFI cubes MAST builds from them.

MAST serves every TESS sector as one cube per camera and CCD, made by astrocut's
`~astrocut.CubeFactory` from the calibrated full-frame images (FFIs). This module
writes small FFIs that look like the SPOC ones (same HDU layout and header keywords,
float32 science and uncertainty images, a TAN-SIP celestial WCS) and runs the real
`~astrocut.CubeFactory` on them, so that tests, demos and benchmarks see a cube laid
out like the ones on MAST, quirks included:

* HDU 0: a primary header only (copied from the first FFI, plus ``SECTOR``);
* HDU 1: an image of numpy shape ``(rows, cols, n_frames, 2)``, float32, holding the
  flux (``[..., 0]``) and its uncertainty (``[..., 1]``);
* HDU 2: a binary table with one row per FFI, one column per keyword of the FFI
  science header, and ``FFI_FILE``.

Everything about the sky is invented: star positions and fluxes, background, times
and pointing are only plausible, and the files say so (``SIMDATA = T``).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import StringTruncateWarning

__all__ = ["cube_from_ffis", "make_ffis", "make_tess_cube"]

#: Pixel scale of the TESS cameras (arcsec per pixel).
PIXEL_SCALE_ARCSEC = 21.0

#: BJD of TESS Julian date (TJD, BTJD) zero.
BJDREFI = 2457000

# TJD 0 (JD 2457000.0) as a calendar date in TDB, and TDB - UTC (TT - TAI = 32.184 s plus
# the 37 leap seconds valid since 2017), enough to turn TJD into plausible UTC strings
# without astropy.time (which may want to download leap-second tables).
_TJD_ZERO = datetime(2014, 12, 8, 12, 0, 0)
_TDB_MINUS_UTC = timedelta(seconds=32.184 + 37.0)

# Sector 1 began near TJD 1325.3 and a sector lasts about 27.4 days.
_SECTOR1_START_TJD = 1325.3
_SECTOR_DAYS = 27.4

_FRAME_TIME_S = 2.0  # one TESS exposure: 1.98 s integration + 0.02 s readout
_DEADC = 0.792  # dead-time correction: 0.99 (readout) * 0.8 (cosmic-ray mitigation)
_READ_NOISE = 10.0  # electrons per read
_GAIN = 5.2  # electrons per count
_PSF_SIGMA = 0.9  # pixels
_PSF_RADIUS = 5  # half-size of the stamp a star is drawn on (pixels)

# Forward SIP distortion of the synthetic cameras: {(p, q): (A_p_q, B_p_q)}, pixel offsets
# about CRPIX. Made up: a small quadratic term plus a cubic radial one (about 1 and 3 pixels
# 1000 pixels from CRPIX, as across a real 2048-pixel CCD), tiny over the small images here.
_SIP_ORDER = 3
_SIP_FORWARD = {
    (2, 0): (1.2e-6, 5.0e-7),
    (1, 1): (8.0e-7, -9.0e-7),
    (0, 2): (-4.0e-7, 1.4e-6),
    (3, 0): (-2.5e-9, 0.0),
    (2, 1): (0.0, -2.5e-9),
    (1, 2): (-2.5e-9, 0.0),
    (0, 3): (0.0, -2.5e-9),
}


def _cadence_seconds(sector: int) -> float:
    """Return the FFI cadence of a sector (30, 10 or 3.33 minutes)."""
    if sector <= 26:
        return 1800.0
    if sector <= 55:
        return 600.0
    return 200.0


def _n_reads(cadence_s: float) -> int:
    """Return the number of 2 s reads co-added in a cadence (2 in 10 are rejected)."""
    return round(cadence_s / _FRAME_TIME_S * 0.8)


def _sector_start_tjd(sector: int) -> float:
    """Return an approximate start time (TJD) of a sector."""
    return round(_SECTOR1_START_TJD + (sector - 1) * _SECTOR_DAYS, 6)


def _ffi_index(tstart: float, cadence_s: float) -> int:
    """Return a plausible ``FFIINDEX`` (the FFI's cadence number) of an FFI."""
    return round(tstart * 86400.0 / cadence_s)


def _utc_string(tjd: float) -> str:
    """Format a TJD (TDB) as a UTC ISO string the way SPOC headers do (``...Z``)."""
    moment = _TJD_ZERO + timedelta(days=tjd) - _TDB_MINUS_UTC
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _file_stamp(tjd: float) -> str:
    """Format a TJD as the ``YYYYDDDHHMMSS`` stamp of MAST file names."""
    moment = _TJD_ZERO + timedelta(days=tjd) - _TDB_MINUS_UTC
    return moment.strftime("%Y%j%H%M%S")


def _ecliptic_to_icrs(lon_deg: float, lat_deg: float) -> tuple[float, float]:
    """Rotate ecliptic (J2000 obliquity) coordinates to equatorial ones, in degrees."""
    eps = np.radians(23.4392911)
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    x = np.cos(lat) * np.cos(lon)
    y = np.cos(lat) * np.sin(lon)
    z = np.sin(lat)
    y_eq = y * np.cos(eps) - z * np.sin(eps)
    z_eq = y * np.sin(eps) + z * np.cos(eps)
    ra = np.degrees(np.arctan2(y_eq, x)) % 360.0
    dec = np.degrees(np.arcsin(np.clip(z_eq, -1.0, 1.0)))
    return float(ra), float(dec)


def _deproject_tan(ra0: float, dec0: float, xi_deg: float, eta_deg: float) -> tuple[float, float]:
    """Return the sky position at standard coordinates (xi, eta) of a tangent point."""
    a0, d0 = np.radians(ra0), np.radians(dec0)
    xi, eta = np.radians(xi_deg), np.radians(eta_deg)
    denom = np.cos(d0) - eta * np.sin(d0)
    ra = a0 + np.arctan2(xi, denom)
    dec = np.arctan2(np.sin(d0) + eta * np.cos(d0), np.hypot(xi, denom))
    return float(np.degrees(ra) % 360.0), float(np.degrees(dec))


def _ccd_pointing(sector: int, camera: int, ccd: int) -> tuple[float, float, float]:
    """Return a plausible (RA, Dec, roll) in degrees for the centre of a CCD.

    Cameras 1-4 are centred at ecliptic latitudes 18, 42, 66 and 90 degrees (camera 4
    looks at the ecliptic pole, the continuous viewing zone), in the northern
    hemisphere for the sectors TESS spent there (14-26, 40-55) and the southern one
    otherwise; each sector moves the boresight about 27.7 degrees in longitude.
    The four CCDs tile the camera's field, about 6 degrees from its centre.
    """
    north = 14 <= sector <= 26 or 40 <= sector <= 55
    lat = 18.0 + 24.0 * (camera - 1)
    lon = ((sector - 1) * 360.0 / 13.0) % 360.0
    cam_ra, cam_dec = _ecliptic_to_icrs(lon, lat if north else -lat)
    roll = (lon + 90.0) % 360.0
    signs = {1: (-1.0, 1.0), 2: (1.0, 1.0), 3: (1.0, -1.0), 4: (-1.0, -1.0)}[ccd]
    # Offsets along the camera axes, rotated by the roll into (xi, eta).
    cos_r, sin_r = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    dx, dy = 6.2 * signs[0], 6.2 * signs[1]
    xi = dx * cos_r - dy * sin_r
    eta = dx * sin_r + dy * cos_r
    ra, dec = _deproject_tan(cam_ra, cam_dec, xi, eta)
    ccd_roll = (roll + (180.0 if ccd in (3, 4) else 0.0)) % 360.0
    return ra, dec, ccd_roll


def _draw_stars(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    fluxes: np.ndarray,
) -> np.ndarray:
    """Return an image of Gaussian stars (e-/s), each drawn on a small stamp."""
    image = np.zeros(shape, dtype=np.float64)
    offsets = np.arange(-_PSF_RADIUS, _PSF_RADIUS + 1)
    norm = 1.0 / (2.0 * np.pi * _PSF_SIGMA**2)
    for row, col, flux in zip(rows, cols, fluxes, strict=True):
        r0, c0 = round(row), round(col)
        rr = r0 + offsets
        cc = c0 + offsets
        keep_r = (rr >= 0) & (rr < shape[0])
        keep_c = (cc >= 0) & (cc < shape[1])
        if not keep_r.any() or not keep_c.any():
            continue
        gr = np.exp(-0.5 * ((rr[keep_r] - row) / _PSF_SIGMA) ** 2)
        gc = np.exp(-0.5 * ((cc[keep_c] - col) / _PSF_SIGMA) ** 2)
        image[np.ix_(rr[keep_r], cc[keep_c])] += flux * norm * np.outer(gr, gc)
    return image


class _Scene:
    """The static sky of one CCD: background, stars and one variable star."""

    def __init__(self, shape: tuple[int, int], seed: int) -> None:
        rng = np.random.default_rng(seed)
        n_rows, n_cols = shape
        n_stars = max(4, n_rows * n_cols // 256)
        rows = rng.uniform(-2.0, n_rows + 1.0, n_stars)
        cols = rng.uniform(-2.0, n_cols + 1.0, n_stars)
        # Log-uniform brightness between 10^2 and 10^5 e-/s (TESS magnitudes ~15 to ~7.5).
        fluxes = 10.0 ** rng.uniform(2.0, 5.0, n_stars)
        self.static = _draw_stars(shape, rows, cols, fluxes)
        # One bright, variable star well inside the image.
        var_row = rng.uniform(0.25, 0.75) * (n_rows - 1)
        var_col = rng.uniform(0.25, 0.75) * (n_cols - 1)
        self.variable = _draw_stars(
            shape, np.array([var_row]), np.array([var_col]), np.array([2.0e4])
        )
        self.variable_period_days = float(rng.uniform(0.5, 3.0))
        # A smooth sky background with a gentle gradient (e-/s per pixel).
        yy, xx = np.mgrid[0:n_rows, 0:n_cols]
        grad_r, grad_c = rng.uniform(-0.3, 0.3, 2)
        self.background = 120.0 + grad_r * yy + grad_c * xx

    def frame(
        self, k: int, elapsed_days: float, cadence_s: float, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the calibrated flux and its uncertainty (float32, e-/s) of frame k.

        ``elapsed_days`` is the mid-exposure time since the start of the sequence.
        """
        exposure_s = cadence_s * _DEADC
        phase = 2.0 * np.pi * elapsed_days / self.variable_period_days
        # Scattered light slowly rising through the (pretend) orbit.
        sky = self.background * (1.0 + 0.1 * elapsed_days / _SECTOR_DAYS)
        model = sky + self.static + self.variable * (1.0 + 0.2 * np.sin(phase))
        variance = model * exposure_s + _n_reads(cadence_s) * _READ_NOISE**2
        sigma = np.sqrt(variance) / exposure_s
        rng = np.random.default_rng((seed, k))
        flux = model + sigma * rng.standard_normal(model.shape)
        return flux.astype(np.float32), sigma.astype(np.float32)


_Card = tuple[str, object, str]


@dataclass(frozen=True)
class _FrameTimes:
    """Start, stop and barycentric correction of one FFI (TJD), and its UTC strings."""

    tstart: float
    tstop: float
    barycorr: float
    date_obs: str
    date_end: str

    @property
    def mid(self) -> float:
        """Mid-exposure time (TJD)."""
        return 0.5 * (self.tstart + self.tstop)

    @property
    def telapse(self) -> float:
        """Duration of the exposure (days)."""
        return self.tstop - self.tstart

    @classmethod
    def of_frame(cls, t0: float, k: int, cadence_s: float) -> _FrameTimes:
        """Return the times of frame ``k`` of a sequence starting at ``t0`` (TJD)."""
        cadence_d = cadence_s / 86400.0
        tstart = round(t0 + k * cadence_d, 9)
        tstop = round(tstart + cadence_d, 9)
        # Barycentric correction: a few minutes, drifting slowly over the year.
        barycorr = 0.0042 + 0.0011 * float(np.sin(2.0 * np.pi * (tstart - t0) / 365.25))
        return cls(
            tstart=tstart,
            tstop=tstop,
            barycorr=barycorr,
            date_obs=_utc_string(tstart - barycorr),
            date_end=_utc_string(tstop - barycorr),
        )


def _primary_header(times: _FrameTimes, camera: int, ccd: int, ffi_index: int) -> fits.Header:
    """Return the primary header of an FFI (it has no data)."""
    return fits.Header(
        [
            ("NEXTEND", 2, "number of standard extensions"),
            ("EXTNAME", "PRIMARY", "name of extension"),
            ("EXTVER", 1, "extension version number (not format version)"),
            ("SIMDATA", True, "file is based on simulated data"),
            ("ORIGIN", "cloudfits", "institution responsible for creating this file"),
            ("DATE", times.date_end[:10], "file creation date."),
            ("TSTART", times.tstart, "observation start time in TJD"),
            ("TSTOP", times.tstop, "observation stop time in TJD"),
            ("DATE-OBS", times.date_obs, "TSTART as UTC calendar date"),
            ("DATE-END", times.date_end, "TSTOP as UTC calendar date"),
            ("CREATOR", "cloudfits.testing.tess", "pipeline job and program used"),
            ("PROCVER", "synthetic-1.0", "SW version"),
            ("FILEVER", "1.0", "file format version"),
            ("TIMVERSN", "OGIP/93-003", "OGIP memo number for file format"),
            ("TELESCOP", "TESS", "telescope"),
            ("INSTRUME", "TESS Photometer", "detector type"),
            ("DATA_REL", 0, "data release version number"),
            ("FFIINDEX", ffi_index, "number of FFI cadence interval"),
            ("CAMERA", camera, "Camera number"),
            ("CCD", ccd, "CCD chip number"),
            ("CRMITEN", True, "spacecraft cosmic ray mitigation enabled"),
            ("CRBLKSZ", 10, "[exposures] s/c cosmic ray mitigation block siz"),
            ("CRSPOC", False, "SPOC cosmic ray cleaning enabled"),
        ]
    )


def _image_header(kind: str, camera: int, ccd: int, cards: Sequence[_Card]) -> fits.Header:
    """Return the header of an FFI image extension (``kind`` is ``cal`` or ``uncert``)."""
    return fits.Header(
        [
            ("INHERIT", True, "inherit the primary header"),
            ("EXTNAME", f"CAMERA.CCD {camera}.{ccd} {kind}", "extension name"),
            ("EXTVER", 1, "extension version number (not format version)"),
            ("TELESCOP", "TESS", "telescope"),
            ("INSTRUME", "TESS Photometer", "detector type"),
            ("CAMERA", camera, "Camera number"),
            ("CCD", ccd, "CCD chip number"),
            ("IMAGTYPE", kind, "FFI image type: raw, cal, uncert"),
            *cards,
        ]
    )


def _science_cards(times: _FrameTimes, camera: int, ccd: int) -> list[_Card]:
    """Return the timing and detector cards of an FFI science header."""
    n_frm = round(times.telapse * 86400.0 / _FRAME_TIME_S)
    return [
        ("TIMEREF", "SOLARSYSTEM", "barycentric correction applied to times"),
        ("TASSIGN", "SPACECRAFT", "where time is assigned"),
        ("TIMESYS", "TDB", "time system is barycentric JD"),
        ("BJDREFI", BJDREFI, "integer part of BJD reference date"),
        ("BJDREFF", 0.0, "fraction of the day in BJD reference date"),
        ("TIMEUNIT", "d", "time unit for TIME, TSTART and TSTOP"),
        ("TELAPSE", times.telapse, "[d] TSTOP - TSTART"),
        ("LIVETIME", times.telapse * _DEADC, "[d] TELAPSE multiplied by DEADC"),
        ("TSTART", times.tstart, "observation start time in TJD"),
        ("TSTOP", times.tstop, "observation stop time in TJD"),
        ("DATE-OBS", times.date_obs, "TSTART as UTC calendar date"),
        ("DATE-END", times.date_end, "TSTOP as UTC calendar date"),
        ("DEADC", _DEADC, "deadtime correction"),
        ("TIMEPIXR", 0.5, "bin time beginning=0 middle=0.5 end=1"),
        ("TIERRELA", 1.16e-05, "[d] relative time error"),
        ("INT_TIME", 1.98, "[s] photon accumulation time per frame"),
        ("READTIME", 0.02, "[s] readout time per frame"),
        ("FRAMETIM", _FRAME_TIME_S, "[s] frame time (INT_TIME + READTIME)"),
        ("NUM_FRM", n_frm, "number of frames per time stamp"),
        ("TIMEDEL", times.telapse, "[d] time resolution of data"),
        ("BACKAPP", True, "background is subtracted"),
        ("DEADAPP", True, "deadtime applied"),
        ("VIGNAPP", True, "vignetting or collimator correction applied"),
        ("GAINA", _GAIN, "[electrons/count] CCD output A gain"),
        ("GAINB", _GAIN + 0.02, "[electrons/count] CCD output B gain"),
        ("GAINC", _GAIN - 0.03, "[electrons/count] CCD output C gain"),
        ("GAIND", _GAIN + 0.01, "[electrons/count] CCD output D gain"),
        ("READNOIA", _READ_NOISE, "[electrons] read noise CCD output A"),
        ("READNOIB", _READ_NOISE - 0.3, "[electrons] read noise CCD output B"),
        ("READNOIC", _READ_NOISE + 0.2, "[electrons] read noise CCD output C"),
        ("READNOID", _READ_NOISE - 0.1, "[electrons] read noise CCD output D"),
        ("NREADOUT", _n_reads(times.telapse * 86400.0), "number of read per cadence"),
        ("FXDOFF", 209700, "compression fixed offset"),
        ("MEANBLCA", 6600, "[count] FSW mean black level CCD output A"),
        ("MEANBLCB", 6610, "[count] FSW mean black level CCD output B"),
        ("MEANBLCC", 6590, "[count] FSW mean black level CCD output C"),
        ("MEANBLCD", 6605, "[count] FSW mean black level CCD output D"),
        ("EXPOSURE", times.telapse * _DEADC, "[d] time on source"),
        ("BARYCORR", times.barycorr, "[d] barycentric time correction"),
        (f"TMOFST{camera}{ccd}", 0.0, f"(s) readout delay for camera {camera} and ccd {ccd}"),
        ("DQUALITY", 0, "data quality flags"),
    ]


def _sip_terms(order: int) -> list[tuple[int, int]]:
    """Return the exponents ``(p, q)`` of the SIP terms of degree 1 to ``order``."""
    return [(p, n - p) for n in range(1, order + 1) for p in range(n, -1, -1)]


def _sip_inverse(shape: tuple[int, int]) -> dict[tuple[int, int], tuple[float, float]]:
    """Fit the inverse SIP polynomials (``AP``, ``BP``) of `_SIP_FORWARD` over an image.

    The inverse is a least-squares fit of order `_SIP_ORDER` (linear terms included, as
    in SPOC FFIs) on a grid a little larger than the image.
    """
    n_rows, n_cols = shape
    half_u, half_v = (n_cols + 1) / 2.0 + 2.0, (n_rows + 1) / 2.0 + 2.0
    grid_u, grid_v = np.meshgrid(np.linspace(-half_u, half_u, 41), np.linspace(-half_v, half_v, 41))
    u, v = grid_u.ravel(), grid_v.ravel()
    du = sum(a * u**p * v**q for (p, q), (a, _) in _SIP_FORWARD.items())
    dv = sum(b * u**p * v**q for (p, q), (_, b) in _SIP_FORWARD.items())
    big_u, big_v = u + du, v + dv
    terms = _sip_terms(_SIP_ORDER)
    design = np.column_stack([big_u**p * big_v**q for p, q in terms])
    coeffs = np.linalg.lstsq(design, np.column_stack([-du, -dv]), rcond=None)[0]
    ap, bp = coeffs[:, 0], coeffs[:, 1]
    return {term: (float(a), float(b)) for term, a, b in zip(terms, ap, bp, strict=True)}


def _sip_cards(shape: tuple[int, int]) -> list[_Card]:
    """Return the SIP distortion cards (forward ``A``, ``B``; inverse ``AP``, ``BP``)."""
    forward = _SIP_FORWARD.items()
    inverse = _sip_inverse(shape)
    return [
        ("A_ORDER", _SIP_ORDER, "Polynomial order, axis 1"),
        *((f"A_{p}_{q}", a, "distortion coefficient") for (p, q), (a, _) in forward),
        ("B_ORDER", _SIP_ORDER, "Polynomial order, axis 2"),
        *((f"B_{p}_{q}", b, "distortion coefficient") for (p, q), (_, b) in forward),
        ("AP_ORDER", _SIP_ORDER, "Inv polynomial order, axis 1"),
        *((f"AP_{p}_{q}", a, "inv distortion coefficient") for (p, q), (a, _) in inverse.items()),
        ("BP_ORDER", _SIP_ORDER, "Inv polynomial order, axis 2"),
        *((f"BP_{p}_{q}", b, "inv distortion coefficient") for (p, q), (_, b) in inverse.items()),
    ]


def _wcs_cards(
    ra: float, dec: float, roll: float, shape: tuple[int, int], sip: Sequence[_Card]
) -> list[_Card]:
    """Return the celestial (TAN-SIP) and physical WCS cards of an FFI image.

    As in SPOC FFIs, the celestial projection is ``RA---TAN-SIP`` / ``DEC--TAN-SIP``
    (astrocut's cube cutouts look for ``CTYPE2 = 'DEC--TAN-SIP'`` in the cube table to
    find a frame with a WCS); ``sip`` are the distortion cards from `_sip_cards`.
    """
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    cos_r, sin_r = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    n_rows, n_cols = shape
    return [
        ("RADESYS", "ICRS", "reference frame of celestial coordinates"),
        ("EQUINOX", 2000.0, "equinox of celestial coordinate system"),
        ("WCSAXES", 2, "number of World Coordinate System axes"),
        ("CTYPE1", "RA---TAN-SIP", "Gnomonic projection + SIP distortions"),
        ("CTYPE2", "DEC--TAN-SIP", "Gnomonic projection + SIP distortions"),
        ("CUNIT1", "deg", "units of CRVAL1 and CD1_*"),
        ("CUNIT2", "deg", "units of CRVAL2 and CD2_*"),
        ("CRVAL1", ra, "RA at CRPIX1, CRPIX2"),
        ("CRVAL2", dec, "DEC at CRPIX1, CRPIX2"),
        ("CRPIX1", (n_cols + 1) / 2.0, "X reference pixel"),
        ("CRPIX2", (n_rows + 1) / 2.0, "Y reference pixel"),
        ("CD1_1", -scale * cos_r, "Transformation matrix"),
        ("CD1_2", scale * sin_r, "Transformation matrix"),
        ("CD2_1", scale * sin_r, "Transformation matrix"),
        ("CD2_2", scale * cos_r, "Transformation matrix"),
        *sip,
        ("WCSNAMEP", "PHYSICAL", "name of world coordinate system alternate P"),
        ("WCSAXESP", 2, "number of WCS physical axes"),
        ("CTYPE1P", "RAWX", "physical WCS axis 1 type CCD col"),
        ("CUNIT1P", "PIXEL", "physical WCS axis 1 unit"),
        ("CRPIX1P", 1, "reference CCD column"),
        ("CRVAL1P", 1, "value at reference CCD column"),
        ("CDELT1P", 1.0, "physical WCS axis 1 step"),
        ("CTYPE2P", "RAWY", "physical WCS axis 2 type CCD row"),
        ("CUNIT2P", "PIXEL", "physical WCS axis 2 unit"),
        ("CRPIX2P", 1, "reference CCD row"),
        ("CRVAL2P", 1, "value at reference CCD row"),
        ("CDELT2P", 1.0, "physical WCS axis 2 step"),
    ]


def make_ffis(
    directory: Path,
    *,
    n_frames: int,
    shape: tuple[int, int] = (64, 64),
    sector: int = 22,
    camera: int = 4,
    ccd: int = 4,
    seed: int = 0,
) -> list[Path]:
    """Write synthetic calibrated TESS full-frame images, in time order.

    Each file has the layout of a SPOC calibrated FFI (``*-s_ffic.fits``): a
    data-less primary HDU, the science image (``CAMERA.CCD c.d cal``, float32, e-/s,
    with a TAN-SIP celestial WCS) and its uncertainty (``CAMERA.CCD c.d uncert``), with the
    header keywords `~astrocut.CubeFactory` reads (``TSTART``, ``TSTOP``,
    ``DATE-OBS``, ``DATE-END``, ``CAMERA``, ``CCD``, ``WCSAXES``, and ``FFIINDEX`` in
    the primary header) and those astrocut's cutouts take from the cube (``CTYPE2``,
    ``BARYCORR``, ``DQUALITY``, ...).

    Parameters
    ----------
    directory : Path
        Where to write the files (created if missing).
    n_frames : int
        How many FFIs to write; frame ``k`` starts one cadence after frame ``k - 1``.
    shape : tuple of int, optional
        ``(rows, cols)`` of each image.
    sector, camera, ccd : int, optional
        Which TESS sector, camera (1-4) and CCD (1-4) to imitate; they set the file
        names, header keywords, cadence (30, 10 or 3.3 minutes) and pointing.
    seed : int, optional
        Seed of the scene (stars, background) and of the noise of every frame.

    Returns
    -------
    list of Path
        The files written, ordered by ``TSTART``.

    Raises
    ------
    ValueError
        If an argument is out of range.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be two positive integers, got {shape!r}")
    if camera not in (1, 2, 3, 4) or ccd not in (1, 2, 3, 4):
        raise ValueError(f"camera and ccd must be in 1..4, got {camera} and {ccd}")
    if sector < 1:
        raise ValueError(f"sector must be positive, got {sector}")
    if seed < 0:
        raise ValueError(f"seed must not be negative, got {seed}")
    shape = (int(shape[0]), int(shape[1]))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    cadence_s = _cadence_seconds(sector)
    t0 = _sector_start_tjd(sector)
    ra, dec, roll = _ccd_pointing(sector, camera, ccd)
    scene = _Scene(shape, seed)
    # The WCS fitted to each FFI differs a little from frame to frame (~0.01 pixel).
    jitter_deg = 0.01 * PIXEL_SCALE_ARCSEC / 3600.0
    jitter = np.random.default_rng((seed, 2**31 - 1)).normal(0.0, jitter_deg, (n_frames, 2))
    sip = _sip_cards(shape)

    paths: list[Path] = []
    for k in range(n_frames):
        times = _FrameTimes.of_frame(t0, k, cadence_s)
        flux, sigma = scene.frame(k, times.mid - t0, cadence_s, seed)
        wcs = _wcs_cards(ra + jitter[k, 0], dec + jitter[k, 1], roll, shape, sip)
        hdul = fits.HDUList(
            [
                fits.PrimaryHDU(
                    header=_primary_header(times, camera, ccd, _ffi_index(times.tstart, cadence_s))
                ),
                fits.ImageHDU(
                    flux,
                    header=_image_header(
                        "cal", camera, ccd, [*_science_cards(times, camera, ccd), *wcs]
                    ),
                ),
                fits.ImageHDU(sigma, header=_image_header("uncert", camera, ccd, wcs)),
            ]
        )
        stamp = _file_stamp(times.tstop - times.barycorr)
        path = directory / f"tess{stamp}-s{sector:04d}-{camera}-{ccd}-0000-s_ffic.fits"
        hdul.writeto(path, overwrite=True, checksum=True)
        paths.append(path)
    return paths


def cube_from_ffis(
    ffis: Sequence[Path], cube_path: Path, *, sector: int, max_memory_gb: float = 2.0
) -> Path:
    """Build a MAST-style FFI cube with astrocut's `~astrocut.CubeFactory`.

    Parameters
    ----------
    ffis : sequence of Path
        Calibrated FFIs, for instance from `make_ffis`; CubeFactory orders them by
        ``TSTART``.
    cube_path : Path
        The cube file to write (overwritten if it exists).
    sector : int
        Written as ``SECTOR`` in the cube's primary header (FFIs do not carry it).
    max_memory_gb : float, optional
        Memory CubeFactory may use for the cube array; less than the cube's size makes
        it fill the cube in several passes over the FFIs. It must hold at least one
        row of the cube (``cols * len(ffis) * 8`` bytes).

    Returns
    -------
    Path
        ``cube_path``.
    """
    from astrocut import CubeFactory

    cube_path = Path(cube_path)
    with warnings.catch_warnings():
        # CubeFactory sizes each string column of its table from the first FFI, so a
        # longer value in a later FFI (a 10-digit DATASUM after a 9-digit one) is
        # truncated with a StringTruncateWarning. That is CubeFactory's normal behaviour.
        warnings.simplefilter("ignore", StringTruncateWarning)
        CubeFactory().make_cube(
            [str(p) for p in ffis],
            cube_file=str(cube_path),
            sector=sector,
            max_memory=max_memory_gb,
            verbose=False,
        )
    return cube_path


def make_tess_cube(
    directory: Path,
    *,
    n_frames: int = 20,
    shape: tuple[int, int] = (64, 64),
    sector: int = 22,
    camera: int = 4,
    ccd: int = 4,
    seed: int = 0,
    name: str | None = None,
) -> Path:
    """Write a small TESS FFI cube the way MAST makes them.

    Synthetic FFIs from `make_ffis` are written to a temporary subdirectory of
    ``directory``, cubed by astrocut's `~astrocut.CubeFactory` and deleted.

    Parameters
    ----------
    directory : Path
        Where to write the cube (created if missing).
    n_frames : int, optional
        Number of FFIs (time steps) in the cube.
    shape : tuple of int, optional
        ``(rows, cols)`` of each FFI.
    sector, camera, ccd : int, optional
        The TESS sector, camera and CCD to imitate.
    seed : int, optional
        Seed of the synthetic images; the cube's frame ``k`` equals the science image
        of ``make_ffis(..., seed=seed)[k]``.
    name : str or None, optional
        File name of the cube; by default MAST's ``tess-s{sector:04d}-{camera}-{ccd}-cube.fits``.

    Returns
    -------
    Path
        The cube file. Its HDU 1 has numpy shape ``(rows, cols, n_frames, 2)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cube_path = directory / (name or f"tess-s{sector:04d}-{camera}-{ccd}-cube.fits")
    workdir = Path(tempfile.mkdtemp(prefix=".ffis-", dir=directory))
    try:
        ffis = make_ffis(
            workdir,
            n_frames=n_frames,
            shape=shape,
            sector=sector,
            camera=camera,
            ccd=ccd,
            seed=seed,
        )
        cube_from_ffis(ffis, cube_path, sector=sector)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return cube_path
