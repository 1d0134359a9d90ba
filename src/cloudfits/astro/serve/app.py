"""The ASGI application: routes, and the factory uvicorn workers call.

Starlette, under uvicorn: see :doc:`/serve` for the measurement behind the choice.
`create_app` builds an application over a loaded index; `app_from_environment` is
the factory each uvicorn worker process calls (``cloudfits serve --workers N``),
reading the index URI, the provider options and the log level from
``CLOUDFITS_SERVE_INDEX``, ``CLOUDFITS_SERVE_OPTIONS`` (JSON of the command-line
provider flags: never a secret, which stays in the provider's own configuration) and
``CLOUDFITS_SERVE_LOG_LEVEL``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...index.build import load_index
from ...index.core import FitsIndex
from ...providers.registry import get_registry
from ...uri import redact_uri, split_uri
from . import api, page, tesscut
from .accesslog import LEVEL_VARIABLE, AccessLog, configure_logging
from .catalog import Catalog
from .context import ServeContext, endpoint
from .limits import ServeLimits

__all__ = [
    "INDEX_VARIABLE",
    "LEVEL_VARIABLE",
    "OPTIONS_VARIABLE",
    "app_from_environment",
    "configure_logging",
    "create_app",
    "load_served",
]

INDEX_VARIABLE = "CLOUDFITS_SERVE_INDEX"
OPTIONS_VARIABLE = "CLOUDFITS_SERVE_OPTIONS"
log = logging.getLogger("cloudfits.serve")
_TESSCUT = "/tesscut/api/v0.1"


async def _health(request: Any) -> Response:
    context: ServeContext = request.app.state.context
    catalog = context.catalog
    return JSONResponse(
        {
            "status": "ok",
            "files": len(catalog.paths),
            "cubes": len(catalog.cubes),
            "active": context.gate.active,
            "admitted": context.gate.admitted,
        }
    )


def create_app(
    catalog: Catalog | Any, limits: ServeLimits | None = None, **options: Any
) -> Starlette:
    """The service over an index.

    Parameters
    ----------
    catalog : Catalog or FitsIndex
        The index (a `~cloudfits.FitsIndex` is wrapped in a `Catalog`, computing
        its footprints now).
    limits : ServeLimits, optional
        What one worker accepts (``ServeLimits.from_environment()`` by default).
    **options
        Provider options for reading the data, when ``catalog`` is an index.
    """
    if not isinstance(catalog, Catalog):
        catalog = Catalog(catalog, options)
    context = ServeContext(catalog, limits or ServeLimits.from_environment())
    both = ["GET", "POST"]
    routes = [
        Route("/", endpoint(page.page), methods=["GET"]),
        Route("/healthz", endpoint(_health), methods=["GET"]),
        Route(f"{_TESSCUT}/sector", endpoint(tesscut.sector), methods=both),
        Route(f"{_TESSCUT}/astrocut", endpoint(tesscut.astrocut, gated=True), methods=both),
        Route("/api/v1/files", endpoint(api.files), methods=["GET"]),
        Route("/api/v1/header", endpoint(api.header), methods=["GET"]),
        Route("/api/v1/cutout", endpoint(api.cutout, gated=True), methods=["GET"]),
        Route("/api/v1/batch", endpoint(api.batch, gated=True), methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(AccessLog)])
    app.state.context = context
    log.info(
        "serving %d files (%d TESS cubes) of %s; footprints in %.2fs, %d requests, %d bytes",
        len(catalog.paths),
        len(catalog.cubes),
        redact_uri(catalog.index.uri or catalog.index.data_uri),
        catalog.startup_seconds,
        catalog.startup.requests,
        catalog.startup.bytes,
    )
    return app


def app_from_environment() -> Starlette:
    """The application of one uvicorn worker (see the module)."""
    configure_logging(os.environ.get(LEVEL_VARIABLE, "info"))
    uri = os.environ.get(INDEX_VARIABLE)
    if not uri:
        raise RuntimeError(f"{INDEX_VARIABLE} names no index")
    flags: dict[str, Any] = json.loads(os.environ.get(OPTIONS_VARIABLE) or "{}")
    index, data_options = load_served(uri, flags)
    return create_app(Catalog(index, data_options))


def load_served(uri: str, flags: dict[str, Any]) -> tuple[FitsIndex, dict[str, Any]]:
    """The index at ``uri``, and the options for reading its data.

    ``flags`` (the command line's provider flags) are the caller's, for the index and
    the data alike: each provider takes the ones it knows. The options that read the
    index never reach the data by themselves (see `cloudfits.load_index`).
    """
    index = load_index(uri, **_taken_by(uri, flags))
    data_options = _taken_by(index.data_uri, flags)
    index.data_options = dict(data_options)
    return index, data_options


def _taken_by(uri: str, flags: dict[str, Any]) -> dict[str, Any]:
    spec = get_registry().by_scheme(split_uri(uri)[0])
    known = {f.name for f in dataclasses.fields(spec.config_type)}
    return {k: v for k, v in flags.items() if k in known}
