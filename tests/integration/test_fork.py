"""A process forked after reads makes its own pools and providers, and its reads finish.

Before, a child forked from a process that had read through the shared thread pool
waited forever on its first read of several parts (the pool's threads are not in the
child), and took its parent's provider, whose connections both processes would use.
Real forks, real sockets: the generated-cube S3 server and local files.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.fetch.pool import shared_pool
from cloudfits.providers.registry import get_registry
from cloudfits.testing.s3gen import GeneratedS3Server, tess_objects

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")

SMALL = (20, 30, 17, 2)
KEY = (slice(2, 9), slice(3, 17), slice(None), slice(None))
CHILD_SECONDS = 20


@pytest.fixture(scope="module")
def server() -> Iterator[GeneratedS3Server]:
    with GeneratedS3Server(tess_objects(2, shape=SMALL)) as s:
        yield s


def in_child(work: Callable[[], bytes]) -> bytes:
    """Run ``work`` in a forked child and return what it wrote; the child is killed
    (and the test fails) when it has not ended within ``CHILD_SECONDS``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which measures nothing
        os.close(read_end)
        signal.alarm(CHILD_SECONDS)
        status = 0
        try:
            out = work()
        except BaseException as err:
            out, status = f"{type(err).__name__}: {err}".encode(), 1
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(out)
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        out = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert not os.WIFSIGNALED(status), f"the child was killed by signal {os.WTERMSIG(status)}"
    assert os.WEXITSTATUS(status) == 0, out.decode(errors="replace")
    return out


def test_child_reads_in_parts_after_the_parent_did(tmp_path: Path) -> None:
    path = tmp_path / "image.fits"
    data = np.arange(300 * 200, dtype=">f4").reshape(300, 200)
    fits.PrimaryHDU(data).writeto(path)
    key = (slice(None, None, 25), slice(0, 3))
    # max_gap=0: one request per row, so the read runs on the shared pool.
    assert np.array_equal(cloudfits.open(str(path), max_gap=0)[0].section[key], data[key])
    parent_pool = shared_pool(64)
    assert parent_pool._threads  # the parent's pool has threads the child will not have

    def child() -> bytes:
        assert shared_pool(64) is not parent_pool
        got = cloudfits.open(str(path), max_gap=0)[0].section[key]
        return np.asarray(got, dtype="<f4").tobytes()

    assert in_child(child) == np.asarray(data[key], dtype="<f4").tobytes()


def test_child_s3_reads_on_its_own_provider(
    server: GeneratedS3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    key, cube = next(iter(server.objects.items()))
    uri = f"s3://tess/{key}"
    want = cube.pixels(KEY)
    f = cloudfits.open(uri, endpoint_url=server.endpoint_url, max_gap=0)
    assert np.array_equal(f[1].section[KEY], want)
    parent_provider = get_registry().for_uri(uri, endpoint_url=server.endpoint_url)[0]
    parent_index = cloudfits.build_index("s3://tess/cubes/", endpoint_url=server.endpoint_url)

    def child() -> bytes:
        mine = get_registry().for_uri(uri, endpoint_url=server.endpoint_url)[0]
        assert mine is not parent_provider
        g = cloudfits.open(uri, endpoint_url=server.endpoint_url, max_gap=0)
        index = cloudfits.build_index("s3://tess/cubes/", endpoint_url=server.endpoint_url)
        assert [e.path for e in index.files] == [k.removeprefix("cubes/") for k in server.objects]
        # An index loaded by the parent opens its files on the child's provider.
        from_parent = parent_index.open(
            key.removeprefix("cubes/"), endpoint_url=server.endpoint_url
        )
        assert from_parent.reader.provider is mine
        assert np.array_equal(from_parent[1].section[KEY], want)
        return np.asarray(g[1].section[KEY], dtype="<f4").tobytes()

    assert in_child(child) == np.asarray(want, dtype="<f4").tobytes()
    # The parent still reads, on its own provider and connections.
    assert np.array_equal(f[1].section[KEY], want)
    assert get_registry().for_uri(uri, endpoint_url=server.endpoint_url)[0] is parent_provider
