"""libcloud+DRIVER:// against local servers: S3 on moto and SeaweedFS, Azure on Azurite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cloudfits_libcloud import LibcloudConfig
from cloudfits_libcloud.provider import LibcloudProvider

import cloudfits
from cloudfits import ProviderConfigError, StaleIndexError
from cloudfits.providers.registry import get_registry
from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.conformance import ConformanceStore, ProviderConformanceTests
from cloudfits.testing.indexes import EXPECTED_CONTENT_TYPES, saved_content_types
from cloudfits.testing.moto import MotoServer
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server

BUCKET = "conformance"


def _s3_put(client: Any, bucket: str, prefix: str) -> Callable[[str, bytes], None]:
    def put(relpath: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{relpath}", Body=data)

    return put


@pytest.fixture(scope="module")
def moto_bucket(moto_server: MotoServer) -> Any:
    moto_server.create_bucket(BUCKET)
    return moto_server.client()


@pytest.fixture(scope="module")
def azure_container(azurite: AzuriteServer) -> Any:
    azurite.create_container(BUCKET)
    return azurite.service_client().get_container_client(BUCKET)


def _s3_options(endpoint: str) -> dict[str, Any]:
    return {"key": "test", "secret": "test", "endpoint_url": endpoint}


class TestLibcloudS3(ProviderConformanceTests):
    """libcloud's S3 driver on moto (SeaweedFS refuses libcloud's listing query)."""

    has_etag = True
    large_listing = True
    missing_bucket = "no-such-bucket-here"

    @pytest.fixture
    def conformance_store(self, moto_bucket: Any, moto_server: MotoServer) -> ConformanceStore:
        prefix = f"lc-{uuid.uuid4().hex[:12]}"
        provider, path = get_registry().for_uri(
            f"libcloud+s3://{BUCKET}/{prefix}", **_s3_options(moto_server.endpoint_url)
        )
        assert isinstance(provider, LibcloudProvider)
        return ConformanceStore(provider, path, _s3_put(moto_bucket, BUCKET, prefix))


class TestLibcloudAzure(ProviderConformanceTests):
    """libcloud's Azure Blobs driver on Azurite."""

    has_etag = True
    large_listing = True
    missing_bucket = "no-such-container"

    @pytest.fixture
    def conformance_store(self, azure_container: Any, azurite: AzuriteServer) -> ConformanceStore:
        prefix = f"lc-{uuid.uuid4().hex[:12]}"
        provider, path = get_registry().for_uri(
            f"libcloud+azure_blobs://{BUCKET}/{prefix}",
            key=ACCOUNT_NAME,
            secret=ACCOUNT_KEY,
            endpoint_url=azurite.account_url,
        )

        def put(relpath: str, data: bytes) -> None:
            azure_container.upload_blob(f"{prefix}/{relpath}", data, overwrite=True)

        return ConformanceStore(provider, path, put)


@pytest.fixture(scope="module")
def seaweed_bucket(seaweedfs: S3Server) -> Any:
    seaweedfs.create_bucket(BUCKET)
    return seaweedfs.client()


def test_s3_driver_reads_and_writes_on_seaweedfs(seaweed_bucket: Any, seaweedfs: S3Server) -> None:
    data = bytes(range(256)) * 50
    seaweed_bucket.put_object(Bucket=BUCKET, Key="sw/a.bin", Body=data)
    with RecordingProxy(seaweedfs.endpoint_url) as proxy:
        provider = LibcloudProvider(LibcloudConfig(**_s3_options(proxy.url)), "s3")
        assert provider.get_range(f"{BUCKET}/sw/a.bin", 100, 2980) == data[100:2980]
        assert provider.get_range(f"{BUCKET}/sw/a.bin", len(data) - 5, len(data) + 50) == data[-5:]
        assert provider.get_range(f"{BUCKET}/sw/a.bin", len(data), len(data) + 50) == b""
        info = provider.head(f"{BUCKET}/sw/a.bin")
        provider.put_index(f"{BUCKET}/sw/index.json", b'{"x": 1}')
        records = proxy.records
    assert info.size == len(data)
    assert info.etag == seaweed_bucket.head_object(Bucket=BUCKET, Key="sw/a.bin")["ETag"].strip('"')
    gets = [r for r in records if r.method == "GET"]
    assert [r.headers.get("range") for r in gets] == [
        "bytes=100-2979",
        f"bytes={len(data) - 5}-{len(data) + 49}",
        f"bytes={len(data)}-{len(data) + 49}",
    ]
    body = seaweed_bucket.get_object(Bucket=BUCKET, Key="sw/index.json")["Body"].read()
    assert body == b'{"x": 1}'


