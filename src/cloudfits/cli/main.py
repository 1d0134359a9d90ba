"""Command-line entry points: ``cloudfits`` with its subcommands, and ``cloudfits-index``.

Each subcommand is a module with ``add_arguments(parser)`` and ``run(args) -> int``,
listed once in `COMMANDS`. Exit codes: 0 success, 1 an error reading or writing
(`~cloudfits.CloudFitsError`, ``OSError``), 2 a usage error. Commands that read print
a closing summary of requests and bytes on standard error, with the estimated cost
when ``--requester-pays`` is given.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..errors import CloudFitsError, ProviderConfigError
from ..fetch.stats import process_stats
from ..uri import redact_text
from .common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_provider_arguments,
    cli_hint,
    provider_flags,
)
from .index import add_arguments as _add_index_arguments
from .index import run as run_index
from .pricing import prices, summary_line
from .providers import print_providers
from .terminal import escape_controls, escaped_stdout
from .verify import verify_parser

__all__ = [
    "COMMANDS",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "Command",
    "build_parser",
    "command_parser",
    "index_main",
    "index_parser",
    "main",
    "print_providers",
]


@dataclass(frozen=True)
class Command:
    """One ``cloudfits`` subcommand.

    Attributes
    ----------
    name : str
        What the user types after ``cloudfits``.
    module : str
        The module with ``add_arguments(parser)`` and ``run(args) -> int``; its
        docstring is the subcommand's ``--help`` description.
    help : str
        One line for ``cloudfits --help``.
    """

    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("index", "cloudfits.cli.index", "index FITS files and store the index"),
    Command("info", "cloudfits.cli.info", "HDU table of each file (like fitsinfo)"),
    Command("headers", "cloudfits.cli.headers", "header cards (like fitsheader)"),
    Command("providers", "cloudfits.cli.providers", "the providers, schemes and options"),
    Command("demo", "cloudfits.cli.demo", "the TESS tutorial on a local S3 server"),
    Command("cutout", "cloudfits.cli.cutout", "cutout around RA/Dec as FITS (and PNG)"),
    Command("verify", "cloudfits.cli.verify", "check an index against its store"),
    Command("search", "cloudfits.cli.search", "HDUs whose headers match an expression"),
    Command("serve", "cloudfits.cli.serve", "TESSCut-compatible cutout service over an index"),
    Command("refs", "cloudfits.cli.refs", "kerchunk references of the images, for xarray"),
    # Further subcommands are added here, one line each.
)

# Names kept for code written against the first version of this module.
_add_provider_arguments = add_provider_arguments
_provider_flags = provider_flags
_Usage = UsageError


def _register(sub: Any, command: Command) -> argparse.ArgumentParser:
    module = importlib.import_module(command.module)
    parser: argparse.ArgumentParser = sub.add_parser(
        command.name,
        help=command.help,
        description=(module.__doc__ or "").replace("``", "").replace("`", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    parser.set_defaults(run=module.run, parser=parser)
    return parser


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``cloudfits`` parser with every subcommand of `COMMANDS`.

    With ``only`` (a subcommand's name), the other subcommands are listed by name and
    help line alone: the parser of a command line that runs ``only`` is made without
    building theirs (their provider flags are most of a parser's making).
    """
    return _build(only)[0]


