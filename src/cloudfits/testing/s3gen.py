"""A local S3-compatible server of generated objects of any size (nothing is stored).

`GeneratedS3Server` serves `~cloudfits.testing.generated.GeneratedCube` objects (352
full-size TESS cubes of 45.5 GB each is 16 TB that exists nowhere) on 127.0.0.1, a
thread per connection (bodies go out with ``sendall`` from views of one buffer, so a
single GET runs at the loopback's speed). It answers what the readers of this
project and their peers (boto3, s3fs, astropy, astrocut) ask of S3:

* ``ListObjectsV2`` (``prefix``, ``delimiter``, ``max-keys``, ``continuation-token``,
  ``start-after``), with pages of at most ``page_size`` keys;
* ``HEAD`` of an object (size, ``ETag``, ``Last-Modified``);
* ``GET`` of an object, whole or one byte range (``bytes=a-b``, ``a-``, ``-n``) with
  ``206`` and an exact ``Content-Range``, ``416`` outside the object, ``If-Match``
  answered with ``412`` when the ETag differs;
* ``HEAD``/``GET`` of the bucket itself (s3fs asks).

Every request waits ``delay`` seconds before its answer (the connections are served
concurrently, so delays overlap as a network's do), and is recorded as a
`~cloudfits.testing.proxy.RequestRecord` for counting requests, bytes and dependent
round trips. Signatures are not checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import socketserver
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from .generated import GeneratedCube, _ring
from .proxy import RequestRecord

__all__ = ["GeneratedS3Server", "tess_objects"]

_LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
_LAST_MODIFIED_ISO = "2025-01-01T00:00:00.000Z"
_LIMIT = 1 << 16


def tess_objects(count: int, prefix: str = "cubes/", **kwargs: Any) -> dict[str, GeneratedCube]:
    """``count`` generated cubes by key: ``{prefix}tess-s0001-1-1-cube.fits``, ..."""
    cubes = (GeneratedCube(i, **kwargs) for i in range(count))
    return {f"{prefix}{c.name}": c for c in cubes}


def _etag(key: str, cube: GeneratedCube) -> str:
    return hashlib.md5(f"{key}:{cube.number}:{cube.shape}".encode()).hexdigest()


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single ``bytes=`` range; None when it cannot be satisfied."""
    spec = header.strip().removeprefix("bytes=")
    first, _, last = spec.partition("-")
    if not first:
        n = int(last)
        return (max(0, size - n), size) if n > 0 and size > 0 else None
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    return (start, end) if start < size and end > start else None


