"""The gs:// provider: the shared conformance suite and GCS specifics, on both emulators.

Each test runs against gcp-storage-emulator and fake-gcs-server (``gcs_server`` in
``conftest.py``). Tests of what gcp-storage-emulator does not do (listing page sizes)
skip there, saying so.
"""

from __future__ import annotations

import http.server
import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from cloudfits_gcs import GCSConfig
from cloudfits_gcs.provider import GCSProvider

import cloudfits
from cloudfits import (
    AccessDeniedError,
    ObjectNotFoundError,
    ProviderConfigError,
    StaleIndexError,
)
from cloudfits.providers.registry import get_registry
from cloudfits.testing.conformance import ConformanceStore, ProviderConformanceTests
from cloudfits.testing.gcs import FAKE_GCS_SERVER, GCP_STORAGE_EMULATOR, GCSServer
from cloudfits.testing.indexes import EXPECTED_CONTENT_TYPES, saved_content_types
from cloudfits.testing.proxy import RecordingProxy

BUCKET = "conformance"
IGNORES_MAX_RESULTS = (
    "gcp-storage-emulator ignores maxResults: every listing comes in one page,"
    " so there is no page boundary to cross"
)


def _skip_on_gcp_storage_emulator(server: GCSServer, reason: str) -> None:
    if server.name == GCP_STORAGE_EMULATOR:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def bucket(gcs_server: GCSServer) -> Any:
    gcs_server.create_bucket(BUCKET)
    return gcs_server.client().bucket(BUCKET)


def _put(bucket: Any, prefix: str) -> Callable[[str, bytes], None]:
    def put(relpath: str, data: bytes) -> None:
        bucket.blob(f"{prefix}/{relpath}").upload_from_string(data)

    return put


class TestGCSProvider(ProviderConformanceTests):
    has_etag = True
    large_listing = True
    missing_bucket = "no-such-bucket-here"

    @pytest.fixture
    def conformance_store(self, bucket: Any) -> ConformanceStore:
        prefix = f"gcs-{uuid.uuid4().hex[:12]}"
        # Small pages: the 1,100-object listing crosses page boundaries (the emulator
        # would send all of them at once otherwise).
        provider, path = get_registry().for_uri(f"gs://{BUCKET}/{prefix}", list_page_size=300)
        assert isinstance(provider, GCSProvider)
        return ConformanceStore(provider, path, _put(bucket, prefix))

    @pytest.fixture(autouse=True)
    def _gcp_storage_emulator_gaps(
        self, request: pytest.FixtureRequest, gcs_server: GCSServer
    ) -> None:
        # The 1,100-object listing is there to cross page boundaries.
        if request.node.originalname == "test_large_listing":
            _skip_on_gcp_storage_emulator(gcs_server, IGNORES_MAX_RESULTS)


class TestGCSAnonymous(ProviderConformanceTests):
    """``anonymous=True`` with ``endpoint_url`` given as an option, not the environment."""

    has_etag = True

    @pytest.fixture
    def conformance_store(
        self, bucket: Any, gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch
    ) -> ConformanceStore:
        monkeypatch.delenv("STORAGE_EMULATOR_HOST")
        prefix = f"anon-{uuid.uuid4().hex[:12]}"
        provider = GCSProvider(GCSConfig(anonymous=True, endpoint_url=gcs_server.endpoint_url))
        return ConformanceStore(provider, f"{BUCKET}/{prefix}", _put(bucket, prefix))


def test_changed_object_raises_stale(bucket: Any) -> None:
    provider, path = get_registry().for_uri(f"gs://{BUCKET}/stale-{uuid.uuid4().hex}.bin")
    key = path.split("/", 1)[1]
    bucket.blob(key).upload_from_string(b"first version " * 100)
    etag = provider.head(path).etag
    assert etag
    assert provider.get_range(path, 0, 5, etag=etag) == b"first"
    bucket.blob(key).upload_from_string(b"second version " * 100)
    for start, end in ((0, 5), (10, 10), (5000, 5010)):
        with pytest.raises(StaleIndexError, match=f"gs://{path}"):
            provider.get_range(path, start, end, etag=etag)
    new = provider.head(path).etag
    assert new != etag
    assert provider.get_range(path, 0, 6, etag=new) == b"second"


