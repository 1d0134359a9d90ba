"""Many target-pixel cutouts of one TESS cube, planned and read together.

astrocut cuts one target at a time, each a separate section read. Here every
target first asks astrocut for its pixel limits (astrocut's own rounding), the pixel
boxes of all targets are planned as byte runs and fetched as one set of range
requests (runs of neighbouring boxes share requests), and then astrocut builds each
target-pixel file from the boxes already read. The cube's primary header and frame
table are read once for all targets (or come from the caller's cache).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.utils.exceptions import AstropyWarning

from ..errors import CloudFitsError
from ..fits.geometry import image_scaling, scale_image
from ..fits.planner import plan_section
from .tess import (
    BUILD_LOCK,
    _CubeImage,
    _cutout_class,
    _RemoteCube,
    cube_pieces,
    cutout_file_name,
    cutout_limits,
)

if TYPE_CHECKING:
    from astropy.io import fits

    from ..fetch.spans import FetchOptions
    from ..remote.hdulist import RemoteFITS, RemoteHDU

__all__ = ["Target", "TargetCutout", "cube_cutouts", "fits_bytes", "only_cutout", "read_boxes"]

Box = tuple[int, int, int, int]  # rows [r0, r1), columns [c0, c1) of the cube's axes 0 and 1


@dataclass(frozen=True)
class Target:
    """A position on the sky (ICRS degrees) to cut out."""

    ra: float
    dec: float


@dataclass
class TargetCutout:
    """The cutout of one target from one cube, or why there is none.

    Attributes
    ----------
    target : Target
        The position asked for.
    cube : str
        The cube's path in the index (or its URI).
    name : str
        File name astrocut gives this target-pixel file (empty on failure).
    hdulist : astropy.io.fits.HDUList or None
        The target-pixel file, or None when ``error`` says why there is none.
    error : str or None
        Why the cube holds no cutout of the target.
    """

    target: Target
    cube: str
    name: str = ""
    hdulist: fits.HDUList | None = None
    error: str | None = None


def read_boxes(
    hdu: RemoteHDU, keys: Sequence[tuple[slice, ...]], options: FetchOptions | None = None
) -> list[np.ndarray]:
    """Read ``hdu.section[key]`` for every key with one planned set of range requests.

    The byte runs of all keys are merged before anything is fetched (overlapping and
    neighbouring runs share requests); values and dtypes are those of the section reads.
    """
    if not keys:
        return []
    if hdu.kind.is_compressed:
        return [hdu.section[key] for key in keys]
    options = options or hdu.file.fetch_options
    scaling = image_scaling(hdu.header)
    itemsize = scaling.raw_dtype.itemsize
    plans = [plan_section(hdu.shape, itemsize, key) for key in keys]
    starts = np.concatenate([p.run_offsets for p in plans]).astype(np.int64)
    ends = np.concatenate([p.run_offsets + p.run_nbytes for p in plans]).astype(np.int64)
    pieces = hdu.file.reader.read_ranges(hdu.layout.data_offset, starts, ends, options)
    out, first = [], 0
    for plan in plans:
        count = int(plan.run_offsets.size)
        runs = pieces[first : first + count]
        first += count
        raw = np.concatenate(runs) if runs else np.zeros(0, dtype=np.uint8)
        values = raw.view(scaling.raw_dtype).reshape(plan.buffer_shape)
        out.append(scale_image(values, scaling)[plan.finish])
    return out


class _PrefetchedSection:
    """HDU 1's ``section`` for astrocut, answering the boxes read beforehand."""

    def __init__(self, hdu: RemoteHDU, boxes: dict[Box, np.ndarray]) -> None:
        self._hdu = hdu
        self._boxes = boxes
        self.shape = hdu.shape

    def __getitem__(self, key: Any) -> np.ndarray:
        box = _box_of(key)
        if box is not None and box in self._boxes:
            return self._boxes[box]
        return self._hdu.section[key]  # astrocut asked for something unplanned: read it


