"""``cloudfits index`` (and ``cloudfits-index``): index FITS files, store the index.

Remote objects are indexed by reading their headers only. ``--dry-run`` lists the
objects and says what the run would read, without reading any of them. The objects
are listed once, then scanned by a local thread pool or, with ``--dask-scheduler``
(or ``--executor dask``), as tasks on a Dask cluster. Objects that cannot be indexed
are reported on standard error (path, error, message); the others are indexed and
the index is written, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from ..errors import IndexFormatError
from ..fetch.stats import ReadStats
from ..fits.scan import DEFAULT_SPECULATIVE_READ
from ..index.build import DEFAULT_INDEX_NAME, IndexSource, build_index, find_fits_objects
from ..index.core import FitsIndex
from ..index.formats import format_of_name
from ..index.scanning import DEFAULT_SCAN_CONCURRENCY
from ..providers.base import ObjectInfo
from ..providers.registry import get_registry
from ..uri import is_uri, redact_uri, split_uri
from .common import (
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    add_json_argument,
    add_provider_arguments,
    add_quiet_argument,
    options_by_provider,
    options_for,
    progress_bar,
    provider_flags,
    write_json,
)
from .pricing import add_cost_arguments, estimated_cost, format_usd, plural, prices
from .providers import print_providers

__all__ = ["add_arguments", "dry_run_report", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits index`` and ``cloudfits-index``."""
    parser.add_argument(
        "source",
        nargs="?",
        help="local directory or file, or a remote prefix such as s3://bucket/prefix/"
        " (remote objects are indexed by reading their headers only)",
    )
    parser.add_argument(
        "--index-uri",
        help="where to store the index; the name chooses the format (.json, .json.gz,"
        " or .parquet for large indexes)",
    )
    parser.add_argument(
        "--data-uri",
        help="where the data is read from later, when not SOURCE (paths are relative to it)",
    )
    parser.add_argument(
        "--provider",
        help="provider for bare bucket names (s3, spaces, gcs, ...); see 'cloudfits providers'",
    )
    add_provider_arguments(parser)
    parser.add_argument(
        "--speculative-read",
        type=int,
        default=DEFAULT_SPECULATIVE_READ,
        metavar="BYTES",
        help="bytes read at once where each object starts (default"
        f" {DEFAULT_SPECULATIVE_READ:,}; as build_index's speculative_read); a header"
        " after data is read with at most the cost model's 5,760 bytes when indexing",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_SCAN_CONCURRENCY,
        help=f"objects scanned at once (default {DEFAULT_SCAN_CONCURRENCY}, as the API)",
    )
    parser.add_argument(
        "--executor",
        choices=("threads", "dask"),
        help="where the headers are scanned: a thread pool here (threads, the default)"
        " or tasks on a Dask cluster (dask: the scheduler of --dask-scheduler or of"
        " DASK_SCHEDULER_ADDRESS); needs cloudfits[dask]",
    )
    parser.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="scan on the Dask cluster of this scheduler (tcp://HOST:PORT); implies"
        " --executor dask. The workers must reach the source and its credentials",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the objects and say what would be read; read and write nothing",
    )
    add_json_argument(parser)
    add_quiet_argument(parser)
    add_cost_arguments(parser)
    parser.add_argument(
        "--list-providers", action="store_true", help="list the known providers and exit"
    )
    seed = parser.add_argument_group("cloud-fits 0.1 compatible flags")
    seed.add_argument("--fits-files-directory", help="same as SOURCE")
    seed.add_argument("--data-bucket-path", help="same as --data-uri")
    seed.add_argument(
        "--index-bucket-name", help=f"store the index as {DEFAULT_INDEX_NAME} in this bucket"
    )
    seed.add_argument(
        "--index-name", default=DEFAULT_INDEX_NAME, help="object name with --index-bucket-name"
    )


def _resolve(args: argparse.Namespace) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """``(source, index URI, source options, index options)`` from the flags."""
    source = args.source or args.fits_files_directory
    if not source:
        raise UsageError("give SOURCE (or --fits-files-directory)")
    registry = get_registry()
    flags = provider_flags(args)
    if not is_uri(source) and not os.path.exists(source) and args.provider:
        spec = registry.by_name(args.provider)
        source = spec.uri_for_bucket(source, spec.make_config(options_for(spec, flags))) + "/"
    source_spec = registry.by_scheme(split_uri(source)[0])
    if args.index_uri:
        index_uri = args.index_uri
        try:
            format_of_name(index_uri)
        except IndexFormatError as err:
            raise UsageError(f"--index-uri {err}") from None
    elif args.index_bucket_name:
        spec = registry.by_name(args.provider or "s3")
        bucket_uri = spec.uri_for_bucket(
            args.index_bucket_name, spec.make_config(options_for(spec, flags))
        )
        index_uri = bucket_uri.rstrip("/") + "/" + args.index_name
    elif args.dry_run:
        index_uri = ""
    else:
        raise UsageError("give --index-uri (or --index-bucket-name)")
    index_spec = registry.by_scheme(split_uri(index_uri)[0]) if index_uri else source_spec
    source_options, index_options = options_by_provider(flags, [source_spec, index_spec])
    return source, index_uri, source_options, index_options


