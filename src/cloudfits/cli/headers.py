"""``cloudfits headers``: header cards of every file, like astropy's ``fitsheader``.

``--hdu`` picks HDUs by number or EXTNAME, ``--keyword`` picks cards (``*`` and ``?``
are wildcards); both may be repeated. An HDU or keyword missing from one file is
reported on standard error and skipped; nothing matching in any file is an error.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections.abc import Iterator
from typing import Any

from astropy.io.fits import Card
from astropy.io.fits.card import Undefined

from ..errors import CloudFitsError
from ..remote.hdulist import RemoteFITS, RemoteHDU
from .common import EXIT_OK, add_json_argument, add_quiet_argument, write_json
from .pricing import add_cost_arguments
from .targets import add_target_arguments, open_targets

__all__ = ["add_arguments", "card_value", "hdu_key", "run", "select_cards", "select_hdus"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cloudfits headers``."""
    add_target_arguments(parser)
    parser.add_argument(
        "-e",
        "--hdu",
        action="append",
        metavar="HDU",
        help="an HDU number, EXTNAME, or EXTNAME,EXTVER as fitsheader takes it"
        " (repeatable; default every HDU)",
    )
    parser.add_argument(
        "-k",
        "--keyword",
        action="append",
        metavar="KEYWORD",
        help="a keyword, * and ? as wildcards (repeatable; default every card)",
    )
    add_json_argument(parser)
    add_quiet_argument(parser)
    add_cost_arguments(parser)


def hdu_key(text: str) -> int | str | tuple[str, int]:
    """An ``--hdu`` value as an HDU key: ``"1"``, ``"SCI"``, or ``"SCI,2"`` as fitsheader
    takes it (EXTNAME and EXTVER)."""
    if text.lstrip("-").isdigit():
        return int(text)
    name, comma, version = text.rpartition(",")
    if comma and name and version.strip().isdigit():
        return (name.strip(), int(version))
    return text


def select_hdus(f: RemoteFITS, wanted: list[str] | None) -> Iterator[RemoteHDU]:
    """The HDUs of ``f`` named by number or EXTNAME in ``wanted`` (all when None)."""
    if not wanted:
        yield from f
        return
    for key in wanted:
        try:
            yield f[hdu_key(key)]
        except (IndexError, KeyError):
            print(f"cloudfits headers: {f.uri} has no HDU {key}", file=sys.stderr)


def select_cards(hdu: RemoteHDU, patterns: list[str] | None) -> list[Card]:
    """The cards of ``hdu`` whose keyword matches one of ``patterns`` (all when None)."""
    cards = list(hdu.header.cards)
    if not patterns:
        return cards
    chosen: list[Card] = []
    for pattern in patterns:
        found = [c for c in cards if fnmatch.fnmatchcase(c.keyword, pattern.upper())]
        if not found:
            print(
                f"cloudfits headers: {hdu.file.uri}: HDU {hdu.number} has no keyword {pattern}",
                file=sys.stderr,
            )
        chosen.extend(c for c in found if c not in chosen)
    return chosen


def card_value(value: Any) -> Any:
    """A header value as JSON can hold it: undefined is None, complex is ``[re, im]``."""
    if isinstance(value, Undefined):
        return None
    if isinstance(value, complex):
        return [value.real, value.imag]
    return value


def run(args: argparse.Namespace) -> int:
    """Print the chosen cards of the chosen HDUs of every file (or JSON)."""
    found: list[dict[str, Any]] = []
    printed = 0
    for f in open_targets(args):
        for hdu in select_hdus(f, args.hdu):
            cards = select_cards(hdu, args.keyword)
            if not cards:
                continue
            if args.json:
                found.append(
                    {
                        "file": f.uri,
                        "hdu": hdu.number,
                        "name": hdu.name,
                        "cards": [
                            {
                                "keyword": c.keyword,
                                "value": card_value(c.value),
                                "comment": c.comment,
                            }
                            for c in cards
                        ],
                    }
                )
            else:
                sys.stdout.write(f"{chr(10) if printed else ''}# HDU {hdu.number} in {f.uri}:\n")
                sys.stdout.writelines(f"{str(c).rstrip()}\n" for c in cards)
            printed += 1
    if args.json:
        write_json(found)
    if not printed:
        raise CloudFitsError("no header card matched the --hdu and --keyword given")
    return EXIT_OK
