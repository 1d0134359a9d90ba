"""Issue 15 for gs://: every answer goes through the engine's check, a lying server never wins.

A `FaultProxy` with hostile answers sits between the provider and fake-gcs-server.
Reads are compared with astropy reading the same local file; each is exact or a
documented error, and none outlives the retry deadline. gcp-storage-emulator names no
generation in its answers (a pinned read is then compared with the object's metadata,
which the proxy would mangle too): the hostile runs skip there, saying so.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudfits_gcs.provider import GCSProvider

import cloudfits
from cloudfits import CloudFitsError, TransientProviderError
from cloudfits.fetch.reader import ObjectReader
from cloudfits.providers.base import SupportsReadRange
from cloudfits.providers.location import ObjectLocation
from cloudfits.testing.faults import FaultProxy, FaultRates
from cloudfits.testing.gcs import GCP_STORAGE_EMULATOR, GCSServer
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

BUCKET = "hostile"
RATES = HostileRates.uniform(0.45, slowloris=0.01)
READS = 100
REPORT: dict[str, Tally] = {}
NO_GENERATION = (
    "gcp-storage-emulator names no generation in its answers; the hostile runs use"
    " fake-gcs-server, which does, as GCS does"
)


@pytest.fixture(autouse=True)
def _suite_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hostile_fits(tmp_path_factory.mktemp("gs-hostile") / "h.fits")


@pytest.fixture(scope="module")
def stored(gcs_server: GCSServer, local: Path) -> str:
    gcs_server.create_bucket(BUCKET)
    gcs_server.client().bucket(BUCKET).blob("data/h.fits").upload_from_filename(str(local))
    return f"gs://{BUCKET}/data/h.fits"


@pytest.fixture
def faithful(gcs_server: GCSServer) -> GCSServer:
    if gcs_server.name == GCP_STORAGE_EMULATOR:
        pytest.skip(NO_GENERATION)
    return gcs_server


def _reader(location: ObjectLocation, direct: str) -> ObjectReader:
    # The object's description comes from the store itself: the proxy mangles any GET.
    info = location.with_options(endpoint_url=direct).provider().head(location.path)
    return ObjectReader(
        location.provider(), location.path, location.uri, etag=info.etag, size=info.size
    )


def test_high_2_3_gcs_answers_go_through_the_engines_check(
    gcs_server: GCSServer, stored: str, local: Path
) -> None:
    expected = Expected.from_file(local)
    f = cloudfits.open(stored, endpoint_url=gcs_server.endpoint_url)
    assert isinstance(f.reader.provider, GCSProvider)
    assert isinstance(f.reader.provider, SupportsReadRange)
    assert (f[0].section[10:20, 30:45] == expected.image[10:20, 30:45]).all()
    rows = f[1].read(rows=slice(100, 140), columns=["T", "N"])
    assert (rows["N"] == expected.table["N"][100:140]).all()
    assert (rows["T"] == expected.table["T"][100:140]).all()
    with RecordingProxy(gcs_server.endpoint_url) as proxy:
        location = ObjectLocation.from_uri(stored, endpoint_url=proxy.url)
        reader = _reader(location, gcs_server.endpoint_url)
        assert reader.read(5000, 9000) == local.read_bytes()[5000:9000]
        gets = [r for r in proxy.records if "alt=media" in r.target]
    assert gets
    assert all(r.headers.get("accept-encoding") == "identity" for r in gets)
    assert all(f"generation={reader.etag}" in r.target for r in gets)


@pytest.fixture
def hostile(faithful: GCSServer, stored: str) -> Iterator[tuple[FaultProxy, RecordingProxy]]:
    upstream = faithful.endpoint_url
    with (
        RecordingProxy(upstream) as elsewhere,
        FaultProxy(
            upstream, FaultRates(), hostile=RATES, redirect_to=elsewhere.url, seed=11
        ) as proxy,
    ):
        yield proxy, elsewhere


def test_high_2_3_medium_4_hostile_gcs_reads_are_exact_or_documented_errors(
    faithful: GCSServer,
    stored: str,
    local: Path,
    hostile: tuple[FaultProxy, RecordingProxy],
) -> None:
    proxy, _ = hostile
    index = cloudfits.build_index(
        stored.rsplit("/", 1)[0] + "/", endpoint_url=faithful.endpoint_url
    )
    assert index.entry("h.fits").etag
    options: dict[str, Any] = {"endpoint_url": proxy.url, "max_concurrency": 1}
    f = open_retrying(lambda: index.open("h.fits", **options))
    tally = run_reads(lambda: f, Expected.from_file(local), READS)
    assert_clean(tally, READS)
    assert proxy.injected
    REPORT["gcs"] = tally


@pytest.mark.parametrize("kind", [*ALWAYS_REFUSED, "redirect"])
def test_high_2_3_each_hostile_answer_is_refused_every_time(
    kind: str, faithful: GCSServer, stored: str, local: Path
) -> None:
    expected = local.read_bytes()[5000:9000]
    upstream = faithful.endpoint_url
    with (
        RecordingProxy(upstream) as elsewhere,
        FaultProxy(
            upstream, FaultRates(), hostile=HostileRates(**{kind: 1.0}), redirect_to=elsewhere.url
        ) as proxy,
    ):
        reader = _reader(ObjectLocation.from_uri(stored, endpoint_url=proxy.url), upstream)
        if kind == "redirect":
            with contextlib.suppress(CloudFitsError):  # exact, or refused
                assert reader.read(5000, 9000) == expected
            assert elsewhere.records  # followed, without the credentials
            assert all("authorization" not in r.headers for r in elsewhere.records)
            return
        with pytest.raises(ALWAYS_REFUSED[kind]):
            reader.read(5000, 9000)
        assert proxy.injected[kind] >= 1


def test_medium_4_a_one_byte_a_second_object_cannot_keep_a_read_alive(
    faithful: GCSServer, stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "2")
    upstream = faithful.endpoint_url
    with FaultProxy(
        upstream, FaultRates(), hostile=HostileRates(slowloris=1.0), slow_rate=1.0
    ) as proxy:
        location = ObjectLocation.from_uri(stored, endpoint_url=proxy.url, timeout=30.0)
        reader = _reader(location, upstream)
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
        location = ObjectLocation.from_uri(stored, endpoint_url=server.url, timeout=30.0)
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
