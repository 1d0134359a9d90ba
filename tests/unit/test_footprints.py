"""Sky footprints: inside, outside and within a radius, across RA 0/360 and at the poles."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from cloudfits.astro.footprints import Footprint, FootprintTable, _from_wcs, unit_vectors

ROWS, COLS = 40, 60
SCALE = 0.01  # degrees a pixel


def _wcs(ra: float, dec: float, roll: float) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [COLS / 2 + 0.5, ROWS / 2 + 0.5]
    c, s = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    wcs.wcs.cd = SCALE * np.array([[-c, s], [s, c]])
    return wcs


@pytest.mark.parametrize(
    ("ra", "dec", "roll"),
    [(0.0, 0.0, 0.0), (359.9, 10.0, 30.0), (120.0, 89.9, 75.0), (300.0, -89.95, 10.0), (45, 45, 0)],
    ids=["ra0", "wrap", "north-pole", "south-pole", "plain"],
)
def test_inside_outside_and_radius(ra: float, dec: float, roll: float) -> None:
    wcs = _wcs(ra, dec, roll)
    footprint = _from_wcs("f.fits", 0, wcs, ROWS, COLS)
    table = FootprintTable([footprint])
    rng = np.random.default_rng(0)
    xs = rng.uniform(-0.4, COLS - 0.6, 200)
    ys = rng.uniform(-0.4, ROWS - 0.6, 200)
    for a, b in zip(*wcs.all_pix2world(xs, ys, 0), strict=True):
        assert table.search(a, b) == [footprint], (a, b)
    # 3 pixels beyond each edge: outside, but within a 4-pixel radius.
    for x, y in ((-3.5, ROWS / 2), (COLS + 2.5, 5.0), (10.0, -3.5), (COLS / 3, ROWS + 2.5)):
        (a,), (b,) = wcs.all_pix2world([x], [y], 0)
        assert table.search(a, b) == [], (x, y)
        assert table.search(a, b, 4 * SCALE) == [footprint], (x, y)
        assert table.search(a, b, 2 * SCALE) == [], (x, y)
    # The antipode and a far point are never inside.
    assert table.search((ra + 180) % 360, -dec) == []
    assert table.search((ra + 90) % 360, 0.0, 1.0) == []


def test_table_finds_each_of_many() -> None:
    prints = [
        _from_wcs(f"{k}.fits", 0, _wcs(k * 36.0, -60 + k * 12.0, k), ROWS, COLS) for k in range(10)
    ]
    table = FootprintTable(prints)
    for k, footprint in enumerate(prints):
        assert table.search(k * 36.0, -60 + k * 12.0) == [footprint]
    assert isinstance(prints[0], Footprint)
    assert np.allclose(np.linalg.norm(unit_vectors([0, 90], [0, 45]), axis=1), 1)
