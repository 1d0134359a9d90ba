"""Turning a command's URI into the FITS files it names: an index, or one object.

A URI whose name ends in ``.json``, ``.json.gz`` or ``.parquet`` (the index formats of
`cloudfits.index.formats`) is an index: the files are opened
from it without a request, all of them or those named after it. Any other URI is a
FITS object whose headers are scanned now, unless ``--index`` names an index that
holds it.
"""

from __future__ import annotations

import argparse
import posixpath
from collections.abc import Iterator
from typing import Any

from ..errors import CloudFitsError
from ..index.build import load_index
from ..index.core import FitsIndex
from ..index.formats import index_suffixes
from ..providers.registry import get_registry
from ..remote.hdulist import RemoteFITS
from ..remote.opening import open as open_remote
from ..uri import is_uri, split_uri
from .common import UsageError, add_provider_arguments, options_by_provider, provider_flags

__all__ = ["INDEX_SUFFIXES", "add_target_arguments", "is_index_uri", "open_targets"]

INDEX_SUFFIXES = index_suffixes()
_SHOWN = ", ".join(INDEX_SUFFIXES)


def is_index_uri(uri: str) -> bool:
    """True when ``uri`` names an index (``.json``, ``.json.gz`` or ``.parquet``)."""
    return uri.lower().split("?", 1)[0].endswith(INDEX_SUFFIXES)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``URI [PATH ...]``, ``--index`` and the provider flags."""
    parser.add_argument(
        "uri",
        metavar="URI",
        help="a FITS object (s3://bucket/a.fits, https://..., a path) or an index"
        f" (a name ending in {_SHOWN})",
    )
    parser.add_argument(
        "paths",
        metavar="PATH",
        nargs="*",
        default=[],  # so that argparse does not call PATH required
        help="with an index: only these files (paths relative to its data URI)",
    )
    parser.add_argument(
        "--index",
        metavar="INDEX_URI",
        help="read URI's headers from this index instead of scanning the object",
    )
    add_provider_arguments(parser)


def _options(flags: dict[str, Any], *uris: str) -> list[dict[str, Any]]:
    registry = get_registry()
    return options_by_provider(flags, [registry.by_scheme(split_uri(u)[0]) for u in uris])


def _open_from_index(
    index: FitsIndex, paths: list[str], flags: dict[str, Any]
) -> Iterator[RemoteFITS]:
    (data_options,) = _options(flags, index.data_uri) if flags else ({},)
    for path in paths or index.paths:
        yield index.open(path, **data_options)


def _relative_to(uri: str, base: str) -> str | None:
    """``uri`` relative to the base URI ``base``, or None when it is not below it."""
    if not is_uri(uri):
        uri, base = posixpath.abspath(uri), posixpath.abspath(base)
    prefix = base.rstrip("/") + "/"
    return uri[len(prefix) :] if uri.startswith(prefix) else None


def open_targets(args: argparse.Namespace) -> Iterator[RemoteFITS]:
    """The files that ``args.uri`` (with ``args.paths`` and ``args.index``) names."""
    flags = provider_flags(args)
    if args.index:
        if args.paths:
            raise UsageError("give either PATHs after an index URI, or --index")
        (index_options,) = _options(flags, args.index) if flags else ({},)
        index = load_index(args.index, **index_options)
        path = _relative_to(args.uri, index.data_uri)
        if path is None or path not in index:
            raise CloudFitsError(f"{args.uri} is not in the index {args.index} ({index.data_uri})")
        yield from _open_from_index(index, [path], flags)
    elif is_index_uri(args.uri):
        (index_options,) = _options(flags, args.uri) if flags else ({},)
        index = load_index(args.uri, **index_options)
        missing = [p for p in args.paths if p not in index]
        if missing:
            raise CloudFitsError(f"{missing[0]!r} is not in the index {args.uri}")
        yield from _open_from_index(index, list(args.paths), flags)
    else:
        if args.paths:
            raise UsageError(f"PATHs follow an index URI ({_SHOWN}), not {args.uri}")
        (options,) = _options(flags, args.uri) if flags else ({},)
        yield open_remote(args.uri, **options)
