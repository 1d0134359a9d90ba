"""``nox -s bench``: every tool, every task, at 0 and 20 ms of added latency.

``python -m benchmarks.run [--runs N] [--latency MS ...] [--tools ...] [--tasks ...]``

The files (see `benchmarks.datasets`) are served by a local SeaweedFS server behind
cloudfits' recording proxy, which adds the latency to every request and counts
requests, bytes and dependent round trips. Each tool runs each task in a fresh
process (`benchmarks.worker`), ``--runs`` times; the medians go into a table
(printed, and written as ``benchmarks/results/bench.rst``), ``bench.json`` and a bar
chart ``bench.png``.
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
from pathlib import Path
from typing import Any

from benchmarks import datasets
from benchmarks.report import acceptance, chart, table
from benchmarks.worker import TASKS, TOOLS, supports

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BUCKET = "bench"


def _upload(server: Any, meta: dict[str, Any]) -> dict[str, str]:
    server.create_bucket(BUCKET)
    client = server.client()
    s3 = {}
    for name, path in meta["local"].items():
        key = Path(path).name
        client.upload_file(path, BUCKET, key)
        s3[name] = f"s3://{BUCKET}/{key}"
    for path in meta["many"]:
        client.upload_file(path, BUCKET, f"many/{Path(path).name}")
    s3["many"] = f"s3://{BUCKET}/many/"
    return s3


def _indexes(meta: dict[str, Any], directory: Path) -> dict[str, str]:
    import cloudfits

    paths = {}
    for name, path in meta["local"].items():
        index = cloudfits.build_index(path, data_uri=f"s3://{BUCKET}")
        target = directory / f"index-{name}.json"
        index.save(str(target))
        paths[name] = str(target)
    return paths


def _one_run(
    tool: str, task: str, meta_path: Path, env: dict[str, str], proxy: Any
) -> dict[str, Any]:
    from cloudfits.testing.proxy import dependent_round_trips

    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.worker", tool, task, str(meta_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT.parent,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"{tool} {task}: worker failed to start: {line!r}")
        proxy.reset()
        process.stdin.write("go\n")
        process.stdin.flush()
        line = process.stdout.readline()
        records = proxy.records
        outcome = json.loads(line)
    finally:
        process.stdin.close()
        process.wait(timeout=120)
    return {
        "seconds": outcome["seconds"],
        "cpu": outcome["cpu"],
        "ok": outcome["ok"],
        "requests": len(records),
        "bytes": sum(r.response_bytes for r in records),
        "round_trips": dependent_round_trips(records),
    }


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
    latency: float,
    args: argparse.Namespace,
    meta_path: Path,
    env: dict[str, str],
    proxy: Any,
    results: dict[str, Any],
) -> None:
    for task in args.tasks:
        for tool in args.tools:
            if not supports(tool, task):
                continue
            entry = _median([_one_run(tool, task, meta_path, env, proxy) for _ in range(args.runs)])
            results.setdefault(str(latency), {}).setdefault(task, {})[tool] = entry
            print(
                f"{latency:>4.0f} ms  {task:<9} {tool:<16} {entry['requests']:>6} req"
                f" {entry['bytes']:>11,} B {entry['round_trips']:>4} rt"
                f" {entry['seconds']:8.3f} s (cpu {entry['cpu']:.3f} s)"
                f"  {'ok' if entry['ok'] else 'WRONG'}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    # On SIGTERM, unwind normally so that the S3 server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    from cloudfits.testing.proxy import RecordingProxy
    from cloudfits.testing.seaweedfs import start_seaweedfs

    args.out.mkdir(parents=True, exist_ok=True)
    data_dir = args.out / "data"
    print("building the files (cached in", data_dir, ")", flush=True)
    meta = datasets.build(data_dir)
    results: dict[str, Any] = {"latencies_ms": args.latency, "ideal": datasets.ideal(meta)}
    with tempfile.TemporaryDirectory(prefix="cloudfits-bench-") as tmp:
        server = start_seaweedfs(Path(tmp) / "seaweedfs")
        try:
            meta["s3"] = _upload(server, meta)
            meta["indexes"] = _indexes(meta, data_dir)
            meta_path = Path(tmp) / "meta.json"
            meta_path.write_text(json.dumps(meta))
            for latency in args.latency:
                with RecordingProxy(server.endpoint_url, delay=latency / 1000) as proxy:
                    env = dict(
                        os.environ,
                        AWS_ENDPOINT_URL=proxy.url,
                        AWS_ACCESS_KEY_ID="bench",
                        AWS_SECRET_ACCESS_KEY="bench",
                        AWS_DEFAULT_REGION="us-east-1",
                        PYTHONPATH=os.pathsep.join(
                            [
                                str(ROOT.parent / "src"),
                                str(ROOT.parent),
                                os.environ.get("PYTHONPATH", ""),
                            ]
                        ),
                    )
                    _measure(latency, args, meta_path, env, proxy, results)
        finally:
            server.stop()
    text = table(results)
    print()
    print(text)
    checks = acceptance(results)
    print("\n".join(checks))
    (args.out / "bench.json").write_text(json.dumps(results, indent=1))
    (args.out / "bench.rst").write_text(text + "\n\n" + "\n".join(checks) + "\n")
    chart(results, args.out / "bench.png")
    print(f"\nwrote {args.out / 'bench.json'}, {args.out / 'bench.rst'}, {args.out / 'bench.png'}")
    bad = [
        (lat, task, tool)
        for lat, tasks in results.items()
        if isinstance(tasks, dict) and lat not in ("ideal",)
        for task, tools in tasks.items()
        for tool, entry in tools.items()
        if not entry["ok"]
    ]
    if bad:
        print("WRONG RESULTS:", bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
