"""Sky footprints of indexed images and TESS cubes, and which of them hold a position.

A footprint is the outline of an image's pixel grid on the sky: points along the
four edges (pixel borders, 8 per side) mapped through the image's full WCS (SIP
included) to unit vectors. Every test is vector algebra on the sphere, so nothing
special happens at RA 0/360 or at the poles: a position is inside when it falls
inside the outline in the gnomonic projection about the footprint's centre (great
circles project to straight lines), and within ``radius`` of a footprint when it is
inside or within ``radius`` of one of the outline's great-circle edges. A table of
footprints first discards, with one matrix product, every footprint whose bounding
cap is farther than ``radius``.

The WCS of a TESS cube is the one astrocut cuts with: the frame table's middle row
whose ``CTYPE2`` is ``DEC--TAN-SIP`` (the next rows when that one has none). Finding
it reads that one row of HDU 2; a 2-D image's WCS is in its indexed header (no read).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .tess import BUILD_LOCK

if TYPE_CHECKING:
    from astropy.wcs import WCS

    from ..remote.hdulist import RemoteFITS, RemoteHDU

__all__ = [
    "Footprint",
    "FootprintTable",
    "cube_wcs",
    "footprint_of",
    "unit_vectors",
]

_EDGE_POINTS = 8
_WCS_AXIS_VALUE = "DEC--TAN-SIP"


def unit_vectors(ra_deg: Any, dec_deg: Any) -> np.ndarray:
    """Unit vectors (..., 3) of positions in degrees."""
    ra, dec = np.radians(np.asarray(ra_deg, float)), np.radians(np.asarray(dec_deg, float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (radians) between unit vectors, accurate at small and large angles."""
    angles: np.ndarray = np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1))
    return angles


@dataclass(frozen=True)
class Footprint:
    """The outline of one image on the sky.

    Attributes
    ----------
    path : str
        The file's path in the index.
    hdu : int
        The HDU the outline belongs to.
    vertices : numpy.ndarray
        Unit vectors (N, 3) of the outline, in order around it.
    pixel_scale : float
        Mean pixel size, degrees.
    """

    path: str
    hdu: int
    vertices: np.ndarray
    pixel_scale: float

    @property
    def center(self) -> np.ndarray:
        """Unit vector of the outline's mean direction."""
        mean = self.vertices.mean(axis=0)
        result: np.ndarray = mean / np.linalg.norm(mean)
        return result

    @property
    def cap_radius(self) -> float:
        """Largest angle (radians) from the centre to the outline."""
        return float(_angle(self.vertices, self.center).max())

    def corners_deg(self) -> list[tuple[float, float]]:
        """(RA, Dec) in degrees of the outline's points, for display."""
        x, y, z = self.vertices.T
        ra = np.degrees(np.arctan2(y, x)) % 360.0
        dec = np.degrees(np.arcsin(np.clip(z, -1, 1)))
        return [(float(a), float(b)) for a, b in zip(ra, dec, strict=True)]

    def contains(self, point: np.ndarray) -> bool:
        """Whether the unit vector ``point`` is inside the outline."""
        center = self.center
        if float(point @ center) <= 0:
            return False  # the far hemisphere: no image here is that large
        e1 = np.cross([0.0, 0.0, 1.0], center)
        if np.linalg.norm(e1) < 1e-12:  # centred on a pole
            e1 = np.array([1.0, 0.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(center, e1)
        verts = self.vertices / (self.vertices @ center)[:, None]
        px, py = verts @ e1, verts @ e2
        q = point / float(point @ center)
        qx, qy = float(q @ e1), float(q @ e2)
        # Ray casting to +x: count edges that cross the horizontal line through q.
        x0, y0, x1, y1 = px, py, np.roll(px, -1), np.roll(py, -1)
        crosses = (y0 > qy) != (y1 > qy)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (qy - y0) * (x1 - x0) / (y1 - y0)
        return bool(np.count_nonzero(crosses & (x_at > qx)) % 2)

    def distance(self, point: np.ndarray) -> float:
        """Angle (radians) from ``point`` to the outline's edges (0 when inside)."""
        if self.contains(point):
            return 0.0
        a, b = self.vertices, np.roll(self.vertices, -1, axis=0)
        normal = np.cross(a, b)
        normal /= np.linalg.norm(normal, axis=1)[:, None]
        off = normal @ point  # sine of the angle to each edge's great circle
        foot = point[None, :] - off[:, None] * normal
        norms = np.linalg.norm(foot, axis=1)
        foot = foot / np.where(norms > 0, norms, 1.0)[:, None]
        on_arc = (np.sum(np.cross(a, foot) * normal, axis=1) >= 0) & (
            np.sum(np.cross(foot, b) * normal, axis=1) >= 0
        )
        to_circle = np.arcsin(np.clip(np.abs(off), 0.0, 1.0))
        to_ends = np.minimum(_angle(a, point[None, :]), _angle(b, point[None, :]))
        return float(np.min(np.where(on_arc, to_circle, to_ends)))


def _outline_pixels(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-based (x, y) of points along the pixel grid's outer border, in order."""
    t = np.linspace(0.0, 1.0, _EDGE_POINTS, endpoint=False)
    x0, x1, y0, y1 = -0.5, cols - 0.5, -0.5, rows - 0.5
    xs = np.concatenate(
        [x0 + t * (x1 - x0), np.full_like(t, x1), x1 - t * (x1 - x0), np.full_like(t, x0)]
    )
    ys = np.concatenate(
        [np.full_like(t, y0), y0 + t * (y1 - y0), np.full_like(t, y1), y1 - t * (y1 - y0)]
    )
    return xs, ys


def _from_wcs(path: str, hdu: int, wcs: WCS, rows: int, cols: int) -> Footprint:
    from astropy.wcs.utils import proj_plane_pixel_scales

    xs, ys = _outline_pixels(rows, cols)
    ra, dec = wcs.all_pix2world(xs, ys, 0)
    scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial)))
    return Footprint(path, hdu, unit_vectors(ra, dec), scale)


