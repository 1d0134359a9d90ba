"""Estimated cost of requester-pays reads.

With a requester-pays bucket the reader pays for every request and every byte sent
out of the cloud. The defaults are AWS's list prices for S3 in us-east-1 (N. Virginia)
as published on the Amazon S3 pricing page in 2025: data transfer out to the internet
$0.09 per GB for the first 10 TB of a month, and GET requests $0.0004 per 1,000. AWS
bills a GB as 2**30 bytes. Reads from a compute instance in the bucket's own region
pay no transfer charge: set the price per GB to 0 there.
"""

from __future__ import annotations

import argparse
import math
import os

from .common import UsageError

__all__ = [
    "DEFAULT_PRICE_PER_1000_REQUESTS",
    "DEFAULT_PRICE_PER_GB",
    "PRICE_PER_1000_REQUESTS_ENV",
    "PRICE_PER_GB_ENV",
    "add_cost_arguments",
    "estimated_cost",
    "format_usd",
    "plural",
    "prices",
    "summary_line",
]

DEFAULT_PRICE_PER_GB = 0.09
"""US dollars per GB (2**30 bytes) sent to the internet: AWS S3, us-east-1, 2025."""
DEFAULT_PRICE_PER_1000_REQUESTS = 0.0004
"""US dollars per 1,000 GET requests: AWS S3 Standard, us-east-1, 2025."""
PRICE_PER_GB_ENV = "CLOUDFITS_PRICE_PER_GB"
PRICE_PER_1000_REQUESTS_ENV = "CLOUDFITS_PRICE_PER_1000_REQUESTS"
GB = 1024**3


def add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--price-per-gb`` and ``--price-per-1000-requests``."""
    group = parser.add_argument_group("cost estimate (requester-pays reads)")
    group.add_argument(
        "--price-per-gb",
        type=float,
        metavar="USD",
        help=f"transfer price per GB (default ${DEFAULT_PRICE_PER_GB}, or {PRICE_PER_GB_ENV})",
    )
    group.add_argument(
        "--price-per-1000-requests",
        type=float,
        metavar="USD",
        help=f"GET price per 1,000 requests (default ${DEFAULT_PRICE_PER_1000_REQUESTS},"
        f" or {PRICE_PER_1000_REQUESTS_ENV})",
    )


def _price(given: float | None, variable: str, default: float) -> float:
    if given is None:
        text = os.environ.get(variable, "").strip()
        if not text:
            return default
        try:
            given = float(text)
        except ValueError:
            raise UsageError(f"{variable}={text!r} is not a number") from None
    if not given >= 0:  # also refuses NaN
        raise UsageError(f"a price must be a number >= 0, not {given}")
    return given


def prices(args: argparse.Namespace) -> tuple[float, float]:
    """``(price per GB, price per 1,000 requests)``: the options, else the environment."""
    return (
        _price(getattr(args, "price_per_gb", None), PRICE_PER_GB_ENV, DEFAULT_PRICE_PER_GB),
        _price(
            getattr(args, "price_per_1000_requests", None),
            PRICE_PER_1000_REQUESTS_ENV,
            DEFAULT_PRICE_PER_1000_REQUESTS,
        ),
    )


def estimated_cost(
    nbytes: int, requests: int, price_per_gb: float, price_per_1000_requests: float
) -> float:
    """US dollars for ``requests`` GET requests that return ``nbytes`` bytes.

    >>> round(estimated_cost(2 * 1024**3, 1000, 0.09, 0.0004), 4)
    0.1804
    """
    return nbytes / GB * price_per_gb + requests / 1000 * price_per_1000_requests


def format_usd(amount: float) -> str:
    """Dollars with cents, or two significant digits below a cent (no exponent).

    >>> format_usd(3.6912), format_usd(0.0000042613), format_usd(0)
    ('$3.69', '$0.0000043', '$0')
    """
    if amount == 0:
        return "$0"
    if amount >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.{1 - math.floor(math.log10(amount))}f}"


def plural(count: int, noun: str) -> str:
    """``"1 request"``, ``"2 requests"``, with thousands separators."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def summary_line(
    requests: int,
    nbytes: int,
    *,
    requester_pays: bool,
    price_per_gb: float = DEFAULT_PRICE_PER_GB,
    price_per_1000_requests: float = DEFAULT_PRICE_PER_1000_REQUESTS,
) -> str:
    """One line: requests and bytes read, and the estimated cost when you pay for them.

    >>> summary_line(12, 3_000_000, requester_pays=False)
    'read 12 requests, 3,000,000 bytes'
    >>> summary_line(12, 3_000_000, requester_pays=True).split("; ")[1]
    'estimated requester-pays cost $0.00026 (at $0.09/GB and $0.0004 per 1,000 requests)'
    """
    line = f"read {plural(requests, 'request')}, {nbytes:,} bytes"
    if requester_pays:
        cost = estimated_cost(nbytes, requests, price_per_gb, price_per_1000_requests)
        line += (
            f"; estimated requester-pays cost {format_usd(cost)} (at ${price_per_gb:g}/GB"
            f" and ${price_per_1000_requests:g} per 1,000 requests)"
        )
    return line
