"""Quick-look PNG images of cutouts: a zscale stretch, grey, bottom row at the bottom.

Needs matplotlib (``pip install 'cloudfits[png]'``); it is imported when an image is
made, with the non-interactive Agg back end.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

__all__ = ["quicklook_image", "quicklook_png"]


def quicklook_image(data: np.ndarray) -> np.ndarray:
    """The 2-D image a quick look shows: the data, or the median over frames of a
    target-pixel file's ``FLUX`` (frames first)."""
    values = np.asarray(data, dtype=np.float64)
    if values.ndim == 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels off the CCD
            values = np.nanmedian(values, axis=0)
    if values.ndim != 2:
        raise ValueError(f"a quick look needs a 2-D image or a cube of frames, not {values.shape}")
    return values


def quicklook_png(data: np.ndarray, *, scale: int = 8) -> bytes:
    """A PNG of ``data`` (see `quicklook_image`), each pixel ``scale`` pixels wide."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError as err:
        raise ImportError("PNG images need matplotlib: pip install 'cloudfits[png]'") from err
    from astropy.visualization import ZScaleInterval

    image = quicklook_image(data)
    finite = image[np.isfinite(image)]
    low, high = ZScaleInterval().get_limits(finite) if finite.size else (0.0, 1.0)
    if high <= low:
        high = low + 1.0
    scaled = np.clip((np.nan_to_num(image, nan=low) - low) / (high - low), 0.0, 1.0)
    big = np.kron(scaled[::-1], np.ones((scale, scale)))  # row 0 at the bottom, as ds9
    out = io.BytesIO()
    pyplot.imsave(out, big, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return out.getvalue()