def test_billing_project_goes_on_every_request(bucket: Any, gcs_server: GCSServer) -> None:
    prefix = f"rp-{uuid.uuid4().hex[:12]}"
    bucket.blob(f"{prefix}/a.bin").upload_from_string(b"0123456789")
    with RecordingProxy(gcs_server.endpoint_url) as proxy:
        provider = GCSProvider(GCSConfig(endpoint_url=proxy.url, billing_project="payer-1"))
        assert provider.get_range(f"{BUCKET}/{prefix}/a.bin", 2, 5) == b"234"
        assert provider.head(f"{BUCKET}/{prefix}/a.bin").size == 10
        assert [i.path for i in provider.list(f"{BUCKET}/{prefix}/")] == [
            f"{BUCKET}/{prefix}/a.bin"
        ]
        provider.put_index(f"{BUCKET}/{prefix}/i.json", b"{}")
        records = proxy.records
    assert {r.method for r in records} >= {"GET", "POST"}
    for record in records:
        assert "userProject=payer-1" in record.target, [(r.method, r.target) for r in records]
    plain = GCSProvider(GCSConfig(endpoint_url=gcs_server.endpoint_url))
    assert plain.get_range(f"{BUCKET}/{prefix}/i.json", 0, 10) == b"{}"


def test_ranges_are_exact_on_the_wire(bucket: Any, gcs_server: GCSServer) -> None:
    key = f"wire-{uuid.uuid4().hex}.bin"
    bucket.blob(key).upload_from_string(bytes(range(256)) * 40)
    with RecordingProxy(gcs_server.endpoint_url) as proxy:
        provider = GCSProvider(GCSConfig(endpoint_url=proxy.url))
        assert (
            provider.get_range(f"{BUCKET}/{key}", 100, 2980) == (bytes(range(256)) * 40)[100:2980]
        )
        records = proxy.records
    assert [r.headers.get("range") for r in records] == ["bytes=100-2979"]
    assert records[0].response_bytes == 2880


def test_missing_bucket_and_bad_options(gcs_server: GCSServer) -> None:
    with pytest.raises(ObjectNotFoundError, match="gs://no-such-bucket-x/k"):
        cloudfits.open("gs://no-such-bucket-x/k.fits")
    with pytest.raises(ProviderConfigError, match="billing_project"):
        cloudfits.open("gs://b/k.fits", requester_pays=True)
    assert get_registry().by_scheme("gs").name == "gcs"
    assert get_registry().by_name("gcs").config_type is GCSConfig


def test_listing_follows_pages(bucket: Any, gcs_server: GCSServer) -> None:
    _skip_on_gcp_storage_emulator(gcs_server, IGNORES_MAX_RESULTS)
    prefix = f"pages-{uuid.uuid4().hex[:12]}"
    names = [f"{BUCKET}/{prefix}/{i}.bin" for i in range(5)]
    for name in names:
        bucket.blob(name.split("/", 1)[1]).upload_from_string(b"x")
    with RecordingProxy(gcs_server.endpoint_url) as proxy:
        provider = GCSProvider(GCSConfig(endpoint_url=proxy.url, list_page_size=2))
        assert [i.path for i in provider.list(f"{BUCKET}/{prefix}/")] == names
        targets = [r.target for r in proxy.records]
    assert len(targets) == 3
    assert all("maxResults=2" in t for t in targets)


def test_pinned_read_checks_the_generation_served(bucket: Any, gcs_server: GCSServer) -> None:
    """A pinned read costs one request when the server reports the generation it served.

    gcp-storage-emulator serves the live object whatever generation is asked for and
    reports none, so there the provider asks for the live generation after the read.
    """
    key = f"pinned-{uuid.uuid4().hex}.bin"
    bucket.blob(key).upload_from_string(b"0123456789")
    path = f"{BUCKET}/{key}"
    with RecordingProxy(gcs_server.endpoint_url) as proxy:
        provider = GCSProvider(GCSConfig(endpoint_url=proxy.url))
        etag = provider.head(path).etag
        assert etag
        proxy.reset()
        assert provider.get_range(path, 2, 5, etag=etag) == b"234"
        records = proxy.records
    assert f"generation={etag}" in records[0].target
    assert len(records) == (2 if gcs_server.name == GCP_STORAGE_EMULATOR else 1)


