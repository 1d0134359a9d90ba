"""Public data without an account: ``anonymous="auto"`` and the advice a refusal gives.

Two SeaweedFS servers: one started without credentials in its environment (it serves
anyone, like a public bucket), one started with them (it enforces signatures, like a
private or requester-pays bucket). The client's environment holds credentials or none,
and every request is seen on the wire through a recording proxy.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.cli import main
from cloudfits.errors import AccessDeniedError, ProviderConfigError
from cloudfits.providers.registry import reset_registry
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server, start_seaweedfs

from ..aws_credentials import use_only

KEY_ID = "newuserkey"
SECRET = "newuser-right-secret"
BUCKET = "public-data"
KEY = "tess/a.fits"


def _fits_bytes() -> bytes:
    out = io.BytesIO()
    primary = fits.PrimaryHDU(np.arange(12 * 10, dtype=">i2").reshape(12, 10))
    primary.header["OBJECT"] = "public"
    fits.HDUList([primary]).writeto(out)
    return out.getvalue()


def _serve(server: S3Server) -> S3Server:
    server.create_bucket(BUCKET)
    server.client().put_object(Bucket=BUCKET, Key=KEY, Body=_fits_bytes())
    return server


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS without credentials in its environment: it serves unsigned requests."""
    with start_seaweedfs(tmp_path_factory.mktemp("seaweedfs-open")) as server:
        yield _serve(server)


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS with credentials in its environment: it enforces signatures."""
    with start_seaweedfs(
        tmp_path_factory.mktemp("seaweedfs-signed"), access_key=KEY_ID, secret_key=SECRET
    ) as server:
        yield _serve(server)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """``credentials(secret)`` or ``credentials(None)``: exactly what boto3 will find."""

    def use(secret: str | None) -> None:
        use_only(monkeypatch, tmp_path, KEY_ID, secret)

    yield use
    reset_registry()


def _signed(proxy: RecordingProxy) -> list[bool]:
    return ["authorization" in r.headers or "X-Amz-Signature=" in r.target for r in proxy.records]


@pytest.mark.s3
class TestAnonymousAuto:
    def test_no_credentials_reads_a_public_bucket_unsigned_and_says_so(
        self,
        open_server: S3Server,
        credentials: Callable[..., None],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        credentials(None)
        with RecordingProxy(open_server.endpoint_url) as proxy:
            with caplog.at_level(logging.INFO, logger="cloudfits"):
                f = cloudfits.open(f"s3://{BUCKET}/{KEY}", endpoint_url=proxy.url)
                data = f[0].section[:, :]
            assert f[0].header["OBJECT"] == "public"
            assert data.tolist() == np.arange(120).reshape(12, 10).tolist()
            assert proxy.records
            assert not any(_signed(proxy))
        said = [r.getMessage() for r in caplog.records if "unsigned" in r.getMessage()]
        assert len(said) == 1, said

    def test_credentials_found_sign_every_request(
        self, signed_server: S3Server, credentials: Callable[..., None]
    ) -> None:
        credentials(SECRET)
        with RecordingProxy(signed_server.endpoint_url) as proxy:
            f = cloudfits.open(f"s3://{BUCKET}/{KEY}", endpoint_url=proxy.url)
            assert f[0].section[0, :3].tolist() == [0, 1, 2]
            assert proxy.records
            assert all(_signed(proxy))

    def test_anonymous_true_is_unsigned_even_with_credentials(
        self, open_server: S3Server, credentials: Callable[..., None]
    ) -> None:
        credentials(SECRET)
        with RecordingProxy(open_server.endpoint_url) as proxy:
            f = cloudfits.open(f"s3://{BUCKET}/{KEY}", endpoint_url=proxy.url, anonymous=True)
            assert f[0].header["OBJECT"] == "public"
            assert proxy.records
            assert not any(_signed(proxy))

    def test_anonymous_false_without_credentials_is_an_error_with_advice(
        self, open_server: S3Server, credentials: Callable[..., None]
    ) -> None:
        credentials(None)
        with pytest.raises(AccessDeniedError, match="no credentials found") as caught:
            cloudfits.open(
                f"s3://{BUCKET}/{KEY}", endpoint_url=open_server.endpoint_url, anonymous=False
            )
        assert "anonymous=True" in caught.value.hint

    def test_unsigned_refusal_says_configure_credentials_or_requester_pays(
        self, signed_server: S3Server, credentials: Callable[..., None]
    ) -> None:
        credentials(None)
        with pytest.raises(AccessDeniedError) as caught:
            cloudfits.open(f"s3://{BUCKET}/{KEY}", endpoint_url=signed_server.endpoint_url)
        text = str(caught.value)
        assert f"s3://{BUCKET}/{KEY}" in text
        assert "no credentials were sent" in text
        assert "AWS_ACCESS_KEY_ID" in text
        assert "requester_pays=True" in text

    def test_the_command_line_names_its_flags(
        self,
        signed_server: S3Server,
        credentials: Callable[..., None],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        credentials(None)
        uri = f"s3://{BUCKET}/{KEY}"
        assert main(["info", uri, "--endpoint-url", signed_server.endpoint_url]) == 1
        err = capsys.readouterr().err
        assert "--requester-pays" in err
        assert "no credentials were sent" in err
        assert "requester_pays=True" not in err
        assert "--profile NAME" in err
        assert "profile=NAME" not in err

    def test_wrong_secret_shows_the_aws_error_code_not_requester_pays(
        self,
        signed_server: S3Server,
        credentials: Callable[..., None],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        credentials("a-wrong-secret")
        uri = f"s3://{BUCKET}/{KEY}"
        with pytest.raises(AccessDeniedError) as caught:
            cloudfits.open(uri, endpoint_url=signed_server.endpoint_url)
        text = str(caught.value)
        assert "SignatureDoesNotMatch" in text, text
        assert "AWS_SECRET_ACCESS_KEY" in text
        assert "requester" not in text
        assert "a-wrong-secret" not in text

    def test_anonymous_with_requester_pays_is_refused(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(ProviderConfigError, match="contradict"):
            cloudfits.open(f"s3://{BUCKET}/{KEY}", anonymous=True, requester_pays=True)
        code = main(["info", f"s3://{BUCKET}/{KEY}", "--anonymous", "--requester-pays"])
        assert code == 2
        err = capsys.readouterr().err
        assert "--anonymous" in err
        assert "--requester-pays" in err
        assert "anonymous=True" not in err

    def test_requester_pays_is_signed_under_auto(
        self, signed_server: S3Server, credentials: Callable[..., None]
    ) -> None:
        credentials(SECRET)
        with RecordingProxy(signed_server.endpoint_url) as proxy:
            f = cloudfits.open(f"s3://{BUCKET}/{KEY}", endpoint_url=proxy.url, requester_pays=True)
            assert f[0].header["OBJECT"] == "public"
            assert all(_signed(proxy))
            assert all(r.headers.get("x-amz-request-payer") == "requester" for r in proxy.records)
