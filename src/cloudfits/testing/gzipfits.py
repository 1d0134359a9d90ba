"""A whole-file gzip FITS file for tests and benchmarks: an 18 MB image and a 50,000-row table.

The image is a smooth pattern with Gaussian noise in 32-bit floats, which gzip
compresses to about 78% (noise does not compress), so the seek points matter: a read
from the wrong place would cost most of the object.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

__all__ = ["IMAGE_SHAPE", "TABLE_ROWS", "make_gzip_fits"]

IMAGE_SHAPE = (2120, 2120)
TABLE_ROWS = 50_000


def make_gzip_fits(
    directory: Path,
    *,
    name: str = "image-and-table.fits",
    shape: tuple[int, int] = IMAGE_SHAPE,
    rows: int = TABLE_ROWS,
    level: int = 6,
) -> tuple[Path, Path]:
    """Write ``name`` (plain) and ``name + ".gz"`` into ``directory``, unless there.

    Returns
    -------
    plain, packed : Path
        The FITS file, and the same bytes gzip-compressed (one member, ``level``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    plain, packed = directory / name, directory / f"{name}.gz"
    if plain.exists() and packed.exists():
        return plain, packed
    rng = np.random.default_rng(14)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    pattern = 1000 + 50 * np.sin(x / 37.0) * np.cos(y / 53.0)
    image = (pattern + rng.normal(0, 5, shape)).astype(np.float32)
    table = Table(
        {
            "ID": np.arange(rows, dtype=np.int64),
            "RA": rng.uniform(0, 360, rows),
            "DEC": rng.uniform(-90, 90, rows),
            "FLUX": rng.lognormal(0, 1, rows).astype(np.float32),
            "BAND": np.array(["g", "r", "i", "z"])[rng.integers(0, 4, rows)],
            "FLAG": rng.integers(0, 3, rows).astype(np.int16),
        }
    )
    table["FLUX"].unit = "Jy"
    primary = fits.PrimaryHDU(image)
    primary.header["OBJECT"] = ("gzip test field", "a smooth pattern and noise")
    fits.HDUList([primary, fits.BinTableHDU(table, name="CATALOG")]).writeto(plain, overwrite=True)
    with (
        plain.open("rb") as source,
        gzip.GzipFile(packed, "wb", compresslevel=level, mtime=0) as target,
    ):
        shutil.copyfileobj(source, target, 1 << 20)
    return plain, packed
