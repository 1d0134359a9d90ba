"""Full TESS scale, against the physical floor: 352 cubes of 45.5 GB, nothing stored.

``python -m benchmarks.floor [--quick] [--runs N] [--latency MS ...] [--cubes N]``
(``nox -s bench -- floor --quick``).

The cubes are `cloudfits.testing.generated.GeneratedCube` objects served by
`cloudfits.testing.s3gen.GeneratedS3Server` on 127.0.0.1, which adds the latency to
every answer and records every request. Each tool runs each task in a fresh process
(`benchmarks.floor_worker`): the first run is "fresh", the next ones in that process
"warm"; ``--runs`` processes per cell, medians reported; every result is checked exactly.

The floor of a task is its dependent round trips times the time of a 1-byte GET at
that latency, plus its bytes at the server's single-GET bandwidth, both measured here
before the runs. Writes ``benchmarks/results/floor.{json,rst}``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.floor_report import acceptance, table
from benchmarks.floor_worker import TASKS, TOOLS, supports

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BUCKET = "tess"
PREFIX = "cubes/"


def _get_seconds(url: str, start: int, nbytes: int, times: int) -> float:
    """Median seconds of ``times`` GETs of ``nbytes`` bytes on one kept-alive connection,
    each body read straight into one buffer (as cloudfits reads)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    buffer = memoryview(bytearray(nbytes))
    seconds = []
    for _ in range(times + 1):
        began = time.perf_counter()
        connection.request(
            "GET", parts.path, headers={"Range": f"bytes={start}-{start + nbytes - 1}"}
        )
        answer = connection.getresponse()
        got = 0
        while got < nbytes:
            n = answer.readinto(buffer[got:])
            if not n:
                raise RuntimeError(f"the server answered {got} bytes, not {nbytes}")
            got += n
        answer.read()
        seconds.append(time.perf_counter() - began)
    connection.close()
    return statistics.median(seconds[1:])  # the first one opened the connection


def floors(meta: dict[str, Any], one_byte: float, bandwidth: float) -> dict[str, dict[str, Any]]:
    """Dependent round trips and ideal bytes of each task, and the floor they give."""
    frames = meta["shape"][2]
    header_bytes = meta["header_bytes"]
    cut = {n: n * n * frames * 2 * 4 for n in (10, 50)}
    plan = {
        "cut10": (1, cut[10]),
        "cut50": (1, cut[50]),
        "lightcurve": (1, (2 * frames - 1) * 4 + 16 * frames),
        "open10": (2, cut[10] + header_bytes),
        "indexing": (3, header_bytes * meta["cube_count"]),
    }
    return {
        task: {
            "round_trips": trips,
            "bytes": nbytes,
            "seconds": trips * one_byte + nbytes / bandwidth,
        }
        for task, (trips, nbytes) in plan.items()
    }


def _one_process(
    tool: str, task: str, meta_path: Path, env: dict[str, str], server: Any, warm: int
) -> list[dict[str, Any]]:
    from cloudfits.testing.proxy import dependent_round_trips

    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.floor_worker", tool, task, str(meta_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT.parent,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    runs = []
    try:
        line = process.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"{tool} {task}: the worker failed to start: {line!r}")
        for _ in range(1 + warm):
            server.reset()
            process.stdin.write("go\n")
            process.stdin.flush()
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"{tool} {task}: the worker died")
            outcome = json.loads(line)
            records = server.records
            outcome.update(
                requests=len(records),
                bytes=sum(r.response_bytes for r in records),
                round_trips=dependent_round_trips(records),
            )
            if not outcome["ok"]:
                print(f"    WRONG {tool} {task}: {outcome.get('error')}", flush=True)
            runs.append(outcome)
    finally:
        process.stdin.close()
        process.wait(timeout=600)
    return runs


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu": statistics.median(r["cpu"] for r in runs),
        "requests": int(statistics.median(r["requests"] for r in runs)),
        "bytes": int(statistics.median(r["bytes"] for r in runs)),
        "round_trips": int(statistics.median(r["round_trips"] for r in runs)),
        "ok": all(r["ok"] for r in runs),
        "runs": runs,
    }


