"""Reads through a proxy that injects store faults: exact values or documented errors.

The data lives in the local SeaweedFS; `cloudfits.testing.faults.FaultProxy` stands
between it and the reader and answers a share of the ``GET`` requests with 500/503,
``SlowDown``, resets and short bodies, stalls past the timeout and wrong
``Content-Range``. Every image cutout and table read is compared with astropy reading
the local file. Never a wrong value: either the exact result or one of the documented
errors.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import cloudfits
from cloudfits import RangeResponseError, TransientProviderError
from cloudfits.fetch import ObjectReader
from cloudfits.fetch.retry import RetryPolicy
from cloudfits.index import FitsIndex
from cloudfits.remote import RemoteFITS
from cloudfits.testing.faults import FAULT_KINDS, FaultProxy, FaultRates
from cloudfits.testing.seaweedfs import S3Server

pytestmark = pytest.mark.s3

BUCKET = "faults"
#: Errors a read may end with when faults outlast its retry budget.
DOCUMENTED = (TransientProviderError, RangeResponseError)
#: Small parts, so that a read is several requests, each of which may be faulted.
TUNING = {"max_part": 24 * 1024, "max_gap": 2048, "max_concurrency": 4}
#: The client gives up on a silent server after this many seconds.
TIMEOUT = 0.4
READ_THREADS = 16


def make_files(directory: Path) -> dict[str, Path]:
    """A scaled int16 cube with a float image, and a table with many column types."""
    rng = np.random.default_rng(5)
    cube = rng.integers(-3000, 3000, size=(12, 60, 70), dtype=np.int16)
    primary = fits.PrimaryHDU(cube)
    primary.header["BSCALE"] = 0.5
    primary.header["BZERO"] = 100.0
    image = fits.ImageHDU(rng.normal(size=(180, 130)).astype(">f4"), name="SCI")
    rows = 1500
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("ID", "J", array=np.arange(rows, dtype=np.int32)),
            fits.Column("FLUX", "D", unit="Jy", array=rng.normal(size=rows)),
            fits.Column("MAG", "E", array=rng.normal(size=rows).astype(np.float32)),
            fits.Column("NAME", "12A", array=[f"star-{i}" for i in range(rows)]),
            fits.Column("VEC", "3I", array=rng.integers(0, 999, size=(rows, 3))),
            fits.Column("FLAG", "L", array=rng.integers(0, 2, size=rows).astype(bool)),
        ],
        name="CAT",
    )
    paths = {"cube.fits": directory / "cube.fits"}
    fits.HDUList([primary, image, table]).writeto(paths["cube.fits"])
    return paths


@dataclass
class Corpus:
    index: FitsIndex
    local: dict[str, fits.HDUList]
    tables: dict[tuple[str, int], Table]


@pytest.fixture(scope="module")
def corpus(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    files = make_files(tmp_path_factory.mktemp("fault-data"))
    s3_server.create_bucket(BUCKET)
    client = s3_server.client()
    for name, path in files.items():
        client.upload_file(str(path), BUCKET, f"data/{name}")
    index = cloudfits.build_index(f"s3://{BUCKET}/data/")
    local = {name: fits.open(path, memmap=False) for name, path in files.items()}
    tables = {(name, 2): Table.read(files[name], hdu=2) for name in local}  # as Table.read(path)
    yield Corpus(index, local, tables)
    for hdul in local.values():
        hdul.close()


def _random_slice(rng: random.Random, n: int) -> slice | int:
    if rng.random() < 0.15:
        return rng.randrange(-n, n)
    start = rng.randrange(n)
    stop = rng.randrange(start + 1, n + 1)
    step = rng.choice((1, 1, 1, 2, 3))
    if rng.random() < 0.1:
        return slice(stop - 1, start - 1 if start else None, -step)
    return slice(start, stop, step)


Check = Callable[[RemoteFITS], bool]


def random_read(rng: random.Random, corpus: Corpus) -> Check:
    """One random cutout or table read, as a function comparing it with astropy."""
    hdul = corpus.local["cube.fits"]
    choice = rng.random()
    if choice < 0.7:
        number = 0 if rng.random() < 0.5 else 1
        expected_all = hdul[number].data
        key = tuple(_random_slice(rng, n) for n in expected_all.shape)
        expected = expected_all[key]
        native = expected.dtype.newbyteorder("=")  # cloudfits answers in native order

        def image(f: RemoteFITS) -> bool:
            got = f[number].section[key]
            return bool(got.dtype == native and np.array_equal(got, expected))

        return image
    table = corpus.tables[("cube.fits", 2)]
    start = rng.randrange(len(table))
    rows: Any = slice(start, min(len(table), start + rng.randrange(1, 400)))
    if rng.random() < 0.3:
        rows = sorted(rng.sample(range(len(table)), rng.randrange(1, 50)))
    columns = rng.sample(table.colnames, rng.randrange(1, len(table.colnames) + 1))
    expected_table = table[rows][columns]

    def rows_read(f: RemoteFITS) -> bool:
        got = f[2].read(rows=rows, columns=columns)
        return got.colnames == columns and all(
            np.array_equal(np.asarray(got[c]), np.asarray(expected_table[c])) for c in columns
        )

    return rows_read


@dataclass
class Outcome:
    exact: int = 0
    wrong: int = 0
    errors: Counter[str] | None = None
    undocumented: list[BaseException] | None = None
    seconds: float = 0.0


def run_reads(f: RemoteFITS, checks: list[Check]) -> Outcome:
    outcome = Outcome(errors=Counter(), undocumented=[])

    def one(check: Check) -> str:
        try:
            return "exact" if check(f) else "wrong"
        except DOCUMENTED as err:
            return type(err).__name__
        except Exception as err:  # anything else fails the test below
            assert outcome.undocumented is not None
            outcome.undocumented.append(err)
            return "undocumented"

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        results = list(pool.map(one, checks))
    outcome.seconds = time.monotonic() - started
    outcome.exact = results.count("exact")
    outcome.wrong = results.count("wrong")
    assert outcome.errors is not None
    outcome.errors.update(r for r in results if r not in ("exact", "wrong"))
    return outcome


def open_through(
    corpus: Corpus, proxy: FaultProxy, *, sdk_attempts: int, retry: RetryPolicy
) -> RemoteFITS:
    f = corpus.index.open(
        "cube.fits",
        endpoint_url=proxy.url,
        read_timeout=TIMEOUT,
        connect_timeout=TIMEOUT,
        max_attempts=sdk_attempts,
        **TUNING,
    )
    f.reader.retry = retry
    return f


def report(name: str, proxy: FaultProxy, outcome: Outcome, reads: int) -> None:
    faults = sum(proxy.injected.values())
    print(
        f"\n{name}: {reads} reads, {proxy.requests} GETs, {faults} faults injected"
        f" ({faults / max(proxy.requests, 1):.1%}: {dict(proxy.injected)});"
        f" {outcome.exact} exact, {outcome.wrong} wrong, errors {dict(outcome.errors or {})};"
        f" {outcome.seconds:.1f} s"
    )


def test_faults_below_the_retry_budget_never_fail(corpus: Corpus, s3_server: S3Server) -> None:
    """12% of requests faulted, every kind; the retry budget absorbs them all."""
    reads = 1000
    rng = random.Random(11)
    checks = [random_read(rng, corpus) for _ in range(reads)]
    rates = FaultRates.uniform(0.12, stall=0.005)
    with FaultProxy(s3_server.endpoint_url, rates, seed=12, stall_seconds=3 * TIMEOUT) as proxy:
        f = open_through(
            corpus,
            proxy,
            sdk_attempts=2,
            retry=RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=0.2, deadline=60),
        )
        outcome = run_reads(f, checks)
    report("below budget", proxy, outcome, reads)
    assert not outcome.undocumented, outcome.undocumented[:3]
    assert outcome.wrong == 0
    assert outcome.exact == reads
    assert sum(proxy.injected.values()) >= 0.10 * proxy.requests
    assert set(proxy.injected) == set(FAULT_KINDS)


def test_faults_past_the_retry_budget_are_documented_errors(
    corpus: Corpus, s3_server: S3Server
) -> None:
    """25% of requests faulted and little patience: failures, never a wrong value."""
    reads = 1000
    rng = random.Random(21)
    checks = [random_read(rng, corpus) for _ in range(reads)]
    rates = FaultRates.uniform(0.25, stall=0.01)
    with FaultProxy(s3_server.endpoint_url, rates, seed=22, stall_seconds=3 * TIMEOUT) as proxy:
        f = open_through(
            corpus,
            proxy,
            sdk_attempts=1,
            retry=RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0),
        )
        outcome = run_reads(f, checks)
    report("past budget", proxy, outcome, reads)
    assert not outcome.undocumented, outcome.undocumented[:3]
    assert outcome.wrong == 0
    failed = sum((outcome.errors or Counter()).values())
    assert outcome.exact + failed == reads
    assert failed > 0  # the budget was really exceeded
    assert outcome.exact > 0
    assert sum(proxy.injected.values()) >= 0.2 * proxy.requests


def test_permanent_errors_are_not_retried(corpus: Corpus, s3_server: S3Server) -> None:
    """A missing object is one request, whatever the retry budget.

    (Through presigned URLs, any error answer is asked once more through boto3, which
    words the error: two requests, still no retry.)
    """
    with FaultProxy(s3_server.endpoint_url, FaultRates(), seed=0) as proxy:
        provider, path = cloudfits.get_registry().for_uri(
            f"s3://{BUCKET}/data/absent.fits",
            endpoint_url=proxy.url,
            max_attempts=5,
            presigned_reads=False,
        )
        reader = ObjectReader(
            provider, path, "s3://faults/data/absent.fits", retry=RetryPolicy(max_attempts=5)
        )
        with pytest.raises(cloudfits.ObjectNotFoundError):
            reader.read(0, 100)
        assert proxy.requests == 1