def cube_wcs(rf: RemoteFITS) -> WCS:
    """The WCS astrocut cuts a TESS cube with, from its frame table (see the module)."""
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    table = rf[2]
    nrows = int(table.header.get("NAXIS2", 0))
    start = nrows // 2
    for number in [*range(start, nrows), *range(0, start)]:
        row = table.read(rows=slice(number, number + 1))
        if "CTYPE2" in row.colnames and str(row["CTYPE2"][0]).strip() == _WCS_AXIS_VALUE:
            break
    else:
        raise ValueError(f"{rf.uri}: no frame of the cube table has a {_WCS_AXIS_VALUE} WCS")
    header = fits.Header()
    for name in row.colnames:
        value = row[name][0]
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if isinstance(value, (float, np.floating)) and np.isnan(value):
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (str, int, float, bool)):
            header[name] = value
    with BUILD_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, relax=True)


def is_tess_cube(rf: RemoteFITS) -> bool:
    """HDU 1 a 4-axis image and HDU 2 a table: the layout astrocut's CubeFactory writes."""
    return rf.scanned(3) and rf[1].kind.is_image and len(rf[1].shape) == 4 and rf[2].kind.is_table


def footprint_of(path: str, rf: RemoteFITS) -> list[Footprint]:
    """Footprints of a file: the cube's for a TESS cube, else each celestial 2-D image's."""
    from astropy.wcs import FITSFixedWarning

    if is_tess_cube(rf):
        rows, cols = rf[1].shape[:2]
        return [_from_wcs(path, 1, cube_wcs(rf), rows, cols)]
    found = []
    for hdu in rf:
        if not (hdu.kind.is_image and len(hdu.shape) == 2):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = _hdu_wcs(hdu)
        if wcs is not None:
            found.append(_from_wcs(path, hdu.number, wcs, *hdu.shape))
    return found


def _hdu_wcs(hdu: RemoteHDU) -> WCS | None:
    try:
        wcs = hdu.wcs
    except (ValueError, KeyError, MemoryError):  # astropy's complaints about bad WCS cards
        return None
    return wcs if wcs.has_celestial else None


class FootprintTable:
    """Footprints with a fast search: which hold a position, or come within a radius."""

    def __init__(self, footprints: Sequence[Footprint]) -> None:
        self.footprints = list(footprints)
        if self.footprints:
            self._centers = np.stack([f.center for f in self.footprints])
            self._caps = np.array([f.cap_radius for f in self.footprints])
        else:
            self._centers, self._caps = np.zeros((0, 3)), np.zeros(0)

    def __len__(self) -> int:
        return len(self.footprints)

    def search(self, ra: float, dec: float, radius_deg: float = 0.0) -> list[Footprint]:
        """Footprints that hold (RA, Dec) or reach within ``radius_deg`` of it."""
        point = unit_vectors(ra, dec)
        radius = np.radians(max(radius_deg, 0.0))
        near = _angle(self._centers, point[None, :]) <= self._caps + radius + 1e-9
        found = []
        for number in np.flatnonzero(near).tolist():
            footprint = self.footprints[number]
            if footprint.contains(point) or (radius > 0 and footprint.distance(point) <= radius):
                found.append(footprint)
        return found
