"""The header reads of indexing through obstore (`cloudfits.providers.s3.native`).

Against SeaweedFS enforcing signatures: the index equals the one the usual path makes
and astropy's headers, the predicted reads really went through obstore (its
``User-Agent``), every hostile answer is still refused, a redirect carries no
credential to the other host, a slow server cannot hold a read past its deadline, and
the cases where obstore cannot keep the provider's promises stay on the usual path.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from astropy.io import fits

import cloudfits
from cloudfits import TransientProviderError
from cloudfits.fetch.reader import ObjectReader
from cloudfits.fetch.retry import RetryPolicy
from cloudfits.providers.location import ObjectLocation
from cloudfits.providers.registry import reset_registry
from cloudfits.testing.faults import FaultProxy, FaultRates
from cloudfits.testing.hostile import HostileRates
from cloudfits.testing.hostile_reads import ALWAYS_REFUSED, write_hostile_fits
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server, start_seaweedfs

KEY_ID = "AKIANATIVEREADS4D2B7"
SECRET = "native/Secret+Value-8c41d2e7"
BUCKET = "native"
COPIES = 6


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hostile_fits(tmp_path_factory.mktemp("native") / "h.fits")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, local: Path) -> Iterator[S3Server]:
    """SeaweedFS enforcing signatures, holding ``COPIES`` same-sized objects."""
    found = start_seaweedfs(
        tmp_path_factory.mktemp("seaweedfs-native"), access_key=KEY_ID, secret_key=SECRET
    )
    try:
        found.create_bucket(BUCKET)
        for n in range(COPIES):
            found.client().upload_file(str(local), BUCKET, f"data/h{n}.fits")
        yield found
    finally:
        found.stop()


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    reset_registry()
    yield
    reset_registry()


def _by_obstore(proxy: RecordingProxy) -> list[int]:
    """Statuses of the requests obstore sent (it names itself in ``User-Agent``)."""
    return [r.status for r in proxy.records if "object_store" in r.headers.get("user-agent", "")]


def _layout(index: cloudfits.FitsIndex) -> dict[str, list[tuple[int, int, int, str]]]:
    return {
        e.path: [(h.header_offset, h.data_offset, h.data_size, h.header) for h in e.hdus]
        for e in index.files
    }


def test_indexing_reads_predicted_headers_through_obstore_and_equals_the_usual_path(
    server: S3Server, local: Path
) -> None:
    with RecordingProxy(server.endpoint_url) as proxy:
        native = cloudfits.build_index(f"s3://{BUCKET}/data/", endpoint_url=proxy.url)
        through_obstore = _by_obstore(proxy)
        proxy.reset()
        usual = cloudfits.build_index(
            f"s3://{BUCKET}/data/", endpoint_url=proxy.url, native_reads=False
        )
        assert _by_obstore(proxy) == []
    # The followers' two header runs each (the leader is scanned the usual way).
    assert through_obstore == [206] * (2 * (COPIES - 1))
    assert _layout(native) == _layout(usual)
    assert [e.etag for e in native.files] == [e.etag for e in usual.files]
    with fits.open(local) as hdul:
        want = [h.header.tostring() for h in hdul]
    for entry in native.files:
        assert [fits.Header.fromstring(h.header).tostring() for h in entry.hdus] == want


def _reader(uri: str, endpoint: str, *, attempts: int = 1) -> ObjectReader:
    location = ObjectLocation.from_uri(uri, endpoint_url=endpoint, max_attempts=attempts)
    provider = location.provider()
    info = provider.head(location.path)
    return ObjectReader(
        provider,
        location.path,
        location.uri,
        etag=info.etag,
        size=info.size,
        retry=RetryPolicy(max_attempts=attempts),
        small_reads=True,
    )


def test_a_small_read_through_obstore_is_exact(server: S3Server, local: Path) -> None:
    with RecordingProxy(server.endpoint_url) as proxy:
        reader = _reader(f"s3://{BUCKET}/data/h0.fits", proxy.url)
        assert reader.read(5000, 9000) == local.read_bytes()[5000:9000]
        assert _by_obstore(proxy) == [206]


def _read_in_child(reader: ObjectReader, want: bytes) -> None:
    raise SystemExit(0 if reader.read(5000, 9000) == want else 3)


def test_a_process_forked_after_obstore_reads_takes_the_usual_path(
    server: S3Server, local: Path
) -> None:
    # obstore's runtime does not survive a fork: a read through it in the child would
    # wait forever.
    with RecordingProxy(server.endpoint_url) as proxy:
        reader = _reader(f"s3://{BUCKET}/data/h0.fits", proxy.url)
        want = local.read_bytes()[5000:9000]
        assert reader.read(5000, 9000) == want
        assert _by_obstore(proxy) == [206]
        child = multiprocessing.get_context("fork").Process(
            target=_read_in_child, args=(reader, want)
        )
        child.start()
        child.join(30)
        if child.is_alive():
            child.kill()
            pytest.fail("the forked child's read hung")
        assert child.exitcode == 0
        assert _by_obstore(proxy) == [206]  # the child's read took the usual path


@pytest.mark.parametrize("kind", list(ALWAYS_REFUSED))
def test_each_hostile_answer_to_obstore_is_refused(server: S3Server, kind: str) -> None:
    with (
        RecordingProxy(server.endpoint_url) as upstream,
        FaultProxy(upstream.url, FaultRates(), hostile=HostileRates(**{kind: 1.0})) as proxy,
    ):
        reader = _reader(f"s3://{BUCKET}/data/h0.fits", proxy.url)
        with pytest.raises(ALWAYS_REFUSED[kind]):
            reader.read(5000, 9000)
        assert proxy.injected[kind] >= 1
        assert _by_obstore(upstream), "obstore was not asked first"


def test_a_redirect_followed_by_obstore_carries_no_credential(
    server: S3Server, local: Path
) -> None:
    with (
        RecordingProxy(server.endpoint_url) as elsewhere,
        FaultProxy(
            server.endpoint_url,
            FaultRates(),
            hostile=HostileRates(redirect=1.0),
            redirect_to=elsewhere.url,
        ) as proxy,
    ):
        reader = _reader(f"s3://{BUCKET}/data/h0.fits", proxy.url)
        try:
            got: bytes | None = reader.read(5000, 9000)
        except cloudfits.CloudFitsError:
            got = None  # refused (the other host wants a signature): also fine
        assert got is None or got == local.read_bytes()[5000:9000]
        assert elsewhere.records, "the redirect was not followed"
        for record in elsewhere.records:
            assert "authorization" not in record.headers
            assert "x-amz-security-token" not in record.headers
            sent = record.target + "".join(f"{k}{v}" for k, v in record.headers.items())
            assert KEY_ID not in sent
            assert SECRET not in sent


def test_a_slow_server_cannot_hold_a_read_past_its_deadline(
    server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFITS_RETRY_DEADLINE", "2")
    with FaultProxy(
        server.endpoint_url, FaultRates(), hostile=HostileRates(slowloris=1.0), slow_rate=1.0
    ) as proxy:
        location = ObjectLocation.from_uri(
            f"s3://{BUCKET}/data/h0.fits", endpoint_url=proxy.url, max_attempts=1
        )
        provider = location.provider()
        info = provider.head(location.path)
        reader = ObjectReader(
            provider, location.path, location.uri, etag=info.etag, size=info.size, small_reads=True
        )
        started = time.monotonic()
        with pytest.raises(TransientProviderError, match="read deadline"):
            reader.read(0, 4000)
        assert time.monotonic() - started < 2.0 + 0.5


def _native_of(uri: str, **options: object) -> tuple[object, ...]:
    provider = ObjectLocation.from_uri(uri, **options).provider()
    found: tuple[object, ...] = provider._native  # type: ignore[attr-defined]
    return found


def test_obstore_is_not_used_where_it_cannot_keep_the_promises(
    server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"s3://{BUCKET}/data/h0.fits"
    assert len(_native_of(uri, endpoint_url=server.endpoint_url)) == 1
    assert _native_of(uri, endpoint_url=server.endpoint_url, native_reads=False) == ()
    # A session token would travel to a host a redirect names.
    monkeypatch.setenv("AWS_SESSION_TOKEN", "native-session-token")
    reset_registry()
    assert _native_of(uri, endpoint_url=server.endpoint_url) == ()
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    # A proxy, which obstore and botocore read differently.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    reset_registry()
    assert _native_of(uri, endpoint_url=server.endpoint_url) == ()


def test_unsigned_reads_through_obstore(tmp_path: Path, local: Path) -> None:
    with start_seaweedfs(tmp_path / "open") as open_server:
        open_server.create_bucket("open")
        for n in range(3):
            open_server.client().upload_file(str(local), "open", f"d/h{n}.fits")
        with RecordingProxy(open_server.endpoint_url) as proxy:
            index = cloudfits.build_index("s3://open/d/", endpoint_url=proxy.url, anonymous=True)
            assert _by_obstore(proxy) == [206] * 4
            assert all("authorization" not in r.headers for r in proxy.records)
    with fits.open(local) as hdul:
        want = [h.header.tostring() for h in hdul]
    got = [[fits.Header.fromstring(h.header).tostring() for h in e.hdus] for e in index.files]
    assert got == [want] * 3


def test_requester_pays_reaches_every_obstore_read(server: S3Server) -> None:
    with RecordingProxy(server.endpoint_url) as proxy:
        index = cloudfits.build_index(
            f"s3://{BUCKET}/data/", endpoint_url=proxy.url, requester_pays=True
        )
        native = [r for r in proxy.records if "object_store" in r.headers.get("user-agent", "")]
        assert len(native) == 2 * (COPIES - 1)
        assert all(r.headers.get("x-amz-request-payer") == "requester" for r in native)
    assert len(index.files) == COPIES
