"""Remote indexing of many small multi-HDU objects: a thread pool, and Dask clusters.

``python -m benchmarks.scale_indexing [--objects 2000] [--runs 3] [--workers 1 2 4]
[--threads-per-worker 1] [--latency MS]``

A local SeaweedFS server gets ``--objects`` FITS objects of 2 to 4 HDUs each (an
image primary, then image, binary-table and ASCII-table extensions; 8 to 30 kB),
made with astropy. Each is indexed by `cloudfits.build_index` (listing included)
with the local thread pool in this process, then on a ``distributed.LocalCluster`` of
each ``--workers`` count (worker processes, ``--threads-per-worker`` threads each).
Cluster start-up is timed apart and not in the indexing times. Every index must equal
the thread pool's (``to_dict()`` without ``created``). With ``--latency`` the server is
reached through cloudfits' recording proxy, which delays every request. The table is
printed and written, with every run, to ``benchmarks/results/scale_indexing.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BUCKET = "scale"
PREFIX = "objects"


def make_object(i: int) -> bytes:
    """Object ``i``: 2 to 4 HDUs, a few to tens of kB."""
    rng = np.random.default_rng(i)
    primary = fits.PrimaryHDU(rng.integers(0, 1000, size=(16 + i % 32, 64), dtype=np.int16))
    primary.header["OBJECT"] = f"field {i % 97}"
    primary.header["EXPTIME"] = float(i % 300)
    hdus: list[Any] = [
        primary,
        fits.ImageHDU(rng.normal(size=(20, 20 + i % 50)).astype(np.float32), name="SCI"),
    ]
    if i % 3:
        rows = 10 + i % 40
        hdus.append(
            fits.BinTableHDU.from_columns(
                [
                    fits.Column("TIME", "D", array=np.arange(rows, dtype=float)),
                    fits.Column("FLUX", "E", unit="e/s", array=rng.normal(size=rows)),
                ],
                name="LC",
            )
        )
    if i % 3 == 2:
        names = [f"s{k}" for k in range(1 + i % 8)]
        hdus.append(fits.TableHDU.from_columns([fits.Column("NAME", "A8", array=names)]))
    out = io.BytesIO()
    fits.HDUList(hdus).writeto(out)
    return out.getvalue()


def upload(server: Any, count: int) -> tuple[int, int]:
    """Make and upload ``count`` objects; return (total bytes, total HDUs)."""
    server.create_bucket(BUCKET)
    client = server.client()

    def one(i: int) -> tuple[int, int]:
        body = make_object(i)
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/obj{i:05d}.fits", Body=body)
        return len(body), body.count(b"END" + b" " * 77)

    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(one, range(count)))
    return sum(s for s, _ in sizes), sum(h for _, h in sizes)


def _document(index: Any) -> dict[str, Any]:
    document: dict[str, Any] = index.to_dict()
    del document["created"]
    return document


def measure(label: str, runs: int, executor: Any, reference: dict[str, Any] | None) -> Any:
    """Index the objects ``runs`` times with ``executor``; return the runs and the index."""
    import cloudfits

    results = []
    index = None
    for _ in range(runs):
        stats = cloudfits.ReadStats()
        started = time.perf_counter()
        index = cloudfits.build_index(f"s3://{BUCKET}/{PREFIX}/", executor=executor, stats=stats)
        seconds = time.perf_counter() - started
        same = reference is None or _document(index) == reference
        results.append(
            {
                "seconds": seconds,
                "requests": stats.requests,
                "bytes": stats.bytes,
                "files": len(index.files),
                "identical": same,
            }
        )
        print(f"  {label}: {seconds:.2f} s, {stats.requests} requests", flush=True)
    return results, index


def summarize(name: str, workers: int | None, startup: float | None, runs: list[Any]) -> Any:
    median = statistics.median(r["seconds"] for r in runs)
    return {
        "executor": name,
        "workers": workers,
        "startup_seconds": startup,
        "median_seconds": median,
        "objects_per_second": runs[0]["files"] / median,
        "requests": int(statistics.median(r["requests"] for r in runs)),
        "bytes": int(statistics.median(r["bytes"] for r in runs)),
        "identical": all(r["identical"] for r in runs),
        "runs": runs,
    }


def table(rows: list[dict[str, Any]], threads_per_worker: int) -> str:
    head = (
        f"{'executor':<28} {'start-up s':>10} {'median s':>9} {'objects/s':>10}"
        f" {'requests':>9} {'bytes':>12}  identical"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        name = "threads (1 process)"
        if row["workers"] is not None:
            plural = "s" if row["workers"] > 1 else ""
            name = f"LocalCluster {row['workers']} worker{plural} x {threads_per_worker} thr"
        startup = "-" if row["startup_seconds"] is None else f"{row['startup_seconds']:.2f}"
        lines.append(
            f"{name:<28} {startup:>10} {row['median_seconds']:>9.2f}"
            f" {row['objects_per_second']:>10.0f} {row['requests']:>9}"
            f" {row['bytes']:>12,}  {'yes' if row['identical'] else 'NO'}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace, server: Any) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    print(f"making and uploading {args.objects} objects", flush=True)
    started = time.perf_counter()
    data_bytes, hdus = upload(server, args.objects)
    print(f"  {data_bytes:,} bytes, {hdus} HDUs in {time.perf_counter() - started:.1f} s")
    runs, index = measure("threads", args.runs, None, None)
    reference = _document(index)
    rows = [summarize("threads", None, None, runs)]
    for workers in args.workers:
        started = time.perf_counter()
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=args.threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            client.wait_for_workers(workers)
            startup = time.perf_counter() - started
            label = f"dask {workers} worker(s)"
            runs, _ = measure(label, args.runs, client, reference)
        rows.append(summarize("dask", workers, startup, runs))
    return {
        "objects": args.objects,
        "hdus": hdus,
        "data_bytes": data_bytes,
        "threads_per_worker": args.threads_per_worker,
        "latency_ms": args.latency,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="ms added to each request")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale_indexing.json")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwind: stop the server

    from cloudfits.testing.proxy import RecordingProxy
    from cloudfits.testing.seaweedfs import start_seaweedfs

    with tempfile.TemporaryDirectory(prefix="cloudfits-scale-") as tmp:
        server = start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            proxy: Any = contextlib.nullcontext()
            if args.latency:
                proxy = RecordingProxy(server.endpoint_url, delay=args.latency / 1000)
            with proxy:
                endpoint = proxy.url if args.latency else server.endpoint_url
                # Set before any cluster starts: the worker processes inherit it.
                os.environ.update(
                    AWS_ENDPOINT_URL=endpoint,
                    AWS_ACCESS_KEY_ID="bench",
                    AWS_SECRET_ACCESS_KEY="bench",
                    AWS_DEFAULT_REGION="us-east-1",
                )
                results = run(args, server)
        finally:
            server.stop()
    text = table(results["rows"], args.threads_per_worker)
    print()
    print(
        f"{results['objects']} objects, {results['hdus']} HDUs, {results['data_bytes']:,} bytes;"
        f" {results['cpus']} CPUs; {args.latency:g} ms added per request"
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    if not all(row["identical"] for row in results["rows"]):
        print("DIFFERENT INDEXES")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
