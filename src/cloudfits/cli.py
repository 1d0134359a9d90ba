"""Command-line entry points: ``cloudfits-index`` and ``cloudfits``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import verify
from .accounting import ReadStats
from .errors import CloudFitsError, ProviderConfigError
from .indexer import DEFAULT_INDEX_NAME, build_index
from .plugins import get_registry
from .providers.base import ProviderSpec
from .uri import is_uri, redact_uri, split_uri

__all__ = ["index_main", "main"]

# Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

_PROVIDER_FLAGS = ("requester_pays", "endpoint_url", "region", "profile", "anonymous")


def _add_provider_arguments(parser: argparse.ArgumentParser) -> None:
    """The provider options as flags; an unset flag stays None (see `_provider_flags`)."""
    parser.add_argument(
        "--requester-pays",
        action="store_true",
        default=None,
        help="accept the charges of a requester-pays bucket (S3)",
    )
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint (or AWS_ENDPOINT_URL)")
    parser.add_argument("--region", help="bucket region")
    parser.add_argument("--profile", help="named profile of the AWS configuration")
    parser.add_argument(
        "--anonymous", action="store_true", default=None, help="unsigned requests (public data)"
    )


def _provider_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The provider options given on the command line."""
    return {k: getattr(args, k) for k in _PROVIDER_FLAGS if getattr(args, k) is not None}


def _add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        help="local directory or file, or a remote prefix such as s3://bucket/prefix/"
        " (remote objects are indexed by reading their headers only)",
    )
    parser.add_argument("--index-uri", help="where to store the index (.json or .json.gz)")
    parser.add_argument(
        "--data-uri",
        help="where the data is read from later, when not SOURCE (paths are relative to it)",
    )
    parser.add_argument(
        "--provider",
        help="provider for bare bucket names (s3, spaces, gcs, ...); see 'providers'",
    )
    _add_provider_arguments(parser)
    parser.add_argument(
        "--concurrency", type=int, default=16, help="objects scanned at once (default 16)"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
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


def _options_for(spec: ProviderSpec, flags: dict[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(spec.config_type)}
    return {k: v for k, v in flags.items() if k in known}


def print_providers(stream: Any = None) -> None:
    """Print the registered providers, their schemes and options."""
    stream = stream or sys.stdout
    for spec in get_registry().specs():
        options = ", ".join(f.name for f in dataclasses.fields(spec.config_type))
        schemes = ", ".join(s + ("*" if s.endswith("+") else "") + "://" for s in spec.schemes)
        stream.write(f"{spec.name:<10} {schemes:<22} {spec.description}\n")
        stream.write(f"{'':<10} options: {options or '(none)'}\n")


def run_index(args: argparse.Namespace) -> int:
    if args.list_providers:
        print_providers()
        return EXIT_OK
    source = args.source or args.fits_files_directory
    if not source:
        raise _Usage("give SOURCE (or --fits-files-directory)")
    data_uri = args.data_uri or args.data_bucket_path
    registry = get_registry()
    flags = _provider_flags(args)

    if not is_uri(source) and not os.path.exists(source) and args.provider:
        spec = registry.by_name(args.provider)
        config = spec.make_config(_options_for(spec, flags))
        source = spec.uri_for_bucket(source, config) + "/"
    source_spec = registry.by_scheme(split_uri(source)[0])

    if args.index_uri:
        index_uri = args.index_uri
    elif args.index_bucket_name:
        spec = registry.by_name(args.provider or "s3")
        config = spec.make_config(_options_for(spec, flags))
        bucket_uri = spec.uri_for_bucket(args.index_bucket_name, config)
        index_uri = bucket_uri.rstrip("/") + "/" + args.index_name
    else:
        raise _Usage("give --index-uri (or --index-bucket-name)")
    index_spec = registry.by_scheme(split_uri(index_uri)[0])

    used = set(_options_for(source_spec, flags)) | set(_options_for(index_spec, flags))
    unused = sorted(set(flags) - used)
    if unused:
        raise _Usage(
            f"--{unused[0].replace('_', '-')} does not apply to the {source_spec.name}"
            f" and {index_spec.name} providers"
        )
    stats = ReadStats()
    index = build_index(
        source,
        data_uri,
        concurrency=args.concurrency,
        stats=stats,
        **_options_for(source_spec, flags),
    )
    index.save(index_uri, **_options_for(index_spec, flags))
    if not args.quiet:
        hdus = sum(len(f.hdus) for f in index.files)
        print(
            f"indexed {len(index.files)} files ({hdus} HDUs) from {redact_uri(source)}:"
            f" {stats.requests} requests, {stats.bytes} bytes read"
        )
        print(f"data URI: {index.data_uri}")
        print(f"index written to {redact_uri(index_uri)}")
    return EXIT_OK


class _Usage(Exception):
    """A command-line mistake: exit code 2."""


def _run(func: Any, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        return int(func(args))
    except _Usage as err:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ProviderConfigError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (CloudFitsError, OSError, ValueError, KeyError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


def index_main(argv: Sequence[str] | None = None) -> int:
    """``cloudfits-index``: index FITS files and store the index with a provider."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--verify" in argv:
        return verify.index_verify_main(argv)
    if argv[:1] == ["providers"]:
        print_providers()
        return EXIT_OK
    parser = argparse.ArgumentParser(
        prog="cloudfits-index",
        description="Index FITS files by their headers and store the index with a provider.",
    )
    _add_index_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING)
    return _run(run_index, args, parser)


def _run_providers(args: argparse.Namespace) -> int:
    print_providers()
    return EXIT_OK


def _run_info(args: argparse.Namespace) -> int:
    from .remote import open as open_remote

    with open_remote(args.uri, **_provider_flags(args)) as f:
        f.info()
    return EXIT_OK


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(frames=args.frames, size=args.size)


def main(argv: Sequence[str] | None = None) -> int:
    """``cloudfits``: the command with subcommands."""
    parser = argparse.ArgumentParser(prog="cloudfits", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    index_parser = sub.add_parser("index", help="index FITS files (as cloudfits-index)")
    _add_index_arguments(index_parser)
    index_parser.set_defaults(func=run_index)
    providers_parser = sub.add_parser("providers", help="list the known providers")
    providers_parser.set_defaults(func=_run_providers)
    info_parser = sub.add_parser("info", help="summarize the HDUs of a FITS object")
    info_parser.add_argument("uri")
    _add_provider_arguments(info_parser)
    info_parser.set_defaults(func=_run_info)
    verify_parser = sub.add_parser("verify", help="check an index against its store")
    verify.add_arguments(verify_parser)
    verify_parser.set_defaults(func=verify.run)
    demo_parser = sub.add_parser(
        "demo", help="run the TESS tutorial against a local S3 server it starts itself"
    )
    demo_parser.add_argument("--frames", type=int, default=50, help="frames in the cube")
    demo_parser.add_argument("--size", type=int, default=128, help="cube rows and columns")
    demo_parser.set_defaults(func=_run_demo)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.WARNING)
    return _run(args.func, args, parser)
