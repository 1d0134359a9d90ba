"""``cloudfits info``: a table of HDUs per file, like astropy's ``fitsinfo``.

From an index it makes no request; from a FITS object it reads the headers only.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..remote.hdulist import RemoteFITS
from .common import EXIT_OK, add_json_argument, add_quiet_argument, write_json
from .pricing import add_cost_arguments
from .targets import add_target_arguments, open_targets

__all__ = ["add_arguments", "describe_file", "run"]

_COLUMNS = ("number", "name", "ver", "type", "cards", "dimensions", "format", "groups")


def describe_file(f: RemoteFITS) -> dict[str, Any]:
    """``{"file": uri, "size": bytes, "hdus": [...]}``: each HDU's summary and layout."""
    hdus = []
    for hdu in f:
        row = dict(zip(_COLUMNS, hdu.summary(), strict=True))
        row.update(
            header_offset=hdu.layout.header_offset,
            data_offset=hdu.layout.data_offset,
            data_size=hdu.layout.data_size,
        )
        hdus.append(row)
    return {"file": f.uri, "size": f.size, "hdus": hdus}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits info``."""
    add_target_arguments(parser)
    add_json_argument(parser)
    add_quiet_argument(parser)
    add_cost_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Print each file's HDU table (or JSON)."""
    described = []
    for number, f in enumerate(open_targets(args)):
        if args.json:
            described.append(describe_file(f))
            continue
        if number:
            sys.stdout.write("\n")
        f.info()
    if args.json:
        write_json(described)
    return EXIT_OK
