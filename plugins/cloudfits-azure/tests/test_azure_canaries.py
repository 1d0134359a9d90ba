"""Issue 15's canaries for az://: an account key and a SAS token are never shown nor forwarded.

Each credential is given as an option (and on the command line); then every index,
exception chain, ``repr``, DEBUG record of cloudfits' loggers, command output and
pickled dask graph is searched for it, and recording proxies in front of other hosts
check that it never arrives there.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import AccessDeniedError, ObjectNotFoundError
from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.canaries import (
    CanaryCollector,
    CanaryTests,
    cli_flags,
    foreign_index,
    run_cli,
)
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.process import free_port
from cloudfits.testing.proxy import RecordingProxy

CONTAINER = "canaries"
WRONG_KEY = "Q2FuYXJ5V3JvbmdLZXlGb3JBenVyZTdiM2UxYzlkNWY="


def _sas(*, write: bool) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return str(
        generate_container_sas(
            ACCOUNT_NAME,
            CONTAINER,
            account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(read=True, list=True, write=write, create=write),
            expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
        )
    )


def _signature(sas: str) -> list[str]:
    """The SAS's signature, as sent (URL-encoded) and as it is."""
    raw = sas.split("sig=", 1)[1].split("&", 1)[0]
    return [raw, parse_qs(sas)["sig"][0]]


def _credentials(kind: str) -> tuple[dict[str, Any], list[str]]:
    """The options of one kind of credential and the canaries to search for."""
    if kind == "account key":
        return {"account_key": ACCOUNT_KEY}, [ACCOUNT_KEY]
    sas = _sas(write=True)
    return {"sas_token": sas}, [sas, *_signature(sas)]


class TestAzureCanaries(CanaryTests):
    @pytest.fixture(scope="class")
    @classmethod
    def stored(cls, azurite: AzuriteServer, local: Path) -> Any:
        return azurite.put_blob(CONTAINER, "data/a.fits", (local / "a.fits").read_bytes())

    @pytest.fixture(autouse=True)
    def _no_environment_credentials(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)

    @pytest.mark.parametrize("kind", ["account key", "SAS token"])
    def test_canaries_azure_credentials_appear_nowhere(
        self, kind: str, azurite: AzuriteServer, stored: Any, local: Path
    ) -> None:
        secret, canaries = _credentials(kind)
        options = {"account_url": azurite.account_url, **secret}
        with CanaryCollector([*canaries, WRONG_KEY]) as found:
            f = self.add_round_trip(
                found,
                f"az://{CONTAINER}",
                f"idx/{kind[:3]}.json",
                lambda name: bytes(stored.download_blob(name).readall()),
                local,
                options,
            )
            # No server: the SDK's connection error quotes the URL. (Only the engine's
            # reads are tried: the SDK retries its other requests for over a minute.)
            dead = {**options, "account_url": f"http://127.0.0.1:{free_port()}/{ACCOUNT_NAME}"}
            self.add_provider_outputs(found, f, f"az://{CONTAINER}/data/a.fits", options, dead)
            wrong = {"account_url": azurite.account_url, "account_key": WRONG_KEY}
            for call in (
                lambda: cloudfits.open(f"az://{CONTAINER}/data/a.fits", **wrong),
                lambda: cloudfits.build_index(f"az://{CONTAINER}/data/", **wrong),
            ):
                found.expect(AccessDeniedError, "wrong key", call)
            target = f"az://{CONTAINER}/data/a.fits"
            for args in (
                ["info", target, *cli_flags(options)],
                ["info", "--json", target, *cli_flags(options)],
                ["info", target, *cli_flags(wrong)],
                ["info", f"az://{CONTAINER}/data/b.fits", *cli_flags(options)],
            ):
                done = run_cli(args)
                found.add(f"cloudfits {args[0]}", done.stdout + done.stderr)
            assert "a.fits" in found.texts[-4][1]
            print(f"\n{found.check()} outputs searched, no {kind} found")

    @pytest.mark.parametrize("kind", ["account key", "SAS token"])
    def test_high_1_canaries_azure_credentials_never_reach_another_host(
        self, kind: str, azurite: AzuriteServer, stored: Any, local: Path
    ) -> None:
        secret, canaries = _credentials(kind)
        options = {"account_url": azurite.account_url, **secret}
        expected = fits.getdata(local / "a.fits")
        with (
            StaticHTTPServer(local) as server,
            RecordingProxy(server.url) as web_host,
            RecordingProxy(azurite.account_url.rsplit("/", 1)[0]) as other_account,
            RecordingProxy(azurite.account_url.rsplit("/", 1)[0]) as own_account,
        ):
            # A foreign index on the account whose data lives on a web server.
            stored.upload_blob("idx/web.json", foreign_index(local, web_host.url), overwrite=True)
            index = cloudfits.load_index(
                f"az://{CONTAINER}/idx/web.json", allow_local=True, **options
            )
            np.testing.assert_array_equal(index.open("a.fits")[0].section[0:4], expected[0:4])
            # One whose data is az:// too, read from another account's host.
            stored.upload_blob(
                "idx/az.json", foreign_index(local, f"az://{CONTAINER}/data"), overwrite=True
            )
            own = {**options, "account_url": f"{own_account.url}/{ACCOUNT_NAME}"}
            index = cloudfits.load_index(
                f"az://{CONTAINER}/idx/az.json",
                data_options={"account_url": f"{other_account.url}/{ACCOUNT_NAME}"},
                allow_local=True,
                **own,
            )
            with pytest.raises((AccessDeniedError, ObjectNotFoundError)):
                index.open("a.fits")[0].section[0:4]
            elsewhere = [*web_host.records, *other_account.records]
            mine = own_account.records
        assert web_host.records
        assert other_account.records
        assert mine
        sent = [json.dumps(r.headers) + r.target for r in elsewhere]
        assert not [c for c in canaries if any(c in s for s in sent)]
        assert not any("SharedKey" in s or "sig=" in s for s in sent)
        # The credential did go where it was given for.
        assert all("SharedKey" in str(r.headers) or "sig=" in r.target for r in mine)