def test_changed_object_raises_stale(moto_bucket: Any, moto_server: MotoServer) -> None:
    provider, path = get_registry().for_uri(
        f"libcloud+s3://{BUCKET}/stale-{uuid.uuid4().hex}.bin",
        **_s3_options(moto_server.endpoint_url),
    )
    key = path.split("/", 1)[1]
    moto_bucket.put_object(Bucket=BUCKET, Key=key, Body=b"first version " * 100)
    etag = provider.head(path).etag
    assert etag
    assert provider.get_range(path, 0, 5, etag=etag) == b"first"
    moto_bucket.put_object(Bucket=BUCKET, Key=key, Body=b"second version " * 100)
    for start, end in ((0, 5), (10, 10), (5000, 5010)):
        with pytest.raises(StaleIndexError, match=f"libcloud\\+s3://{path}"):
            provider.get_range(path, start, end, etag=etag)
    new = provider.head(path).etag
    assert new != etag
    assert provider.get_range(path, 0, 6, etag=new) == b"second"


def test_options(moto_server: MotoServer) -> None:
    config = LibcloudConfig(driver_options={"b": 2, "a": 1})
    assert config.driver_options == (("a", 1), ("b", 2))
    assert hash(config) == hash(LibcloudConfig(driver_options=(("b", 2), ("a", 1))))
    assert "hidden" not in repr(LibcloudConfig(key="k", secret="hidden"))
    with pytest.raises(ProviderConfigError, match="no storage driver"):
        cloudfits.open("libcloud+nosuchdriver://b/k.fits")
    with pytest.raises(ProviderConfigError, match="driver_options"):
        cloudfits.open("libcloud+s3://b/k.fits", driver_option={})
    provider = LibcloudProvider(
        LibcloudConfig(**_s3_options(moto_server.endpoint_url), region="eu-west-1"), "s3"
    )
    assert provider.driver.region_name == "eu-west-1"
    assert provider.driver.connection.host == "127.0.0.1"
    assert LibcloudProvider(LibcloudConfig(), "azure-blobs").scheme == "libcloud+azure_blobs"
    assert get_registry().by_scheme("libcloud+backblaze_b2").name == "libcloud"
    assert get_registry().by_name("libcloud+s3").uri_for_bucket("b", LibcloudConfig()) == (
        "libcloud+s3://b"
    )


def test_indexes_are_stored_with_their_content_type(
    azure_container: Any,
    azurite: AzuriteServer,
    seaweed_bucket: Any,
    seaweedfs: S3Server,
    tmp_path: Any,
) -> None:
    """Through the Azure Blobs driver (Azurite) and the S3 driver (SeaweedFS), each index
    is stored with its format's type, as the store's own client reports it."""
    prefix = f"types-{uuid.uuid4().hex[:8]}"

    def on_azure(name: str) -> str | None:
        props = azure_container.get_blob_client(f"{prefix}/{name}").get_blob_properties()
        return str(props.content_settings.content_type)

    def on_s3(name: str) -> str | None:
        return str(seaweed_bucket.head_object(Bucket=BUCKET, Key=f"{prefix}/{name}")["ContentType"])

    azure = saved_content_types(
        tmp_path / "az",
        f"libcloud+azure_blobs://{BUCKET}/{prefix}",
        on_azure,
        key=ACCOUNT_NAME,
        secret=ACCOUNT_KEY,
        endpoint_url=azurite.account_url,
    )
    s3 = saved_content_types(
        tmp_path / "s3",
        f"libcloud+s3://{BUCKET}/{prefix}",
        on_s3,
        **_s3_options(seaweedfs.endpoint_url),
    )
    assert azure == EXPECTED_CONTENT_TYPES
    assert s3 == EXPECTED_CONTENT_TYPES
