"""A server on 127.0.0.1 that answers every ``GET`` with a status line trickled forever.

`SlowHeadServer` reads a request and sends ``HTTP/1.1 206 Partial Content`` and its
headers one byte every `SlowHeadServer.byte_every` seconds, each byte well within any
socket read timeout, for a minute at most. A client that bounds only the wait for each
byte stays in the headers that long; one whose read deadline covers the headers gives
up by its deadline. Any path serves (the provider's URL layout does not matter): point
a provider's endpoint at `SlowHeadServer.url`. Given a ``body``, the server answers
``HEAD`` at once and honestly (its length, an ETag, ``Accept-Ranges``), for clients that
describe an object before they read it.

Examples
--------
>>> with SlowHeadServer() as server:  # doctest: +SKIP
...     provider = make_provider(endpoint_url=server.url)
...     ...
...     server.gets
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Any

__all__ = ["SlowHeadServer"]

_HEAD = (
    b"HTTP/1.1 206 Partial Content\r\n"
    b"Content-Range: bytes 0-9/100\r\n"
    b"Content-Length: 10\r\n"
    b'ETag: "0123456789abcdef"\r\n'
    b"x-goog-generation: 1\r\n\r\n"
)


def _honest(body: bytes) -> bytes:
    """The headers after the status line of an honest answer describing ``body``."""
    return (
        f"Content-Length: {len(body)}\r\n"
        'ETag: "0123456789abcdef0123456789abcdef"\r\n'
        "Last-Modified: Wed, 02 Dec 2026 06:00:00 GMT\r\n"
        "Accept-Ranges: bytes\r\n\r\n"
    ).encode()


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(65536)
            if not chunk:
                return
            request += chunk
        body = self.server.body
        head = _HEAD if body is None else b"HTTP/1.1 206 Partial Content\r\n" + _honest(body)
        if body is not None and request.startswith(b"HEAD "):
            sock.sendall(b"HTTP/1.1 200 OK\r\n" + _honest(body))
            return
        with self.server.lock:
            self.server.gets += 1
        until = time.monotonic() + 60
        for i in range(len(head)):
            if time.monotonic() > until or self.server.stopping.is_set():
                return
            try:
                sock.sendall(head[i : i + 1])
            except OSError:
                return
            self.server.stopping.wait(self.server.byte_every)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, byte_every: float, body: bytes | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.byte_every = byte_every
        self.body = body
        self.gets = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()


class SlowHeadServer:
    """Trickles the status line and headers of every answer.

    Parameters
    ----------
    byte_every : float
        Seconds between two bytes of the head.
    body : bytes, optional
        The object ``HEAD`` describes at once; without it ``HEAD`` is trickled too.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:PORT``.
    """

    def __init__(self, byte_every: float = 0.2, body: bytes | None = None) -> None:
        self.byte_every = byte_every
        self.body = body
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        if self._server is None:
            raise RuntimeError("the server is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def gets(self) -> int:
        """Requests trickled so far (``HEAD`` answered at once excluded)."""
        return self._server.gets if self._server is not None else 0

    def __enter__(self) -> SlowHeadServer:
        self._server = _Server(self.byte_every, self.body)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="SlowHeadServer", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._server is not None:
            self._server.stopping.set()
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
