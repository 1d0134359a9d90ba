"""The az:// provider against Azurite: the shared conformance suite and Azure specifics."""

from __future__ import annotations

import datetime
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cloudfits_azure import AzureConfig
from cloudfits_azure.provider import AzureProvider

import cloudfits
from cloudfits import AccessDeniedError, ProviderConfigError, StaleIndexError
from cloudfits.providers.registry import get_registry
from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.conformance import ConformanceStore, ProviderConformanceTests
from cloudfits.testing.indexes import EXPECTED_CONTENT_TYPES, saved_content_types
from cloudfits.testing.proxy import RecordingProxy

CONTAINER = "conformance"
PUBLIC = "public-data"


@pytest.fixture(scope="module")
def container(azurite: AzuriteServer) -> Any:
    azurite.create_container(CONTAINER)
    azurite.create_container(PUBLIC, public=True)
    return azurite.service_client().get_container_client(CONTAINER)


def _put(container: Any, prefix: str) -> Callable[[str, bytes], None]:
    def put(relpath: str, data: bytes) -> None:
        container.upload_blob(f"{prefix}/{relpath}", data, overwrite=True)

    return put


class TestAzureProvider(ProviderConformanceTests):
    """Credentials from ``AZURE_STORAGE_CONNECTION_STRING``, through the registry."""

    has_etag = True
    large_listing = True
    missing_bucket = "no-such-container"

    @pytest.fixture
    def conformance_store(self, container: Any) -> ConformanceStore:
        prefix = f"az-{uuid.uuid4().hex[:12]}"
        # Small pages: the 1,100-object listing crosses page boundaries (Azurite
        # would send all of them at once otherwise).
        provider, path = get_registry().for_uri(f"az://{CONTAINER}/{prefix}", list_page_size=300)
        assert isinstance(provider, AzureProvider)
        return ConformanceStore(provider, path, _put(container, prefix))


class TestAzureAccountKey(ProviderConformanceTests):
    """``account_url`` and ``account_key`` as options; the environment is ignored."""

    has_etag = True

    @pytest.fixture
    def conformance_store(
        self, container: Any, azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch
    ) -> ConformanceStore:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=wrong;AccountKey=x")
        prefix = f"key-{uuid.uuid4().hex[:12]}"
        provider = AzureProvider(
            AzureConfig(account_url=azurite.account_url, account_key=ACCOUNT_KEY)
        )
        return ConformanceStore(provider, f"{CONTAINER}/{prefix}", _put(container, prefix))


def _sas(azurite: AzuriteServer, container: str, *, write: bool) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        ACCOUNT_NAME,
        container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, list=True, write=write, create=write),
        expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
    )


def _full_text(err: BaseException) -> str:
    return "".join(traceback.format_exception(err)) + repr(err)