class _GenerationDroppingFront(http.server.ThreadingHTTPServer):
    """A front on 127.0.0.1 for a GCS emulator that drops ``generation`` from downloads.

    It stands for a server that serves the live object whatever generation is asked
    for but, as Cloud Storage does, reports the one it served in ``x-goog-generation``.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        super().__init__(("127.0.0.1", 0), _DroppingHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _DroppingHandler(http.server.BaseHTTPRequestHandler):
    server: _GenerationDroppingFront

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "generation"])
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("range", "accept")}
        request = urllib.request.Request(
            f"{self.server.upstream}{parts.path}?{query}", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, reply, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            status, reply, body = err.code, err.headers, err.read()
        self.send_response(status)
        for name, value in reply.items():
            if name.lower() not in ("connection", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def generation_dropping_front(gcs_server: GCSServer) -> Iterator[_GenerationDroppingFront]:
    if gcs_server.name != FAKE_GCS_SERVER:
        pytest.skip("gcp-storage-emulator reports no x-goog-generation header to check")
    front = _GenerationDroppingFront(gcs_server.endpoint_url)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        front.shutdown()
        front.server_close()
        thread.join()


def test_served_generation_other_than_asked_is_stale(
    bucket: Any, generation_dropping_front: _GenerationDroppingFront
) -> None:
    key = f"served-{uuid.uuid4().hex}.bin"
    bucket.blob(key).upload_from_string(b"first version " * 10)
    path = f"{BUCKET}/{key}"
    provider = GCSProvider(GCSConfig(endpoint_url=generation_dropping_front.url))
    etag = provider.head(path).etag
    assert etag
    assert provider.get_range(path, 0, 5, etag=etag) == b"first"
    bucket.blob(key).upload_from_string(b"second version " * 10)
    new = provider.head(path).etag
    with pytest.raises(StaleIndexError, match=rf"gs://{path}: .*generation {new} was served"):
        provider.get_range(path, 0, 5, etag=etag)
    assert provider.get_range(path, 0, 6, etag=new) == b"second"


@pytest.fixture
def no_google_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Nothing for Application Default Credentials to find, and no metadata server."""
    for name in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")


@pytest.mark.usefixtures("no_google_credentials")
def test_auto_without_credentials_reads_anonymously_and_false_refuses(
    bucket: Any, gcs_server: GCSServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"auto-{uuid.uuid4().hex[:8]}/a.bin"
    bucket.blob(key).upload_from_string(b"0123456789")
    with RecordingProxy(gcs_server.endpoint_url) as proxy:
        auto = GCSProvider(GCSConfig(endpoint_url=proxy.url))
        assert auto.config.anonymous == "auto"
        with caplog.at_level(logging.INFO, logger="cloudfits_gcs"):
            assert auto.get_range(f"{BUCKET}/{key}", 2, 5) == b"234"
        assert [r for r in caplog.records if "anonymous" in r.getMessage()]
        assert proxy.records
        assert not any("authorization" in r.headers for r in proxy.records)
    forced = GCSProvider(GCSConfig(endpoint_url=gcs_server.endpoint_url, anonymous=False))
    with pytest.raises(AccessDeniedError, match="no Google credentials") as caught:
        forced.get_range(f"{BUCKET}/{key}", 0, 2)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in caught.value.hint
    with pytest.raises(ValueError, match="anonymous"):
        GCSConfig(anonymous="yes")  # type: ignore[arg-type]


def test_indexes_are_stored_with_their_content_type(bucket: Any, tmp_path: Any) -> None:
    """``.parquet``, ``.json``, ``.json.gz``: each blob has its format's type in the store."""
    prefix = f"types-{uuid.uuid4().hex[:8]}"

    def stored(name: str) -> str | None:
        blob = bucket.get_blob(f"{prefix}/{name}")
        return None if blob is None else str(blob.content_type)

    found = saved_content_types(tmp_path, f"gs://{BUCKET}/{prefix}", stored)
    assert found == EXPECTED_CONTENT_TYPES
