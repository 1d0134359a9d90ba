"""Target-pixel cutouts of TESS full-frame-image cubes, read from object storage.

MAST's TESS cubes (made by astrocut's `~astrocut.CubeFactory`) hold a whole sector of
one CCD: HDU 1 is an image of numpy shape ``(rows, columns, frames, 2)`` (flux and its
uncertainty), HDU 2 a table with one row per frame. A cutout of N x N pixels over all
frames needs N runs of ``N * frames * 8`` bytes from HDU 1, plus the small table.

`tess_cutout` runs astrocut's own `~astrocut.TessCubeCutout` (so the target-pixel
layout, the headers and the cutout WCS are exactly astrocut's), with the cube read
through cloudfits: the table in one request, the pixels as one planned section read.
`light_curve` reads one pixel of every frame and columns of the frame table together.
astrocut is an optional dependency (``pip install cloudfits[tess]``).
"""

from __future__ import annotations

import inspect
import threading
import warnings
import weakref
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from ..errors import CloudFitsError, FitsFormatError
from ..fetch.pool import run_together
from ..fits.scan import padded

if TYPE_CHECKING:
    from collections.abc import Sequence

    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    from ..remote.hdulist import RemoteFITS, RemoteHDU

__all__ = [
    "BUILD_LOCK",
    "cube_pieces",
    "cutout_file_name",
    "cutout_limits",
    "light_curve",
    "tess_cutout",
]

BUILD_LOCK = threading.Lock()
"""Held by threads of one process while astropy and astrocut build objects, never while reading.

Building FITS tables parses numpy dtype strings with ``ast.literal_eval``, and CPython
3.11's ``compile`` fails now and then with "SystemError: AST constructor recursion
depth mismatch" when threads run it at once (python/cpython#106905): the service's
cutout threads hit it under load. Building is pure Python under the GIL, so holding
the lock costs no parallelism; the range reads stay outside it.
"""

# The WCS (with its header) of each frame table in use, found by the table's identity:
# the same for every cutout of a cube, and a third of a cutout's CPU to parse.
_TABLE_WCS: dict[int, tuple[weakref.ref[Any], tuple[Any, ...], Any]] = {}
_TABLE_WCS_LOCK = threading.Lock()


def _table_wcs(parse: Any, table_data: Any, *args: Any) -> Any:
    """``parse(table_data, *args)``, once per frame table (kept while the table lives)."""
    with _TABLE_WCS_LOCK:
        known = _TABLE_WCS.get(id(table_data))
    if known is not None and known[0]() is table_data and known[1] == args:
        return known[2]
    found = parse(table_data, *args)
    with _TABLE_WCS_LOCK:
        for key in [k for k, (ref, _, _) in _TABLE_WCS.items() if ref() is None]:
            del _TABLE_WCS[key]
        _TABLE_WCS[id(table_data)] = (weakref.ref(table_data), args, found)
    return found


def _hdu_from_store(hdu: RemoteHDU, cls: Any) -> Any:
    """An astropy HDU of class ``cls`` holding the header and all the data of ``hdu``."""
    data = b""
    if hdu.layout.data_size:
        options = hdu.file.fetch_options
        run = np.zeros(1, dtype=np.int64)
        fetched = hdu.file.reader.read_runs(
            hdu.layout.data_offset, run, hdu.layout.data_size, options
        )
        data = fetched.tobytes()
    blob = (
        hdu.raw_header.tostring().encode("ascii") + data + b"\0" * (padded(len(data)) - len(data))
    )
    with BUILD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        return cls.fromstring(blob)


class _CubeImage:
    """What astrocut uses of the cube's image HDU: its header and its ``section``."""

    def __init__(self, hdu: RemoteHDU) -> None:
        self.header = hdu.header
        self.section = hdu.section
        self.shape = hdu.shape


def _check_cube(rf: RemoteFITS) -> None:
    if not rf.scanned(3) or not rf[1].kind.is_image or len(rf[1].shape) != 4:
        raise FitsFormatError(
            f"{rf.uri}: not a TESS cube (an image of 4 axes in HDU 1 and a table in HDU 2)"
        )


