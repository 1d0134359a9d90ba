"""A small static-file HTTP/1.1 server on 127.0.0.1 for tests of range reads.

Built on the standard library's `http.server.ThreadingHTTPServer`. It serves the files
of one directory with exact single-range semantics (RFC 9110):

- ``Range: bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` answer ``206`` with
  ``Content-Range: bytes a-b/size`` and exactly those bytes; a range reaching past the
  end is clipped to the end;
- a range starting at or after the size answers ``416`` with ``Content-Range: bytes */size``;
- a malformed or multi-range header is ignored (``200``, the whole file), as RFC 9110 allows;
- ``HEAD`` gives ``Content-Length``, ``ETag`` (size and modification time, in hex) and
  ``Last-Modified``;
- missing files and directories answer ``404`` (there is no directory listing); paths
  leaving the directory, through ``..`` or a symbolic link, answer ``403``.

Connections are kept alive. With ``ignore_ranges=True`` every ``GET`` answers ``200`` with
the whole file, as some servers do.

Examples
--------
>>> from pathlib import Path
>>> with StaticHTTPServer(Path("/tmp/site")) as server:  # doctest: +SKIP
...     url = server.url + "/a.fits"
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

__all__ = ["StaticHTTPServer"]

_SINGLE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_CHUNK = 256 * 1024
#: Seconds an idle keep-alive connection stays open.
_IDLE_TIMEOUT = 30.0


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """Interpret a ``Range`` header for a file of ``size`` bytes.

    Returns
    -------
    tuple of int, None or str
        ``(first, last)`` inclusive for a satisfiable range, None when the header must be
        ignored (malformed, multi-range), or ``"unsatisfiable"``.
    """
    match = _SINGLE_RANGE.match(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        return "unsatisfiable"
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def _open_file(path: str) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except OSError:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: str, ignore_ranges: bool, authorization: str | None) -> None:
        self.root = directory
        self.ignore_ranges = ignore_ranges
        self.authorization = authorization
        self.request_count = 0
        self.count_lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping its connection is not a server error worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudfits-test-http"
    sys_version = ""
    timeout = _IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.count_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.count_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _count(self) -> None:
        with self.server.count_lock:
            self.server.request_count += 1

    def _plain(self, status: int, text: str, extra: dict[str, str] | None = None) -> None:
        payload = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _resolve(self) -> str | int:
        """The real path of the requested file, or an HTTP status to answer."""
        raw = unquote(urlsplit(self.path).path)
        if "\x00" in raw:
            return 400
        root = self.server.root
        candidate = os.path.realpath(os.path.join(root, raw.lstrip("/")))
        if os.path.commonpath([candidate, root]) != root:
            return 403
        if not os.path.isfile(candidate):
            return 404
        return candidate

    def _serve(self, *, body: bool) -> None:
        self._count()
        wanted_auth = self.server.authorization
        if wanted_auth is not None and self.headers.get("Authorization") != wanted_auth:
            self._plain(401, "unauthorized", {"WWW-Authenticate": 'Basic realm="test"'})
            return
        target = self._resolve()
        if isinstance(target, int):
            messages = {400: "bad path", 403: "forbidden", 404: "not found"}
            self._plain(target, messages[target])
            return
        handle = _open_file(target)
        if handle is None:  # removed between the check and now
            self._plain(404, "not found")
            return
        with handle:
            st = os.fstat(handle.fileno())
            size = st.st_size
            common = {
                "ETag": f'"{size:x}-{st.st_mtime_ns:x}"',
                "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                "Content-Type": "application/octet-stream",
            }
            if_match = self.headers.get("If-Match")
            if if_match is not None and if_match.strip() not in ("*", common["ETag"]):
                self._plain(412, "precondition failed")
                return
            wanted = self.headers.get("Range")
            span = None
            if wanted is not None and not self.server.ignore_ranges:
                span = _parse_range(wanted, size)
            if span == "unsatisfiable":
                self._plain(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
                return
            if isinstance(span, tuple):
                first, last = span
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            else:
                first, last = 0, size - 1
                self.send_response(200)
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "none" if self.server.ignore_ranges else "bytes")
            for name, value in common.items():
                self.send_header(name, value)
            self.end_headers()
            if body:
                handle.seek(first)
                remaining = last - first + 1
                while remaining > 0:
                    chunk = handle.read(min(_CHUNK, remaining))
                    if not chunk:  # the file shrank while being sent
                        self.close_connection = True
                        return
                    self.wfile.write(chunk)
                    remaining -= len(chunk)


class StaticHTTPServer:
    """Serve a directory over HTTP/1.1 on 127.0.0.1, in a background thread.

    Parameters
    ----------
    directory : Path
        The directory whose files are served (``/a/b.fits`` is ``directory/a/b.fits``).
    ignore_ranges : bool, optional
        Answer every ``GET`` with ``200`` and the whole file, whatever ``Range`` says.
    authorization : str, optional
        Answer ``401`` to every request whose ``Authorization`` header is not this.

    ``If-Match`` is honoured (``412`` when the file's ``ETag`` differs).

    Attributes
    ----------
    directory : Path
        The served directory, resolved.
    ignore_ranges : bool
        As given.
    """

    def __init__(
        self,
        directory: Path,
        *,
        ignore_ranges: bool = False,
        authorization: str | None = None,
    ) -> None:
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise NotADirectoryError(f"{self.directory} is not a directory")
        self.ignore_ranges = ignore_ranges
        self._authorization = authorization
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, such as ``"http://127.0.0.1:40123"`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> int:
        """Requests answered so far (every method and status)."""
        server = self._server
        if server is None:
            return 0
        with server.count_lock:
            return server.request_count

    def reset_requests(self) -> None:
        """Set the `requests` counter back to zero."""
        server = self._server
        if server is not None:
            with server.count_lock:
                server.request_count = 0

    def start(self) -> StaticHTTPServer:
        """Start listening on a free port of 127.0.0.1.

        Returns
        -------
        StaticHTTPServer
            This server, now answering at `url`.
        """
        if self._server is not None:
            raise RuntimeError("the server is already running")
        server = _Server(str(self.directory), self.ignore_ranges, self._authorization)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="StaticHTTPServer",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and join the thread.

        Safe to call more than once.
        """
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join(timeout=10)
        with server.count_lock:
            connections = list(server.connections)
        for connection in connections:
            # Wakes handler threads waiting on idle keep-alive connections.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> StaticHTTPServer:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"StaticHTTPServer({str(self.directory)!r}, {state})"
