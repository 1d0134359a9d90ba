"""One access-log line per request, with the requests and bytes it cost upstream.

``cloudfits.serve.access`` logs, at INFO, after the last byte of the answer::

    127.0.0.1 "GET /tesscut/api/v0.1/astrocut" 200 48213B 0.052s upstream=3req/40960B

The path is logged without its query string (positions are not secrets, but a
query string is where a careless client puts a token); headers are never logged.
The upstream figures are the reads of every index file the request opened.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LEVEL_VARIABLE", "AccessLog", "configure_logging"]

log = logging.getLogger("cloudfits.serve.access")
LEVEL_VARIABLE = "CLOUDFITS_SERVE_LOG_LEVEL"


def configure_logging(level: str) -> None:
    """The service's messages and access log on standard error, from ``level`` up.

    Called by ``cloudfits serve`` and again in each worker process of ``--workers N``,
    which starts with no logging configured (the level comes in `LEVEL_VARIABLE`).
    """
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("cloudfits.serve").setLevel(getattr(logging, level.upper()))


class AccessLog:
    """ASGI middleware: give each request a list of opened files; log it when done."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        opened: list[Any] = []
        scope["cloudfits.opened"] = opened
        began = time.perf_counter()
        status, sent = 0, 0

        async def counting(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            requests = sum(f.stats.requests for f in opened)
            nbytes = sum(f.stats.bytes for f in opened)
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s "%s %s" %d %dB %.3fs upstream=%dreq/%dB',
                client[0],
                scope["method"],
                scope["path"],
                status,
                sent,
                time.perf_counter() - began,
                requests,
                nbytes,
            )
