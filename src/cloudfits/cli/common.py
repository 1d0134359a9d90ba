"""What every ``cloudfits`` subcommand shares: exit codes, flags, output, progress.

A subcommand is a module with ``add_arguments(parser)`` and ``run(args) -> int``,
registered in `cloudfits.cli.COMMANDS`. ``run`` returns an exit code or raises:
`UsageError` becomes exit code 2, a `~cloudfits.CloudFitsError` (or an ``OSError``)
exit code 1, with the message on standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from ..fetch.stats import ReadStats
from .provider_flags import add_provider_arguments, flag_table
from .provider_flags import provider_flags as _given_flags

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROVIDER_FLAGS",
    "UsageError",
    "add_json_argument",
    "add_provider_arguments",
    "add_quiet_argument",
    "cli_hint",
    "options_by_provider",
    "options_for",
    "progress_bar",
    "provider_flags",
    "read_progress",
    "write_json",
]

EXIT_OK = 0
"""Success."""
EXIT_ERROR = 1
"""An error reading or writing; the message names the object, HDU and offset."""
EXIT_USAGE = 2
"""A command-line mistake (argparse's own code for usage errors)."""

PROVIDER_FLAGS = ("requester_pays", "endpoint_url", "region", "profile", "anonymous")
"""The provider flags of the first command line; every provider option is a flag now
(`cloudfits.cli.provider_flags`), these among them."""


class UsageError(Exception):
    """A command-line mistake found after parsing: exit code 2."""


def provider_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The provider options given on the command line, as keyword options."""
    flags = _given_flags(args)
    if flags.get("anonymous") and flags.get("requester_pays"):
        raise UsageError(
            "--anonymous and --requester-pays contradict each other: requester-pays bills"
            " the account that signs the requests"
        )
    return flags


# A Python keyword in an error's hint (``requester_pays=True``, ``profile=NAME``).
_KEYWORD = re.compile(r"\b([a-z][a-z0-9_]*)=(True|[A-Z][A-Z0-9_]*)\b")


def cli_hint(hint: str, flags: Any = None) -> str:
    """``hint`` with the Python keywords of options that are flags written as flags.

    ``"pass requester_pays=True"`` becomes ``"pass --requester-pays"`` and
    ``"profile=NAME"`` ``"--profile NAME"``; a keyword without a flag of that name
    (in ``flags``, by default every generated provider flag) stays as it is.
    """
    switches = (f.name for f in flag_table() if f.kind != "negated")
    known = set(switches if flags is None else flags)

    def flag(match: re.Match[str]) -> str:
        name, value = match.groups()
        if name not in known:
            return match.group(0)
        option = "--" + name.replace("_", "-")
        return option if value == "True" else f"{option} {value}"

    return _KEYWORD.sub(flag, hint)


def options_for(spec: Any, flags: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``flags`` that the provider ``spec`` takes."""
    known = {f.name for f in dataclasses.fields(spec.config_type)}
    return {k: v for k, v in flags.items() if k in known}


def options_by_provider(flags: dict[str, Any], specs: Sequence[Any]) -> list[dict[str, Any]]:
    """The options of ``flags`` for each provider of ``specs``, in order.

    A flag that none of them takes is a `UsageError` naming the providers and the
    flags each of them takes (the flag's value is never shown: it may be a secret).
    """
    chosen = [options_for(spec, flags) for spec in specs]
    unused = sorted(set(flags) - set().union(*chosen))
    if unused:
        flag = "--" + unused[0].replace("_", "-")
        unique = list({spec.name: spec for spec in specs}.values())
        takes = "; ".join(
            f"{spec.name} takes " + (", ".join(_flag_names(spec)) or "no options")
            for spec in unique
        )
        names = " and ".join(spec.name for spec in unique)
        plural = "s" if len(unique) > 1 else ""
        raise UsageError(f"{flag} does not apply to the {names} provider{plural} ({takes})")
    return chosen


def _flag_names(spec: Any) -> list[str]:
    by_name = {f.name: f.option for f in flag_table()}
    return [by_name.get(f.name, "--" + f.name) for f in dataclasses.fields(spec.config_type)]


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--json``: machine-readable output on standard output."""
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of text (for scripts)"
    )


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--quiet``: no progress bar, no summary, only errors."""
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or summary; only errors"
    )


def write_json(value: Any, stream: TextIO | None = None) -> None:
    """Write ``value`` as indented JSON and a newline."""
    out = stream or sys.stdout
    json.dump(value, out, indent=2, default=str)
    out.write("\n")


def progress_bar(total: int | None, *, unit: str, desc: str, quiet: bool = False) -> Any:
    """A tqdm bar on standard error; disabled with ``quiet`` or when stderr is no TTY."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        desc=desc,
        unit_scale=unit == "B",
        unit_divisor=1024 if unit == "B" else 1000,
        disable=True if quiet else None,  # None: off when not a terminal
        leave=False,
        file=sys.stderr,
    )


@contextlib.contextmanager
def read_progress(
    stats: ReadStats, total_bytes: int, *, desc: str = "reading", quiet: bool = False
) -> Iterator[None]:
    """Show the bytes counted by ``stats`` against ``total_bytes`` while a read runs.

    The bar polls ``stats`` from a thread, so any read that counts into ``stats`` (an
    opened file's ``RemoteFITS.stats``, for example) can show progress unchanged.
    """
    bar = progress_bar(total_bytes, unit="B", desc=desc, quiet=quiet)
    if bar.disable:
        yield
        bar.close()
        return
    start = stats.bytes
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.1):
            bar.update(stats.bytes - start - bar.n)

    watcher = threading.Thread(target=poll, name="cloudfits-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        bar.update(stats.bytes - start - bar.n)
        bar.close()
