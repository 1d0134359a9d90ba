"""Canary credentials through every core provider and the command line.

Distinctive secrets are put wherever a user puts credentials (the AWS environment
variables of a SeaweedFS that enforces signatures, ``user:password@`` in an HTTPS URL,
an ``Authorization`` header) and then everything cloudfits produces is searched for
them: indexes, log records, exception messages with their whole chain, ``repr`` of
every object, and the output of the commands. Zero occurrences are allowed.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits import AccessDeniedError, CloudFitsError, ObjectNotFoundError, StaleIndexError
from cloudfits.providers.registry import get_registry, reset_registry
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.seaweedfs import S3Server, start_seaweedfs

KEY_ID = "AKIACANARYKEY7F3A9C"
SECRET = "canary/Secret+Value-5f3a9c71e2"
WRONG_SECRET = "canary/WrongSecret+e2d4b81c09"
HTTP_USER = "canaryuser"
HTTP_PASSWORD = "canary-pass-9d1e7b"
TOKEN = "canary-token-4c2f8a61d0"
CANARIES = (KEY_ID, SECRET, WRONG_SECRET, HTTP_PASSWORD, TOKEN)
BUCKET = "canary-bucket"


def _fits_file(path: Path) -> Path:
    data = np.arange(40 * 30, dtype=np.int16).reshape(40, 30)
    table = fits.BinTableHDU.from_columns([fits.Column("X", "J", array=np.arange(20))])
    fits.HDUList([fits.PrimaryHDU(data), table]).writeto(path)
    return path


class Collector:
    """Everything cloudfits said during a test, searched for the canaries at the end."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.log = io.StringIO()
        self.handler = logging.StreamHandler(self.log)
        self.handler.setLevel(logging.DEBUG)

    def add(self, what: str, value: Any) -> None:
        if isinstance(value, BaseException):
            text = "".join(traceback.format_exception(value)) + repr(value)
        elif isinstance(value, bytes):
            text = value.decode("latin-1")
        else:
            text = value if isinstance(value, str) else repr(value)
        self.texts.append((what, text))

    def expect(self, error: type[BaseException], what: str, call: Callable[[], Any]) -> None:
        with pytest.raises(error) as caught:
            call()
        self.add(what, caught.value)

    def check(self) -> int:
        self.add("log records", self.log.getvalue())
        leaks = [(what, c) for what, text in self.texts for c in CANARIES if c in text]
        assert not leaks, leaks
        return len(self.texts)


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    cloudfits_logger = logging.getLogger("cloudfits")
    root = logging.getLogger()
    saved = (cloudfits_logger.level, root.level)
    cloudfits_logger.setLevel(logging.DEBUG)
    root.setLevel(logging.INFO)
    root.addHandler(found.handler)
    try:
        yield found
    finally:
        root.removeHandler(found.handler)
        cloudfits_logger.setLevel(saved[0])
        root.setLevel(saved[1])
    print(f"\n{found.check()} outputs searched, no canary found")