def _build(
    only: str | None = None,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="cloudfits",
        description="Index FITS files once, then read headers, cutouts and table rows"
        " from object storage with exact range requests.",
        epilog="Exit codes: 0 success, 1 error reading or writing, 2 usage error."
        " 'cloudfits COMMAND --help' describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"cloudfits {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = {
        command.name: (
            _register(sub, command)
            if only is None or command.name == only
            else sub.add_parser(command.name, help=command.help)
        )
        for command in COMMANDS
    }
    return parser, commands


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand a command line runs (its first word that is not an option), when
    it names one of `COMMANDS`."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if any(command.name == first for command in COMMANDS) else None


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one subcommand (``"info"``, ...), as ``cloudfits NAME --help`` shows."""
    commands = _build()[1]
    if name not in commands:
        raise KeyError(f"cloudfits has no subcommand {name!r}")
    return commands[name]


def _summarize(args: argparse.Namespace, before: dict[str, int]) -> None:
    now = process_stats.snapshot()
    requests, nbytes = now["requests"] - before["requests"], now["bytes"] - before["bytes"]
    if requests == 0 or getattr(args, "quiet", False):
        return
    requester_pays = bool(getattr(args, "requester_pays", None))
    try:
        price_gb, price_requests = prices(args) if requester_pays else (0.0, 0.0)
    except UsageError:
        return  # reported by the command itself
    line = summary_line(
        requests,
        nbytes,
        requester_pays=requester_pays,
        price_per_gb=price_gb,
        price_per_1000_requests=price_requests,
    )
    print(f"cloudfits: {line}", file=sys.stderr)


def _for_cli(err: BaseException) -> str:
    """The message of ``err`` with its advice in command-line flags."""
    if isinstance(err, CloudFitsError) and err.hint:
        err.hint = cli_hint(err.hint)
    return escape_controls(redact_text(str(err)))


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run a parsed command; map its exceptions to exit codes and messages."""
    # What the imports made lives as long as the process: out of the collector's sight,
    # a command's collections walk only what it makes itself.
    gc.freeze()
    before = process_stats.snapshot()
    try:
        if hasattr(args, "price_per_gb"):
            prices(args)  # a bad price is a usage error before anything is read
        with escaped_stdout():
            code = int(args.run(args))
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader stopped (``| head``): what it wanted was written; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_OK
    except UsageError as err:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {escape_controls(redact_text(str(err)))}", file=sys.stderr)
        return EXIT_USAGE
    except ProviderConfigError as err:
        print(f"{parser.prog}: error: {_for_cli(err)}", file=sys.stderr)
        return EXIT_USAGE
    except (CloudFitsError, OSError, ValueError) as err:
        print(f"{parser.prog}: error: {_for_cli(err)}", file=sys.stderr)
        return EXIT_ERROR
    except (KeyError, IndexError) as err:
        shown = str(err.args[0] if err.args else err)
        print(f"{parser.prog}: error: {escape_controls(redact_text(shown))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    finally:
        _summarize(args, before)


def _configure_logging(quiet: bool) -> None:
    """Warnings (errors only with ``--quiet``) on standard error, each said once."""
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING)
    # astropy's logger prints its records with its own handler; printed by the root
    # handler as well, every VerifyWarning would appear twice.
    for handler in logging.getLogger().handlers:
        handler.addFilter(_not_astropy)


def _not_astropy(record: logging.LogRecord) -> bool:
    return record.name != "astropy" and not record.name.startswith("astropy.")


def main(argv: Sequence[str] | None = None) -> int:
    """``cloudfits``: parse the command line and run one subcommand."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(words))
    args = parser.parse_args(words)
    _configure_logging(getattr(args, "quiet", False))
    return _dispatch(args, args.parser)


def index_parser() -> argparse.ArgumentParser:
    """The parser of ``cloudfits-index``: ``cloudfits index`` under its own name."""
    parser = argparse.ArgumentParser(
        prog="cloudfits-index",
        description="Index FITS files by their headers and store the index with a provider.",
        epilog="Exit codes: 0 success, 1 error reading or writing, 2 usage error.",
    )
    _add_index_arguments(parser)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="cloudfits-index --verify INDEX_URI [--json]: check that every file of an"
        " index is still as indexed (the same as cloudfits verify)",
    )
    parser.set_defaults(run=run_index)
    return parser


def index_main(argv: Sequence[str] | None = None) -> int:
    """``cloudfits-index``: the same as ``cloudfits index``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["providers"]:
        print_providers()
        return EXIT_OK
    if "--verify" in argv:  # cloudfits-index --verify INDEX_URI: cloudfits verify
        parser = verify_parser()
        argv.remove("--verify")
    else:
        parser = index_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    _configure_logging(quiet)
    return _dispatch(args, parser)
