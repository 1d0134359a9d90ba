"""Indexes pin the version of every object: changed objects are errors, never bytes.

Also `cloudfits verify` / ``cloudfits-index --verify``, the retry policy, and the
``Content-Range`` check every provider applies.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import RangeResponseError, StaleIndexError, TransientProviderError
from cloudfits.cli import index_main, main
from cloudfits.fetch import ObjectReader
from cloudfits.fetch.retry import RetryPolicy
from cloudfits.index.verify import verify_index
from cloudfits.providers.base import check_content_range
from cloudfits.providers.https import HTTPSConfig, HTTPSProvider
from cloudfits.testing.faults import FaultProxy, FaultRates
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.seaweedfs import S3Server


def _write_fits(path: Path, value: int, shape: tuple[int, int] = (30, 40)) -> None:
    fits.PrimaryHDU(np.full(shape, value, dtype=np.int32)).writeto(path, overwrite=True)


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str], *, index: bool = False
) -> tuple[int, str]:
    try:
        status = (index_main if index else main)(argv)
    except SystemExit as stop:
        status = int(stop.code or 0)
    return status, capsys.readouterr().out


def test_local_overwrite_raises_stale(tmp_path: Path) -> None:
    _write_fits(tmp_path / "a.fits", 1)
    index = cloudfits.build_index(tmp_path)
    f = index.open("a.fits")
    assert f[0].section[0, 0] == 1
    time.sleep(0.05)
    _write_fits(tmp_path / "a.fits", 2)  # same size, other values
    with pytest.raises(StaleIndexError, match=r"a\.fits"):
        f[0].section[0, 0]
    with pytest.raises(StaleIndexError, match=r"a\.fits"):
        index.open("a.fits")[0].section[1:3, 1:3]


@pytest.mark.s3
def test_s3_overwrite_raises_stale_and_verify_reports_it(
    s3_server: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3_server.create_bucket("stale")
    client = s3_server.client()
    for name, value in (("a.fits", 1), ("b.fits", 2), ("c.fits", 3)):
        _write_fits(tmp_path / name, value)
        client.upload_file(str(tmp_path / name), "stale", f"data/{name}")
    index = cloudfits.build_index("s3://stale/data/")
    index.save("s3://stale/index.json")
    assert all(entry.etag for entry in index.files)
    assert _run(["verify", "s3://stale/index.json"], capsys)[0] == 0
    f = index.open("a.fits")
    assert f[0].section[5, 5] == 1
    _write_fits(tmp_path / "a.fits", 9)
    client.upload_file(str(tmp_path / "a.fits"), "stale", "data/a.fits")
    client.delete_object(Bucket="stale", Key="data/c.fits")
    with pytest.raises(StaleIndexError, match=r"s3://stale/data/a\.fits"):
        f[0].section[5, 5]
    assert index.open("b.fits")[0].section[5, 5] == 2  # the others still read
    checks = {c.path: c.status for c in verify_index(index)}
    assert checks == {"a.fits": "changed", "b.fits": "ok", "c.fits": "missing"}
    status, out = _run(["verify", "s3://stale/index.json"], capsys)
    assert status == 1
    assert "CHANGED  a.fits: etag" in out
    assert "MISSING  c.fits" in out
    assert "3 files: 1 changed, 1 missing, 1 ok" in out
    status, out = _run(["--verify", "s3://stale/index.json", "--json"], capsys, index=True)
    assert status == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert [(c["path"], c["status"]) for c in report["files"]] == [
        ("a.fits", "changed"),
        ("b.fits", "ok"),
        ("c.fits", "missing"),
    ]


def test_verify_of_an_unchanged_local_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _write_fits(data / "a.fits", 1)
    assert _run(["index", str(data), "--index-uri", str(tmp_path / "i.json")], capsys)[0] == 0
    status, out = _run(["--verify", str(tmp_path / "i.json")], capsys, index=True)
    assert (status, out.splitlines()[-1]) == (0, "1 file: 1 ok")
    (data / "a.fits").unlink()
    assert _run(["verify", str(tmp_path / "i.json")], capsys)[0] == 1


def test_https_reads_through_faults_are_exact(tmp_path: Path) -> None:
    """The urllib3 provider under every fault, with a retry budget: exact bytes."""
    payload = random.Random(4).randbytes(200_000)
    (tmp_path / "blob.bin").write_bytes(payload)
    with (
        StaticHTTPServer(tmp_path) as server,
        FaultProxy(
            server.url, FaultRates.uniform(0.2, stall=0.01), seed=3, stall_seconds=1.0
        ) as proxy,
    ):
        provider = HTTPSProvider(HTTPSConfig(read_timeout=0.3, max_attempts=2), "http")
        path = proxy.url.removeprefix("http://") + "/blob.bin"
        etag = provider.head(path).etag
        reader = ObjectReader(
            provider, path, "blob", etag=etag, retry=RetryPolicy(max_attempts=12, base_delay=0.01)
        )
        rng = random.Random(5)
        for _ in range(150):
            start = rng.randrange(len(payload))
            end = min(len(payload), start + rng.randrange(1, 20_000))
            assert reader.read(start, end) == payload[start:end]
        assert sum(proxy.injected.values()) >= 0.1 * proxy.requests
        # A changed file is a permanent error: one attempt, no retries.
        time.sleep(0.05)
        (tmp_path / "blob.bin").write_bytes(payload[::-1])
        before = proxy.requests
        with pytest.raises(StaleIndexError, match=r"blob\.bin"):
            ObjectReader(provider, path, "blob", etag=etag, retry=RetryPolicy()).read(0, 10)
        assert proxy.requests - before <= 2  # urllib3 may retry a faulted attempt once


@pytest.mark.parametrize(
    ("content_range", "received", "ok"),
    [
        ("bytes 10-19/100", 10, True),
        ("bytes 10-19/*", 10, True),
        ("bytes 90-99/100", 10, True),  # asked past the end: clipped
        ("bytes 11-20/100", 10, False),  # other bytes
        ("bytes 10-18/100", 9, False),  # fewer bytes, not at the end
        ("bytes 10-19/100", 9, False),  # body shorter than its range
        ("bytes 10-19/100", 11, False),
        ("bytes 10-19", 10, False),
        ("", 10, False),
    ],
)
def test_content_range_check(content_range: str, received: int, ok: bool) -> None:
    end = 110 if content_range.startswith("bytes 90") else 20
    start = 90 if content_range.startswith("bytes 90") else 10
    if ok:
        check_content_range(content_range, start, end, received, uri="x")
    else:
        with pytest.raises(RangeResponseError, match="asked for bytes"):
            check_content_range(content_range, start, end, received, uri="x")


def test_retry_policy_backoff_and_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=0.3, deadline=10)
    rng = random.Random(1)
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)):
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0
        assert max(delays) <= ceiling
        assert max(delays) > 0.8 * ceiling  # full jitter spreads over the whole range
    now = time.monotonic()
    assert not policy.gives_up(3, now)
    assert policy.gives_up(4, now)
    assert policy.gives_up(1, now - 11)
    monkeypatch.setenv("CLOUDFITS_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("CLOUDFITS_RETRY_BASE_DELAY", "0.5")
    assert RetryPolicy.from_environment() == RetryPolicy(max_attempts=7, base_delay=0.5)
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


class _Flaky:
    """A provider answering short, then transient errors, then the bytes."""

    def __init__(self, failures: list[Exception | bytes]) -> None:
        self.failures = failures
        self.calls = 0

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        self.calls += 1
        if self.failures:
            answer = self.failures.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return bytes(range(start, end))


def test_engine_retries_short_bodies_and_transient_errors_only() -> None:
    flaky = _Flaky([b"\x00", TransientProviderError("503"), b"\x00" * 20])
    reader = ObjectReader(flaky, "p", "uri", retry=RetryPolicy(max_attempts=4, base_delay=0))  # type: ignore[arg-type]
    assert reader.read(0, 10) == bytes(range(10))
    assert flaky.calls == 4
    stale = _Flaky([StaleIndexError("changed")])
    reader = ObjectReader(stale, "p", "uri", retry=RetryPolicy(max_attempts=4, base_delay=0))  # type: ignore[arg-type]
    with pytest.raises(StaleIndexError):
        reader.read(0, 10)
    assert stale.calls == 1
    short = _Flaky([b"\x00"] * 5)
    reader = ObjectReader(short, "p", "uri", retry=RetryPolicy(max_attempts=3, base_delay=0))  # type: ignore[arg-type]
    with pytest.raises(RangeResponseError, match="gave up after 3 attempts"):
        reader.read(0, 10)
    assert short.calls == 3
