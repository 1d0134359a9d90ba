"""``cloudfits index az://...`` with the account given as flags, on Azurite."""

from __future__ import annotations

import io
import uuid
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.cli import command_parser, main
from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.proxy import RecordingProxy

CONTAINER = "cli-flags"


def _fits_bytes() -> bytes:
    buffer = io.BytesIO()
    fits.PrimaryHDU(np.arange(12, dtype=">i4").reshape(3, 4)).writeto(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def container(azurite: AzuriteServer) -> Any:
    azurite.create_container(CONTAINER)
    return azurite.service_client().get_container_client(CONTAINER)


def test_index_with_the_account_as_flags(
    container: Any,
    azurite: AzuriteServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No environment: --account-url, --account-name and --account-key reach the wire."""
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"):
        monkeypatch.delenv(name, raising=False)
    prefix = f"acct-{uuid.uuid4().hex[:8]}"
    container.upload_blob(f"{prefix}/a.fits", _fits_bytes())
    proxy_base = azurite.account_url.rsplit("/", 1)[0]
    with RecordingProxy(proxy_base) as proxy:
        code = main(
            [
                "index",
                f"az://{CONTAINER}/{prefix}/",
                "--account-url", f"{proxy.url}/{ACCOUNT_NAME}",
                "--account-name", ACCOUNT_NAME,
                "--account-key", ACCOUNT_KEY,
                "--index-uri", f"az://{CONTAINER}/{prefix}/index.parquet",
            ]
        )  # fmt: skip
        records = proxy.records
    out, err = capsys.readouterr()
    assert code == 0, err
    assert ACCOUNT_KEY not in out + err
    # Every request was signed with the shared key of the account given as flags.
    assert records
    for record in records:
        assert record.headers.get("authorization", "").startswith(f"SharedKey {ACCOUNT_NAME}:")
    props = container.get_blob_client(f"{prefix}/index.parquet").get_blob_properties()
    assert props.content_settings.content_type == "application/vnd.apache.parquet"
    index = cloudfits.load_index(
        f"az://{CONTAINER}/{prefix}/index.parquet",
        account_url=azurite.account_url,
        account_key=ACCOUNT_KEY,
    )
    assert index.paths == ["a.fits"]


def test_a_wrong_key_flag_is_refused_and_not_echoed(
    container: Any,
    azurite: AzuriteServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    wrong = "d3Jvbmcta2V5LW5vdC10aGUtcmVhbC1vbmU="
    code = main(
        [
            "info",
            f"az://{CONTAINER}/missing/a.fits",
            "--account-url", azurite.account_url,
            "--account-key", wrong,
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1
    assert "azure: " in err
    assert wrong not in out + err


def test_help_lists_the_azure_flags_under_azure() -> None:
    text = command_parser("info").format_help()
    section = text.split("azure provider options:", 1)[1].split("provider options:", 1)[0]
    for flag in ("--account-name", "--account-url", "--account-key", "--sas-token"):
        assert flag in section, flag