class GeneratedS3Server:
    """An S3-compatible server of generated cubes on 127.0.0.1.

    Parameters
    ----------
    objects : mapping of str to GeneratedCube
        The bucket's objects by key (see `tess_objects`).
    bucket : str
        The one bucket's name.
    delay : float
        Seconds added before every answer.
    page_size : int
        Most keys in one page of a listing.
    """

    def __init__(
        self,
        objects: Mapping[str, GeneratedCube],
        *,
        bucket: str = "tess",
        delay: float = 0.0,
        page_size: int = 1000,
    ) -> None:
        self.objects = dict(sorted(objects.items()))
        self.bucket = bucket
        self.delay = float(delay)
        self.page_size = page_size
        self._etags = {k: _etag(k, c) for k, c in self.objects.items()}
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()
        # Requests read and not yet recorded: `records` and `reset` wait for them, as
        # a client can have a whole answer a moment before its record is kept.
        self._in_flight = 0
        self._settled = threading.Condition()
        self._thread: threading.Thread | None = None
        self._server: _Listener | None = None
        self._connections: set[socket.socket] = set()
        self._port: int | None = None

    # ------------------------------------------------------------ the caller's side

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._port is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://127.0.0.1:{self._port}"

    def etag(self, key: str) -> str:
        """The ETag the server gives the object ``key``."""
        return self._etags[key]

    @property
    def records(self) -> list[RequestRecord]:
        """A copy of the records of every request since the last `reset`, oldest first.

        Requests still being answered are waited for (a second at most).
        """
        self._wait_settled()
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        """Forget the records (of requests still being answered too)."""
        self._wait_settled()
        with self._lock:
            self._records.clear()

    def _wait_settled(self, timeout: float = 1.0) -> None:
        with self._settled:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout)

    def start(self) -> GeneratedS3Server:
        """Start serving in a daemon thread; return ``self``."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        _ring()  # make the image pattern now, not in the first request
        self._server = _Listener(self)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="GeneratedS3Server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join the thread (safe to call twice)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=10)
        self._server = self._thread = None
        self._port = None

    def __enter__(self) -> GeneratedS3Server:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self._port is not None else "stopped"
        return f"GeneratedS3Server({len(self.objects)} objects in {self.bucket!r}, {where})"

    # ------------------------------------------------------------ connection threads

    def _serve_connection(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._connections.add(sock)
        stream = sock.makefile("rb")
        try:
            while self._one_request(sock, stream):
                pass
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(sock)
            stream.close()

    def _one_request(self, sock: socket.socket, stream: Any) -> bool:
        """Answer one request; False when the connection is to be closed."""
        line = stream.readline(_LIMIT)
        if not line.strip():
            return False
        started = time.monotonic()
        with self._settled:
            self._in_flight += 1
        try:
            return self._answer_request(sock, stream, line, started)
        finally:
            with self._settled:
                self._in_flight -= 1
                self._settled.notify_all()

    def _answer_request(
        self, sock: socket.socket, stream: Any, line: bytes, started: float
    ) -> bool:
        method, target, _ = line.decode("latin-1").split(" ", 2)
        fields: dict[str, str] = {}
        while True:
            header = stream.readline(_LIMIT).decode("latin-1")
            if header in ("\r\n", "\n", ""):
                break
            name, _, value = header.partition(":")
            fields[name.strip().lower()] = value.strip()
        length = int(fields.get("content-length", "0") or 0)
        if length:
            stream.read(length)
        if self.delay:
            time.sleep(self.delay)
        status, headers, body = self._answer(method, target, fields)
        size = sum(len(p) for p in body)
        headers.setdefault("Content-Length", str(size))
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode("latin-1"))
        sent = 0
        if method != "HEAD":
            for piece in body:
                sock.sendall(piece)
            sent = size
        record = RequestRecord(
            method, target, fields, status, length, sent, started, time.monotonic()
        )
        with self._lock:
            self._records.append(record)
        return fields.get("connection", "").lower() != "close"

    def _answer(
        self, method: str, target: str, fields: dict[str, str]
    ) -> tuple[int, dict[str, str], list[Any]]:
        parts = urlsplit(target)
        path = unquote(parts.path).lstrip("/")
        bucket, _, key = path.partition("/")
        headers = {"x-amz-request-id": "0", "Server": "cloudfits-generated"}
        if bucket != self.bucket:
            return self._error(404, "NoSuchBucket", headers)
        if not key:
            if method == "GET":
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                headers["Content-Type"] = "application/xml"
                return 200, headers, [self._listing(query).encode()]
            return 200, headers, []
        cube = self.objects.get(key)
        if cube is None:
            return self._error(404, "NoSuchKey", headers)
        etag = self._etags[key]
        headers.update(
            {"ETag": f'"{etag}"', "Last-Modified": _LAST_MODIFIED, "Accept-Ranges": "bytes"}
        )
        wanted = fields.get("if-match")
        if wanted is not None and wanted.strip('"') != etag:
            return self._error(412, "PreconditionFailed", headers)
        headers["Content-Type"] = "application/octet-stream"
        if method == "HEAD":
            headers["Content-Length"] = str(cube.size)
            return 200, headers, []
        if method != "GET":
            return self._error(405, "MethodNotAllowed", headers)
        spec = fields.get("range")
        if spec is None:
            return 200, headers, cube.chunks(0, cube.size)
        span = _byte_range(spec, cube.size)
        if span is None:
            headers["Content-Range"] = f"bytes */{cube.size}"
            return self._error(416, "InvalidRange", headers)
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{cube.size}"
        return 206, headers, cube.chunks(start, end)

    def _error(
        self, status: int, code: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], list[Any]]:
        headers["Content-Type"] = "application/xml"
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code></Error>'
        return status, headers, [body.encode()]

    def _listing(self, query: dict[str, str]) -> str:
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        limit = min(self.page_size, int(query.get("max-keys", "1000") or 1000))
        after = query.get("continuation-token") or query.get("start-after", "")
        keys: list[str] = []
        prefixes: list[str] = []
        truncated = False
        for key in self.objects:
            if not key.startswith(prefix) or key <= after:
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest.split(delimiter, 1)[0] + delimiter
                if common > after and (not prefixes or prefixes[-1] != common):
                    if len(keys) + len(prefixes) == limit:
                        truncated = True
                        break
                    prefixes.append(common)
                continue
            if len(keys) + len(prefixes) == limit:
                truncated = True
                break
            keys.append(key)
        last = max([*keys[-1:], *prefixes[-1:]], default="")
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
            f"<Name>{escape(self.bucket)}</Name><Prefix>{escape(prefix)}</Prefix>",
            f"<KeyCount>{len(keys) + len(prefixes)}</KeyCount><MaxKeys>{limit}</MaxKeys>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        if delimiter:
            out.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        if truncated:
            out.append(f"<NextContinuationToken>{escape(last)}</NextContinuationToken>")
        for key in keys:
            out.append(
                f"<Contents><Key>{escape(key)}</Key><LastModified>{_LAST_MODIFIED_ISO}"
                f'</LastModified><ETag>"{self._etags[key]}"</ETag>'
                f"<Size>{self.objects[key].size}</Size><StorageClass>STANDARD</StorageClass>"
                "</Contents>"
            )
        for common in prefixes:
            out.append(f"<CommonPrefixes><Prefix>{escape(common)}</Prefix></CommonPrefixes>")
        out.append("</ListBucketResult>")
        return "".join(out)


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, owner: GeneratedS3Server) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Listener

    def handle(self) -> None:
        self.server.owner._serve_connection(self.request)


_REASONS = {
    200: "OK",
    206: "Partial Content",
    404: "Not Found",
    405: "Method Not Allowed",
    412: "Precondition Failed",
    416: "Range Not Satisfiable",
}


def main(argv: list[str] | None = None) -> None:
    """``python -m cloudfits.testing.s3gen [--cubes N] [--delay S]``: serve until stopped."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--cubes", type=int, default=352)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added per request")
    args = parser.parse_args(argv)
    with GeneratedS3Server(tess_objects(args.cubes), delay=args.delay) as server:
        print(server.endpoint_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
