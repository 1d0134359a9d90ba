"""Load on ``cloudfits serve``: concurrent TESSCut clients, against astrocut on the server.

``python -m benchmarks.serve_load [--clients 32] [--requests 20] [--size 10]
[--latency MS] [--frames 100] [--shape 128]``

A TESS-layout cube (astrocut's CubeFactory) goes into a local SeaweedFS server and
is indexed. ``cloudfits serve`` runs as its own process (one uvicorn worker), its
reads going through cloudfits' recording proxy, which delays every request by
``--latency`` milliseconds. ``--clients`` threads each ask ``--requests`` cutouts of
``--size`` pixels (``/tesscut/api/v0.1/astrocut``, as astroquery's
``download_cutouts`` does) at random positions of the cube. The baseline is the same
load on a server process that runs astrocut's ``TessCubeCutout`` on a local copy of
the cube (what a service with the cubes on its own disks does). Every answer is
checked against astrocut on the local cube (FLUX and FLUX_ERR bytes). Printed, and
written to ``benchmarks/results/serve_load.json``: p50/p99 latency, throughput, peak
RSS of each server process, and the upstream requests and bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CUBE_KEY = "tess/public/mast/tess-s0001-1-1-cube.fits"


def baseline_app(cube: str) -> Any:
    """A server of astrocut's own cutouts of a local cube, zipped as astrocut zips."""
    from astrocut import TessCubeCutout
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from cloudfits.astro.cube_cutouts import fits_bytes
    from cloudfits.astro.serve.zipstream import ZipChunks
    from cloudfits.astro.tess import BUILD_LOCK, cutout_file_name

    def cut(ra: float, dec: float, x: int, y: int) -> bytes:
        # The lock the service holds too: threads building astropy tables at once
        # hit CPython 3.11's AST race (see cloudfits.astro.tess.BUILD_LOCK).
        with BUILD_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made = TessCubeCutout([cube], f"{ra} {dec}", (y, x))
        archive = ZipChunks()
        first = archive.add(cutout_file_name(made, cube), fits_bytes(made.tpf_cutouts[0]))
        return first + archive.close()

    async def astrocut(request: Any) -> Response:
        from anyio import to_thread

        q = request.query_params
        data = await to_thread.run_sync(
            cut, float(q["ra"]), float(q["dec"]), int(q["x"]), int(q["y"])
        )
        return Response(data, media_type="application/zip")

    return Starlette(routes=[Route("/tesscut/api/v0.1/astrocut", astrocut)])


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped: {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _load(
    url: str, positions: list[tuple[float, float]], clients: int, size: int
) -> dict[str, Any]:
    per_client = len(positions) // clients
    latencies: list[float] = []
    bodies: list[bytes] = [b""] * len(positions)
    lock = threading.Lock()

    def client(number: int) -> None:
        for i in range(number * per_client, (number + 1) * per_client):
            ra, dec = positions[i]
            query = f"ra={ra}&dec={dec}&x={size}&y={size}&units=px"
            began = time.perf_counter()
            with urllib.request.urlopen(
                f"{url}/tesscut/api/v0.1/astrocut?{query}", timeout=300
            ) as r:
                body = r.read()
            took = time.perf_counter() - began
            with lock:
                latencies.append(took)
                bodies[i] = body

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "wall_s": round(wall, 3),
        "throughput_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "bodies": bodies,
    }


def _references(positions: list[tuple[float, float]], cube: str, size: int) -> list[bytes]:
    """astrocut's TIME, FLUX and FLUX_ERR of each position, as bytes of the written file."""
    from astrocut import TessCubeCutout
    from astropy.io import fits

    from cloudfits.astro.cube_cutouts import fits_bytes

    found = []
    for ra, dec in positions:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made = TessCubeCutout([cube], f"{ra} {dec}", size).tpf_cutouts[0]
        # As written to a file: in memory, astrocut's arrays are in native byte order.
        found.append(_columns(fits.open(io.BytesIO(fits_bytes(made)))))
    return found


def _columns(hdulist: Any) -> bytes:
    return b"".join(np.asarray(hdulist[1].data[c]).tobytes() for c in ("TIME", "FLUX", "FLUX_ERR"))


