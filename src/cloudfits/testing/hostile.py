"""Hostile answers for `cloudfits.testing.faults.FaultProxy`: a server that lies.

Besides the faults of a store on a bad day, a misbehaving or malicious server answers
a range read with bytes that look plausible: a body longer than its ``Content-Range``
(by ``Content-Length`` or chunked), an HTML page, the whole object with junk in front,
a wrong total, a gzip-coded body, a trickle of one byte now and then, another version
of the object, or a redirect to another host. `HostileRates` gives the probability of
each per ``GET`` answered ``206`` or ``200``; the proxy counts them in ``injected``.

Examples
--------
>>> rates = HostileRates(long_body=0.1, gzip=0.1, slowloris=0.02)
>>> with FaultProxy(upstream, FaultRates(), hostile=rates) as proxy:  # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import asyncio
import gzip
import re
from dataclasses import dataclass, fields

__all__ = ["HOSTILE_KINDS", "HostileRates", "hostile_answer"]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_JUNK = b"<html><body>Sorry, this page is not available</body></html>\n"


@dataclass(frozen=True)
class HostileRates:
    """Probability of each hostile answer per ``GET`` whose real answer is 206 or 200.

    Attributes
    ----------
    long_body : float
        A 206 whose ``Content-Length`` and body are longer than its ``Content-Range``.
    chunked_long : float
        A chunked 206 whose body goes on past its ``Content-Range``.
    html : float
        A 200 HTML page without an ``ETag``.
    junk_front : float
        A 200 whose body is junk followed by the real answer's bytes.
    wrong_total : float
        A 206 whose ``Content-Range`` total is not the object's size.
    gzip : float
        The real answer, gzip-coded (``Content-Encoding: gzip``).
    slowloris : float
        The real answer's head, then its body at `FaultProxy.slow_rate` bytes a second.
    replaced : float
        Other bytes of the same length, with another ``ETag`` (and, where the answer
        has one, another ``x-goog-generation``): a replaced object.
    redirect : float
        A ``302`` to the same target on `FaultProxy.redirect_to` (another host).
    """

    long_body: float = 0.0
    chunked_long: float = 0.0
    html: float = 0.0
    junk_front: float = 0.0
    wrong_total: float = 0.0
    gzip: float = 0.0
    slowloris: float = 0.0
    replaced: float = 0.0
    redirect: float = 0.0

    @classmethod
    def uniform(cls, total: float, *, slowloris: float = 0.0) -> HostileRates:
        """``total`` spread evenly over every kind but ``slowloris``, set apart."""
        names = [f.name for f in fields(cls) if f.name != "slowloris"]
        return cls(**{n: (total - slowloris) / len(names) for n in names}, slowloris=slowloris)


#: Every hostile answer, as counted in `FaultProxy.injected`.
HOSTILE_KINDS = tuple(f.name for f in fields(HostileRates))


def _head(status_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [status_line, *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _set(headers: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in headers if k.lower() != name.lower()]
    return kept if value is None else [*kept, (name, value)]


async def hostile_answer(
    kind: str,
    writer: asyncio.StreamWriter,
    status_line: str,
    headers: list[tuple[str, str]],
    payload: bytes,
    *,
    target: str,
    redirect_to: str | None,
    slow_rate: float,
    slow_seconds: float,
) -> bool:
    """Write the hostile answer ``kind``; False when the connection must close after it."""
    status = status_line.split(" ", 2)[1] if " " in status_line else ""
    out = headers
    if kind == "long_body" and status == "206":
        payload = payload + _JUNK
    elif kind == "chunked_long" and status == "206":
        body = payload + _JUNK
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 4096]), body[i : i + 4096])
            for i in range(0, len(body), 4096)
        )
        writer.write(_head(status_line, [*out, ("Transfer-Encoding", "chunked")]))
        writer.write(chunks + b"0\r\n\r\n")
        await writer.drain()
        return True
    elif kind == "html":
        status_line, payload = "HTTP/1.1 200 OK", _JUNK * 4
        out = [(k, v) for k, v in headers if k.lower() not in ("etag", "content-range")]
        out = _set(out, "Content-Type", "text/html")
    elif kind == "junk_front":
        status_line, payload = "HTTP/1.1 200 OK", _JUNK + payload
        out = _set(headers, "Content-Range", None)
    elif kind == "wrong_total" and status == "206":
        value = dict((k.lower(), v) for k, v in headers).get("content-range", "")
        match = _CONTENT_RANGE.match(value)
        if match is not None and match.group(3) != "*":
            wrong = f"bytes {match.group(1)}-{match.group(2)}/{int(match.group(3)) + 2880}"
            out = _set(headers, "Content-Range", wrong)
    elif kind == "gzip":
        payload = gzip.compress(payload, mtime=0)
        out = _set(headers, "Content-Encoding", "gzip")
    elif kind == "replaced":
        payload = bytes(b ^ 0x5A for b in payload)
        out = _set(headers, "ETag", '"replaced-0123456789abcdef"')
        if any(k.lower() == "x-goog-generation" for k, _ in headers):
            out = _set(out, "x-goog-generation", "9" * 16)  # GCS names versions so
    elif kind == "redirect" and redirect_to is not None:
        body = b"moved"
        writer.write(
            _head(
                "HTTP/1.1 302 Found",
                [("Location", redirect_to.rstrip("/") + target), ("Content-Length", "5")],
            )
            + body
        )
        await writer.drain()
        return True
    elif kind == "slowloris":
        writer.write(_head(status_line, [*out, ("Content-Length", str(len(payload)))]))
        await writer.drain()
        loop = asyncio.get_running_loop()
        until = loop.time() + slow_seconds
        for i in range(len(payload)):
            if loop.time() > until or writer.is_closing():
                break
            writer.write(payload[i : i + 1])
            await writer.drain()
            await asyncio.sleep(1.0 / slow_rate)
        return False
    writer.write(_head(status_line, [*out, ("Content-Length", str(len(payload)))]) + payload)
    await writer.drain()
    return True
