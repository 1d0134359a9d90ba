"""Issue "never a wrong byte" item 4, before the body: a server that sends its status
line and headers one byte at a time, each byte well within the socket's read timeout,
cannot keep a read alive past the read deadline (over HTTPS and S3's presigned path).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from cloudfits import TransientProviderError
from cloudfits.fetch.reader import ObjectReader
from cloudfits.providers.location import ObjectLocation
from cloudfits.testing.slowhead import SlowHeadServer

DEADLINE = 2.0
BYTE_EVERY = 0.2  # seconds between bytes: far below the 30 s read timeout


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[SlowHeadServer]:
    path = tmp_path / "h.fits"
    fits.PrimaryHDU(np.arange(4000, dtype=np.int16)).writeto(path)
    with SlowHeadServer(BYTE_EVERY, body=path.read_bytes()) as server:
        yield server


def _read_fails_by_the_deadline(location: ObjectLocation) -> float:
    provider = location.provider()
    info = provider.head(location.path)
    reader = ObjectReader(provider, location.path, location.uri, etag=info.etag, size=info.size)
    started = time.monotonic()
    with pytest.raises(TransientProviderError, match="read deadline"):
        reader.read(0, 4000)
    return time.monotonic() - started


def test_medium_4_slow_headers_over_https_end_by_the_deadline(
    slow_server: SlowHeadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", str(DEADLINE))
    location = ObjectLocation.from_uri(f"{slow_server.url}/h.fits", read_timeout=30.0)
    elapsed = _read_fails_by_the_deadline(location)
    print(f"slow headers: read ended after {elapsed:.2f} s")
    assert elapsed < DEADLINE + 0.5
    assert slow_server.gets >= 1


def test_medium_4_slow_headers_over_s3_presigned_end_by_the_deadline(
    slow_server: SlowHeadServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", str(DEADLINE))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    location = ObjectLocation.from_uri(
        "s3://bucket/h.fits",
        endpoint_url=slow_server.url,
        anonymous=True,
        read_timeout=30.0,
        region="us-east-1",
    )
    elapsed = _read_fails_by_the_deadline(location)
    print(f"slow headers: read ended after {elapsed:.2f} s")
    # The presigned path gives up at the deadline instead of handing the same slow
    # server to the botocore path.
    assert elapsed < DEADLINE + 0.5
    assert slow_server.gets >= 1