def cube_pieces(rf: RemoteFITS) -> tuple[fits.PrimaryHDU, fits.BinTableHDU]:
    """The primary HDU and the frame table of a TESS cube, each read whole in one request.

    Every cutout of the cube shares them, so a caller making many keeps them.

    Raises
    ------
    FitsFormatError
        When ``rf`` is not laid out as a TESS cube.
    """
    _check_cube(rf)
    return _hdu_from_store(rf[0], fits.PrimaryHDU), _hdu_from_store(rf[2], fits.BinTableHDU)


def light_curve(
    rf: RemoteFITS,
    row: int,
    column: int,
    columns: Sequence[str | int] = ("TSTART", "TSTOP"),
    **tuning: int,
) -> Table:
    """One pixel in every frame of a TESS cube, beside columns of its frame table.

    The pixel's read and the table's read leave together (one round trip for a cube
    opened from an index), and only the asked columns of the table are decoded.

    Parameters
    ----------
    rf : RemoteFITS
        The cube.
    row, column : int
        The pixel: ``rf[1].section[row, column, :, :]`` (numpy order, from 0).
    columns : sequence of str or int
        Columns of the frame table (HDU 2), as `RemoteHDU.read` takes them.
    **tuning
        ``max_gap``, ``max_part``, ``max_concurrency`` of both reads.

    Returns
    -------
    `~astropy.table.Table`
        One row per frame: ``columns`` as ``rf[2].read(columns=columns)`` gives them
        (units kept, text as bytes), then ``FLUX`` and ``FLUX_ERR``, the values of
        ``rf[1].section[row, column, :, 0]`` and ``[..., 1]``.

    Raises
    ------
    FitsFormatError
        When ``rf`` is not laid out as a TESS cube.
    """
    from astropy.table import Table

    _check_cube(rf)
    pixel, table = run_together(
        lambda: rf[1].read_section((row, column, slice(None), slice(None)), **tuning),
        lambda: rf[2].read(columns=list(columns), **tuning) if columns else Table(),
    )
    table["FLUX"] = pixel[:, 0]
    table["FLUX_ERR"] = pixel[:, 1]
    result: Table = table
    return result


class _RemoteCube:
    """The cube as astrocut sees an opened ``HDUList``: HDUs 0 to 2, and ``close``.

    ``pieces`` (from `cube_pieces`) and ``image`` (anything with the ``header``,
    ``section`` and ``shape`` of HDU 1) let many cutouts share one read of each.
    """

    def __init__(
        self,
        rf: RemoteFITS,
        pieces: tuple[fits.PrimaryHDU, fits.BinTableHDU] | None = None,
        image: Any = None,
    ) -> None:
        primary, table = pieces or cube_pieces(rf)
        self._hdus = [primary, image or _CubeImage(rf[1]), table]

    def __getitem__(self, number: int) -> Any:
        return self._hdus[number]

    def __len__(self) -> int:
        return len(self._hdus)

    def close(self) -> None:
        """Nothing to release."""


