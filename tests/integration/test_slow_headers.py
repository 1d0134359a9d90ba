"""Issue "never a wrong byte" item 4, before the body: a server that sends its status
line and headers one byte at a time, each byte well within the socket's read timeout,
cannot keep a read alive past the read deadline (over HTTPS and S3's presigned path).
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from cloudfits import TransientProviderError
from cloudfits.fetch.reader import ObjectReader
from cloudfits.providers.location import ObjectLocation

DEADLINE = 2.0
BYTE_EVERY = 0.2  # seconds between bytes: far below the 30 s read timeout


class _SlowHeaders(socketserver.BaseRequestHandler):
    """HEAD: an honest answer at once. GET: the status line a byte at a time, forever."""

    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(65536)
            if not chunk:
                return
            request += chunk
        method = request.split(b" ", 1)[0]
        body = self.server.body
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Length: {len(body)}\r\n"
            'ETag: "0123456789abcdef0123456789abcdef"\r\n'
            "Last-Modified: Wed, 02 Dec 2026 06:00:00 GMT\r\n"
            "Accept-Ranges: bytes\r\n\r\n"
        ).encode()
        if method == b"HEAD":
            sock.sendall(head)
            return
        self.server.gets += 1
        until = time.monotonic() + 60
        with_range = b"HTTP/1.1 206 Partial Content\r\n" + head.split(b"\r\n", 1)[1]
        for i in range(len(with_range)):
            if time.monotonic() > until:
                return
            try:
                sock.sendall(with_range[i : i + 1])
            except OSError:
                return  # the client gave up: what the test wants
            time.sleep(BYTE_EVERY)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHeaders)
        self.body = body
        self.gets = 0


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[_Server]:
    path = tmp_path / "h.fits"
    fits.PrimaryHDU(np.arange(4000, dtype=np.int16)).writeto(path)
    server = _Server(path.read_bytes())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _read_fails_by_the_deadline(location: ObjectLocation) -> float:
    provider = location.provider()
    info = provider.head(location.path)
    reader = ObjectReader(provider, location.path, location.uri, etag=info.etag, size=info.size)
    started = time.monotonic()
    with pytest.raises(TransientProviderError, match="read deadline"):
        reader.read(0, 4000)
    return time.monotonic() - started


def test_medium_4_slow_headers_over_https_end_by_the_deadline(
    slow_server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", str(DEADLINE))
    port = slow_server.server_address[1]
    location = ObjectLocation.from_uri(f"http://127.0.0.1:{port}/h.fits", read_timeout=30.0)
    elapsed = _read_fails_by_the_deadline(location)
    print(f"slow headers: read ended after {elapsed:.2f} s")
    assert elapsed < DEADLINE + 0.5
    assert slow_server.gets >= 1


def test_medium_4_slow_headers_over_s3_presigned_end_by_the_deadline(
    slow_server: _Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", str(DEADLINE))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    port = slow_server.server_address[1]
    location = ObjectLocation.from_uri(
        "s3://bucket/h.fits",
        endpoint_url=f"http://127.0.0.1:{port}",
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
