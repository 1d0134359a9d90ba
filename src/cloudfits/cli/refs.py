"""Write kerchunk references of an index, so xarray and zarr read its images directly.

Every image HDU of every indexed file becomes a Zarr array ``hdu<N>`` in a group named
by the file's path (see ``docs/zarr.rst``). ``-o`` takes a local path or a URI; a name
ending in ``.parq`` or ``.parquet`` is written in fsspec's Parquet reference format (a
directory), any other as one JSON document. Only the tile tables of tile-compressed
images are read from the data.
"""

from __future__ import annotations

import argparse
import sys

from ..index.build import load_index
from ..index.refs import DEFAULT_CHUNK_BYTES, kerchunk_references, write_references
from ..providers.registry import get_registry
from ..uri import split_uri
from .common import EXIT_OK, add_provider_arguments, options_for, provider_flags

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits refs``."""
    parser.add_argument("index_uri", metavar="INDEX_URI", help="the index to export")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="REFS",
        help="where to write: refs.json, or refs.parq for Parquet references",
    )
    parser.add_argument(
        "--chunk-bytes",
        type=int,
        default=DEFAULT_CHUNK_BYTES,
        help=f"most raw bytes in a chunk of an uncompressed image (default {DEFAULT_CHUNK_BYTES})",
    )
    parser.add_argument("--path", action="append", help="only this file of the index (repeatable)")
    add_provider_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """``cloudfits refs``: write the references; one line with what was written."""
    flags = provider_flags(args)
    index = load_index(args.index_uri, **flags)
    # The flags are the caller's, for the data too (tile tables are read from it).
    data_spec = get_registry().by_scheme(split_uri(index.data_uri)[0])
    references = kerchunk_references(
        index,
        chunk_bytes=args.chunk_bytes,
        paths=args.path,
        **options_for(data_spec, flags),
    )
    write_references(references, args.output)
    refs = references["refs"]
    arrays = sum(1 for key in refs if key.endswith("/.zarray"))
    chunks = sum(1 for value in refs.values() if isinstance(value, list))
    files = len(args.path) if args.path else len(index)
    sys.stdout.write(
        f"{args.output}: {arrays} arrays of {files} files, {chunks} chunk references\n"
    )
    return EXIT_OK
