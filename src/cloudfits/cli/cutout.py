"""``cloudfits cutout``: a cutout around a sky position, as FITS and optionally as PNG.

For a TESS cube (a 4-axis image in HDU 1 and a table in HDU 2) the FITS file is the
target-pixel file astrocut makes (`cloudfits.tess_cutout`); for any other file, the
cutout of its first 2-D image with a celestial WCS (or ``--hdu``), with that WCS. Only
the bytes of the cutout are read.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any

import numpy as np

from ..astro.tess import tess_cutout
from ..errors import CloudFitsError
from .common import UsageError, add_provider_arguments
from .targets import open_targets

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cloudfits cutout``."""

    parser.add_argument("uri", help="FITS object: s3://bucket/key.fits, https://..., a path")
    parser.add_argument("--ra", type=float, required=True, help="right ascension (degrees)")
    parser.add_argument("--dec", type=float, required=True, help="declination (degrees)")
    parser.add_argument(
        "--size", type=int, required=True, help="pixels on a side of the (square) cutout"
    )
    parser.add_argument("-o", "--output", required=True, help="FITS file to write")
    parser.add_argument("--hdu", help="HDU number or EXTNAME of the image (not for cubes)")
    parser.add_argument(
        "--png",
        metavar="FILE",
        help="also write a quick-look PNG (frame median for a cube), zscale stretch;"
        " needs matplotlib (pip install 'cloudfits[png]')",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument(
        "--index",
        metavar="INDEX_URI",
        help="read the file's headers from this index instead of scanning the object",
    )
    add_provider_arguments(parser)
    parser.set_defaults(paths=[])


#: Cards of the image and primary headers that a cutout keeps (the WCS is the cutout's).
KEPT_CARDS = (
    "OBJECT", "TELESCOP", "INSTRUME", "DETECTOR", "FILTER", "EXPTIME", "EXPOSURE",
    "DATE-OBS", "DATE-END", "MJD-OBS", "BUNIT", "GAIN", "ORIGIN", "OBSERVER",
)  # fmt: skip


def _check_arguments(args: argparse.Namespace) -> None:
    """Usage errors, found before anything is read."""
    if args.size < 1:
        raise UsageError(f"--size must be at least 1 pixel, not {args.size}")
    if not -90.0 <= args.dec <= 90.0:
        raise UsageError(f"--dec must be between -90 and 90 degrees, not {args.dec}")
    if not np.isfinite(args.ra):
        raise UsageError(f"--ra must be a number of degrees, not {args.ra}")
    if os.path.exists(args.output) and not args.overwrite:
        raise UsageError(f"{args.output} exists: pass --overwrite to replace it")


def _kept_header(hdu: Any, primary: Any, wcs: Any) -> Any:
    from astropy.io import fits

    header = wcs.to_header(relax=True) if wcs is not None else fits.Header()
    for keyword in KEPT_CARDS:
        for source in (hdu.header, primary.header):
            if keyword in source:
                header[keyword] = (source[keyword], source.comments[keyword])
                break
    return header


def _cut_image(f: Any, args: argparse.Namespace, where: Any) -> Any:
    from astropy.nddata import NoOverlapError

    hdu = _image_hdu(f, args.hdu)
    try:
        return hdu, hdu.cutout(where, args.size)
    except (NoOverlapError, ValueError) as err:
        ny, nx = hdu.shape
        raise CloudFitsError(
            f"{f.uri}: RA {args.ra} Dec {args.dec} is off the image of HDU {hdu.number}"
            f" ({nx}x{ny} pixels): {err}"
        ) from err


def _is_tess_cube(f: Any) -> bool:
    return f.scanned(3) and f[1].kind.is_image and len(f[1].shape) == 4 and f[2].kind.is_table


def _image_hdu(f: Any, hdu: str | None) -> Any:
    if hdu is not None:
        return f[int(hdu)] if hdu.lstrip("-").isdigit() else f[hdu]
    for candidate in f:
        if candidate.kind.is_image and len(candidate.shape) == 2 and candidate.wcs.has_celestial:
            return candidate
    raise CloudFitsError(f"{f.uri}: no 2-D image with a celestial WCS (choose one with --hdu)")


def _write_png(image: np.ndarray, path: str, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise CloudFitsError("--png needs matplotlib: pip install 'cloudfits[png]'") from err
    from astropy.visualization import ImageNormalize, ZScaleInterval

    finite = image[np.isfinite(image)]
    norm = ImageNormalize(finite if finite.size else np.zeros(1), interval=ZScaleInterval())
    figure, axes = plt.subplots(figsize=(5, 4.2), dpi=100)
    try:
        shown = axes.imshow(image, origin="lower", cmap="gray", norm=norm)
        figure.colorbar(shown, ax=axes)
        axes.set_title(title, fontsize=9)
        axes.set_xlabel("column")
        axes.set_ylabel("row")
        figure.savefig(path)
    finally:
        plt.close(figure)


def run(args: argparse.Namespace) -> int:
    """Make the cutout; 0 on success (errors are raised for the caller to report)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits

    _check_arguments(args)
    where = SkyCoord(args.ra * u.deg, args.dec * u.deg)
    with next(open_targets(args)) as f:
        if _is_tess_cube(f) and args.hdu is None:
            hdulist = tess_cutout(f, where, args.size)
            flux = np.asarray(hdulist[1].data["FLUX"], dtype=np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels off the CCD
                quicklook = np.nanmedian(flux, axis=0)
            what = f"median of {flux.shape[0]} frames"
            rows, columns = flux.shape[1:3]
        else:
            hdu, cut = _cut_image(f, args, where)
            header = _kept_header(hdu, f[0], cut.wcs)
            hdulist = fits.HDUList([fits.PrimaryHDU(cut.data, header)])
            quicklook = np.asarray(cut.data, dtype=np.float64)
            what = "image"
            rows, columns = cut.data.shape
        hdulist.writeto(args.output, overwrite=args.overwrite)
        if args.png:
            title = f"{args.uri.rsplit('/', 1)[-1]}\nRA {args.ra:.5f} Dec {args.dec:.5f} ({what})"
            _write_png(quicklook, args.png, title)
        spent = f.stats
        cut_short = "" if (rows, columns) == (args.size, args.size) else ", cut at the edge"
        print(
            f"wrote {args.output} ({columns}x{rows} pixels{cut_short}):"
            f" {spent.requests:,} requests, {spent.bytes:,} bytes read",
            file=sys.stdout,
        )
    return 0
