"""`Section`, numpy-style partial reads of an image, and the fetch options of a call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io.fits.hdu.image import Section as _AstropySection

from ..fetch.spans import FetchOptions

if TYPE_CHECKING:
    from .hdulist import RemoteHDU

__all__ = ["Section", "split_fetch_options"]

_FETCH_KEYS = ("max_gap", "max_part", "max_concurrency")


def split_fetch_options(options: dict[str, Any]) -> tuple[FetchOptions, dict[str, Any]]:
    """The range-engine tuning among ``options`` (as `FetchOptions`), and the rest."""
    tuning = {k: options.pop(k) for k in _FETCH_KEYS if k in options}
    return FetchOptions.from_environment().updated(**tuning), options


class Section(_AstropySection):  # type: ignore[misc]
    """Numpy-style access to part of an image, reading only the bytes it needs.

    ``hdu.section[key]`` takes any numpy basic index (integers, negative integers,
    slices with steps, ``...``, ``None``) and returns what ``hdul[n].data[key]``
    returns in astropy: the same values and dtype, in native byte order. For a
    tile-compressed image only the tiles the key touches are fetched. Like astropy's
    ``Section`` (of which it is a subclass) it has ``shape``, ``dtype`` and ``ndim``, so
    `astropy.nddata.Cutout2D` takes it as lazily as astropy's own.
    """

    def __init__(self, hdu: RemoteHDU) -> None:
        super().__init__(hdu)
        self._hdu = hdu

    @property
    def shape(self) -> tuple[int, ...]:
        """The image's numpy shape."""
        return self._hdu.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The type of the values returned."""
        return self._hdu.dtype

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        return self._hdu.read_section(key)

    def __repr__(self) -> str:
        return f"<Section of {self._hdu!r}>"