def _cutout_class() -> Any:
    try:
        from astrocut import TessCubeCutout
        from astrocut.exceptions import InvalidQueryError
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("TESS cutouts need astrocut: pip install 'cloudfits[tess]'") from err

    class RemoteTessCubeCutout(TessCubeCutout):  # type: ignore[misc]
        """astrocut's TESS cube cutout, with the cube read through cloudfits."""

        def __init__(self, rf: RemoteFITS, *args: Any, defer: bool = False, **kwargs: Any) -> None:
            # ``defer``: astrocut cuts in its constructor; a batch first asks every
            # target for its pixel limits, reads them together, then calls ``cutout``.
            self._remote = rf
            self._defer = defer
            self.cube: _RemoteCube | None = None
            super().__init__([rf.uri], *args, **kwargs)

        def cutout(self) -> Any:
            if self._defer:
                self._defer = False
                return None
            return super().cutout()

        def _load_file_data(self, file: Any) -> _RemoteCube:
            return self.cube or _RemoteCube(self._remote)

        def parse_table_wcs(self, table_data: Any, *args: Any, **kwargs: Any) -> Any:
            # astrocut reads only the WCS and the header it returns, so they are shared.
            flat = (*args, *sorted(kwargs.items()))
            parse = TessCubeCutout.parse_table_wcs
            return _table_wcs(lambda data, *_: parse(data, *args, **kwargs), table_data, *flat)

        def _get_cutout_limits(self, *args: Any, **kwargs: Any) -> Any:
            # astrocut fails with a numpy error on a cutout wholly off the cube; say so.
            # (astrocut 1.4 passes the cutout size too; 1.3 only the WCS.)
            limits = super()._get_cutout_limits(*args, **kwargs)
            rows, columns = self._remote[1].shape[:2]
            (col_min, col_max), (row_min, row_max) = limits
            if row_min >= rows or row_max <= 0 or col_min >= columns or col_max <= 0:
                raise InvalidQueryError("the cutout does not overlap the cube")
            return limits

    return RemoteTessCubeCutout


def cutout_limits(made: Any, wcs: Any) -> Any:
    """astrocut's pixel limits ``[[x0, x1], [y0, y1]]`` of a cutout object's target."""
    astrocut_method = super(type(made), made)._get_cutout_limits  # not our override
    if "coordinates" in inspect.signature(astrocut_method).parameters:
        return made._get_cutout_limits(made._coordinates, wcs)
    return made._get_cutout_limits(wcs)


def cutout_file_name(made: Any, uri: str) -> str:
    """The name astrocut's ``write_as_zip`` gives the target-pixel file of ``uri``."""
    # rstrip, not removesuffix: astrocut strips characters, and names must match its own.
    stem = PurePosixPath(uri).stem.rstrip("-cube")
    if "coordinates" in inspect.signature(made._make_cutout_filename).parameters:
        name: str = made._make_cutout_filename(stem, made._coordinates)
    else:
        name = made._make_cutout_filename(stem)
    return name


def tess_cutout(
    rf: RemoteFITS,
    coordinates: SkyCoord | str,
    size: int | tuple[int, int] | Any = 25,
    *,
    fill_value: float = np.nan,
) -> fits.HDUList:
    """Cut a target-pixel file out of a TESS cube, reading only the pixels it holds.

    Parameters
    ----------
    rf : RemoteFITS
        The cube, opened with `cloudfits.open` or from an index.
    coordinates : `~astropy.coordinates.SkyCoord` or str
        The centre of the cutout (a string is read as ``"ra dec"`` in degrees).
    size : int, pair of int, or `~astropy.units.Quantity`
        Pixels (or an angle) on a side, as astrocut takes it: ``(rows, columns)``.
    fill_value : float
        Value of the pixels that fall outside the cube.

    Returns
    -------
    `~astropy.io.fits.HDUList`
        The target-pixel layout astrocut produces: the primary header, ``PIXELS`` (one
        row per frame: ``TIME``, ``FLUX``, ``FLUX_ERR``, ``QUALITY``, ... ) and
        ``APERTURE`` (with the cutout's WCS).

    Raises
    ------
    CloudFitsError
        When the cutout does not overlap the cube.
    """
    from astrocut.exceptions import InvalidQueryError
    from astropy.coordinates import SkyCoord

    cutout_class = _cutout_class()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            made = cutout_class(rf, coordinates, size, fill_value=fill_value, threads=1)
    except InvalidQueryError as err:
        sky = (
            coordinates if isinstance(coordinates, SkyCoord) else SkyCoord(coordinates, unit="deg")
        )
        icrs = sky.icrs
        raise CloudFitsError(
            f"{rf.uri}: no cutout at RA {icrs.ra.deg:.6f} Dec {icrs.dec.deg:.6f}: the cutout"
            f" does not overlap the cube ({err})"
        ) from err
    hdulist: fits.HDUList = made.tpf_cutouts[0]
    return hdulist
