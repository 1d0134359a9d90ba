"""xarray over cloudfits' kerchunk references against kerchunk's own FITS references.

``python -m benchmarks.zarr_refs [--runs N] [--latency MS ...]``

The same files in a local SeaweedFS server behind cloudfits' recording proxy (which adds
the latency and counts requests and bytes). For each file and each kind of references:
the seconds to build them, then xarray (``engine="zarr"``, its defaults) reading a
10x10-pixel slice and the whole array, in seconds (median of ``--runs``), requests and
bytes, and whether values and dtype equal astropy's. kerchunk's ``kerchunk.fits``
makes one chunk per HDU and cannot read a tile-compressed image. Writes
``benchmarks/results/zarr.json`` and ``zarr.rst``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from benchmarks import datasets

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BUCKET = "zarrbench"


def _files(directory: Path) -> dict[str, tuple[Path, int, tuple[slice, ...]]]:
    """name -> (path, HDU number, the small slice)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    image = directory / "zarr-image-f4.fits"
    if not image.exists():
        fits.PrimaryHDU(rng.normal(size=(2048, 4096)).astype(">f4")).writeto(image)
    unsigned = directory / "zarr-uint16.fits"
    if not unsigned.exists():
        data = rng.integers(0, 65536, (2048, 2048), dtype=np.uint16)
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data)]).writeto(unsigned)
    rice = directory / "zarr-rice.fits"
    if not rice.exists():
        data = (1000 + rng.normal(0, 30, (2048, 2048))).astype("i2")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdu = fits.CompImageHDU(data, compression_type="RICE_1", tile_shape=(64, 64))
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(rice)
    cube = datasets._cube(directory)
    small = (slice(1000, 1010), slice(2000, 2010))
    return {
        "float32 2048x4096": (image, 0, small),
        "uint16 (BZERO) 2048x2048": (unsigned, 1, small),
        "RICE_1 int16 2048x2048": (rice, 1, small),
        "TESS cube 256x256x200x2": (cube, 1, (slice(100, 110), slice(120, 130))),
    }


def _kerchunk_refs(url: str, hdu: int, endpoint: str) -> tuple[dict[str, Any], str]:
    from kerchunk.fits import process_file

    options = {"endpoint_url": endpoint, **_keys()}
    refs = process_file(url, storage_options=options, extension=hdu)
    names = [k.split("/")[0] for k in refs if k.endswith("/.zarray")]
    return {"version": 1, "refs": refs}, names[0]


def _keys() -> dict[str, str]:
    return {"key": "test", "secret": "test"}


def _open(refs: dict[str, Any], group: str | None, endpoint: str) -> Any:
    import xarray as xr

    remote = {"endpoint_url": endpoint, "asynchronous": True, **_keys()}
    storage = {"fo": refs, "remote_protocol": "s3", "remote_options": remote}
    return xr.open_dataset(
        "reference://", engine="zarr", group=group, backend_kwargs={"storage_options": storage}
    )


def _same(got: np.ndarray, expected: np.ndarray) -> bool:
    return bool(
        got.dtype == expected.dtype.newbyteorder("=")
        and got.shape == expected.shape
        and np.array_equal(got, expected, equal_nan=got.dtype.kind == "f")
    )


def _measure(proxy: Any, runs: int, task: Callable[[], np.ndarray]) -> dict[str, Any]:
    seconds, requests, sent = [], [], []
    result = task()  # warm: imports, connections and the codecs' first use are not timed
    for _ in range(runs):
        proxy.reset()
        start = time.perf_counter()
        result = task()
        seconds.append(time.perf_counter() - start)
        requests.append(proxy.request_count)
        sent.append(proxy.response_bytes_total)
    return {
        "seconds": statistics.median(seconds),
        "requests": int(statistics.median(requests)),
        "bytes": int(statistics.median(sent)),
        "result": result,
    }


