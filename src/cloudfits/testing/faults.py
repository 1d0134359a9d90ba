"""A reverse HTTP/1.1 proxy that injects the faults of real object stores, for tests.

:class:`FaultProxy` sits in front of a local server (SeaweedFS, the static HTTP server)
and, at configurable rates, answers ``GET`` requests with what clouds do on a bad day:
500 and 503 errors, S3's ``SlowDown``, a connection reset in the middle of the body, a
body cut short (the connection closes early), a stall longer than the client's timeout,
and a ``Content-Range`` (or body) other than the one asked for. Requests are forwarded
byte for byte (``Host`` included, so S3 signatures stay valid). It runs its own asyncio
loop in a daemon thread.

Examples
--------
>>> rates = FaultRates(server_error=0.05, reset=0.05)
>>> with FaultProxy("http://127.0.0.1:8333", rates, seed=1) as proxy:  # doctest: +SKIP
...     provider = S3Provider(S3Config(endpoint_url=proxy.url))
...     ...
...     print(proxy.injected)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import threading
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from .hostile import HOSTILE_KINDS, HostileRates, hostile_answer
from .proxy import _abort, _Closed, _parse_head, _read_head, _tokens

__all__ = ["FAULT_KINDS", "FaultProxy", "FaultRates"]

_LIMIT = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per ``GET`` request (they add up to the total rate).

    Attributes
    ----------
    server_error : float
        ``500 InternalError``.
    unavailable : float
        ``503 ServiceUnavailable``.
    slow_down : float
        ``503 SlowDown``, S3's throttling answer.
    reset : float
        The headers and half of the body, then a connection reset.
    truncate : float
        The headers and half of the body, then a clean close: a short body.
    stall : float
        No answer for `FaultProxy.stall_seconds`, then a close.
    wrong_range : float
        A ``206`` whose ``Content-Range`` names other bytes than those asked for, or
        whose body is shorter than its ``Content-Range`` (each half of the time).
    """

    server_error: float = 0.0
    unavailable: float = 0.0
    slow_down: float = 0.0
    reset: float = 0.0
    truncate: float = 0.0
    stall: float = 0.0
    wrong_range: float = 0.0

    @property
    def total(self) -> float:
        """The probability that a request is faulted."""
        return float(sum(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def uniform(cls, total: float, *, stall: float | None = None) -> FaultRates:
        """``total`` spread evenly over every kind (``stall`` may be set apart)."""
        names = [f.name for f in fields(cls)]
        if stall is not None:
            names.remove("stall")
            rest = (total - stall) / len(names)
            return cls(**{name: rest for name in names}, stall=stall)
        return cls(**{name: total / len(names) for name in names})


#: Every kind of fault, as counted in `FaultProxy.injected`.
FAULT_KINDS = tuple(f.name for f in fields(FaultRates))

_ERRORS = {
    "server_error": (500, "Internal Server Error", "InternalError"),
    "unavailable": (503, "Service Unavailable", "ServiceUnavailable"),
    "slow_down": (503, "Slow Down", "SlowDown"),
}


def _error_response(kind: str) -> bytes:
    status, reason, code = _ERRORS[kind]
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>injected {kind}</Message></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def _head_bytes(status_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [status_line, *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_body(reader: asyncio.StreamReader, fields_: dict[str, str]) -> bytes:
    if "chunked" in _tokens(fields_, "transfer-encoding"):
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while await reader.readuntil(b"\r\n") != b"\r\n":
            pass
        return b"".join(parts)
    return await reader.readexactly(int(fields_.get("content-length") or 0))


class FaultProxy:
    """Reverse proxy on 127.0.0.1 injecting store faults at the given rates.

    Parameters
    ----------
    upstream : str
        Base URL of the real server, e.g. ``"http://127.0.0.1:8333"``.
    rates : FaultRates
        Probability of each fault per ``GET``; ``HEAD`` and writes pass untouched.
    seed : int, optional
        Seed of the fault draws.
    stall_seconds : float
        How long a stalled answer stays silent (choose more than the client's timeout).
    hostile : HostileRates, optional
        Probability of each hostile answer (`cloudfits.testing.hostile`) per ``GET``
        that no fault was drawn for.
    redirect_to : str, optional
        Base URL that ``redirect`` answers send the client to.
    slow_rate : float
        Bytes per second of a ``slowloris`` body.
    slow_seconds : float
        How long a ``slowloris`` body trickles at most.

    Attributes
    ----------
    injected : collections.Counter
        Faults injected so far, by kind.
    requests : int
        ``GET`` requests seen so far.
    """

    def __init__(
        self,
        upstream: str,
        rates: FaultRates,
        *,
        seed: int = 0,
        stall_seconds: float = 2.0,
        hostile: HostileRates | None = None,
        redirect_to: str | None = None,
        slow_rate: float = 4.0,
        slow_seconds: float = 10.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream
        self.rates = rates
        self.stall_seconds = stall_seconds
        self.hostile = hostile or HostileRates()
        self.redirect_to = redirect_to
        self.slow_rate = slow_rate
        self.slow_seconds = slow_seconds
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._address = (parts.hostname, parts.port or 80)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """Base URL of the proxy."""
        if self._port is None:
            raise RuntimeError("the proxy is not running; call start() first")
        return f"http://127.0.0.1:{self._port}"

    def _draw(self) -> str | None:
        with self._lock:
            self.requests += 1
            x = self._rng.random()
            for kind in FAULT_KINDS:
                x -= getattr(self.rates, kind)
                if x < 0:
                    self.injected[kind] += 1
                    return kind
            for kind in HOSTILE_KINDS:
                x -= getattr(self.hostile, kind)
                if x < 0:
                    self.injected[kind] += 1
                    return kind
        return None

    def start(self) -> FaultProxy:
        """Start serving in a background thread; return this proxy."""
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="FaultProxy", daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._port is None:
            raise RuntimeError("the fault proxy failed to start")
        return self

    def stop(self) -> None:
        """Close every connection and join the thread; safe to call twice."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None:
            return
        if stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        self._thread = self._loop = None
        self._port = None

    def __enter__(self) -> FaultProxy:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------ event-loop side

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            ready.set()
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0, limit=_LIMIT)
        self._port = int(server.sockets[0].getsockname()[1])
        ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=2)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            while await self._one(reader, writer, upstream):
                pass
        except (Exception, asyncio.CancelledError):
            pass  # peer gone or proxy stopping: drop the connection
        finally:
            self._tasks.discard(task)
            _abort(writer)
            for _, up_writer in upstream:
                _abort(up_writer)

    async def _exchange(
        self, raw: bytes, body: bytes, upstream: list[tuple[asyncio.StreamReader, Any]]
    ) -> tuple[bytes, dict[str, str], bytes]:
        """Forward one request; the answer's head, fields and whole body."""
        if upstream and upstream[0][0].at_eof():
            _abort(upstream.pop()[1])
        if not upstream:
            upstream.append(await asyncio.open_connection(*self._address, limit=_LIMIT))
        up_reader, up_writer = upstream[0]
        up_writer.write(raw + body)
        await up_writer.drain()
        head = await _read_head(up_reader)
        _, fields_ = _parse_head(head)
        method = raw.split(b" ", 1)[0]
        payload = b"" if method == b"HEAD" else await _read_body(up_reader, fields_)
        if "close" in _tokens(fields_, "connection"):
            _abort(upstream.pop()[1])
        return head, fields_, payload

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Any
    ) -> bool:
        try:
            raw = await _read_head(reader)
        except _Closed:
            return False
        (method, target, _version), request_fields = _parse_head(raw)
        body = await reader.readexactly(int(request_fields.get("content-length") or 0))
        kind = self._draw() if method == "GET" else None
        if kind in _ERRORS:
            assert kind is not None
            writer.write(_error_response(kind))
            await writer.drain()
            return True
        if kind == "stall":
            await asyncio.sleep(self.stall_seconds)
            return False
        head, fields_, payload = await self._exchange(raw, body, up)
        if kind is None and "chunked" not in _tokens(fields_, "transfer-encoding"):
            writer.write(head + payload)  # untouched, HEAD answers included
            await writer.drain()
            return True
        status_line = head.decode("latin-1").split("\r\n", 1)[0]
        headers = [
            (k, v)
            for k, v in (
                line.split(":", 1) for line in head.decode("latin-1").split("\r\n")[1:] if line
            )
            if k.strip().lower() not in ("content-length", "transfer-encoding")
        ]
        headers = [(k.strip(), v.strip()) for k, v in headers]
        if kind in ("reset", "truncate") and len(payload) > 1:
            cut = len(payload) // 2
            writer.write(
                _head_bytes(status_line, [*headers, ("Content-Length", str(len(payload)))])
                + payload[:cut]
            )
            await writer.drain()
            if kind == "reset":
                _abort(writer)
            else:
                writer.close()
            return False
        if kind in HOSTILE_KINDS and (" 206 " in status_line or " 200 " in status_line):
            return await hostile_answer(
                kind,
                writer,
                status_line,
                headers,
                payload,
                target=target,
                redirect_to=self.redirect_to,
                slow_rate=self.slow_rate,
                slow_seconds=self.slow_seconds,
            )
        if kind == "wrong_range" and " 206 " in status_line + " ":
            payload, headers = self._misrange(payload, headers)
        writer.write(
            _head_bytes(status_line, [*headers, ("Content-Length", str(len(payload)))]) + payload
        )
        await writer.drain()
        return True

    def _misrange(
        self, payload: bytes, headers: list[tuple[str, str]]
    ) -> tuple[bytes, list[tuple[str, str]]]:
        with self._lock:
            shift_header = self._rng.random() < 0.5
        changed = []
        for key, value in headers:
            match = _CONTENT_RANGE.match(value) if key.lower() == "content-range" else None
            if match is not None and shift_header:
                first, last = int(match.group(1)) + 1, int(match.group(2)) + 1
                value = f"bytes {first}-{last}/{match.group(3)}"
            changed.append((key, value))
        if not shift_header and len(payload) > 1:
            payload = payload[: len(payload) // 2]  # consistent framing, short content
        return payload, changed
