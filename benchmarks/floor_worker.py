"""One tool doing one full-scale task in a fresh process.

``python -m benchmarks.floor_worker TOOL TASK META`` builds its clients, prints
``READY`` and then, for each line it reads on stdin (the driver resets the server's
records meanwhile), runs the task once under a timer at the next target position
(the first run is the fresh one, later runs are warm; imports, clients and one full
garbage collection come before, for every tool), checks the result exactly
against the generated cube and prints one JSON line ``{"seconds", "cpu", "ok", ...}``.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cloudfits.testing.generated import GeneratedCube

TOOLS = ("cloudfits", "cloudfits-cli", "astrocut-8", "astropy-10kB", "astropy-default")
TASKS = ("cut10", "cut50", "lightcurve", "open10", "indexing")
TASK_TITLES = {
    "cut10": "10x10 px, all frames",
    "cut50": "50x50 px, all frames",
    "lightcurve": "light curve: 1 px + TSTART/TSTOP",
    "open10": "cloudfits.open + 10x10 (no index)",
    "indexing": "index the cubes",
}
CUT_SIZE = {"cut10": 10, "cut50": 50, "open10": 10, "lightcurve": 1}


def supports(tool: str, task: str) -> bool:
    """Which tool does which task."""
    if tool == "cloudfits":
        return True
    if tool == "cloudfits-cli":
        return task == "indexing"
    if tool.startswith("astrocut"):
        return task in ("cut10", "cut50", "lightcurve")
    return task != "open10"


def positions(task: str, cube: GeneratedCube, count: int = 4) -> list[tuple[int, int]]:
    """(row, column) corners of the cutouts of successive runs: far apart, inside the image."""
    rows, cols = cube.shape[:2]
    n = CUT_SIZE.get(task, 1)
    return [
        ((rows // 3 + 311 * k) % (rows - n - 8) + 4, (cols // 4 + 197 * k) % (cols - n - 8) + 4)
        for k in range(count)
    ]


# ----------------------------------------------------------------------------- checks


def _cut_key(task: str, y: int, x: int) -> tuple[Any, ...]:
    n = CUT_SIZE[task]
    if task == "lightcurve":
        return (y, x, slice(None), 0)
    return (slice(y, y + n), slice(x, x + n), slice(None), slice(None))


def _check_lightcurve(result: Any, cube: GeneratedCube, y: int, x: int) -> bool:
    flux, tstart, tstop = result
    return bool(
        np.array_equal(np.asarray(flux), cube.pixels(_cut_key("lightcurve", y, x)))
        and np.array_equal(np.asarray(tstart), cube.column("TSTART"))
        and np.array_equal(np.asarray(tstop), cube.column("TSTOP"))
    )


def _check_astrocut(task: str, flux: np.ndarray, cube: GeneratedCube, y: int, x: int) -> bool:
    """astrocut centres the cutout itself: its pixels must be the cube's at one nearby place."""
    n = CUT_SIZE[task]
    found = [
        (a, b)
        for a in range(y - 2, y + 3)
        for b in range(x - 2, x + 3)
        if np.array_equal(
            flux, np.moveaxis(cube.pixels((slice(a, a + n), slice(b, b + n), slice(None), 0)), 2, 0)
        )
    ]
    return len(found) == 1


def check(task: str, tool: str, result: Any, meta: dict[str, Any], y: int, x: int) -> bool:
    """Whether the result equals the generated cube's values exactly."""
    cube = GeneratedCube(meta["number"], tuple(meta["shape"]))
    if task == "indexing":
        return _check_index(result, meta)
    if tool.startswith("astrocut"):
        flux = result.reshape(-1, 1, 1) if task == "lightcurve" else result
        return _check_astrocut(task, flux, cube, y, x)
    if task == "lightcurve":
        return _check_lightcurve(result, cube, y, x)
    return bool(np.array_equal(np.asarray(result), cube.pixels(_cut_key(task, y, x))))


def _check_index(result: Any, meta: dict[str, Any]) -> bool:
    """Every cube's HDUs at the right offsets, with exactly its header cards."""
    if isinstance(result, str):  # the CLI wrote an index file
        import cloudfits

        result = cloudfits.load_index(result)
    if isinstance(result, dict):  # astropy: headers by key, of the first cubes only
        got = result
    else:
        got = {
            e.path: [(h.header_offset, h.data_offset, h.data_size, h.header) for h in e.hdus]
            for e in result.files
        }
    want = {}
    for key, number in meta["cubes"].items():
        name = key.removeprefix(meta["prefix"])
        if name not in got and isinstance(result, dict):
            continue
        cube = GeneratedCube(number, tuple(meta["shape"]))
        want[name] = cube.layout()
    if isinstance(result, dict):
        return bool(got) and all(got[k] == [w[3] for w in want[k]] for k in got)
    return got == want


# ----------------------------------------------------------------------------- tools


