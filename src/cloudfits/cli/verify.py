"""Check an index against its store: is every file still the one that was indexed?

One HEAD request per file, no data read: the size, and the ETag (or, where the index
has none, the modification time), are compared with what the index recorded. Exit
code 0 when every file is as indexed, 1 when one changed, is missing, or could not be
checked. ``cloudfits-index --verify INDEX_URI`` is the same command.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, TextIO

from ..index.build import load_index
from ..index.verify import OK, FileCheck, verify_index
from ..providers.registry import get_registry
from ..uri import redact_uri, split_uri
from .common import (
    EXIT_ERROR,
    EXIT_OK,
    add_json_argument,
    add_provider_arguments,
    options_for,
    provider_flags,
    write_json,
)
from .pricing import plural

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits verify``."""
    parser.add_argument(
        "index_uri", metavar="INDEX_URI", help="the index to check (.json, .json.gz, .parquet)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="files checked at once (default 16)"
    )
    add_json_argument(parser)
    add_provider_arguments(parser)


def report_text(checks: list[FileCheck], stream: TextIO) -> None:
    """One line per file, then the counts."""
    counts: dict[str, int] = {}
    for check in checks:
        counts[check.status] = counts.get(check.status, 0) + 1
        line = f"{check.status.upper():<8} {check.path}"
        stream.write(line + (f": {check.message}\n" if check.message else "\n"))
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    stream.write(f"{plural(sum(counts.values()), 'file')}: {summary or 'none'}\n")


def run(args: argparse.Namespace) -> int:
    """``cloudfits verify``: 0 when every file is as indexed, 1 otherwise."""
    flags = provider_flags(args)
    index = load_index(args.index_uri, **flags)
    # The command line's flags are the caller's, for the data too: the index's own
    # options never reach the data (see load_index).
    data_spec = get_registry().by_scheme(split_uri(index.data_uri)[0])
    checks = verify_index(index, concurrency=args.concurrency, **options_for(data_spec, flags))
    good = all(c.status == OK for c in checks)
    if args.json:
        document: dict[str, Any] = {
            "index": redact_uri(args.index_uri),
            "data_uri": index.data_uri,
            "ok": good,
            "files": [dataclasses.asdict(c) for c in checks],
        }
        write_json(document)
    else:
        report_text(checks, sys.stdout)
    return EXIT_OK if good else EXIT_ERROR


def verify_parser() -> argparse.ArgumentParser:
    """The parser of ``cloudfits-index --verify``."""
    parser = argparse.ArgumentParser(
        prog="cloudfits-index --verify", description="Check an index against its store."
    )
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser
