"""Signed-URL tokens never appear in text that cloudfits produces.

Canary tokens sit in the query of HTTPS URLs, as AWS, GCS and Azure signed URLs carry
them; the static server ignores the query, so the reads work. Then every repr, error
chain, DEBUG record of cloudfits' loggers, CLI output, pickled dask graph and index
document is searched for them.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import CloudFitsError
from cloudfits.testing.faults import FaultProxy, FaultRates
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.uri import redact_text, redact_uri

CANARIES = {
    "X-Amz-Signature": "amzsig0c4f9e",
    "X-Amz-Credential": "AKIACANARYQUERY",
    "X-Amz-Security-Token": "amztoken77b1",
    "X-Goog-Signature": "googsig2d8a",
    "sig": "azsassig5e3c%2B",
    "token": "bearer91af",
}
QUERY = "&".join(f"{k}={v}" for k, v in CANARIES.items())
PASSWORD = "pw-canary-6f1e"


def _leaks(text: str) -> list[str]:
    return [v for v in (*CANARIES.values(), PASSWORD) if v in text]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("redaction-site")
    fits.PrimaryHDU(np.arange(64 * 64, dtype=np.int16).reshape(64, 64)).writeto(root / "a.fits")
    return root


@pytest.mark.parametrize(
    "uri",
    [f"https://h/a.fits?{QUERY}", f"https://u:{PASSWORD}@h/a?{QUERY}", f"https:/u:{PASSWORD}@h/a"],
)
def test_medium_8_redact_uri_removes_every_credential(uri: str) -> None:
    assert _leaks(redact_uri(uri)) == []
    assert _leaks(redact_text(f"failed: {uri}, retrying")) == []


def test_medium_8_signed_url_tokens_are_redacted_everywhere(
    site: Path, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    texts: list[str] = []
    with (
        StaticHTTPServer(site) as server,
        FaultProxy(server.url, FaultRates(server_error=0.3, truncate=0.2), seed=2) as proxy,
        caplog.at_level(logging.DEBUG, logger="cloudfits"),
    ):
        url = f"{proxy.url}/a.fits?{QUERY}"
        f = cloudfits.open(url)
        for _ in range(20):
            f[0].section[3:9, 4:8]
        texts += [repr(f), str(f), repr(f[0]), repr(f.location), f.uri, repr(f.reader.provider)]
        dask_array = f[0].to_dask()
        texts.append(repr(pickle.dumps(dict(dask_array.__dask_graph__()))))
        missing = f"{server.url}/absent.fits?{QUERY}"
        with pytest.raises(CloudFitsError) as caught:
            cloudfits.open(missing)
        texts.append("".join(traceback.format_exception(caught.value)))
        index = cloudfits.build_index(str(site), data_uri=f"{server.url}/?{QUERY}")
        texts += [index.to_bytes().decode(), repr(index)]
        done = subprocess.run(
            [sys.executable, "-m", "cloudfits", "info", url], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        texts.append(done.stdout + done.stderr)
        bad = subprocess.run(
            [sys.executable, "-m", "cloudfits", "info", f"https:/u:{PASSWORD}@{missing[7:]}"],
            capture_output=True,
            text=True,
        )
        texts.append(bad.stdout + bad.stderr)
    assert proxy.injected  # the retries logged at DEBUG
    texts += [r.getMessage() for r in caplog.records]
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert bad.returncode != 0
    leaked = [(text[:200], _leaks(text)) for text in texts if _leaks(text)]
    assert leaked == []
