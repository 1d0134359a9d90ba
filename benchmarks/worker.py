"""One tool doing one task, in a fresh process: ``python -m benchmarks.worker TOOL TASK META``.

The worker imports its libraries and builds its clients, prints ``READY``, waits for a
line on stdin (the driver resets the proxy's counters meanwhile), runs the task once
under a timer, checks the result against astropy reading the local file, and prints
one JSON line: ``{"seconds": ..., "ok": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

TOOLS = (
    "cloudfits-index",
    "cloudfits-open",
    "astropy-default",
    "astropy-10kB",
    "astropy-nocache",
    "astrocut-1",
    "astrocut-8",
)
TASKS = ("cutout", "headers", "rows", "columns", "indexing")
TASK_TITLES = {
    "cutout": "cutout 10x10 px, all frames",
    "headers": "all headers (100 HDUs)",
    "rows": "table rows 0-9",
    "columns": "two columns, all rows",
    "indexing": "index 50 objects",
}


def supports(tool: str, task: str) -> bool:
    """Which tool can do which task."""
    if tool.startswith("astrocut"):
        return task == "cutout"
    if tool == "cloudfits-open":
        return task != "indexing"
    return True


# ----------------------------------------------------------------------------- checks


def _local_headers(path: str) -> list[str]:
    with fits.open(path) as hdul:
        return [h.header.tostring() for h in hdul]


def _cutout_reference(meta: dict[str, Any]) -> np.ndarray:
    c = meta["cutout"]
    y, x, n = c["y0"], c["x0"], c["size"]
    with fits.open(meta["local"]["cube"]) as hdul:
        return np.asarray(hdul[1].section[y : y + n, x : x + n, :, :])


def _equal(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    nan = a.dtype.kind in "fc" and b.dtype.kind in "fc"
    return bool(np.array_equal(a, b, equal_nan=nan))


def _same_columns(got: Any, path: str, hdu: int, names: list[str], rows: slice) -> bool:
    with fits.open(path) as hdul:
        ref = hdul[hdu].data
        return all(_equal(got[n], ref[n][rows]) for n in names)


def check(task: str, result: Any, meta: dict[str, Any]) -> bool:
    """Whether a task's result equals what astropy reads from the local file."""
    if task == "cutout":
        ref = _cutout_reference(meta)
        if isinstance(result, tuple):  # astrocut: FLUX (frames, y, x)
            return bool(np.array_equal(result[0], np.moveaxis(ref[..., 0], 2, 0)))
        return bool(np.array_equal(result, ref))
    if task == "headers":
        return bool(result == _local_headers(meta["local"]["mef"]))
    if task == "rows":
        with fits.open(meta["local"]["cube"]) as hdul:
            names = list(hdul[2].columns.names)
        return _same_columns(result, meta["local"]["cube"], 2, names, slice(0, 10))
    if task == "columns":
        return _same_columns(result, meta["local"]["spectra"], 1, meta["columns"], slice(None))
    if task == "indexing":
        if not isinstance(result, dict):  # a cloudfits index
            result = {
                os.path.basename(e.path): [
                    fits.Header.fromstring(h.header).tostring() for h in e.hdus
                ]
                for e in result.files
            }
        return bool(result == {os.path.basename(p): _local_headers(p) for p in meta["many"]})
    raise ValueError(task)


# ----------------------------------------------------------------------------- cloudfits


def _cloudfits(tool: str, task: str, meta: dict[str, Any]) -> Callable[[], Any]:
    import cloudfits
    from cloudfits.providers.registry import get_registry

    s3 = meta["s3"]
    get_registry().for_uri(s3["cube"])[0].client  # noqa: B018  (build the boto3 client now)

    def opened(name: str) -> Any:
        if tool == "cloudfits-open":
            return cloudfits.open(s3[name])
        return cloudfits.load_index(meta["indexes"][name]).open()

    def run() -> Any:
        if task == "cutout":
            c = meta["cutout"]
            y, x, n = c["y0"], c["x0"], c["size"]
            return opened("cube")[1].section[y : y + n, x : x + n, :, :]
        if task == "headers":
            return [h.header.tostring() for h in opened("mef")]
        if task == "rows":
            return opened("cube")[2].read(rows=slice(0, 10))
        if task == "columns":
            return opened("spectra")[1].read(columns=meta["columns"])
        return cloudfits.build_index(s3["many"])

    return run


# ----------------------------------------------------------------------------- astropy


def _fsspec_options(tool: str) -> dict[str, Any]:
    options: dict[str, Any] = {"anon": True}
    if tool == "astropy-10kB":
        options["default_block_size"] = 10_000
    elif tool == "astropy-nocache":
        options["default_cache_type"] = "none"
    return options


def _astropy(tool: str, task: str, meta: dict[str, Any]) -> Callable[[], Any]:
    import s3fs

    options = _fsspec_options(tool)
    fs = s3fs.S3FileSystem(**options)  # the instance fsspec.open will reuse
    fs.connect()
    s3 = meta["s3"]

    def headers(uri: str) -> list[str]:
        with fits.open(uri, use_fsspec=True, fsspec_kwargs=options) as hdul:
            return [h.header.tostring() for h in hdul]

    def run() -> Any:
        if task == "cutout":
            c = meta["cutout"]
            y, x, n = c["y0"], c["x0"], c["size"]
            with fits.open(s3["cube"], use_fsspec=True, fsspec_kwargs=options) as hdul:
                return np.asarray(hdul[1].section[y : y + n, x : x + n, :, :])
        if task == "headers":
            return headers(s3["mef"])
        if task == "rows":
            with fits.open(s3["cube"], use_fsspec=True, fsspec_kwargs=options) as hdul:
                return hdul[2].data[0:10].copy()
        if task == "columns":
            with fits.open(s3["spectra"], use_fsspec=True, fsspec_kwargs=options) as hdul:
                data = hdul[1].data
                return {n: np.array(data[n]) for n in meta["columns"]}
        keys = sorted(k for k in fs.ls(s3["many"].removeprefix("s3://")) if k.endswith(".fits"))
        return {os.path.basename(k): headers("s3://" + k) for k in keys}

    return run


# ----------------------------------------------------------------------------- astrocut


def _astrocut(tool: str, task: str, meta: dict[str, Any]) -> Callable[[], Any]:
    from astrocut import cube_cut

    threads = int(tool.split("-")[1])

    def run() -> Any:
        tpf = cube_cut(
            meta["s3"]["cube"],
            meta["cutout"]["coordinates"],
            meta["cutout"]["size"],
            memory_only=True,
            threads=threads,
        )
        return (np.asarray(tpf[1].data["FLUX"]),)

    return run


def main(argv: list[str]) -> int:
    tool, task, meta_path = argv
    meta = json.loads(Path(meta_path).read_text())
    warnings.simplefilter("ignore")
    if tool.startswith("cloudfits"):
        run = _cloudfits(tool, task, meta)
    elif tool.startswith("astropy"):
        run = _astropy(tool, task, meta)
    else:
        run = _astrocut(tool, task, meta)
    print("READY", flush=True)
    sys.stdin.readline()
    start, cpu = time.perf_counter(), time.process_time()
    result = run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    try:
        ok, error = check(task, result, meta), ""
    except Exception as err:  # a result of the wrong shape or type is a wrong result
        ok, error = False, f"{type(err).__name__}: {err}"
    print(json.dumps({"seconds": seconds, "cpu": cpu, "ok": ok, "error": error}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
