"""`Section`, numpy-style partial reads of an image, and the fetch options of a call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io.fits.hdu.image import Section as _AstropySection

from ..fetch.spans import FetchOptions

if TYPE_CHECKING:
    from .hdulist import RemoteHDU

__all__ = ["ITER_CHUNK_BYTES", "Section", "iter_chunks", "split_fetch_options"]

#: Bytes of data per read when an HDU is iterated (``for row in hdu``).
ITER_CHUNK_BYTES = 4 * 1024 * 1024

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


def iter_chunks(hdu: RemoteHDU) -> Iterator[Any]:
    """Table rows (or image planes along the first axis), read a chunk at a time.

    Without this, Python iterates through ``__getitem__`` one index at a time: one
    request per row. Each chunk is about `ITER_CHUNK_BYTES` of data.
    """
    if hdu.is_image:
        if not hdu.shape:
            raise TypeError(f"{hdu!r} has no data to iterate")
        plane = int(np.prod(hdu.shape[1:], dtype=np.int64)) if hdu.ndim > 1 else 1
        step = max(1, ITER_CHUNK_BYTES // max(1, hdu.dtype.itemsize * plane))
        for start in range(0, hdu.shape[0], step):
            yield from hdu.read_section(slice(start, start + step))
        return
    rows = hdu.shape[0]
    step = max(1, ITER_CHUNK_BYTES // max(1, hdu.dtype.itemsize))
    for start in range(0, rows, step):
        yield from hdu.read(rows=slice(start, min(rows, start + step)))
