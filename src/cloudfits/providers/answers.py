"""What a provider received for one range read, for the engine to check.

A provider that offers ``read_range`` (see `cloudfits.providers.base.Provider`) fills
the caller's buffer and returns a `RangeAnswer`: the status, the ``Content-Range``,
``Content-Length``, ``Content-Encoding`` and ``ETag`` of the answer, how many bytes of
the asked range arrived and whether the body went on past them. The range engine
(`cloudfits.fetch.checks`) compares that with what it knows (the indexed size and
ETag) before any byte is used: one check for every provider.

`read_body` reads a urllib3 body into a buffer and one byte past it, under a deadline
that covers the whole body: a server that sends a byte now and then, each within the
socket's read timeout, cannot keep a read alive past it (`deadlines` shuts the
socket down when the time is up).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import TransientProviderError

__all__ = [
    "RangeAnswer",
    "deadlines",
    "header_int",
    "read_answer",
    "read_body",
    "read_whole_into",
    "seconds_left",
    "socket_of",
    "unquote_etag",
]


@dataclass(frozen=True)
class RangeAnswer:
    """What came back for a read of ``[start, start + len(out))``.

    Attributes
    ----------
    status : int
        The HTTP status (206, 200 when the range was ignored, 416 past the end).
    received : int
        Bytes of the asked range written to the caller's buffer.
    overflow : bool
        The body went on past the asked bytes (a 206 longer than asked for, or a 200
        longer than the object's bytes up to the end of the range).
    content_range : str or None
        The ``Content-Range`` header, as sent.
    content_length : int or None
        The ``Content-Length`` header, where sent.
    content_encoding : str or None
        The ``Content-Encoding`` header, where sent (lower case).
    etag : str or None
        The answer's entity tag, without quotes (weak tags keep their ``W/``).
    skipped : int
        Body bytes read and dropped before the range (a 200 answer sends the object
        from its start): they crossed the network, so they are counted.
    """

    status: int
    received: int
    overflow: bool = False
    content_range: str | None = None
    content_length: int | None = None
    content_encoding: str | None = None
    etag: str | None = None
    skipped: int = 0


def unquote_etag(value: Any) -> str | None:
    """An ``ETag`` header as `~cloudfits.providers.base.ObjectInfo` holds it."""
    if not value:
        return None
    text = str(value)
    return text if text.startswith("W/") else text.strip('"')


def header_int(value: Any) -> int | None:
    """A numeric header's value, or None when absent or not a number."""
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def seconds_left(deadline: float | None, timeout: float) -> float:
    """A socket timeout of at most ``timeout`` seconds that ends by ``deadline``."""
    if deadline is None:
        return timeout
    return max(0.001, min(timeout, deadline - time.monotonic()))


class _Watchdog:
    """Shuts down the sockets of bodies that outlive their deadline; one thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, list[Any]]] = []
        self._count = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, sock: socket.socket, deadline: float) -> list[Any]:
        """Watch ``sock`` until `release`; returns the token ``[sock, fired]``."""
        token: list[Any] = [sock, False]
        with self._cond:
            if self._thread is None or self._pid != os.getpid():
                self._heap, self._pid = [], os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="cloudfits-read-deadline", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._count), token))
            self._cond.notify()
        return token

    def release(self, token: list[Any]) -> bool:
        """Stop watching; True when the deadline had fired."""
        with self._cond:
            fired = bool(token[1])
            token[0] = None
        return fired

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2][0] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                token = heapq.heappop(self._heap)[2]
                sock, token[1] = token[0], True
            with contextlib.suppress(OSError):
                # A blocked recv returns at once; the reader sees the body end early.
                sock.shutdown(socket.SHUT_RDWR)


#: The process's watchdog of body deadlines.
deadlines = _Watchdog()


def socket_of(response: Any) -> socket.socket | None:
    """The socket under a urllib3 response, where it can be found."""
    connection = getattr(response, "_connection", None) or getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    raw = getattr(getattr(getattr(response, "_fp", None), "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def read_body(
    response: Any,
    out: memoryview,
    *,
    deadline: float | None,
    what: str,
    peek: bool = True,
) -> tuple[int, bool]:
    """Read up to ``len(out)`` body bytes of a urllib3 response into ``out``, and one more.

    The body is read without decoding any content coding (the engine refuses coded
    answers), straight from the socket into ``out`` where the response allows it.
    Returns the bytes written and, with ``peek``, whether the body had more. With
    ``deadline`` (a `time.monotonic` value), the socket is shut down when it passes,
    and `TransientProviderError` is raised naming ``what``.
    """
    raw: Any = getattr(response, "_fp", None)
    direct = raw is not None and hasattr(raw, "readinto")
    sock = socket_of(response) if deadline is not None else None
    token = deadlines.watch(sock, deadline) if sock is not None and deadline else None
    got, more, fired = 0, False, False
    try:
        while got < len(out):
            if direct:
                k = raw.readinto(out[got:])
            else:
                chunk = response.read(len(out) - got, decode_content=False)
                k = len(chunk)
                out[got : got + k] = chunk
            if not k:
                break
            got += k
        if peek and got == len(out):
            extra = raw.read(1) if direct else response.read(1, decode_content=False)
            more = bool(extra)
    except Exception as err:
        fired = deadlines.release(token) if token is not None else False
        token = None
        if fired:
            raise TransientProviderError(f"{what}: slower than the read deadline allows") from err
        raise
    finally:
        if token is not None:
            fired = deadlines.release(token)
    if fired:
        raise TransientProviderError(f"{what}: slower than the read deadline allows")
    if direct and raw.isclosed():
        response.release_conn()  # the body is complete: the connection is reusable
    return got, more


def read_whole_into(
    response: Any, start: int, out: memoryview, *, deadline: float | None, what: str
) -> tuple[int, bool]:
    """For a 200 answer: the body's bytes ``[start, start + len(out))`` into ``out``.

    Reads the body up to the end of the asked range and one byte more, never the rest.
    Returns the bytes written and whether the body went on past them.
    """
    skipped = 0
    scratch = memoryview(bytearray(min(start, 1 << 20))) if start else None
    while scratch is not None and skipped < start:
        step = scratch[: min(len(scratch), start - skipped)]
        n, _ = read_body(response, step, deadline=deadline, what=what, peek=False)
        if not n:
            return 0, False
        skipped += n
    return read_body(response, out, deadline=deadline, what=what)


def read_answer(
    response: Any,
    headers: Any,
    start: int,
    out: memoryview,
    *,
    deadline: float | None,
    what: str,
    version_header: str = "ETag",
) -> RangeAnswer:
    """Read the body of a range answer into ``out`` and report it, unchecked.

    ``response`` is the urllib3 response of a ``GET`` sent with ``Range`` and
    ``Accept-Encoding: identity`` (for ``requests``, its ``raw``), ``headers`` its
    headers (looked up without regard to case). A 206 body is read one byte past
    ``out``; a 200 body from the object's start, up to the range's end and one byte
    more; other answers are not read. ``version_header`` names the header that tells
    the object's version (``x-goog-generation`` for GCS, whose index holds generations). Errors of
    the body and the deadline are raised as `read_body` raises them.
    """
    status = int(response.status)
    got, more = 0, False
    if status == 206:
        got, more = read_body(response, out, deadline=deadline, what=what)
    elif status == 200:
        got, more = read_whole_into(response, start, out, deadline=deadline, what=what)
    encoding = headers.get("Content-Encoding")
    return RangeAnswer(
        status=status,
        received=got,
        overflow=more,
        content_range=headers.get("Content-Range"),
        content_length=header_int(headers.get("Content-Length")),
        content_encoding=str(encoding).lower() if encoding else None,
        etag=unquote_etag(headers.get(version_header)),
        # The bytes before the range, and the one byte past it read to see whether
        # the body goes on, came over the network too.
        skipped=start + int(more) if status == 200 and got else 0,
    )
