"""``cloudfits cutout``: a cutout around a sky position, as FITS and optionally as PNG.

For a TESS cube (a 4-axis image in HDU 1 and a table in HDU 2) the FITS file is the
target-pixel file astrocut makes (`cloudfits.tess_cutout`); for any other file, the
cutout of its first 2-D image with a celestial WCS (or ``--hdu``), with that WCS. Only
the bytes of the cutout are read.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

import numpy as np

from ..astro.tess import tess_cutout
from ..errors import CloudFitsError
from ..remote.opening import open as open_remote
from .common import add_provider_arguments, provider_flags

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
    add_provider_arguments(parser)


def _is_tess_cube(f: Any) -> bool:
    return len(f) >= 3 and f[1].kind.is_image and len(f[1].shape) == 4 and f[2].kind.is_table


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

    if args.size < 1:
        raise ValueError("--size must be at least 1")
    where = SkyCoord(args.ra * u.deg, args.dec * u.deg)
    with open_remote(args.uri, **provider_flags(args)) as f:
        if _is_tess_cube(f) and args.hdu is None:
            hdulist = tess_cutout(f, where, args.size)
            flux = np.asarray(hdulist[1].data["FLUX"], dtype=np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels off the CCD
                quicklook = np.nanmedian(flux, axis=0)
            what = f"median of {flux.shape[0]} frames"
        else:
            cut = _image_hdu(f, args.hdu).cutout(where, args.size)
            header = cut.wcs.to_header(relax=True) if cut.wcs is not None else fits.Header()
            hdulist = fits.HDUList([fits.PrimaryHDU(cut.data, header)])
            quicklook = np.asarray(cut.data, dtype=np.float64)
            what = "image"
        hdulist.writeto(args.output, overwrite=args.overwrite)
        if args.png:
            title = f"{args.uri.rsplit('/', 1)[-1]}\nRA {args.ra:.5f} Dec {args.dec:.5f} ({what})"
            _write_png(quicklook, args.png, title)
        print(
            f"wrote {args.output} ({args.size}x{args.size} pixels):"
            f" {f.stats.requests} requests, {f.stats.bytes} bytes read",
            file=sys.stdout,
        )
    return 0
