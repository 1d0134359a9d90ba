"""A recording, latency-injecting reverse HTTP/1.1 proxy for tests and benchmarks.

:class:`RecordingProxy` listens on 127.0.0.1, forwards every request byte for byte (including
the ``Host`` header, so AWS signatures stay valid) to one upstream server, relays the response
back unchanged, and records one :class:`RequestRecord` per request. It runs its own asyncio
event loop in a daemon thread and needs nothing beyond the standard library.

Examples
--------
>>> with RecordingProxy("http://127.0.0.1:8333", delay=0.05) as proxy:  # doctest: +SKIP
...     client = boto3.client("s3", endpoint_url=proxy.url)
...     ...
...     print(proxy.request_count, proxy.response_bytes_total)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["RecordingProxy", "RequestRecord", "dependent_round_trips"]

_LIMIT = 1 << 20  # longest accepted message head or chunk-size line
_BLOCK = 1 << 16  # relay block size
_EXPECT_TIMEOUT = 1.0  # seconds to wait for the upstream's "100 Continue"

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class RequestRecord:
    """One proxied request and the final response to it.

    Attributes
    ----------
    method : str
        Request method, e.g. ``"GET"``.
    target : str
        Request target as sent by the client (path and query).
    headers : dict of str to str
        Request headers with lower-cased names (repeated headers joined with ``", "``).
    status : int
        Status code of the final response (502 if the upstream could not be reached).
    request_bytes : int
        Number of request body bytes (de-chunked).
    response_bytes : int
        Number of response body bytes relayed to the client (de-chunked; for a response cut
        short by a disconnect, the bytes relayed until then).
    started : float
        `time.monotonic` when the request head arrived (before any added delay).
    finished : float
        `time.monotonic` when the exchange was recorded (just before the last byte went out).
    """

    method: str
    target: str
    headers: dict[str, str]
    status: int
    request_bytes: int
    response_bytes: int
    started: float = 0.0
    finished: float = 0.0


def dependent_round_trips(records: list[RequestRecord]) -> int:
    """Length of the longest chain of requests each sent after the previous one's answer.

    Requests in flight at the same time count once; a request that starts only after
    another has finished adds one. With added latency this is the number of round trips
    a client waited for one after another.
    """
    depth: list[tuple[float, int]] = []  # (finished, depth) of the requests seen so far
    longest = 0
    for record in sorted(records, key=lambda r: r.started):
        level = 1 + max((d for f, d in depth if f <= record.started), default=0)
        depth.append((record.finished, level))
        longest = max(longest, level)
    return longest


class _Closed(Exception):
    """The peer closed the connection cleanly between two messages."""


class _Tally:
    """Count of relayed body bytes, with a hook run just before the last byte goes out.

    The hook records the exchange, so a request is listed in ``records`` by the time its
    client has read the whole response.
    """

    __slots__ = ("n", "on_complete")

    def __init__(self) -> None:
        self.n = 0
        self.on_complete: Callable[[], None] | None = None

    def complete(self) -> None:
        hook, self.on_complete = self.on_complete, None
        if hook is not None:
            hook()


@dataclass
class _Exchange:
    """State of one request while it is being proxied."""

    method: str
    target: str
    fields: dict[str, str]
    status: int = 0
    sent: _Tally = field(default_factory=_Tally)
    received: _Tally = field(default_factory=_Tally)
    recorded: bool = False
    started: float = field(default_factory=time.monotonic)


def _parse_head(raw: bytes) -> tuple[list[str], dict[str, str]]:
    """Split a message head into start-line words and lower-cased header fields."""
    lines = raw.decode("latin-1").split("\r\n")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"malformed header line {line!r}")
            key, value = name.strip().lower(), value.strip()
            fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return lines[0].split(" ", 2), fields


def _tokens(fields: dict[str, str], name: str) -> list[str]:
    """Comma-separated, lower-cased tokens of a header."""
    return [t.strip().lower() for t in fields.get(name, "").split(",") if t.strip()]


def _persistent(version: str, fields: dict[str, str]) -> bool:
    """Whether a message allows further messages on its connection."""
    tokens = _tokens(fields, "connection")
    return "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """Read a message head up to and including the blank line."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            raise _Closed from None
        raise ConnectionError("connection closed inside a message head") from None


