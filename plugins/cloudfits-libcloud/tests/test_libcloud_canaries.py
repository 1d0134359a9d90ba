"""Issue 15's canaries for libcloud+azure_blobs://: the account key is never shown nor forwarded.

The key is the driver's ``secret``, given as an option and on the command line; then
every index, exception chain, ``repr``, DEBUG record of cloudfits' loggers, command
output and pickled dask graph is searched for it, and a recording proxy in front of
the web host a foreign index names checks that no credential arrives there.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import AccessDeniedError, ObjectNotFoundError
from cloudfits.testing.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteServer
from cloudfits.testing.canaries import CanaryCollector, run_cli
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.proxy import RecordingProxy

CONTAINER = "lc-canaries"
WRONG_KEY = "Q2FuYXJ5V3JvbmdMaWJjbG91ZEtleTJhOWM0ZTFmN2I="
URI = f"libcloud+azure_blobs://{CONTAINER}"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lc-canaries")
    image = np.arange(40 * 30, dtype=np.int16).reshape(40, 30)
    table = fits.BinTableHDU.from_columns([fits.Column("X", "J", array=np.arange(20))])
    fits.HDUList([fits.PrimaryHDU(image), table]).writeto(root / "a.fits")
    return root


@pytest.fixture(scope="module")
def stored(azurite: AzuriteServer, local: Path) -> Any:
    azurite.create_container(CONTAINER)
    container = azurite.service_client().get_container_client(CONTAINER)
    container.upload_blob("data/a.fits", (local / "a.fits").read_bytes(), overwrite=True)
    return container


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "3")
    monkeypatch.setenv("CLOUDFITS_RETRY_BASE_DELAY", "0.01")


def _options(azurite: AzuriteServer, secret: str = ACCOUNT_KEY) -> dict[str, Any]:
    return {"key": ACCOUNT_NAME, "secret": secret, "endpoint_url": azurite.account_url}


def _flags(options: dict[str, Any]) -> list[str]:
    return [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def test_canaries_libcloud_azure_key_appears_nowhere(
    azurite: AzuriteServer, stored: Any, local: Path
) -> None:
    options = _options(azurite)
    expected = fits.getdata(local / "a.fits")
    with CanaryCollector([ACCOUNT_KEY, WRONG_KEY]) as found:
        index = cloudfits.build_index(f"{URI}/data/", **options)
        found.add("index", index.to_bytes())
        index.save(f"{URI}/idx/i.json", **options)
        found.add("saved index", stored.download_blob("idx/i.json").readall())
        loaded = cloudfits.load_index(f"{URI}/idx/i.json", **options)
        f = loaded.open("a.fits", **options)
        np.testing.assert_array_equal(f[0].section[3:9, 2:7], expected[3:9, 2:7])
        for thing in (index, loaded, f, f[0], f[1], f.reader, f.reader.provider, f.location):
            found.add("repr", thing)
            found.add("str", str(thing))
        found.add("pickled dask graph", pickle.dumps(dict(f[0].to_dask().__dask_graph__())))
        found.expect(
            ObjectNotFoundError, "missing", lambda: cloudfits.open(f"{URI}/data/b.fits", **options)
        )
        wrong = _options(azurite, WRONG_KEY)
        found.expect(
            AccessDeniedError, "wrong key", lambda: cloudfits.open(f"{URI}/data/a.fits", **wrong)
        )
        for args in (
            ["info", f"{URI}/data/a.fits", *_flags(options)],
            ["info", f"{URI}/data/a.fits", *_flags(wrong)],
        ):
            done = run_cli(args)
            found.add(f"cloudfits {args[0]}", done.stdout + done.stderr)
        assert "a.fits" in found.texts[-2][1]
        print(f"\n{found.check()} outputs searched, no key found")


def test_high_1_canaries_libcloud_azure_key_never_reaches_another_host(
    azurite: AzuriteServer, stored: Any, local: Path
) -> None:
    document = cloudfits.build_index(str(local)).to_dict()
    expected = fits.getdata(local / "a.fits")
    with StaticHTTPServer(local) as server, RecordingProxy(server.url) as web_host:
        document["data_uri"] = web_host.url
        stored.upload_blob("idx/web.json", json.dumps(document).encode(), overwrite=True)
        index = cloudfits.load_index(f"{URI}/idx/web.json", allow_local=True, **_options(azurite))
        np.testing.assert_array_equal(index.open("a.fits")[0].section[0:4], expected[0:4])
        sent = [json.dumps(r.headers) + r.target for r in web_host.records]
    assert sent
    assert not [s for s in sent if ACCOUNT_KEY in s or "SharedKey" in s]
