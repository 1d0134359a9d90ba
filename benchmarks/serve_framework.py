"""Starlette or FastAPI for ``cloudfits serve``: import time, memory, requests a second.

``python -m benchmarks.serve_framework [--requests 3000] [--clients 8]``

The same endpoint (parse ``ra`` and ``dec`` from the query string, answer a small
JSON document) in each framework, served by one uvicorn worker in its own process,
asked by ``--clients`` threads over keep-alive connections. Printed, and written to
``benchmarks/results/serve_framework.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

APPS = {
    "starlette": """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
async def sector(request):
    q = request.query_params
    return JSONResponse({"results": [{"ra": float(q["ra"]), "dec": float(q["dec"])}]})
app = Starlette(routes=[Route("/sector", sector)])
""",
    "fastapi": """
from fastapi import FastAPI
app = FastAPI()
@app.get("/sector")
async def sector(ra: float, dec: float):
    return {"results": [{"ra": ra, "dec": dec}]}
""",
}


def _run(name: str, port: int, requests: int, clients: int) -> dict[str, Any]:
    code = APPS[name] + (
        "\nimport uvicorn\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', access_log=False)\n"
    )
    began = time.perf_counter()
    imported = subprocess.run([sys.executable, "-c", APPS[name]], capture_output=True, text=True)
    import_s = time.perf_counter() - began
    del imported
    server = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/sector?ra=1&dec=2")
                connection.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        def client(count: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for i in range(count):
                connection.request("GET", f"/sector?ra={i % 360}&dec=-{i % 90}")
                answer = connection.getresponse()
                assert answer.status == 200
                answer.read()

        began = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, [requests // clients] * clients))
        wall = time.perf_counter() - began
        status = Path(f"/proc/{server.pid}/status").read_text()
        rss = next(int(v.split()[1]) for v in status.splitlines() if v.startswith("VmRSS:"))
    finally:
        server.terminate()
        server.wait(10)
    return {
        "import_and_build_s": round(import_s, 3),
        "requests_per_s": round(requests / wall),
        "rss_mib": round(rss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    from cloudfits.testing.seaweedfs import free_port

    results = {name: _run(name, free_port(), args.requests, args.clients) for name in APPS}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_framework.json").write_text(json.dumps(results, indent=2))
    for name, found in results.items():
        print(f"{name:10} {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
