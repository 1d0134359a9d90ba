"""The gs:// provider against fake-gcs-server: the shared conformance suite and GCS specifics."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cloudfits_gcs import GCSConfig
from cloudfits_gcs.provider import GCSProvider

import cloudfits
from cloudfits import (
    ObjectNotFoundError,
    ProviderConfigError,
    StaleIndexError,
)
from cloudfits.plugins import get_registry
from cloudfits.testing.conformance import ConformanceStore, ProviderConformanceTests
from cloudfits.testing.gcs import GCSServer
from cloudfits.testing.proxy import RecordingProxy

BUCKET = "conformance"


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
