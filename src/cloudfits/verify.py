"""Check an index against its store: is every file still the one that was indexed?

``cloudfits verify INDEX_URI`` (and ``cloudfits-index --verify INDEX_URI``) asks the
store about every file of the index (one ``head`` each, no data read) and compares
the size, and the entity tag (or, where the index has none, the modification time)
with what the index recorded.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import CloudFitsError, ObjectNotFoundError
from .index import FileEntry, FitsIndex
from .plugins import get_registry
from .providers.base import Provider
from .uri import join_uri, redact_uri, split_uri

__all__ = ["FileCheck", "add_arguments", "run", "verify_index"]

OK, CHANGED, MISSING, FAILED = "ok", "changed", "missing", "error"


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one indexed file.

    Attributes
    ----------
    path : str
        The file's path in the index.
    status : str
        ``"ok"``, ``"changed"``, ``"missing"`` or ``"error"`` (the store could not say).
    size, etag, last_modified : int, str or None
        What the index recorded.
    found_size, found_etag, found_last_modified : int, str or None
        What the store says now.
    message : str
        What differs, or the error.
    """

    path: str
    status: str
    size: int
    etag: str | None
    last_modified: str | None
    found_size: int | None = None
    found_etag: str | None = None
    found_last_modified: str | None = None
    message: str = ""


def _data_provider(index: FitsIndex, options: dict[str, Any]) -> tuple[Provider, str, str]:
    """The provider of the index's data, and how entry paths become its paths."""
    scheme, base = split_uri(index.data_uri)
    if not options:
        same_store = index.uri is not None and split_uri(index.uri)[0] == scheme
        options = dict(index.options) if same_store else {}
    registry = get_registry()
    if scheme == "file":
        options = {**options, "root": base}
        base = ""
    return registry.provider(registry.by_scheme(scheme), scheme, options), scheme, base


def _check(provider: Provider, path: str, entry: FileEntry) -> FileCheck:
    verdict = FileCheck(entry.path, OK, entry.size, entry.etag, entry.last_modified)
    try:
        info = provider.head(path)
    except ObjectNotFoundError:
        return replace(verdict, status=MISSING, message="not found")
    except CloudFitsError as err:
        return replace(verdict, status=FAILED, message=str(err))
    differences = []
    if info.size != entry.size:
        differences.append(f"size {entry.size} -> {info.size}")
    if entry.etag is not None and info.etag != entry.etag:
        differences.append(f"etag {entry.etag} -> {info.etag}")
    if (
        entry.etag is None
        and entry.last_modified is not None
        and info.last_modified is not None
        and info.last_modified != entry.last_modified
    ):
        differences.append(f"last modified {entry.last_modified} -> {info.last_modified}")
    return replace(
        verdict,
        status=CHANGED if differences else OK,
        found_size=info.size,
        found_etag=info.etag,
        found_last_modified=info.last_modified,
        message="; ".join(differences),
    )


def verify_index(index: FitsIndex, *, concurrency: int = 16, **options: Any) -> list[FileCheck]:
    """Compare every file of ``index`` with what its store says now.

    Parameters
    ----------
    index : FitsIndex
        The index to check.
    concurrency : int
        ``head`` requests in flight at once.
    **options
        Options of the data's provider (by default those the index was loaded with,
        when the data is on the same kind of store).

    Returns
    -------
    list of FileCheck
        One per file, in the index's order.
    """
    provider, scheme, base = _data_provider(index, dict(options))

    def one(entry: FileEntry) -> FileCheck:
        path = entry.path if scheme == "file" else join_uri(base, entry.path)
        return _check(provider, path, entry)

    if not index.files:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(index.files)))) as pool:
        return list(pool.map(one, index.files))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits verify``."""
    from .cli import _add_provider_arguments

    parser.add_argument("index_uri", metavar="INDEX_URI", help="the index to check")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="files checked at once (default 16)"
    )
    _add_provider_arguments(parser)


def _report_text(checks: Iterable[FileCheck], stream: Any) -> None:
    counts: dict[str, int] = {}
    for check in checks:
        counts[check.status] = counts.get(check.status, 0) + 1
        line = f"{check.status.upper():<8} {check.path}"
        stream.write(line + (f": {check.message}\n" if check.message else "\n"))
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    stream.write(f"{sum(counts.values())} files: {summary or 'none'}\n")


def run(args: argparse.Namespace) -> int:
    """``cloudfits verify``: 0 when every file is as indexed, 1 otherwise."""
    from .cli import _provider_flags
    from .indexer import load_index

    options = _provider_flags(args)
    index = load_index(args.index_uri, **options)
    checks = verify_index(index, concurrency=args.concurrency)
    good = all(c.status == OK for c in checks)
    if args.json:
        document = {
            "index": redact_uri(args.index_uri),
            "data_uri": index.data_uri,
            "ok": good,
            "files": [asdict(c) for c in checks],
        }
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _report_text(checks, sys.stdout)
    return 0 if good else 1


def index_verify_main(argv: list[str]) -> int:
    """``cloudfits-index --verify INDEX_URI``: the same as ``cloudfits verify``."""
    import logging

    from .cli import _run

    parser = argparse.ArgumentParser(
        prog="cloudfits-index --verify", description="Check an index against its store."
    )
    add_arguments(parser)
    args = parser.parse_args([a for a in argv if a != "--verify"])
    logging.basicConfig(level=logging.WARNING)
    return _run(run, args, parser)