def _box_of(key: Any) -> Box | None:
    if not (isinstance(key, tuple) and len(key) == 4 and all(isinstance(k, slice) for k in key)):
        return None
    rows, cols, frames, planes = key
    if frames != slice(None) or planes != slice(None) or rows.step or cols.step:
        return None
    return int(rows.start), int(rows.stop), int(cols.start), int(cols.stop)


def _clamped_box(limits: Any, shape: tuple[int, ...]) -> Box:
    """The box astrocut's ``_get_cutout_data`` reads for ``limits`` (clamped to the cube)."""
    (c0, c1), (r0, r1) = (int(v) for v in limits[0]), (int(v) for v in limits[1])
    return max(0, r0), min(r1, shape[0]), max(0, c0), min(c1, shape[1])


def cube_cutouts(
    rf: RemoteFITS,
    targets: Sequence[Target],
    size: Any = 25,
    *,
    fill_value: float = np.nan,
    pieces: tuple[fits.PrimaryHDU, fits.BinTableHDU] | None = None,
    cube: str | None = None,
) -> list[TargetCutout]:
    """Cut target-pixel files of many targets out of one TESS cube, reading together.

    Parameters
    ----------
    rf : RemoteFITS
        The cube.
    targets : sequence of Target
        Positions (ICRS degrees).
    size : int, pair, or `~astropy.units.Quantity`
        As astrocut's ``cutout_size``: ``(ny, nx)`` pixels or an angle.
    fill_value : float
        Value of the pixels outside the cube.
    pieces : tuple, optional
        The cube's primary HDU and frame table (`cloudfits.tess.cube_pieces`), when the
        caller keeps them; read here otherwise.
    cube : str, optional
        Name of the cube in the results (its URI by default).

    Returns
    -------
    list of TargetCutout
        One per target, in order; a target the cube does not hold has ``error`` set.
    """
    from astrocut.exceptions import InvalidQueryError
    from astropy.coordinates import SkyCoord

    cutout_class = _cutout_class()
    pieces = pieces or cube_pieces(rf)
    label = cube or rf.uri
    shape = rf[1].shape
    results = [TargetCutout(t, label) for t in targets]
    pending: list[tuple[TargetCutout, Any, Box]] = []
    with BUILD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        for result in results:
            where = SkyCoord(result.target.ra, result.target.dec, unit="deg")
            made = cutout_class(rf, where, size, fill_value=fill_value, threads=1, defer=True)
            try:
                limits = cutout_limits(made, made._parse_table_info(pieces[1].data))
            except InvalidQueryError as err:
                result.error = f"{label}: the cutout does not overlap the cube ({err})"
                continue
            pending.append((result, made, _clamped_box(limits, shape)))
    boxes = sorted({box for _, _, box in pending})
    keys = [(slice(r0, r1), slice(c0, c1), slice(None), slice(None)) for r0, r1, c0, c1 in boxes]
    image = _CubeImage(rf[1])
    image.section = _PrefetchedSection(  # type: ignore[assignment]
        rf[1], dict(zip(boxes, read_boxes(rf[1], keys), strict=False))
    )
    shared = _RemoteCube(rf, pieces, image)
    with BUILD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        for result, made, _ in pending:
            made.cube = shared
            try:
                made.cutout()
            except InvalidQueryError as err:
                result.error = f"{label}: no cutout ({err})"
                continue
            result.hdulist = made.tpf_cutouts[0]
            result.name = cutout_file_name(made, rf.uri)
    return results


def only_cutout(results: list[TargetCutout]) -> TargetCutout:
    """The one result of a single-target call; raise its error if it has one."""
    (result,) = results
    if result.hdulist is None:
        raise CloudFitsError(result.error or "no cutout")
    return result


def fits_bytes(hdulist: Any) -> bytes:
    """A FITS file's bytes as astrocut puts them in its zips (with checksums)."""
    from astropy.io import fits

    buffer = io.BytesIO()
    with BUILD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        hdulist.writeto(buffer, checksum=True)
    return buffer.getvalue()
