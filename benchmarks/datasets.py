"""The benchmark's files: a TESS-layout cube, a many-HDU file, a wide table, 50 small files.

Everything is written once into a cache directory and reused by later runs.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

CUBE_FRAMES = 200
CUBE_SHAPE = (256, 256)
CUTOUT = 10
MEF_EXTENSIONS = 99
SPECTRA_ROWS = 24
SPECTRA_PIXELS = 5000
SPECTRA_COLUMNS = ("FLUX", "IVAR")
MANY_OBJECTS = 50
MANY_MAX_HDUS = 8


def _cube(directory: Path) -> Path:
    path = directory / "tess-s0022-4-4-cube.fits"
    if not path.exists():
        from astropy.utils.exceptions import AstropyDeprecationWarning

        from cloudfits.testing.tess import make_tess_cube

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyDeprecationWarning)
            make_tess_cube(directory, n_frames=CUBE_FRAMES, shape=CUBE_SHAPE, name=path.name)
    return path


def _mef(directory: Path) -> Path:
    """A primary HDU and 99 small image extensions, each with a few dozen cards."""
    path = directory / "mef.fits"
    if path.exists():
        return path
    rng = np.random.default_rng(1)
    hdus: list[Any] = [fits.PrimaryHDU()]
    for i in range(MEF_EXTENSIONS):
        hdu = fits.ImageHDU(rng.integers(0, 1000, (16, 16), dtype=np.int16), name=f"SCI{i:03d}")
        for k in range(30):
            hdu.header[f"KEY{k:03d}"] = (float(rng.normal()), f"keyword {k} of extension {i}")
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(path)
    return path


def _spectra(directory: Path) -> Path:
    """A binary table of wide rows: a few scalars and four 5000-pixel arrays per row."""
    path = directory / "spectra.fits"
    if path.exists():
        return path
    rng = np.random.default_rng(2)
    n, m = SPECTRA_ROWS, SPECTRA_PIXELS
    columns = [
        fits.Column("ID", "K", array=np.arange(n)),
        fits.Column("RA", "D", unit="deg", array=rng.uniform(0, 360, n)),
        fits.Column("DEC", "D", unit="deg", array=rng.uniform(-90, 90, n)),
        fits.Column(
            "WAVE", f"{m}E", unit="Angstrom", array=np.tile(np.linspace(3600, 9800, m), (n, 1))
        ),
        fits.Column("FLUX", f"{m}E", array=rng.normal(size=(n, m)).astype("f4")),
        fits.Column("IVAR", f"{m}E", array=rng.uniform(0, 5, (n, m)).astype("f4")),
        fits.Column("SKY", f"{m}E", array=rng.normal(size=(n, m)).astype("f4")),
    ]
    fits.HDUList(
        [fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns, name="SPECTRA")]
    ).writeto(path)
    return path


def _many(directory: Path) -> list[Path]:
    """50 files of 2 to 8 HDUs, each HDU with 100 kB of data (so every header is a new read)."""
    many = directory / "many"
    many.mkdir(exist_ok=True)
    paths = []
    rng = np.random.default_rng(3)
    for i in range(MANY_OBJECTS):
        path = many / f"obj{i:03d}.fits"
        paths.append(path)
        if path.exists():
            continue
        count = MANY_MAX_HDUS if i == 0 else int(rng.integers(2, MANY_MAX_HDUS + 1))
        hdus: list[Any] = [fits.PrimaryHDU(rng.normal(size=(160, 160)).astype("f4"))]
        for k in range(1, count):
            hdus.append(fits.ImageHDU(rng.normal(size=(160, 160)).astype("f4"), name=f"EXT{k}"))
        fits.HDUList(hdus).writeto(path)
    return paths


def _cutout_target(cube: Path) -> dict[str, Any]:
    """Sky position at the cube's centre and the exact pixels astrocut cuts around it."""
    from astropy.wcs import WCS

    with fits.open(cube) as hdul:
        table = hdul[2].data
        row = table[len(table) // 2]
        header = fits.Header()
        for name in table.columns.names:
            value = row[name]
            if np.ndim(value) == 0 and len(name) <= 8:
                header[name] = value.item() if hasattr(value, "item") else value
        header["NAXIS"] = 2
        header["NAXIS1"], header["NAXIS2"] = CUBE_SHAPE[1], CUBE_SHAPE[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header)
        ra, dec = (float(v) for v in wcs.all_pix2world(CUBE_SHAPE[1] / 2, CUBE_SHAPE[0] / 2, 0))
    coordinates = f"{ra} {dec}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from astrocut import TessCubeCutout

        cutout = TessCubeCutout(str(cube), coordinates, CUTOUT).cutouts[0]
    x0, y0 = int(cutout.cutout_lims[0, 0]), int(cutout.cutout_lims[1, 0])
    return {"coordinates": coordinates, "x0": x0, "y0": y0, "size": CUTOUT}


def build(directory: Path) -> dict[str, Any]:
    """Write (or reuse) every file; return what the workers need to know about them."""
    directory.mkdir(parents=True, exist_ok=True)
    meta_path = directory / "meta.json"
    cube = _cube(directory)
    files = {
        "cube": cube,
        "mef": _mef(directory),
        "spectra": _spectra(directory),
    }
    many = _many(directory)
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
    else:
        meta = {"cutout": _cutout_target(cube)}
        meta_path.write_text(json.dumps(meta, indent=1))
    meta["local"] = {k: str(v) for k, v in files.items()}
    meta["many"] = [str(p) for p in many]
    meta["columns"] = list(SPECTRA_COLUMNS)
    return meta


def ideal(meta: dict[str, Any]) -> dict[str, Any]:
    """The physical limit of the cutout and column tasks: exact runs and bytes."""
    n = meta["cutout"]["size"]
    with fits.open(meta["local"]["cube"]) as hdul:
        frames, planes = hdul[1].shape[2:]
        itemsize = abs(int(hdul[1].header["BITPIX"])) // 8
    with fits.open(meta["local"]["spectra"]) as hdul:
        header = hdul[1].header
        dtype = hdul[1].data.dtype
        width = sum(dtype[name].itemsize for name in meta["columns"])
        rows, rowlen = int(header["NAXIS2"]), int(header["NAXIS1"])
    hdus = 0
    for path in meta["many"]:
        with fits.open(path) as hdul:
            hdus += len(hdul)
    return {
        "indexing": {"objects": len(meta["many"]), "hdus": hdus, "deepest": MANY_MAX_HDUS},
        "cutout": {"runs": n, "bytes": n * n * frames * planes * itemsize},
        "columns": {"column_bytes": rows * width, "row_bytes": rows * rowlen},
    }