def _measure(
    args: argparse.Namespace, server: Any, meta_path: Path, env: dict[str, str]
) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for task in args.tasks:
        for tool in args.tools:
            if not supports(tool, task):
                continue
            warm = 1 if tool == "cloudfits" and task != "indexing" else 0
            runs = [
                _one_process(tool, task, meta_path, env, server, warm) for _ in range(args.runs)
            ]
            entry = {"fresh": _median([r[0] for r in runs])}
            if warm:
                entry["warm"] = _median([r[-1] for r in runs])
            cells.setdefault(task, {})[tool] = entry
            for kind, e in entry.items():
                print(
                    f"{server.delay * 1000:>4.0f} ms  {task:<10} {tool:<15} {kind:<5}"
                    f" {e['requests']:>5} req {e['bytes']:>12,} B {e['round_trips']:>3} rt"
                    f" {e['seconds']:8.3f} s (cpu {e['cpu']:.3f} s)"
                    f"  {'ok' if e['ok'] else 'WRONG'}",
                    flush=True,
                )
    return cells


def _environment(server: Any) -> dict[str, str]:
    return dict(
        os.environ,
        AWS_ENDPOINT_URL=server.endpoint_url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONPATH=os.pathsep.join(
            [str(ROOT.parent / "src"), str(ROOT.parent), os.environ.get("PYTHONPATH", "")]
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run, 20 ms only")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, nargs="+", default=[20.0, 80.0])
    parser.add_argument("--cubes", type=int, default=352)
    parser.add_argument("--peer-objects", type=int, default=16, help="cubes astropy indexes")
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.latency = 1, [20.0]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    import cloudfits
    from cloudfits.testing.s3gen import GeneratedS3Server, tess_objects

    objects = tess_objects(args.cubes, PREFIX)
    # The server makes each cube's headers on first use (astropy cards, some 0.5 ms of
    # its CPU per cube, on the cores the client uses): made here, so that the first tool
    # to read them is not the only one to pay for it.
    for generated in objects.values():
        generated.read(0, 1)
    first_key, cube = next(iter(objects.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"cubes": args.cubes, "latencies_ms": args.latency}
    with GeneratedS3Server(objects, bucket=BUCKET) as server, tempfile.TemporaryDirectory() as tmp:
        env = _environment(server)
        os.environ.update({k: env[k] for k in env if k.startswith("AWS_")})
        url = f"{server.endpoint_url}/{BUCKET}/{first_key}"
        one_byte0 = _get_seconds(url, cube.data_offset, 1, 20)
        big = 64 << 20
        bandwidth = big / max(1e-6, _get_seconds(url, cube.data_offset, big, 3) - one_byte0)
        results["bandwidth"] = bandwidth
        print(f"single GET: 1 byte {one_byte0 * 1000:.2f} ms, {bandwidth / 1e9:.2f} GB/s")
        index = cloudfits.build_index(f"s3://{BUCKET}/{first_key}")
        index_path = Path(tmp) / "index.json"
        index.save(str(index_path))
        meta = {
            "bucket": BUCKET,
            "prefix": PREFIX,
            "prefix_uri": f"s3://{BUCKET}/{PREFIX}",
            "uri": f"s3://{BUCKET}/{first_key}",
            "name": index.files[0].path,
            "index": str(index_path),
            "number": cube.number,
            "shape": list(cube.shape),
            "cubes": {k: c.number for k, c in objects.items()},
            "cube_count": args.cubes,
            "header_bytes": sum(b - a for a, b in cube.header_runs()),
            "peer_objects": args.peer_objects,
        }
        meta_path = Path(tmp) / "meta.json"
        meta_path.write_text(json.dumps(meta))
        for latency in args.latency:
            server.delay = latency / 1000
            one_byte = _get_seconds(url, cube.data_offset, 1, 10)
            print(f"{latency:.0f} ms: 1-byte GET {one_byte * 1000:.2f} ms", flush=True)
            results[str(latency)] = {
                "one_byte_get": one_byte,
                "floor": floors(meta, one_byte, bandwidth),
                "tasks": _measure(args, server, meta_path, env),
            }
    text = table(results)
    checks = acceptance(results)
    print("\n" + text + "\n\n" + "\n".join(checks))
    name = "floor-quick" if args.quick else "floor"
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1))
    (args.out / f"{name}.rst").write_text(text + "\n\n" + "\n".join(checks) + "\n")
    print(f"\nwrote {args.out / name}.json and .rst")
    wrong = [
        (lat, task, tool)
        for lat in map(str, args.latency)
        for task, tools in results[lat]["tasks"].items()
        for tool, entry in tools.items()
        if not all(e["ok"] for e in entry.values())
    ]
    if wrong:
        print("WRONG RESULTS:", wrong)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
