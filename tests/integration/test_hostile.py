"""The hostile-server suite: a server that lies never yields a wrong value, nor hangs.

A `FaultProxy` with hostile answers (`cloudfits.testing.hostile`) sits in front of the
static HTTP server and of SeaweedFS. Reads of random sections and table rows go through
it over HTTPS (``cloudfits.open``, pinned by its first answer), S3 with presigned URLs
and S3 through botocore (ETag-pinned indexes). Each read must equal astropy's values or
raise a documented `cloudfits.CloudFitsError`, and end within the retry deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloudfits
from cloudfits import CloudFitsError, StaleIndexError, TransientProviderError
from cloudfits.fetch.reader import ObjectReader
from cloudfits.providers.base import ObjectInfo
from cloudfits.providers.location import ObjectLocation
from cloudfits.testing.faults import FaultProxy, FaultRates
from cloudfits.testing.hostile import HOSTILE_KINDS, HostileRates
from cloudfits.testing.hostile_reads import (
    ALWAYS_REFUSED,
    ENVIRONMENT,
    RATES,
    Expected,
    Tally,
    assert_clean,
    one_read,
    open_retrying,
    run_reads,
    write_hostile_fits,
)
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

API_KEY = "canary-api-key-3e1b77"
BUCKET = "hostile"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-site")
    write_hostile_fits(root / "h.fits")
    return root


@pytest.fixture(autouse=True)
def _suite_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def expected(site: Path) -> Expected:
    return Expected.from_file(site / "h.fits")


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
    https_proxy: tuple[FaultProxy, RecordingProxy], expected: Expected
) -> None:
    proxy, elsewhere = https_proxy
    url = f"{proxy.url}/h.fits"
    headers = {"X-Api-Key": API_KEY}
    pinned = open_retrying(lambda: cloudfits.open(url, headers=headers, max_concurrency=1))
    tally = run_reads(lambda: pinned, expected, 120)
    assert_clean(tally, 120)
    assert set(proxy.injected) >= set(HOSTILE_KINDS) - {"slowloris"}
    # low: custom secret headers never follow a redirect to another host.
    assert elsewhere.records
    assert all(API_KEY not in str(r.headers) for r in elsewhere.records)
    REPORT["https"] = tally


def test_high_2_3_hostile_reads_under_64_threads(
    https_proxy: tuple[FaultProxy, RecordingProxy], expected: Expected
) -> None:
    proxy, _ = https_proxy
    pinned = open_retrying(lambda: cloudfits.open(f"{proxy.url}/h.fits"))
    tally = run_reads(lambda: pinned, expected, 128, threads=64)
    assert_clean(tally, 128)
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
    presigned: bool, s3_hostile: tuple[FaultProxy, Any], expected: Expected
) -> None:
    proxy, index = s3_hostile
    assert index.entry("h.fits").etag
    options = {"endpoint_url": proxy.url, "presigned_reads": presigned, "max_attempts": 2}
    f = index.open("h.fits", max_concurrency=1, **options)
    tally = run_reads(lambda: f, expected, 100)
    assert_clean(tally, 100)
    REPORT[f"s3-{'presigned' if presigned else 'botocore'}"] = tally


def _dask_read(url: str, expected: Expected, seed: int) -> tuple[str, float]:
    for name, value in ENVIRONMENT.items():
        os.environ[name] = value
    return one_read(lambda: cloudfits.open(url, max_concurrency=1), expected, seed)


def test_high_2_3_hostile_reads_on_a_dask_localcluster(
    https_proxy: tuple[FaultProxy, RecordingProxy], expected: Expected
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
        outcomes = client.gather(client.map(_dask_read, [url] * 60, [expected] * 60, range(60)))
    tally = Tally()
    for outcome in outcomes:
        tally.add(outcome)
    assert_clean(tally, 60)
    REPORT["dask"] = tally


REPORT: dict[str, Tally] = {}


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
            print("\n" + tally.line(name))