async def _relay_fixed(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    length: int | None,
    tally: _Tally,
    final: bool = True,
) -> None:
    """Copy ``length`` bytes, or up to EOF if None (``final``: they end the message)."""
    remaining = length
    while remaining != 0:
        block = await reader.read(_BLOCK if remaining is None else min(remaining, _BLOCK))
        if not block:
            if remaining is None:
                break
            raise ConnectionError("connection closed inside a message body")
        tally.n += len(block)
        if remaining is not None:
            remaining -= len(block)
            if final and not remaining:
                tally.complete()
        writer.write(block)
        await writer.drain()
    if final:
        tally.complete()  # no-op unless the body was empty or delimited by EOF


async def _relay_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tally: _Tally
) -> None:
    """Copy a chunked body verbatim (sizes, extensions, trailers), counting the data."""
    while size := int((line := await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
        writer.write(line)
        await _relay_fixed(reader, writer, size, tally, final=False)
        writer.write(await reader.readexactly(2))
    writer.write(line)
    while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
        writer.write(trailer)
    tally.complete()
    writer.write(trailer)
    await writer.drain()


def _abort(writer: asyncio.StreamWriter | None) -> None:
    """Drop a connection at once (unsent data is discarded); never raises."""
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.transport.abort()


class RecordingProxy:
    """Reverse HTTP/1.1 proxy on 127.0.0.1 that records requests and can add latency.

    Parameters
    ----------
    upstream : str
        Base URL of the server to forward to, e.g. ``"http://127.0.0.1:8333"``.
    delay : float, optional
        Seconds to wait before forwarding each request. Connections are served concurrently,
        so delays on different connections overlap.

    Notes
    -----
    Messages are relayed unchanged, with keep-alive, ``Content-Length`` and ``chunked``
    bodies, and body-less responses (HEAD, 1xx, 204, 304). Each client connection gets its own
    upstream connection. ``Expect: 100-continue`` is honoured end to end: the body is sent
    after the upstream's interim answer (or after one second without one). Protocol upgrades
    (101) and CONNECT are not supported.
    """

    def __init__(self, upstream: str, *, delay: float = 0.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream = upstream
        self.delay = float(delay)
        self._address = (parts.hostname, parts.port or 80)
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    @property
    def url(self) -> str:
        """Base URL of the proxy, e.g. ``"http://127.0.0.1:40123"``."""
        if self._port is None:
            raise RuntimeError("the proxy is not running; call start() first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def records(self) -> list[RequestRecord]:
        """A snapshot (copy) of the records of all requests so far, oldest first."""
        with self._lock:
            return list(self._records)

    @property
    def request_count(self) -> int:
        """Number of recorded requests."""
        with self._lock:
            return len(self._records)

    @property
    def response_bytes_total(self) -> int:
        """Sum of ``response_bytes`` over all records."""
        with self._lock:
            return sum(r.response_bytes for r in self._records)

    def reset(self) -> None:
        """Forget all records."""
        with self._lock:
            self._records.clear()

    def start(self) -> RecordingProxy:
        """Start listening in a background thread.

        Returns
        -------
        RecordingProxy
            This proxy, now accepting connections at :attr:`url`.
        """
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="RecordingProxy", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise RuntimeError("the proxy failed to start") from failure[0]
        return self

    def stop(self) -> None:
        """Close the listening socket and all connections, and join the thread.

        Safe to call more than once.
        """
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None:
            return
        if stop_event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=10)
        self._thread = self._loop = None
        self._port = None

    def __enter__(self) -> RecordingProxy:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------ event-loop side

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stop_event = asyncio.Event()
        self._closing = False
        server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0, limit=_LIMIT)
        self._port = int(server.sockets[0].getsockname()[1])
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            self._closing = True
            server.close()
            while self._tasks:
                tasks = list(self._tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._tasks.difference_update(tasks)
                await asyncio.sleep(0)  # let just-accepted connections see _closing
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=2)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closing or task is None:
            _abort(writer)
            return
        self._tasks.add(task)
        upstream: list[_Conn] = []  # the connection to reuse, if any
        try:
            while await self._one_request(reader, writer, upstream):
                pass
            writer.close()  # flushes what is still buffered, unlike abort()
            await asyncio.wait_for(writer.wait_closed(), timeout=5)
        except (Exception, asyncio.CancelledError):
            pass  # peer gone, malformed message, proxy stopping: drop the connection
        finally:
            self._tasks.discard(task)
            _abort(writer)
            for _, up_writer in upstream:
                _abort(up_writer)

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: list[_Conn]
    ) -> bool:
        """Proxy one request; return whether the client connection stays open."""
        raw = await _read_head(reader)
        (method, target, version), fields = _parse_head(raw)
        ex = _Exchange(method, target, fields)
        keep_alive = _persistent(version, fields)
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if upstream and (upstream[0][0].at_eof() or upstream[0][1].transport.is_closing()):
            _abort(upstream.pop()[1])  # the upstream closed it while idle
        if not upstream:
            try:
                upstream.append(await asyncio.open_connection(*self._address, limit=_LIMIT))
            except OSError:
                await self._bad_gateway(writer, ex)
                return False
        up_reader, up_writer = upstream[0]
        try:
            reusable = await self._forward(reader, writer, up_reader, up_writer, raw, ex)
        except BaseException:
            _abort(upstream.pop()[1])  # its state is unknown now
            raise
        finally:
            if ex.status:
                self._record(ex)
        if not reusable:  # "Connection: close", close-delimited body, ...: mirror it
            _abort(upstream.pop()[1])
            return False
        return keep_alive

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        raw: bytes,
        ex: _Exchange,
    ) -> bool:
        """Send the request upstream and relay the response; return upstream reusability."""
        up_writer.write(raw)
        await up_writer.drain()
        chunked = "chunked" in _tokens(ex.fields, "transfer-encoding")
        length = 0 if chunked else int(ex.fields.get("content-length") or 0)
        if not chunked and not length:
            return await self._relay_response(up_reader, writer, ex, None)
        first: bytes | None = None
        if "100-continue" in _tokens(ex.fields, "expect"):
            pending = asyncio.ensure_future(_read_head(up_reader))
            await asyncio.wait({pending}, timeout=_EXPECT_TIMEOUT)
            if not pending.done():  # no answer yet: send the body anyway
                pending.cancel()  # readuntil() leaves partial data in the buffer
                await asyncio.wait({pending})
            elif int(_parse_head(first := pending.result())[0][1]) >= 200:
                # Answered without wanting the body: relay the answer, then close both
                # connections, since the client may or may not send the body now.
                await self._relay_response(up_reader, writer, ex, first)
                return False
            else:  # relay the "100 Continue" to the client, which then sends the body
                writer.write(first)
                await writer.drain()
                first = None
        if chunked:
            await _relay_chunked(reader, up_writer, ex.sent)
        else:
            await _relay_fixed(reader, up_writer, length, ex.sent)
        return await self._relay_response(up_reader, writer, ex, first)

    async def _relay_response(
        self,
        up_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ex: _Exchange,
        raw: bytes | None,
    ) -> bool:
        """Relay interim responses and the final response; return upstream reusability."""
        while True:
            raw = raw or await _read_head(up_reader)
            (version, status, *_), fields = _parse_head(raw)
            code = int(status)
            if not (100 <= code < 200) or code == 101:
                break
            writer.write(raw)  # interim response, e.g. "100 Continue"
            await writer.drain()
            raw = None
        ex.status = code
        ex.received.on_complete = lambda: self._record(ex)
        reusable = _persistent(version, fields) and code != 101
        chunked = "chunked" in _tokens(fields, "transfer-encoding")
        length = int(fields["content-length"]) if "content-length" in fields else None
        if ex.method == "HEAD" or code in (101, 204, 304) or (length == 0 and not chunked):
            ex.received.complete()
            writer.write(raw)
            await writer.drain()
            return reusable
        writer.write(raw)
        if chunked:
            await _relay_chunked(up_reader, writer, ex.received)
        else:  # without Content-Length, the body ends when the upstream closes
            await _relay_fixed(up_reader, writer, length, ex.received)
            reusable = reusable and length is not None
        return reusable

    async def _bad_gateway(self, writer: asyncio.StreamWriter, ex: _Exchange) -> None:
        """Answer 502 when the upstream cannot be reached."""
        body = f"cannot connect to upstream {self.upstream}\n".encode()
        ex.status, ex.received.n = 502, len(body)
        self._record(ex)
        writer.write(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    def _record(self, ex: _Exchange) -> None:
        if ex.recorded:
            return
        ex.recorded = True
        record = RequestRecord(
            method=ex.method,
            target=ex.target,
            headers=ex.fields,
            status=ex.status,
            request_bytes=ex.sent.n,
            response_bytes=ex.received.n,
            started=ex.started,
            finished=time.monotonic(),
        )
        with self._lock:
            self._records.append(record)
