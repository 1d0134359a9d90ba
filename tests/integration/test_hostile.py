"""The hostile-server suite: a server that lies never yields a wrong value, nor hangs.

A `FaultProxy` with hostile answers (`cloudfits.testing.hostile`) sits in front of the
static HTTP server and of SeaweedFS. Reads of random sections and table rows go through
it over HTTPS (``cloudfits.open``, pinned by its first answer), S3 with presigned URLs
and S3 through botocore (ETag-pinned indexes). Each read must equal astropy's values or
raise a documented `cloudfits.CloudFitsError`, and end within the retry deadline.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import CloudFitsError, RangeResponseError, StaleIndexError, TransientProviderError
from cloudfits.fetch.reader import ObjectReader
from cloudfits.providers.base import ObjectInfo
from cloudfits.providers.location import ObjectLocation
from cloudfits.remote.hdulist import RemoteFITS
from cloudfits.testing.faults import FaultProxy, FaultRates
from cloudfits.testing.hostile import HOSTILE_KINDS, HostileRates
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

DEADLINE = 4.0  # CLOUDFITS_RETRY_DEADLINE of the suite
SLACK = 1.5  # thread start, the last answer's check, the assembly
ENVIRONMENT = {
    "CLOUDFITS_RETRY_DEADLINE": str(DEADLINE),
    "CLOUDFITS_READ_GRACE": "0.6",
    "CLOUDFITS_MIN_READ_RATE": "1000000",
    "CLOUDFITS_MAX_ATTEMPTS": "8",
    "CLOUDFITS_RETRY_BASE_DELAY": "0.01",
    "CLOUDFITS_RETRY_MAX_DELAY": "0.2",
}
API_KEY = "canary-api-key-3e1b77"
RATES = HostileRates.uniform(0.45, slowloris=0.01)
BUCKET = "hostile"


def _image() -> np.ndarray:
    return np.arange(180 * 150, dtype=np.int32).reshape(180, 150) * 7 - 1000


def _table() -> fits.BinTableHDU:
    n = 3000
    return fits.BinTableHDU.from_columns(
        [
            fits.Column("T", "D", array=np.linspace(0, 1, n)),
            fits.Column("N", "J", array=np.arange(n) * 3),
        ]
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-site")
    fits.HDUList([fits.PrimaryHDU(_image()), _table()]).writeto(root / "h.fits")
    return root


@pytest.fixture(autouse=True)
def _suite_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


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
        return self.exact + self.wrong + sum(self.errors.values())

    def add(self, outcome: tuple[str, float]) -> None:
        kind, seconds = outcome
        self.slowest = max(self.slowest, seconds)
        self.late += seconds > DEADLINE + SLACK
        if kind == "exact":
            self.exact += 1
        elif kind == "wrong":
            self.wrong += 1
        else:
            self.errors[kind] += 1


def one_read(opener: Callable[[], RemoteFITS], seed: int) -> tuple[str, float]:
    """One random read, compared with the local values: its outcome and its seconds."""
    rng = random.Random(seed)
    image, table = _image(), _table().data
    started = time.monotonic()
    try:
        f = opener()
        if rng.random() < 0.6:
            r0, c0 = rng.randrange(0, 170), rng.randrange(0, 140)
            key = (slice(r0, r0 + rng.randrange(1, 10)), slice(c0, c0 + rng.randrange(1, 10)))
            ok = np.array_equal(f[0].section[key], image[key])
        else:
            a = rng.randrange(0, 2990)
            got = f[1].read(rows=slice(a, a + 7), columns=["N", "T"])
            ok = np.array_equal(got["N"], table["N"][a : a + 7]) and np.array_equal(
                got["T"], table["T"][a : a + 7]
            )
        kind = "exact" if ok else "wrong"
    except CloudFitsError as err:
        kind = type(err).__name__
    return kind, time.monotonic() - started


def _open(opener: Callable[[], RemoteFITS]) -> RemoteFITS:
    """Open through the hostile proxy: opening may meet a documented error too."""
    for _ in range(20):
        try:
            return opener()
        except CloudFitsError:
            continue
    raise AssertionError("20 opens in a row failed")


def _run(opener: Callable[[], RemoteFITS], reads: int, *, threads: int = 1) -> Tally:
    tally = Tally()
    with ThreadPoolExecutor(threads) as pool:
        for outcome in pool.map(lambda s: one_read(opener, s), range(reads)):
            tally.add(outcome)
    return tally


def _assert_clean(tally: Tally, reads: int) -> None:
    assert tally.reads == reads
    assert tally.wrong == 0, tally
    assert tally.late == 0, tally
    assert tally.exact >= reads // 2, tally  # the retries get through most hostility


@pytest.fixture
def https_proxy(site: Path) -> Iterator[tuple[FaultProxy, RecordingProxy]]:
    with (
        StaticHTTPServer(site) as server,
        RecordingProxy(server.url) as elsewhere,
        FaultProxy(
            server.url, FaultRates(), hostile=RATES, redirect_to=elsewhere.url, seed=3
        ) as proxy,
    ):
        yield proxy, elsewhere


def test_high_2_3_medium_4_hostile_https_reads_are_exact_or_documented_errors(
    https_proxy: tuple[FaultProxy, RecordingProxy],
) -> None:
    proxy, elsewhere = https_proxy
    url = f"{proxy.url}/h.fits"
    headers = {"X-Api-Key": API_KEY}
    pinned = _open(lambda: cloudfits.open(url, headers=headers, max_concurrency=1))
    tally = _run(lambda: pinned, 120)
    _assert_clean(tally, 120)
    assert set(proxy.injected) >= set(HOSTILE_KINDS) - {"slowloris"}
    # low: custom secret headers never follow a redirect to another host.
    assert elsewhere.records
    assert all(API_KEY not in str(r.headers) for r in elsewhere.records)
    REPORT["https"] = tally


def test_high_2_3_hostile_reads_under_64_threads(
    https_proxy: tuple[FaultProxy, RecordingProxy],
) -> None:
    proxy, _ = https_proxy
    pinned = _open(lambda: cloudfits.open(f"{proxy.url}/h.fits"))
    tally = _run(lambda: pinned, 128, threads=64)
    _assert_clean(tally, 128)
    REPORT["threads"] = tally


@pytest.fixture(scope="module")
def s3_hostile(s3_server: S3Server, site: Path) -> Iterator[tuple[FaultProxy, Any]]:
    s3_server.create_bucket(BUCKET)
    s3_server.client().upload_file(str(site / "h.fits"), BUCKET, "data/h.fits")
    index = cloudfits.build_index(f"s3://{BUCKET}/data/")
    with (
        RecordingProxy(s3_server.endpoint_url) as elsewhere,
        FaultProxy(
            s3_server.endpoint_url, FaultRates(), hostile=RATES, redirect_to=elsewhere.url, seed=5
        ) as proxy,
    ):
        yield proxy, index


@pytest.mark.parametrize("presigned", [True, False], ids=["presigned", "botocore"])
def test_high_2_3_medium_11_hostile_s3_reads_through_an_etag_pinned_index(
    presigned: bool, s3_hostile: tuple[FaultProxy, Any]
) -> None:
    proxy, index = s3_hostile
    assert index.entry("h.fits").etag
    options = {"endpoint_url": proxy.url, "presigned_reads": presigned, "max_attempts": 2}
    f = index.open("h.fits", max_concurrency=1, **options)
    tally = _run(lambda: f, 100)
    _assert_clean(tally, 100)
    REPORT[f"s3-{'presigned' if presigned else 'botocore'}"] = tally


def _dask_read(url: str, seed: int) -> tuple[str, float]:
    for name, value in ENVIRONMENT.items():
        os.environ[name] = value
    return one_read(lambda: cloudfits.open(url, max_concurrency=1), seed)


def test_high_2_3_hostile_reads_on_a_dask_localcluster(
    https_proxy: tuple[FaultProxy, RecordingProxy],
) -> None:
    distributed = pytest.importorskip("distributed")
    proxy, _ = https_proxy
    url = f"{proxy.url}/h.fits"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=4, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        outcomes = client.gather(client.map(_dask_read, [url] * 60, range(60)))
    tally = Tally()
    for outcome in outcomes:
        tally.add(outcome)
    _assert_clean(tally, 60)
    REPORT["dask"] = tally


REPORT: dict[str, Tally] = {}

ALWAYS_REFUSED = {
    "long_body": RangeResponseError,
    "chunked_long": RangeResponseError,
    "html": RangeResponseError,
    "junk_front": RangeResponseError,
    "wrong_total": RangeResponseError,
    "gzip": RangeResponseError,
    "replaced": StaleIndexError,
}


def _reader(location: ObjectLocation, info: ObjectInfo) -> ObjectReader:
    return ObjectReader(
        location.provider(), location.path, location.uri, etag=info.etag, size=info.size
    )


@pytest.mark.parametrize("kind", [*ALWAYS_REFUSED, "redirect"])
@pytest.mark.parametrize("store", ["https", "s3-presigned", "s3-botocore"])
def test_high_2_3_medium_11_each_hostile_answer_is_refused_every_time(
    kind: str, store: str, site: Path, s3_hostile: tuple[FaultProxy, Any]
) -> None:
    expected = (site / "h.fits").read_bytes()[5000:9000]
    with (
        StaticHTTPServer(site) as server,
        RecordingProxy(server.url) as elsewhere,
    ):
        upstream = server.url if store == "https" else s3_hostile[0].upstream
        only = HostileRates(**{kind: 1.0})
        with FaultProxy(upstream, FaultRates(), hostile=only, redirect_to=elsewhere.url) as proxy:
            if store == "https":
                location = ObjectLocation.from_uri(f"{proxy.url}/h.fits")
            else:
                location = ObjectLocation.from_uri(
                    f"s3://{BUCKET}/data/h.fits",
                    endpoint_url=proxy.url,
                    presigned_reads=store == "s3-presigned",
                    max_attempts=1,
                )
            reader = _reader(location, location.provider().head(location.path))
            if kind == "redirect":
                if store == "https":
                    assert reader.read(5000, 9000) == expected
                else:  # S3 does not follow a redirect to another host
                    with pytest.raises(CloudFitsError):
                        reader.read(5000, 9000)
                return
            with pytest.raises(ALWAYS_REFUSED[kind]):
                reader.read(5000, 9000)
            assert proxy.injected[kind] >= 1


def test_medium_4_a_one_byte_a_second_server_cannot_keep_a_read_alive(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "2")
    with (
        StaticHTTPServer(site) as server,
        FaultProxy(
            server.url, FaultRates(), hostile=HostileRates(slowloris=1.0), slow_rate=1.0
        ) as proxy,
    ):
        location = ObjectLocation.from_uri(f"{proxy.url}/h.fits", read_timeout=30.0)
        reader = _reader(location, location.provider().head(location.path))
        started = time.monotonic()
        with pytest.raises(TransientProviderError, match="read deadline"):
            reader.read(0, 4000)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 0.5
    assert proxy.injected["slowloris"] >= 2  # the deadline cut more than one attempt


def test_medium_5_open_pins_the_version_of_its_first_answer(site: Path) -> None:
    # Every GET answers another version than HEAD describes: headers of one version
    # never meet data of another.
    with (
        StaticHTTPServer(site) as server,
        FaultProxy(server.url, FaultRates(), hostile=HostileRates(replaced=1.0)) as proxy,
        pytest.raises(StaleIndexError, match="changed"),
    ):
        cloudfits.open(f"{proxy.url}/h.fits")


def test_zz_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the figures of the runs above (docs/reliability.rst quotes them)."""
    with capsys.disabled():
        for name, tally in REPORT.items():
            print(
                f"\n{name}: {tally.reads} reads, {tally.exact} exact, {tally.wrong} wrong,"
                f" {tally.late} late, slowest {tally.slowest:.2f} s, errors {dict(tally.errors)}"
            )