def dry_run_report(
    found: IndexSource, *, speculative_read: int = DEFAULT_SPECULATIVE_READ
) -> dict[str, Any]:
    """What indexing ``found`` would read, from the listing alone.

    The scanner reads ``speculative_read`` bytes where each object starts; that read
    holds every header that begins inside it. Each further header costs one more read,
    so the request count is the least an indexing run makes. Once objects are scanned,
    the first reads of the others shrink to the header lengths those showed
    (`cloudfits.index.learning.ReadSizes`), so the bytes are the most the first reads
    fetch. An object
    named ``*.gz`` is read whole (whole-file gzip is decompressed once), its trailer
    too; gzip under another name is only told when read.
    """
    gzipped = [o for o in found.objects if o.path.lower().endswith(".gz")]
    first_reads = [min(o.size, speculative_read) for o in found.objects if o not in gzipped]
    gzip_bytes = sum(o.size + 8 for o in gzipped)
    return {
        "source": found.uri,
        "objects": [{"path": o.path, "size": o.size} for o in found.objects],
        "count": len(found.objects),
        "data_bytes": sum(o.size for o in found.objects),
        "min_requests": len(first_reads) + 2 * len(gzipped),
        "min_header_bytes": sum(first_reads) + gzip_bytes,
        "read_per_header": speculative_read,
        "gzip_objects": len(gzipped),
        "gzip_bytes": gzip_bytes,
    }


def _print_dry_run(report: dict[str, Any], index_uri: str, cost: float | None) -> None:
    for item in report["objects"]:
        print(f"{item['size']:>16,}  {item['path']}")
    print(
        f"would index {plural(report['count'], 'object')} ({report['data_bytes']:,} bytes of data)"
        f" from {report['source']}"
    )
    print(
        f"would read headers only: at least {plural(report['min_requests'], 'request')}, at"
        f" most {report['min_header_bytes']:,} bytes in first reads (one read of up to"
        f" {report['read_per_header']:,} bytes per object, fewer once scanned objects show"
        " their header lengths; one more read per header beyond it)"
    )
    if report["gzip_objects"]:
        print(
            f"of which {plural(report['gzip_objects'], 'gzip object')} read whole, once"
            f" ({report['gzip_bytes']:,} bytes): a gzip stream is only learnt by decompressing it"
        )
    if cost is not None:
        print(f"estimated requester-pays cost: at least {format_usd(cost)}")
    if index_uri:
        print(f"would write the index to {redact_uri(index_uri)}")
    print("dry run: nothing was read or written")


def run(args: argparse.Namespace) -> int:
    """Index, or with ``--dry-run`` report what indexing would read."""
    if args.list_providers:
        print_providers()
        return EXIT_OK
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.speculative_read < 1:
        raise UsageError("--speculative-read must be at least 1 byte")
    source, index_uri, source_options, index_options = _resolve(args)
    data_uri = args.data_uri or args.data_bucket_path
    price_gb, price_requests = prices(args)
    if args.dry_run:
        report = dry_run_report(
            find_fits_objects(source, **source_options), speculative_read=args.speculative_read
        )
        cost = None
        if source_options.get("requester_pays"):
            cost = estimated_cost(
                report["min_header_bytes"], report["min_requests"], price_gb, price_requests
            )
        if args.json:
            write_json({**report, "index_uri": index_uri or None, "min_cost_usd": cost})
        else:
            _print_dry_run(report, index_uri, cost)
        return EXIT_OK

    executor = _executor(args)
    found = find_fits_objects(source, **source_options)
    stats = ReadStats()
    bar = progress_bar(len(found.objects), unit="file", desc="indexing", quiet=args.quiet)
    lock = threading.Lock()

    def scanned(info: ObjectInfo) -> None:
        with lock:
            bar.update(1)

    try:
        index = build_index(
            found,
            data_uri,
            concurrency=args.concurrency,
            speculative_read=args.speculative_read,
            stats=stats,
            on_scanned=scanned,
            executor=executor,
            errors="collect",
        )
    finally:
        bar.close()
    written = bool(index.files)
    if written:
        index.save(index_uri, **index_options)
    _report(args, index, source, index_uri if written else None, stats)
    return EXIT_ERROR if index.failures else EXIT_OK


def _executor(args: argparse.Namespace) -> str | None:
    """The ``executor`` of `build_index` that the flags ask for."""
    if args.dask_scheduler:
        if args.executor == "threads":
            raise UsageError("--dask-scheduler runs on Dask: it cannot go with --executor threads")
        return str(args.dask_scheduler)
    return "dask" if args.executor == "dask" else None


def _report(
    args: argparse.Namespace,
    index: FitsIndex,
    source: str,
    index_uri: str | None,
    stats: ReadStats,
) -> None:
    """The run's summary (standard output) and its failures (standard error)."""
    hdus = sum(len(f.hdus) for f in index.files)
    total = len(index.files) + len(index.failures)
    for failure in index.failures:
        print(f"failed: {failure.path}: {failure.error}: {failure.message}", file=sys.stderr)
    if index.failures:
        outcome = "the others are in the index" if index_uri else "no index written"
        print(
            f"{len(index.failures)} of {plural(total, 'object')} could not be indexed; {outcome}",
            file=sys.stderr,
        )
    if args.json:
        write_json(
            {
                "index_uri": redact_uri(index_uri) if index_uri else None,
                "data_uri": index.data_uri,
                "files": len(index.files),
                "hdus": hdus,
                "requests": stats.requests,
                "bytes": stats.bytes,
                "failures": [f.to_dict() for f in index.failures],
            }
        )
    elif not args.quiet:
        print(
            f"indexed {plural(len(index.files), 'file')} ({plural(hdus, 'HDU')}) from"
            f" {redact_uri(source)}: {plural(stats.requests, 'request')},"
            f" {stats.bytes:,} bytes read"
        )
        print(f"data URI: {index.data_uri}")
        if index_uri:
            print(f"index written to {redact_uri(index_uri)}")
