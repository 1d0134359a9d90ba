"""``cloudfits search``: the HDUs of an index whose headers satisfy an expression.

EXPR compares keywords with constants, combined with and, or, not:
  cloudfits search s3://bucket/cloudfits-index.parquet "OBJECT == 'M31'"
  cloudfits search index.json "EXPTIME > 100 and FILTER in ('g', 'r')"
  cloudfits search index.parquet "DATE-OBS >= '2020-01-01'"
Keywords are case-insensitive and hyphens are part of them (DATE-OBS); any other
keyword that is not a Python name (a HIERARCH card's ESO DET CHIP) goes in backquotes.
A keyword missing from an HDU (or of another type) never matches. Only the index is
read, never the data.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from ..index.build import load_index
from ..index.search import SearchExpressionError, parse_expression
from .common import (
    EXIT_OK,
    UsageError,
    add_json_argument,
    add_provider_arguments,
    add_quiet_argument,
    provider_flags,
    write_json,
)
from .pricing import plural

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["add_arguments", "json_rows", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits search``."""
    parser.add_argument(
        "index_uri", metavar="INDEX_URI", help="the index (.json, .json.gz, .parquet)"
    )
    parser.add_argument("expression", metavar="EXPR", help="the condition on header keywords")
    add_json_argument(parser)
    add_quiet_argument(parser)
    add_provider_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Print the matching HDUs: a table, or JSON rows."""
    try:
        parse_expression(args.expression)
    except SearchExpressionError as err:
        raise UsageError(str(err)) from None
    index = load_index(args.index_uri, **provider_flags(args))
    table = index.search(args.expression)
    if args.json:
        write_json(json_rows(table))
        return EXIT_OK
    if len(table):
        table.pprint_all()
    if not args.quiet:
        matched = f"{plural(len(table), 'HDU')} of {plural(len(index), 'file')}"
        print(f"{matched} {'matches' if len(table) == 1 else 'match'}", file=sys.stderr)
    return EXIT_OK


def json_rows(table: Table) -> list[dict[str, Any]]:
    """The rows of a search result as JSON objects; a missing value is null."""
    columns: dict[str, list[Any]] = {}
    for name in table.colnames:
        column = table[name]
        values = np.ma.getdata(column).tolist()
        missing = np.ma.getmaskarray(column).tolist()
        columns[name] = [None if m else v for v, m in zip(values, missing, strict=False)]
    return [dict(zip(columns, row, strict=False)) for row in zip(*columns.values(), strict=False)]
