"""Issue 15 for az://: every answer goes through the engine's check, a lying server never wins.

A `FaultProxy` with hostile answers sits between the provider and Azurite. Reads are
compared with astropy reading the same local file; each is exact or a documented
error, and none outlives the retry deadline.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudfits_azure.provider import AzureProvider

import cloudfits
from cloudfits import CloudFitsError, TransientProviderError
from cloudfits.fetch.reader import ObjectReader
from cloudfits.providers.base import SupportsReadRange
from cloudfits.providers.location import ObjectLocation
from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.faults import FaultProxy, FaultRates
from cloudfits.testing.hostile import HostileRates
from cloudfits.testing.hostile_reads import (
    ALWAYS_REFUSED,
    DEADLINE,
    ENVIRONMENT,
    Expected,
    Tally,
    assert_clean,
    open_retrying,
    run_reads,
    write_hostile_fits,
)
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.slowhead import SlowHeadServer

CONTAINER = "hostile"
RATES = HostileRates.uniform(0.45, slowloris=0.01)
READS = 100
REPORT: dict[str, Tally] = {}


@pytest.fixture(autouse=True)
def _suite_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hostile_fits(tmp_path_factory.mktemp("az-hostile") / "h.fits")


@pytest.fixture(scope="module")
def stored(azurite: AzuriteServer, local: Path) -> str:
    azurite.create_container(CONTAINER)
    container = azurite.service_client().get_container_client(CONTAINER)
    container.upload_blob("data/h.fits", local.read_bytes(), overwrite=True)
    return f"az://{CONTAINER}/data/h.fits"


def _options(account_url: str) -> dict[str, Any]:
    return {"account_url": account_url, "account_key": ACCOUNT_KEY}


def _through(proxy: FaultProxy | RecordingProxy) -> dict[str, Any]:
    return _options(f"{proxy.url}/{ACCOUNT_NAME}")


def _upstream(azurite: AzuriteServer) -> str:
    return azurite.account_url.rsplit("/", 1)[0]


def _reader(location: ObjectLocation) -> ObjectReader:
    info = location.provider().head(location.path)
    return ObjectReader(
        location.provider(), location.path, location.uri, etag=info.etag, size=info.size
    )


def test_high_2_3_azure_answers_go_through_the_engines_check(
    azurite: AzuriteServer, stored: str, local: Path
) -> None:
    expected = Expected.from_file(local)
    f = cloudfits.open(stored, **_options(azurite.account_url))
    assert isinstance(f.reader.provider, AzureProvider)
    assert isinstance(f.reader.provider, SupportsReadRange)
    assert (f[0].section[10:20, 30:45] == expected.image[10:20, 30:45]).all()
    rows = f[1].read(rows=slice(100, 140), columns=["T", "N"])
    assert (rows["N"] == expected.table["N"][100:140]).all()
    assert (rows["T"] == expected.table["T"][100:140]).all()
    with RecordingProxy(_upstream(azurite)) as proxy:
        location = ObjectLocation.from_uri(stored, **_through(proxy))
        reader = _reader(location)
        assert reader.read(5000, 9000) == local.read_bytes()[5000:9000]
        gets = [r for r in proxy.records if r.method == "GET"]
    assert gets
    assert all(r.headers.get("accept-encoding") == "identity" for r in gets)
    assert all(r.headers.get("if-match") == f'"{reader.etag}"' for r in gets)


@pytest.fixture
def hostile(azurite: AzuriteServer, stored: str) -> Iterator[tuple[FaultProxy, RecordingProxy]]:
    with (
        RecordingProxy(_upstream(azurite)) as elsewhere,
        FaultProxy(
            _upstream(azurite), FaultRates(), hostile=RATES, redirect_to=elsewhere.url, seed=7
        ) as proxy,
    ):
        yield proxy, elsewhere


def test_high_2_3_medium_4_hostile_azure_reads_are_exact_or_documented_errors(
    azurite: AzuriteServer,
    stored: str,
    local: Path,
    hostile: tuple[FaultProxy, RecordingProxy],
) -> None:
    proxy, elsewhere = hostile
    index = cloudfits.build_index(stored.rsplit("/", 1)[0] + "/", **_options(azurite.account_url))
    assert index.entry("h.fits").etag
    f = open_retrying(lambda: index.open("h.fits", max_concurrency=1, **_through(proxy)))
    tally = run_reads(lambda: f, Expected.from_file(local), READS)
    assert_clean(tally, READS)
    assert proxy.injected
    # The account key signs each request; it never goes to another host.
    assert all(ACCOUNT_KEY not in str(r.headers) + r.target for r in elsewhere.records)
    REPORT["azure"] = tally


@pytest.mark.parametrize("kind", [*ALWAYS_REFUSED, "redirect"])
def test_high_2_3_each_hostile_answer_is_refused_every_time(
    kind: str, azurite: AzuriteServer, stored: str, local: Path
) -> None:
    expected = local.read_bytes()[5000:9000]
    with (
        RecordingProxy(_upstream(azurite)) as elsewhere,
        FaultProxy(
            _upstream(azurite),
            FaultRates(),
            hostile=HostileRates(**{kind: 1.0}),
            redirect_to=elsewhere.url,
        ) as proxy,
    ):
        reader = _reader(ObjectLocation.from_uri(stored, **_through(proxy)))
        if kind == "redirect":
            with contextlib.suppress(CloudFitsError):  # exact, or refused
                assert reader.read(5000, 9000) == expected
            assert elsewhere.records  # followed, without the credentials
            assert all("authorization" not in r.headers for r in elsewhere.records)
            return
        with pytest.raises(ALWAYS_REFUSED[kind]):
            reader.read(5000, 9000)
        assert proxy.injected[kind] >= 1


def test_medium_4_a_one_byte_a_second_blob_cannot_keep_a_read_alive(
    azurite: AzuriteServer, stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "2")
    with FaultProxy(
        _upstream(azurite), FaultRates(), hostile=HostileRates(slowloris=1.0), slow_rate=1.0
    ) as proxy:
        reader = _reader(ObjectLocation.from_uri(stored, timeout=30.0, **_through(proxy)))
        started = time.monotonic()
        with pytest.raises(TransientProviderError, match="read deadline"):
            reader.read(0, 4000)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 0.5
    assert proxy.injected["slowloris"] >= 2  # the deadline cut more than one attempt
    assert elapsed < DEADLINE


def test_medium_4_a_server_trickling_its_headers_cannot_keep_a_read_alive(
    stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "2")
    with SlowHeadServer() as server:
        location = ObjectLocation.from_uri(
            stored, timeout=30.0, **_options(f"{server.url}/{ACCOUNT_NAME}")
        )
        reader = ObjectReader(location.provider(), location.path, location.uri, size=100)
        started = time.monotonic()
        with pytest.raises(TransientProviderError, match="read deadline"):
            reader.read(0, 10)
        elapsed = time.monotonic() - started
        assert server.gets >= 1
    assert elapsed < 2.0 + 0.5


def test_zz_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Print the figures of the run above (docs/reliability.rst quotes them)."""
    with capsys.disabled():
        for name, tally in REPORT.items():
            print("\n" + tally.line(name))
