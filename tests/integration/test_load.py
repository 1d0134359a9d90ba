"""Load: 32 threads x 100 random cutouts through one shared RemoteFITS and one index.

Every cutout must equal astropy's; the threads and sockets of the process may grow
only by the long-lived pools (the engine's shared worker pool, the provider's
connection pool), never beyond their sizes and never again in a second round of load;
the memory is reported.
"""

from __future__ import annotations

import os
import random
import resource
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.remote import RemoteFITS
from cloudfits.testing.seaweedfs import S3Server

pytestmark = pytest.mark.s3

THREADS = 32
CUTOUTS = 100
SHAPE = (8, 256, 256)
POOL = 64  # S3Config.max_pool_connections


def open_sockets() -> int:
    """Sockets open in this process, from /proc/self/fd."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            pass  # closed while listing
    return count


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
def cube(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[np.ndarray]:
    path = Path(tmp_path_factory.mktemp("load")) / "cube.fits"
    data = np.random.default_rng(3).normal(size=SHAPE).astype(np.float32)
    fits.PrimaryHDU(data).writeto(path)
    s3_server.create_bucket("load")
    s3_server.client().upload_file(str(path), "load", "data/cube.fits")
    with fits.open(path, memmap=False) as hdul:
        yield np.array(hdul[0].data)


def _round(f: RemoteFITS, expected: np.ndarray, seed: int) -> int:
    def worker(number: int) -> int:
        rng = random.Random(seed * 1000 + number)
        exact = 0
        for _ in range(CUTOUTS):
            frame = rng.randrange(SHAPE[0])
            y, x = rng.randrange(SHAPE[1] - 40), rng.randrange(SHAPE[2] - 40)
            key = (
                slice(frame, frame + rng.randrange(1, 3)),
                slice(y, y + rng.randrange(1, 40)),
                slice(x, x + rng.randrange(1, 40)),
            )
            exact += bool(np.array_equal(f[0].section[key], expected[key]))
        return exact

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return sum(pool.map(worker, range(THREADS)))


def test_32_threads_share_one_remote_fits(s3_server: S3Server, cube: np.ndarray) -> None:
    index = cloudfits.build_index("s3://load/data/")
    f = index.open("cube.fits")
    threads_before, sockets_before, rss_before = (
        threading.active_count(),
        open_sockets(),
        rss_bytes(),
    )
    requests_before = f.stats.requests
    started = time.monotonic()
    first = _round(f, cube, seed=1)
    seconds = time.monotonic() - started
    sockets_after_first, threads_after_first = open_sockets(), threading.active_count()
    second = _round(f, cube, seed=2)
    threads_after, sockets_after = threading.active_count(), open_sockets()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"\n{THREADS} threads x {CUTOUTS} cutouts: {first} exact in {seconds:.1f} s,"
        f" {f.stats.requests - requests_before} requests over both rounds;"
        f" threads {threads_before} -> {threads_after_first} -> {threads_after};"
        f" sockets {sockets_before} ->"
        f" {sockets_after_first} -> {sockets_after}; RSS {rss_before >> 20} MiB ->"
        f" {rss_bytes() >> 20} MiB, process peak {peak_rss >> 20} MiB"
    )
    assert first == second == THREADS * CUTOUTS
    # The engine's shared pool keeps its workers for the next read: at most
    # max_concurrency of them over both rounds (the first round may not have needed
    # them all), none beyond.
    assert threads_after_first - threads_before <= f.fetch_options.max_concurrency
    assert threads_after - threads_before <= f.fetch_options.max_concurrency
    # The connection pool keeps idle connections for reuse, up to its size; a second
    # round of the same load reuses them instead of adding more.
    assert sockets_after_first - sockets_before <= POOL
    assert sockets_after - sockets_before <= POOL
    assert rss_bytes() - rss_before < 256 * 1024 * 1024
