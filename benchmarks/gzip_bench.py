"""``nox -s bench`` (part 2): whole-file gzip, indexed once, then read at random.

``python -m benchmarks.gzip_bench [--runs N] [--latency MS ...]``

The file (`cloudfits.testing.gzipfits`): an 18 MB float32 image and a 50,000-row
table in one ``.fits.gz`` of about 15 MB, on a local SeaweedFS server behind the
recording proxy. Measured: the cost of indexing it (requests, bytes, seconds and CPU
seconds) against ``gunzip -c FILE | wc -c`` on the local file; then, through the index,
a 20 x 20 section of the image and the last 10 rows of the table (requests, bytes, the
share of the compressed object, seconds), and the same reads by astropy over s3fs,
each checked against astropy reading the local file. Writes
``benchmarks/results/gzip.json`` and ``gzip.rst``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BUCKET = "bench-gzip"
SECTION = (slice(1030, 1050), slice(700, 720))
ROWS = slice(-10, None)


def _gunzip(packed: Path, runs: int) -> dict[str, float]:
    """``gunzip -c | wc -c``: wall and CPU seconds (best of ``runs``)."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run(
            f"gunzip -c '{packed}' | wc -c", shell=True, check=True, capture_output=True
        )
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {"seconds": min(walls), "cpu": min(cpus), "bytes_out": int(out.stdout)}


def _timed(proxy: Any, work: Callable[[], Any], runs: int) -> tuple[dict[str, Any], Any]:
    """Median requests, bytes, wall and CPU seconds of ``runs`` calls of ``work``."""
    measured, result = [], None
    for _ in range(runs):
        proxy.reset()
        cpu, started = time.process_time(), time.perf_counter()
        result = work()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        records = proxy.records
        measured.append((len(records), sum(r.response_bytes for r in records), seconds, cpu))
    keys = ("requests", "bytes", "seconds", "cpu")
    medians = {k: statistics.median(m[i] for m in measured) for i, k in enumerate(keys)}
    medians["requests"], medians["bytes"] = int(medians["requests"]), int(medians["bytes"])
    return medians, result


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, Table):
        return all(np.array_equal(got[c], expected[c]) for c in expected.colnames)
    return bool(np.array_equal(got, expected))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import cloudfits
    from cloudfits.testing.gzipfits import make_gzip_fits
    from cloudfits.testing.proxy import RecordingProxy
    from cloudfits.testing.seaweedfs import start_seaweedfs

    plain, packed = make_gzip_fits(args.out / "data")
    size = packed.stat().st_size
    # Text columns as bytes, as Table.read gives them and cloudfits returns them.
    with fits.open(plain, character_as_bytes=True) as hdul:
        expected = {"section": hdul[0].data[SECTION], "rows": Table.read(hdul[1])[ROWS]}
    results: dict[str, Any] = {
        "object": {"compressed": size, "uncompressed": plain.stat().st_size},
        "gunzip": _gunzip(packed, args.runs),
    }
    print(f"object: {size:,} bytes, {plain.stat().st_size:,} decompressed", flush=True)
    print(f"gunzip -c | wc -c: {results['gunzip']}", flush=True)

    def local_index() -> Any:
        return cloudfits.build_index(packed)

    started = time.process_time()
    walls = []
    for _ in range(args.runs):
        t = time.perf_counter()
        index = local_index()
        walls.append(time.perf_counter() - t)
    results["index_local"] = {
        "seconds": min(walls),
        "cpu": (time.process_time() - started) / args.runs,
        "seek_points": len(index.files[0].gzip or ()),
        "index_json_bytes": len(index.to_bytes()),
        "index_json_gz_bytes": len(index.to_bytes(compress=True)),
        "index_parquet_bytes": len(index.to_parquet()),
    }
    print(f"index (local file): {results['index_local']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cloudfits-bench-gzip-") as tmp:
        server = start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            server.create_bucket(BUCKET)
            server.client().upload_file(str(packed), BUCKET, packed.name)
            uri = f"s3://{BUCKET}/{packed.name}"
            for latency in args.latency:
                with RecordingProxy(server.endpoint_url, delay=latency / 1000) as proxy:
                    results[str(latency)] = _remote(
                        cloudfits, proxy, uri, size, expected, args.runs
                    )
        finally:
            server.stop()
    return results


