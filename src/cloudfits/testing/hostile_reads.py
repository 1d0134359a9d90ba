"""Random reads through a lying server, compared with astropy: the hostile suites' tally.

A provider's test suite puts a `cloudfits.testing.faults.FaultProxy` with hostile
answers (`cloudfits.testing.hostile`) between the provider and its store, opens the
object written by `write_hostile_fits`, and runs `run_reads`: each read of a random
image section or table slice must equal what astropy reads from the same local file,
or raise a documented `cloudfits.CloudFitsError`, and end within the retry deadline
(`ENVIRONMENT`). `assert_clean` says whether a run kept those promises.

Examples
--------
>>> expected = Expected.from_file(local)  # doctest: +SKIP
>>> tally = run_reads(lambda: remote, expected, 100)  # doctest: +SKIP
>>> assert_clean(tally, 100)  # doctest: +SKIP
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import CloudFitsError, RangeResponseError, StaleIndexError

__all__ = [
    "ALWAYS_REFUSED",
    "DEADLINE",
    "ENVIRONMENT",
    "SLACK",
    "Expected",
    "Tally",
    "assert_clean",
    "one_read",
    "open_retrying",
    "run_reads",
    "write_hostile_fits",
]

DEADLINE = 4.0  # CLOUDFITS_RETRY_DEADLINE of the suites
SLACK = 1.5  # thread start, the last answer's check, the assembly
#: The environment of a hostile suite: short deadlines, many quick attempts.
ENVIRONMENT = {
    "CLOUDFITS_RETRY_DEADLINE": str(DEADLINE),
    "CLOUDFITS_READ_GRACE": "0.6",
    "CLOUDFITS_MIN_READ_RATE": "1000000",
    "CLOUDFITS_MAX_ATTEMPTS": "8",
    "CLOUDFITS_RETRY_BASE_DELAY": "0.01",
    "CLOUDFITS_RETRY_MAX_DELAY": "0.2",
}
#: The error each hostile answer (`cloudfits.testing.hostile.HOSTILE_KINDS`) must raise.
ALWAYS_REFUSED: dict[str, type[CloudFitsError]] = {
    "long_body": RangeResponseError,
    "chunked_long": RangeResponseError,
    "html": RangeResponseError,
    "junk_front": RangeResponseError,
    "wrong_total": RangeResponseError,
    "gzip": RangeResponseError,
    "replaced": StaleIndexError,
}


def write_hostile_fits(path: Path) -> Path:
    """Write the suites' file: a 180 x 150 int32 image and a 3,000-row table."""
    image = np.arange(180 * 150, dtype=np.int32).reshape(180, 150) * 7 - 1000
    n = 3000
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("T", "D", array=np.linspace(0, 1, n)),
            fits.Column("N", "J", array=np.arange(n) * 3),
        ]
    )
    fits.HDUList([fits.PrimaryHDU(image), table]).writeto(path)
    return path


@dataclass(frozen=True)
class Expected:
    """What astropy reads from the local copy of the suites' file."""

    image: np.ndarray
    table: Any

    @classmethod
    def from_file(cls, path: Path) -> Expected:
        """Astropy's values of ``path`` (written by `write_hostile_fits`)."""
        with fits.open(path, memmap=False) as hdul:
            return cls(np.array(hdul[0].data), hdul[1].data.copy())


@dataclass
class Tally:
    """What the reads of one run came to."""

    exact: int = 0
    wrong: int = 0
    late: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0

    @property
    def reads(self) -> int:
        """Every read of the run."""
        return self.exact + self.wrong + sum(self.errors.values())

    def add(self, outcome: tuple[str, float]) -> None:
        """Count one read's outcome (``"exact"``, ``"wrong"`` or an error's name)."""
        kind, seconds = outcome
        self.slowest = max(self.slowest, seconds)
        self.late += seconds > DEADLINE + SLACK
        if kind == "exact":
            self.exact += 1
        elif kind == "wrong":
            self.wrong += 1
        else:
            self.errors[kind] += 1

    def line(self, name: str) -> str:
        """One line of the figures, as ``docs/reliability.rst`` quotes them."""
        return (
            f"{name}: {self.reads} reads, {self.exact} exact, {self.wrong} wrong,"
            f" {self.late} late, slowest {self.slowest:.2f} s, errors {dict(self.errors)}"
        )


def one_read(opener: Callable[[], Any], expected: Expected, seed: int) -> tuple[str, float]:
    """One random read through ``opener()`` (a `RemoteFITS`), compared with astropy's.

    Returns ``"exact"``, ``"wrong"`` or the name of the `CloudFitsError` raised, and the
    seconds it took.
    """
    rng = random.Random(seed)
    started = time.monotonic()
    try:
        f = opener()
        if rng.random() < 0.6:
            r0, c0 = rng.randrange(0, 170), rng.randrange(0, 140)
            key = (slice(r0, r0 + rng.randrange(1, 10)), slice(c0, c0 + rng.randrange(1, 10)))
            ok = np.array_equal(f[0].section[key], expected.image[key])
        else:
            a = rng.randrange(0, 2990)
            got = f[1].read(rows=slice(a, a + 7), columns=["N", "T"])
            ok = np.array_equal(got["N"], expected.table["N"][a : a + 7]) and np.array_equal(
                got["T"], expected.table["T"][a : a + 7]
            )
        kind = "exact" if ok else "wrong"
    except CloudFitsError as err:
        kind = type(err).__name__
    return kind, time.monotonic() - started


def open_retrying(opener: Callable[[], Any], attempts: int = 20) -> Any:
    """``opener()``, again while it meets a documented error (opening reads too)."""
    for _ in range(attempts):
        try:
            return opener()
        except CloudFitsError:
            continue
    raise AssertionError(f"{attempts} opens in a row failed")


def run_reads(
    opener: Callable[[], Any], expected: Expected, reads: int, *, threads: int = 1
) -> Tally:
    """``reads`` random reads (`one_read`, seeds ``0..reads-1``) on ``threads`` threads."""
    tally = Tally()
    with ThreadPoolExecutor(threads) as pool:
        for outcome in pool.map(lambda s: one_read(opener, expected, s), range(reads)):
            tally.add(outcome)
    return tally


def assert_clean(tally: Tally, reads: int) -> None:
    """Every read counted, none wrong, none late, and most of them exact."""
    assert tally.reads == reads
    assert tally.wrong == 0, tally
    assert tally.late == 0, tally
    assert tally.exact >= reads // 2, tally  # the retries get through most hostility