@pytest.fixture(scope="module")
def canary_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS enforcing signatures made with the canary key."""
    server = start_seaweedfs(
        tmp_path_factory.mktemp("seaweedfs-canary"), access_key=KEY_ID, secret_key=SECRET
    )
    try:
        server.create_bucket(BUCKET)
        path = _fits_file(tmp_path_factory.mktemp("canary-data") / "a.fits")
        server.client().upload_file(str(path), BUCKET, "data/a.fits")
        yield server
    finally:
        server.stop()


def _credentials_env(tmp_path: Path, secret: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def canary_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    def use(secret: str) -> None:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        for name, value in _credentials_env(tmp_path, secret).items():
            monkeypatch.setenv(name, value)
        reset_registry()

    yield use
    reset_registry()


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join(sys.path)
    return subprocess.run(
        [sys.executable, "-m", "cloudfits", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.s3
@pytest.mark.parametrize("scheme", ["s3", "spaces"])
def test_s3_and_spaces_never_show_the_keys(
    canary_server: S3Server,
    canary_env: Callable[[str], None],
    collector: Collector,
    scheme: str,
) -> None:
    endpoint = canary_server.endpoint_url
    base = f"s3://{BUCKET}" if scheme == "s3" else f"spaces://nyc3/{BUCKET}"
    canary_env(SECRET)
    index = cloudfits.build_index(f"{base}/data/", endpoint_url=endpoint)
    collector.add("index", index.to_bytes())
    index.save(f"{base}/idx/{scheme}.json", endpoint_url=endpoint)
    loaded = cloudfits.load_index(f"{base}/idx/{scheme}.json", endpoint_url=endpoint)
    f = loaded.open("a.fits", endpoint_url=endpoint)
    np.testing.assert_array_equal(f[0].section[3:5, 2:4], [[92, 93], [122, 123]])
    for thing in (index, loaded, f, f[0], f[1], f.reader, f.reader.provider, f[0].section):
        collector.add("repr", thing)
        collector.add("str", str(thing))
    provider, path = get_registry().for_uri(f"{base}/data/a.fits", endpoint_url=endpoint)
    collector.add("provider", provider)
    collector.add("config", getattr(provider, "config", None))
    collector.expect(ObjectNotFoundError, "missing", lambda: provider.get_range(path + "x", 0, 10))
    collector.expect(
        StaleIndexError, "stale", lambda: provider.get_range(path, 0, 10, etag="0" * 32)
    )
    canary_env(WRONG_SECRET)
    wrong, path = get_registry().for_uri(f"{base}/data/a.fits", endpoint_url=endpoint)
    for call in (
        lambda: wrong.get_range(path, 0, 10),
        lambda: wrong.head(path),
        lambda: list(wrong.list(f"{path}")),
        lambda: wrong.put_index(path + ".json", b"{}"),
        lambda: cloudfits.open(f"{base}/data/a.fits", endpoint_url=endpoint),
    ):
        collector.expect(AccessDeniedError, "wrong secret", call)
    assert "SignatureDoesNotMatch" in collector.texts[-1][1]
    assert "AWS_SECRET_ACCESS_KEY" in collector.texts[-1][1]


@pytest.mark.s3
def test_command_line_never_shows_the_keys(
    canary_server: S3Server, collector: Collector, tmp_path: Path
) -> None:
    endpoint = canary_server.endpoint_url
    env = _credentials_env(tmp_path, SECRET)
    index_uri = f"s3://{BUCKET}/idx/cli.json"
    source = f"s3://{BUCKET}/data/"
    runs = [
        (0, ["index", source, "--index-uri", index_uri, "--endpoint-url", endpoint]),
        (0, ["info", f"s3://{BUCKET}/data/a.fits", "--endpoint-url", endpoint]),
        (0, ["verify", index_uri, "--endpoint-url", endpoint, "--json"]),
        (1, ["info", f"s3://{BUCKET}/data/absent.fits", "--endpoint-url", endpoint]),
    ]
    for status, args in runs:
        done = _cli(args, env)
        assert done.returncode == status, done.stderr
        collector.add(f"cloudfits {args[0]}", done.stdout + done.stderr)
    wrong = _cli(
        ["info", f"s3://{BUCKET}/data/a.fits", "--endpoint-url", endpoint],
        _credentials_env(tmp_path, WRONG_SECRET),
    )
    assert wrong.returncode == 1
    assert "SignatureDoesNotMatch" in wrong.stderr
    collector.add("cloudfits info, wrong secret", wrong.stdout + wrong.stderr)


@pytest.fixture(scope="module")
def http_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("canary-site")
    _fits_file(root / "a.fits")
    basic = base64.b64encode(f"{HTTP_USER}:{HTTP_PASSWORD}".encode()).decode()
    return root, f"Basic {basic}"


def test_https_basic_auth_in_the_url_is_never_shown(
    http_site: tuple[Path, str], collector: Collector
) -> None:
    root, authorization = http_site
    with StaticHTTPServer(root, authorization=authorization) as server:
        host = server.url.removeprefix("http://")
        secret_url = f"http://{HTTP_USER}:{HTTP_PASSWORD}@{host}"
        with cloudfits.open(f"{secret_url}/a.fits") as f:
            assert f[0].section[0, 0:3].tolist() == [0, 1, 2]
            for thing in (f, f[0], f.reader, f.reader.provider, f.uri, f.reader.uri):
                collector.add("repr", thing)
        index = cloudfits.build_index(root, data_uri=secret_url)
        collector.add("index", index.to_bytes())
        collector.add("index data_uri", index.data_uri)
        collector.expect(
            ObjectNotFoundError, "missing", lambda: cloudfits.open(f"{secret_url}/absent.fits")
        )
        wrong_url = f"http://{HTTP_USER}:{TOKEN}@{host}/a.fits"
        collector.expect(AccessDeniedError, "wrong password", lambda: cloudfits.open(wrong_url))
        for status, args in ((0, ["info", f"{secret_url}/a.fits"]), (1, ["info", wrong_url])):
            done = _cli(args, {})
            assert done.returncode == status, done.stderr
            collector.add("cloudfits info", done.stdout + done.stderr)


def test_https_token_header_is_never_shown(
    http_site: tuple[Path, str], collector: Collector
) -> None:
    root, _ = http_site
    with StaticHTTPServer(root, authorization=f"Bearer {TOKEN}") as server:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        index = cloudfits.build_index(root, data_uri=server.url)
        f = index.open("a.fits", headers=headers)
        assert f[1].read(rows=slice(0, 3))["X"].tolist() == [0, 1, 2]
        for thing in (index.to_bytes(), f, f.reader.provider, f.reader.provider.config):
            collector.add("repr", thing)
        collector.expect(
            AccessDeniedError,
            "no token",
            lambda: index.open("a.fits", headers={"Authorization": "Bearer x"})[0].section[0],
        )
        collector.expect(
            CloudFitsError,
            "missing",
            lambda: cloudfits.open(f"{server.url}/absent.fits", headers=headers),
        )


def test_the_search_finds_a_leak() -> None:
    """The check above can fail: a canary anywhere in the collected text is reported."""
    found = Collector()
    found.add("error", ValueError(f"oops {SECRET}"))
    found.log.write(f"... {TOKEN} ...")
    with pytest.raises(AssertionError, match="error"):
        found.check()
    # Without the redaction, the URL itself would leak.
    url = f"http://{HTTP_USER}:{HTTP_PASSWORD}@127.0.0.1:1/a.fits"
    assert HTTP_PASSWORD in url
    assert HTTP_PASSWORD not in cloudfits.uri.redact_uri(url)