def _cloudfits(task: str, meta: dict[str, Any]) -> Callable[[int, int], Any]:
    import cloudfits
    from cloudfits.astro.tess import light_curve
    from cloudfits.providers.registry import get_registry

    uri = meta["uri"]
    get_registry().for_uri(uri)[0].client  # noqa: B018  (build the boto3 client now)
    if task == "lightcurve":
        # Its result is an astropy Table: the library is imported before the timer, as
        # every tool's imports are (``import cloudfits`` no longer brings it).
        import astropy.table  # noqa: F401

    def run(y: int, x: int) -> Any:
        if task == "indexing":
            return cloudfits.build_index(meta["prefix_uri"])
        if task == "open10":
            f = cloudfits.open(uri)
        else:
            f = cloudfits.load_index(meta["index"]).open(meta["name"])
        if task == "lightcurve":
            # The pixel and the two columns requested together, the columns decoded alone.
            curve = light_curve(f, y, x, ["TSTART", "TSTOP"])
            return curve["FLUX"], curve["TSTART"], curve["TSTOP"]
        return f[1].section[_cut_key(task, y, x)]

    return run


def _cli(task: str, meta: dict[str, Any]) -> Callable[[int, int], Any]:
    import os
    import subprocess
    import tempfile

    def run(y: int, x: int) -> Any:
        out = os.path.join(tempfile.mkdtemp(prefix="cloudfits-floor-"), "index.json")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cloudfits",
                "index",
                meta["prefix_uri"],
                "--index-uri",
                out,
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return out

    return run


def _astropy(tool: str, task: str, meta: dict[str, Any]) -> Callable[[int, int], Any]:
    import s3fs
    from astropy.io import fits

    options: dict[str, Any] = {"anon": True}
    if tool == "astropy-10kB":
        options["default_block_size"] = 10_000
    fs = s3fs.S3FileSystem(**options)
    fs.connect()

    def run(y: int, x: int) -> Any:
        if task == "indexing":
            keys = sorted(fs.ls(meta["prefix_uri"].removeprefix("s3://")))[: meta["peer_objects"]]
            out = {}
            for key in keys:
                with fits.open("s3://" + key, use_fsspec=True, fsspec_kwargs=options) as hdul:
                    out[key.removeprefix(f"{meta['bucket']}/{meta['prefix']}")] = [
                        h.header.tostring(endcard=True, padding=False) for h in hdul
                    ]
            return out
        with fits.open(meta["uri"], use_fsspec=True, fsspec_kwargs=options) as hdul:
            if task == "lightcurve":
                flux = np.asarray(hdul[1].section[y, x, :, 0])
                table = hdul[2].data
                return flux, np.array(table["TSTART"]), np.array(table["TSTOP"])
            return np.asarray(hdul[1].section[_cut_key(task, y, x)])

    return run


def sky_position(cube: GeneratedCube, y: int, x: int, n: int) -> str:
    """RA and Dec of the centre of the ``n`` x ``n`` pixels from row ``y``, column ``x``."""
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header()
    for key, value in cube.wcs_cards().items():
        header[key] = value
    header["NAXIS"] = 2
    header["NAXIS1"], header["NAXIS2"] = cube.shape[1], cube.shape[0]
    ra, dec = WCS(header).all_pix2world(x + (n - 1) / 2, y + (n - 1) / 2, 0)
    return f"{float(ra)} {float(dec)}"


def _astrocut(tool: str, task: str, meta: dict[str, Any]) -> Callable[[int, int], Any]:
    from astrocut import cube_cut

    threads = int(tool.split("-")[1])
    cube = GeneratedCube(meta["number"], tuple(meta["shape"]))
    n = CUT_SIZE[task]

    def run(y: int, x: int) -> Any:
        tpf = cube_cut(
            meta["uri"], sky_position(cube, y, x, n), n, memory_only=True, threads=threads
        )
        return np.asarray(tpf[1].data["FLUX"])

    return run


def main(argv: list[str]) -> int:
    tool, task, meta_path = argv
    meta = json.loads(Path(meta_path).read_text())
    warnings.simplefilter("ignore")
    if tool == "cloudfits":
        run = _cloudfits(task, meta)
    elif tool == "cloudfits-cli":
        run = _cli(task, meta)
    elif tool.startswith("astropy"):
        run = _astropy(tool, task, meta)
    else:
        run = _astrocut(tool, task, meta)
    cube = GeneratedCube(meta["number"], tuple(meta["shape"]))
    # The interpreter's first full collection walks every object the imports made
    # (some 80 ms here); left alone it falls into one tool's first run or another's,
    # by chance. Every tool has it done before its timer.
    gc.collect()
    print("READY", flush=True)
    for y, x in positions(task, cube):
        if not sys.stdin.readline():
            break
        start, cpu = time.perf_counter(), time.process_time()
        result = run(y, x)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        try:
            ok, error = check(task, tool, result, meta, y, x), ""
        except Exception as err:  # a result of the wrong shape or type is a wrong result
            ok, error = False, f"{type(err).__name__}: {err}"
        print(json.dumps({"seconds": seconds, "cpu": cpu, "ok": ok, "error": error}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