def test_sas_token_reads_and_writes_only_what_it_allows(
    container: Any, azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    container.upload_blob("sas/a.bin", b"0123456789", overwrite=True)
    read_only = _sas(azurite, CONTAINER, write=False)
    provider, path = get_registry().for_uri(
        f"az://{CONTAINER}/sas/a.bin", account_url=azurite.account_url, sas_token=read_only
    )
    assert provider.get_range(path, 3, 6) == b"345"
    assert [i.path for i in provider.list(f"{CONTAINER}/sas/")] == [path]
    assert read_only not in repr(provider)
    with pytest.raises(AccessDeniedError, match="SAS token") as caught:
        provider.put_index(f"{CONTAINER}/sas/index.json", b"{}")
    signature = read_only.split("sig=")[1].split("&")[0]
    assert signature not in _full_text(caught.value)
    writer = AzureProvider(
        AzureConfig(account_url=azurite.account_url, sas_token=_sas(azurite, CONTAINER, write=True))
    )
    writer.put_index(f"{CONTAINER}/sas/index.json", b"{}")
    assert provider.get_range(f"{CONTAINER}/sas/index.json", 0, 10) == b"{}"


def test_wrong_key_is_access_denied_without_the_key(container: Any, azurite: AzuriteServer) -> None:
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    provider = AzureProvider(AzureConfig(account_url=azurite.account_url, account_key=wrong))
    with pytest.raises(AccessDeniedError, match="account key") as caught:
        provider.head(f"{CONTAINER}/anything.bin")
    assert wrong not in _full_text(caught.value)
    assert wrong not in repr(provider)


def test_anonymous_reads_public_containers_only(
    container: Any, azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    azurite.service_client().get_container_client(PUBLIC).upload_blob(
        "open.bin", b"public bytes", overwrite=True
    )
    container.upload_blob("closed.bin", b"private bytes", overwrite=True)
    # The environment's account, without its key: anonymous requests.
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", azurite.account_url)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", ACCOUNT_NAME)
    provider = AzureProvider(AzureConfig())
    assert provider.get_range(f"{PUBLIC}/open.bin", 0, 6) == b"public"
    assert provider.head(f"{PUBLIC}/open.bin").size == 12
    with pytest.raises((AccessDeniedError, cloudfits.ObjectNotFoundError)):
        provider.get_range(f"{CONTAINER}/closed.bin", 0, 6)
    forced = AzureProvider(AzureConfig(account_url=azurite.account_url, anonymous=True))
    assert forced.get_range(f"{PUBLIC}/open.bin", 7, 100) == b"bytes"


def test_changed_object_raises_stale(container: Any) -> None:
    provider, path = get_registry().for_uri(f"az://{CONTAINER}/stale-{uuid.uuid4().hex}.bin")
    key = path.split("/", 1)[1]
    container.upload_blob(key, b"first version " * 100, overwrite=True)
    etag = provider.head(path).etag
    assert etag
    assert provider.get_range(path, 0, 5, etag=etag) == b"first"
    container.upload_blob(key, b"second version " * 100, overwrite=True)
    for start, end in ((0, 5), (10, 10), (5000, 5010)):
        with pytest.raises(StaleIndexError, match=f"az://{path}"):
            provider.get_range(path, start, end, etag=etag)
    new = provider.head(path).etag
    assert new != etag
    assert provider.get_range(path, 0, 6, etag=new) == b"second"


def test_options(azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProviderConfigError, match="sas_token"):
        cloudfits.open("az://c/k.fits", sas="x")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    for name in (
        "AZURE_STORAGE_ACCOUNT",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ProviderConfigError, match="AZURE_STORAGE_ACCOUNT"):
        AzureProvider(AzureConfig()).head("c/k")
    assert "secret" not in repr(AzureConfig(account_key="secret", sas_token="secret"))
    assert get_registry().by_scheme("az").name == "azure"


def test_listing_follows_pages(container: Any, azurite: AzuriteServer) -> None:
    prefix = f"pages-{uuid.uuid4().hex[:12]}"
    names = [f"{CONTAINER}/{prefix}/{i}.bin" for i in range(5)]
    for name in names:
        container.upload_blob(name.split("/", 1)[1], b"x")
    with RecordingProxy(azurite.account_url.rsplit("/", 1)[0]) as proxy:
        provider = AzureProvider(
            AzureConfig(
                account_url=f"{proxy.url}/{ACCOUNT_NAME}", account_key=ACCOUNT_KEY, list_page_size=2
            )
        )
        assert [i.path for i in provider.list(f"{CONTAINER}/{prefix}/")] == names
        targets = [r.target for r in proxy.records]
    assert len(targets) == 3
    assert all("maxresults=2" in t for t in targets)


def test_auto_is_anonymous_without_a_secret_and_false_requires_one(
    container: Any,
    azurite: AzuriteServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    azurite.service_client().get_container_client(PUBLIC).upload_blob(
        "auto.bin", b"public bytes", overwrite=True
    )
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    auto = AzureProvider(AzureConfig(account_url=azurite.account_url))
    assert auto.config.anonymous == "auto"
    with caplog.at_level(logging.INFO, logger="cloudfits_azure"):
        assert auto.get_range(f"{PUBLIC}/auto.bin", 0, 6) == b"public"
    assert [r for r in caplog.records if "anonymous" in r.getMessage()]
    required = AzureProvider(AzureConfig(account_url=azurite.account_url, anonymous=False))
    with pytest.raises(AccessDeniedError, match="no credentials found") as caught:
        required.get_range(f"{PUBLIC}/auto.bin", 0, 6)
    assert "AZURE_STORAGE_KEY" in caught.value.hint
    with pytest.raises(ValueError, match="anonymous"):
        AzureConfig(anonymous="yes")  # type: ignore[arg-type]


def test_indexes_are_stored_with_their_content_type(container: Any, tmp_path: Any) -> None:
    """``.parquet``, ``.json``, ``.json.gz``: each blob has its format's type in the store."""
    prefix = f"types-{uuid.uuid4().hex[:8]}"

    def stored(name: str) -> str | None:
        props = container.get_blob_client(f"{prefix}/{name}").get_blob_properties()
        return str(props.content_settings.content_type)

    found = saved_content_types(tmp_path, f"az://{CONTAINER}/{prefix}", stored)
    assert found == EXPECTED_CONTENT_TYPES
