"""World coordinates and sky cutouts of remote images, with astropy's own tools.

`hdu.wcs` is `astropy.wcs.WCS` of the header the index holds (no request);
`hdu.cutout` is a real `astropy.nddata.Cutout2D` built over the lazy ``hdu.section``,
so only the pixels of the cutout are fetched (for a tile-compressed image, the tiles
it touches).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astropy.nddata import Cutout2D
    from astropy.wcs import WCS

    from .hdulist import RemoteHDU

# astropy.wcs and astropy.nddata are imported when first used: they double the time
# ``import cloudfits`` takes.

__all__ = ["cutout", "header_wcs"]


def header_wcs(hdu: RemoteHDU) -> WCS:
    """The WCS of an image HDU's header (astropy's repairs of old conventions are quiet)."""
    from astropy.wcs import WCS, FITSFixedWarning

    if not hdu.kind.is_image:
        raise TypeError(f"{hdu!r} is a {hdu.kind.value}; only images have a WCS here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(hdu.header)


def cutout(
    hdu: RemoteHDU,
    position: Any,
    size: Any,
    *,
    mode: str = "trim",
    fill_value: float = np.nan,
) -> Cutout2D:
    """Cut a piece out of a 2-D image, reading only its pixels (see `RemoteHDU.cutout`)."""
    from astropy.nddata import Cutout2D

    if not hdu.kind.is_image or len(hdu.shape) != 2:
        raise TypeError(f"{hdu!r}: cutouts need a 2-D image, not shape {hdu.shape}")
    wcs = hdu.wcs
    return Cutout2D(
        hdu.section,
        position,
        size,
        wcs=wcs if wcs.has_celestial else None,
        mode=mode,
        fill_value=fill_value,
    )
