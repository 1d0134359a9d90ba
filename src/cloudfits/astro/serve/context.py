"""The state one worker shares between requests, and the wrapper of every endpoint.

`endpoint` turns a handler (``Request -> Response``) into an ASGI application that
answers its errors as JSON (400/404/413/415 for parameters, 422 for a file the
request cannot be served from, 503 with ``Retry-After`` when the worker is full)
and, for reading endpoints, holds a place in the worker's `ConcurrencyGate` until
the last byte of the answer has gone, streamed answers included.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ...errors import CloudFitsError
from .limits import Busy, ConcurrencyGate, ServeLimits
from .params import ParameterError

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

    from .catalog import Catalog

__all__ = ["ServeContext", "endpoint"]

log = logging.getLogger("cloudfits.serve")
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ServeContext:
    """A worker's catalog, limits and concurrency gate."""

    catalog: Catalog
    limits: ServeLimits = field(default_factory=ServeLimits)
    gate: ConcurrencyGate = field(init=False)

    def __post_init__(self) -> None:
        self.gate = ConcurrencyGate(self.limits)


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


class _Endpoint:
    def __init__(self, handler: Handler, gated: bool) -> None:
        self.handler = handler
        self.gated = gated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            if self.gated:
                context: ServeContext = request.app.state.context
                async with context.gate:
                    await (await self.handler(request))(scope, receive, tracked)
            else:
                await (await self.handler(request))(scope, receive, tracked)
        except Busy as err:
            response = _error(
                503,
                {"error": "busy", "message": str(err)},
                {"Retry-After": str(err.retry_after)},
            )
            await response(scope, receive, send)
        except ParameterError as err:
            if started:
                raise
            await _error(err.status, err.body())(scope, receive, send)
        except (CloudFitsError, ValueError, TypeError, KeyError, IndexError) as err:
            if started:
                log.error(
                    "%s %s failed after the answer began: %s", scope["method"], scope["path"], err
                )
                raise
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            await _error(422, {"error": "unprocessable", "message": str(message)})(
                scope, receive, send
            )


def endpoint(handler: Handler, *, gated: bool = False) -> Any:
    """The ASGI application of ``handler`` (see the module)."""
    return _Endpoint(handler, gated)