def _remote(
    cloudfits: Any, proxy: Any, uri: str, size: int, expected: dict[str, Any], runs: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    options = {"endpoint_url": proxy.url}
    out["index"], index = _timed(
        proxy, lambda: cloudfits.build_index(uri.rsplit("/", 1)[0] + "/", **options), runs
    )
    out["open_without_index"], _ = _timed(proxy, lambda: cloudfits.open(uri, **options), 1)
    name = uri.rsplit("/", 1)[1]
    reads = {
        "section": lambda f: f[0].section[SECTION],
        "rows": lambda f: f[1].read(rows=ROWS),
    }
    for task, read in reads.items():
        entry, got = _timed(proxy, lambda read=read: read(index.open(name, **options)), runs)
        entry["share"] = entry["bytes"] / size
        entry["ok"] = _same(got, expected[task])
        out[f"cloudfits {task}"] = entry
    try:
        import s3fs
    except ImportError:
        return out
    fs_options = {"anon": True, "client_kwargs": {"endpoint_url": proxy.url}}
    s3fs.S3FileSystem.clear_instance_cache()

    def astropy_read(read: Callable[[Any], Any]) -> Any:
        opened = fits.open(uri, use_fsspec=True, fsspec_kwargs=fs_options, character_as_bytes=True)
        with opened as hdul:
            data = read(hdul)
            return data.copy() if isinstance(data, np.ndarray) else data

    astropy_reads = {
        "section": lambda h: h[0].section[SECTION],
        "rows": lambda h: Table.read(h[1])[ROWS],
    }
    for task, read in astropy_reads.items():
        entry, got = _timed(proxy, lambda read=read: astropy_read(read), runs)
        entry["share"] = entry["bytes"] / size
        entry["ok"] = _same(got, expected[task])
        out[f"astropy+s3fs {task}"] = entry
    return out


def table(results: dict[str, Any]) -> str:
    """The results as an RST table (one block per latency)."""
    gunzip, local = results["gunzip"], results["index_local"]
    lines = [
        f"object: {results['object']['compressed']:,} bytes of gzip,"
        f" {results['object']['uncompressed']:,} decompressed",
        f"gunzip -c | wc -c: {gunzip['seconds']:.3f} s ({gunzip['cpu']:.3f} s CPU)",
        f"build_index of the local file: {local['seconds']:.3f} s ({local['cpu']:.3f} s CPU,"
        f" {local['seconds'] / gunzip['seconds']:.1f}x gunzip), {local['seek_points']} seek"
        f" points; index {local['index_json_bytes']:,} B JSON, {local['index_json_gz_bytes']:,}"
        f" B .json.gz, {local['index_parquet_bytes']:,} B Parquet",
        "",
    ]
    widths = (8, 28, 8, 12, 7, 8, 7, 3)
    names = ("latency", "what", "requests", "bytes", "share", "seconds", "cpu", "ok")
    rule = " ".join("=" * w for w in widths)
    header = " ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    compressed = results["object"]["compressed"]
    for latency, block in results.items():
        if not isinstance(block, dict) or "index" not in block:
            continue
        lines += [rule, header.rstrip(), rule]
        for what, entry in block.items():
            ok = {True: "yes", False: "NO"}.get(entry.get("ok", True), "")
            cells = (
                f"{float(latency):.0f} ms",
                what,
                str(entry["requests"]),
                f"{entry['bytes']:,}",
                f"{entry['bytes'] / compressed:.1%}",
                f"{entry['seconds']:.3f}",
                f"{entry['cpu']:.3f}",
                ok,
            )
            row = " ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            lines.append(row.rstrip())
        lines += [rule, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    results = measure(args)
    text = table(results)
    print()
    print(text)
    (args.out / "gzip.json").write_text(json.dumps(results, indent=1))
    (args.out / "gzip.rst").write_text(text + "\n")
    print(f"wrote {args.out / 'gzip.json'}, {args.out / 'gzip.rst'}")
    wrong = [
        (latency, what)
        for latency, block in results.items()
        if isinstance(block, dict)
        for what, entry in block.items()
        if isinstance(entry, dict) and entry.get("ok") is False
    ]
    if wrong:
        print("WRONG RESULTS:", wrong)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
