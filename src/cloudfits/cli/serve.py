"""``cloudfits serve``: serve an index over HTTP: MAST TESSCut's API, /api/v1 and a page.

The index is loaded (and the footprints of its TESS cubes computed) once per worker;
then astroquery's Tesscut and any HTTP client can ask
for sectors and cutouts. Binds 127.0.0.1 unless told otherwise. One access-log line
per request on standard error, with the requests and bytes it cost upstream. Needs
pip install 'cloudfits[serve]'.
"""

from __future__ import annotations

import argparse
import json
import os

from .common import add_provider_arguments, provider_flags

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cloudfits serve``."""
    parser.add_argument("index_uri", metavar="INDEX_URI", help="the index: s3://..., a path, ...")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own copy of the index (1)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="level of the access log and messages (info: one line per request)",
    )
    add_provider_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; 0 on a clean stop."""
    try:
        import uvicorn

        from ..astro.serve import app as serve_app  # the optional serve extra
    except ImportError as err:
        raise ImportError(f"cloudfits serve needs: pip install 'cloudfits[serve]' ({err})") from err

    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    serve_app.configure_logging(args.log_level)
    flags = provider_flags(args)
    common = {
        "host": args.host,
        "port": args.port,
        "access_log": False,  # our own line says more (upstream requests and bytes)
        "log_level": args.log_level,
        "timeout_graceful_shutdown": 10,
    }
    if args.workers == 1:
        index, data_options = serve_app.load_served(args.index_uri, flags)
        uvicorn.run(serve_app.create_app(index, **data_options), **common)
        return 0
    os.environ[serve_app.INDEX_VARIABLE] = args.index_uri
    os.environ[serve_app.OPTIONS_VARIABLE] = json.dumps(flags)
    os.environ[serve_app.LEVEL_VARIABLE] = args.log_level
    uvicorn.run(
        "cloudfits.astro.serve.app:app_from_environment",
        factory=True,
        workers=args.workers,
        **common,
    )
    return 0
