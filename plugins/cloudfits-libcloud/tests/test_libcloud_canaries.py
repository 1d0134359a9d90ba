"""Issue 15's canaries for libcloud+azure_blobs://: the account key is never shown nor forwarded.

The key is the driver's ``secret``, given as an option and on the command line; then
every index, exception chain, ``repr``, DEBUG record of cloudfits' loggers, command
output and pickled dask graph is searched for it, and a recording proxy in front of
the web host a foreign index names checks that no credential arrives there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import AccessDeniedError
from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.canaries import (
    CanaryCollector,
    CanaryTests,
    cli_flags,
    foreign_index,
    run_cli,
)
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.proxy import RecordingProxy

CONTAINER = "lc-canaries"
WRONG_KEY = "Q2FuYXJ5V3JvbmdMaWJjbG91ZEtleTJhOWM0ZTFmN2I="
URI = f"libcloud+azure_blobs://{CONTAINER}"


def _options(azurite: AzuriteServer, secret: str = ACCOUNT_KEY) -> dict[str, Any]:
    return {"key": ACCOUNT_NAME, "secret": secret, "endpoint_url": azurite.account_url}


class TestLibcloudCanaries(CanaryTests):
    @pytest.fixture(scope="class")
    @classmethod
    def stored(cls, azurite: AzuriteServer, local: Path) -> Any:
        return azurite.put_blob(CONTAINER, "data/a.fits", (local / "a.fits").read_bytes())

    def test_canaries_libcloud_azure_key_appears_nowhere(
        self, azurite: AzuriteServer, stored: Any, local: Path
    ) -> None:
        options = _options(azurite)
        with CanaryCollector([ACCOUNT_KEY, WRONG_KEY]) as found:
            self.add_round_trip(
                found,
                URI,
                "idx/i.json",
                lambda name: bytes(stored.download_blob(name).readall()),
                local,
                options,
            )
            wrong = _options(azurite, WRONG_KEY)
            found.expect(
                AccessDeniedError,
                "wrong key",
                lambda: cloudfits.open(f"{URI}/data/a.fits", **wrong),
            )
            for args in (
                ["info", f"{URI}/data/a.fits", *cli_flags(options)],
                ["info", f"{URI}/data/a.fits", *cli_flags(wrong)],
            ):
                done = run_cli(args)
                found.add(f"cloudfits {args[0]}", done.stdout + done.stderr)
            assert "a.fits" in found.texts[-2][1]
            print(f"\n{found.check()} outputs searched, no key found")

    def test_high_1_canaries_libcloud_azure_key_never_reaches_another_host(
        self, azurite: AzuriteServer, stored: Any, local: Path
    ) -> None:
        expected = fits.getdata(local / "a.fits")
        with StaticHTTPServer(local) as server, RecordingProxy(server.url) as web_host:
            stored.upload_blob("idx/web.json", foreign_index(local, web_host.url), overwrite=True)
            index = cloudfits.load_index(
                f"{URI}/idx/web.json", allow_local=True, **_options(azurite)
            )
            np.testing.assert_array_equal(index.open("a.fits")[0].section[0:4], expected[0:4])
            sent = [json.dumps(r.headers) + r.target for r in web_host.records]
        assert sent
        assert not [s for s in sent if ACCOUNT_KEY in s or "SharedKey" in s]
