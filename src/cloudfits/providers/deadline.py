"""urllib3 pools whose answers must begin by the read's deadline.

A socket's read timeout bounds each wait for a byte, not the whole answer: a server
that sends its status line and headers one byte at a time, each within the timeout,
holds a request open for as long as it likes. `read_body` bounds the body; this
bounds the part before it. The pools of `deadline_pool_manager` make connections
whose ``getresponse`` is watched by `cloudfits.providers.answers.deadlines` when the
request runs inside `request_deadline`: when the deadline passes, the socket is shut
down, the wait ends at once with `ReadDeadlineExceeded` (which urllib3 does not retry:
the deadline covers the retries too), and `deadline_passed` says so.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .answers import deadlines

__all__ = [
    "ReadDeadlineExceeded",
    "deadline_passed",
    "deadline_reached",
    "deadline_pool_manager",
    "request_deadline",
    "warm_resolver",
    "watch_pool_manager",
]

_local = threading.local()


@contextlib.contextmanager
def request_deadline(deadline: float | None) -> Iterator[None]:
    """Requests made by this thread inside the block must have their status line and
    headers by ``deadline`` (a `time.monotonic` value; None: no bound)."""
    before = getattr(_local, "deadline", None)
    _local.deadline, _local.fired = deadline, False
    try:
        yield
    finally:
        _local.deadline = before


def deadline_passed() -> bool:
    """Whether the last `request_deadline` block of this thread was cut by its deadline."""
    return bool(getattr(_local, "fired", False))


def deadline_reached(deadline: float | None) -> bool:
    """Whether a request that just failed failed for ``deadline``: its wait was cut by
    it (`deadline_passed`), or a socket timeout capped at the time left ran out."""
    return deadline_passed() or (deadline is not None and time.monotonic() >= deadline)


class ReadDeadlineExceeded(urllib3.exceptions.HTTPError):
    """The status line and headers did not arrive by the read's deadline."""


class _Watched:
    """``getresponse`` under the thread's request deadline."""

    sock: Any

    def getresponse(self) -> Any:
        deadline = getattr(_local, "deadline", None)
        sock = self.sock
        token = None
        if deadline is not None and isinstance(sock, socket.socket):
            token = deadlines.watch(sock, deadline)
        try:
            return super().getresponse()  # type: ignore[misc]
        except Exception as err:
            if token is not None and deadlines.release(token):
                _local.fired = True
                raise ReadDeadlineExceeded("the answer did not begin by the deadline") from err
            raise
        finally:
            if token is not None and deadlines.release(token):
                _local.fired = True


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def deadline_pool_manager(**kwargs: Any) -> urllib3.PoolManager:
    """A `urllib3.PoolManager` (same arguments) whose connections honour
    `request_deadline`."""
    return watch_pool_manager(urllib3.PoolManager(**kwargs))


def watch_pool_manager(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """Make the connections of ``manager`` honour `request_deadline`; return it.

    For a pool manager made elsewhere, such as a ``requests`` adapter's
    ``poolmanager`` (the sessions of the SDKs the plugins use): its pools are made
    again, with watched connections.
    """
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    manager.clear()
    warm_resolver()
    return manager


_warm_up = threading.Lock()
_warmed: list[threading.Thread] = []


def warm_resolver() -> None:
    """Have the C library's resolver set up, once per process, on a thread of its own.

    A process's first ``getaddrinfo`` costs milliseconds whatever the name (3 to 4 ms
    here, for ``127.0.0.1``), and the first connections of a read all wait for it. Made
    when a pool is, it is done by the time the first request leaves. The name resolved
    is the loopback address, in numeric form: nothing is sent anywhere.
    """
    with _warm_up:
        if _warmed:
            return
        thread = threading.Thread(target=_resolve_loopback, name="resolver-warm-up", daemon=True)
        _warmed.append(thread)
    thread.start()


def _resolve_loopback() -> None:
    with contextlib.suppress(OSError):
        socket.getaddrinfo("127.0.0.1", 80, 0, socket.SOCK_STREAM)