def _exact(bodies: list[bytes], references: list[bytes]) -> int:
    """How many answers hold exactly the reference columns."""
    from astropy.io import fits

    exact = 0
    for body, reference in zip(bodies, references, strict=True):
        archive = zipfile.ZipFile(io.BytesIO(body))
        (name,) = archive.namelist()
        exact += _columns(fits.open(io.BytesIO(archive.read(name)))) == reference
    return exact


class _Served:
    """A server process whose output is kept, and shown when the load fails."""

    def __init__(self, command: list[str], env: dict[str, str], url: str) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=self.log)
        self.url = url

    def __enter__(self) -> _Served:
        try:
            _wait(self.url + "/healthz", self.process)
        except RuntimeError:
            self.__exit__(RuntimeError, None, None)
            raise
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(20)
        if kind is not None:
            self.log.seek(0)
            sys.stderr.write(self.log.read().decode(errors="replace")[-6000:])
        self.log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20, help="cutouts per client")
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--latency", type=float, default=20.0, help="ms per upstream request")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--shape", type=int, default=128)
    parser.add_argument(
        "--baseline-server", nargs=2, metavar=("PORT", "CUBE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.baseline_server:
        import uvicorn

        port, cube = args.baseline_server
        uvicorn.run(baseline_app(cube), host="127.0.0.1", port=int(port), log_level="warning")
        return 0

    import cloudfits
    from cloudfits.astro.footprints import cube_wcs
    from cloudfits.testing.proxy import RecordingProxy
    from cloudfits.testing.seaweedfs import free_port, start_seaweedfs
    from cloudfits.testing.tess import make_tess_cube

    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = make_tess_cube(work / "cube", n_frames=args.frames, shape=(args.shape, args.shape),
                              sector=1, camera=1, ccd=1)  # fmt: skip
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    with start_seaweedfs(work / "s3") as s3:
        s3.create_bucket("stpubdata")
        s3.client().upload_file(str(cube), "stpubdata", CUBE_KEY)
        os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
        index = cloudfits.build_index(
            "s3://stpubdata/tess/public/mast/", endpoint_url=s3.endpoint_url
        )
        s3.create_bucket("tess-fits-cloud-index")
        index_path = "s3://tess-fits-cloud-index/cloudfits-index.json"
        index.save(index_path, endpoint_url=s3.endpoint_url)
        rf = index.open(index.paths[0], endpoint_url=s3.endpoint_url)
        wcs = cube_wcs(rf)
        rng = np.random.default_rng(1)
        count = args.clients * args.requests
        pixels = rng.uniform(args.size, args.shape - args.size, size=(count, 2))
        sky = wcs.pixel_to_world(pixels[:, 0], pixels[:, 1])
        positions = [(float(a), float(b)) for a, b in zip(sky.ra.deg, sky.dec.deg, strict=True)]
        references = _references(positions, str(cube), args.size)
        results: dict[str, Any] = {}
        with RecordingProxy(s3.endpoint_url, delay=args.latency / 1000) as proxy:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            command = [sys.executable, "-m", "cloudfits", "serve", index_path, "--port", str(port),
                       "--endpoint-url", proxy.url, "--log-level", "warning"]  # fmt: skip
            with _Served(command, env, url) as server:
                proxy.reset()
                run = _load(url, positions, args.clients, args.size)
                run["peak_rss_mib"] = round(_peak_rss_kib(server.process.pid) / 1024, 1)
                run["upstream_requests"] = proxy.request_count
                run["upstream_bytes"] = proxy.response_bytes_total
            run["exact"] = _exact(run.pop("bodies"), references)
            results["cloudfits serve"] = run
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "benchmarks.serve_load", "--baseline-server", str(port),
                   str(cube)]  # fmt: skip
        with _Served(command, env, url) as server:
            run = _load(url, positions, args.clients, args.size)
            run["peak_rss_mib"] = round(_peak_rss_kib(server.process.pid) / 1024, 1)
        run["exact"] = _exact(run.pop("bodies"), references)
        results["astrocut on the server's disk"] = run
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": vars(args) | {"baseline_server": None},
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(report, indent=2))
    for name, run in results.items():
        print(f"{name:32} {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