def _run_tool(
    tool: str, name: str, spec: tuple[Path, int, tuple[slice, ...]], endpoint: str, proxy: Any,
    runs: int, expected: np.ndarray,
) -> dict[str, Any]:  # fmt: skip
    import cloudfits

    path, hdu, small = spec
    url = f"s3://{BUCKET}/{path.name}"
    start = time.perf_counter()
    try:
        if tool == "cloudfits":
            index = cloudfits.build_index(url, endpoint_url=endpoint)
            refs, group, variable = index.to_kerchunk(endpoint_url=endpoint), path.name, f"hdu{hdu}"
        else:
            refs, variable = _kerchunk_refs(url, hdu, endpoint)
            group = None
    except Exception as err:  # a peer that cannot read the file is a result, not a crash
        return {"error": f"{type(err).__name__}: {err}"[:200]}
    built = time.perf_counter() - start
    entry: dict[str, Any] = {"build_seconds": built}
    for task, key in (("slice", small), ("full", ...)):
        try:
            measured = _measure(
                proxy, runs, lambda key=key: _open(refs, group, endpoint)[variable][key].values
            )
        except Exception as err:
            entry[task] = {"error": f"{type(err).__name__}: {err}"[:200]}
            continue
        got = measured.pop("result")
        measured["ok"] = _same(np.asarray(got), expected[key])
        measured["dtype"] = str(np.asarray(got).dtype)
        entry[task] = measured
    return entry


def _table(results: dict[str, Any]) -> str:
    head = ("file", "latency", "refs", "build s", "slice s", "slice req", "slice bytes",
            "full s", "full bytes", "astropy's values and dtype")  # fmt: skip
    rows = [head]
    for latency, files in results["runs"].items():
        for name, tools in files.items():
            for tool, entry in tools.items():
                if "error" in entry:
                    error = entry["error"][:70]
                    rows.append((name, latency, tool, "-", "-", "-", "-", "-", "-", error))
                    continue
                cells = [name, latency, tool, f"{entry['build_seconds']:.2f}"]
                verdicts = []
                for task in ("slice", "full"):
                    m = entry[task]
                    if "error" in m:
                        cells += ["-"] * (3 if task == "slice" else 2)
                        verdicts.append(f"{task}: {m['error'][:45]}")
                        continue
                    cells.append(f"{m['seconds']:.3f}")
                    if task == "slice":
                        cells.append(str(m["requests"]))
                    cells.append(f"{m['bytes']:,}")
                    verdicts.append(f"{task}: {'yes' if m['ok'] else 'no'} ({m['dtype']})")
                rows.append((*cells, "; ".join(verdicts)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(str(c).ljust(w) for c, w in zip(head, widths, strict=True)), rule]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows[1:]]
    return "\n".join([*lines, rule])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    warnings.simplefilter("ignore")
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    from cloudfits.testing.proxy import RecordingProxy
    from cloudfits.testing.seaweedfs import start_seaweedfs

    args.out.mkdir(parents=True, exist_ok=True)
    files = _files(args.out / "data")
    expected = {}
    for name, (path, hdu, _) in files.items():
        with fits.open(path) as hdul:
            expected[name] = np.array(hdul[hdu].data)
    results: dict[str, Any] = {"runs": {}}
    with tempfile.TemporaryDirectory(prefix="cloudfits-zarr-bench-") as tmp:
        server = start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            server.create_bucket(BUCKET)
            client = server.client()
            for path, _, _ in files.values():
                client.upload_file(str(path), BUCKET, path.name)
            for latency in args.latency:
                runs: dict[str, Any] = {}
                with RecordingProxy(server.endpoint_url, delay=latency / 1000) as proxy:
                    for name, spec in files.items():
                        print(f"{latency:g} ms: {name}", flush=True)
                        runs[name] = {
                            tool: _run_tool(
                                tool, name, spec, proxy.url, proxy, args.runs, expected[name]
                            )
                            for tool in ("cloudfits", "kerchunk")
                        }
                results["runs"][f"{latency:g} ms"] = runs
        finally:
            server.stop()
    text = _table(results)
    print(text)
    (args.out / "zarr.json").write_text(json.dumps(results, indent=1))
    (args.out / "zarr.rst").write_text(text + "\n")
    print(f"wrote {args.out / 'zarr.json'}, {args.out / 'zarr.rst'}")
    wrong = [
        (lat, name)
        for lat, files_ in results["runs"].items()
        for name, tools in files_.items()
        for task in ("slice", "full")
        if not tools["cloudfits"].get(task, {}).get("ok", False)
    ]
    if wrong:
        print("cloudfits gave WRONG RESULTS:", wrong)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
