"""The provider kit: the shared edges every provider and plugin uses, and the capabilities."""

from __future__ import annotations

import dataclasses
import pickle
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import cloudfits
from cloudfits.errors import (
    AccessDeniedError,
    ObjectNotFoundError,
    ProviderError,
    RangeResponseError,
    StaleIndexError,
    TransientProviderError,
)
from cloudfits.fetch.reader import ObjectReader
from cloudfits.index.formats import IndexFormat
from cloudfits.providers import kit
from cloudfits.providers.base import (
    ObjectInfo,
    SupportsRangeInto,
    range_into,
    read_range_of,
    small_reads_of,
    store_index,
)
from cloudfits.providers.file import FileConfig, FileProvider
from cloudfits.providers.https import HTTPSConfig
from cloudfits.providers.kit import ErrorKind
from cloudfits.providers.s3 import S3Config
from cloudfits.providers.spaces import SpacesConfig


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, ErrorKind.NOT_FOUND),
        (410, ErrorKind.NOT_FOUND),
        ("403", ErrorKind.DENIED),
        (401, ErrorKind.DENIED),
        (412, ErrorKind.STALE),
        (429, ErrorKind.TRANSIENT),
        (503, ErrorKind.TRANSIENT),
        ("500", ErrorKind.TRANSIENT),
        (400, ErrorKind.OTHER),
        (None, ErrorKind.OTHER),
        ("", ErrorKind.OTHER),
        ("NoSuchKey", ErrorKind.OTHER),
    ],
)
def test_kind_of_status(status: Any, kind: ErrorKind) -> None:
    assert kit.kind_of_status(status) is kind


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        (ErrorKind.NOT_FOUND, ObjectNotFoundError),
        (ErrorKind.DENIED, AccessDeniedError),
        (ErrorKind.STALE, StaleIndexError),
        (ErrorKind.TRANSIENT, TransientProviderError),
        (ErrorKind.WRONG_RANGE, RangeResponseError),
        (ErrorKind.OTHER, ProviderError),
    ],
)
def test_error_names_provider_action_uri_and_range(kind: ErrorKind, cls: type) -> None:
    err = kit.error_for(kind, "s3", kit.reading(10, 20), "s3://b/k.fits", "HTTP 500", "retry")
    assert type(err) is cls
    assert str(err) == "s3: reading bytes [10, 20) of s3://b/k.fits: HTTP 500; retry"


def test_stale_error_says_what_to_do_without_detail() -> None:
    err = kit.error_for(ErrorKind.STALE, "gcs", "reading", "gs://b/k")
    assert str(err) == (
        "gcs: reading gs://b/k: the object changed since it was indexed; rebuild the index"
    )


@pytest.mark.parametrize(("start", "end"), [(-1, 5), (5, 4)])
def test_check_range_refuses_bad_ranges(start: int, end: int) -> None:
    with pytest.raises(ValueError, match=rf"invalid range \[{start}, {end}\) for s3://b/k"):
        kit.check_range(start, end, "s3://b/k")


def test_check_range_and_start_accept_good_ones() -> None:
    kit.check_range(0, 0, "u")
    kit.check_range(3, 9, "u")
    kit.check_start(0, "u")
    with pytest.raises(ValueError, match="invalid start -2 for u"):
        kit.check_start(-2, "u")


def test_split_bucket_key() -> None:
    assert kit.split_bucket_key("b/a/c.fits", "s3") == ("b", "a/c.fits")
    assert kit.split_bucket_key("b", "s3") == ("b", "")
    with pytest.raises(ValueError, match="az path '/x' has no container"):
        kit.split_bucket_key("/x", "az", bucket="container")


def test_sorted_listing_is_utf8_byte_order() -> None:
    names = ["b/é.fits", "b/z.fits", "b/Z.fits", "b/a.fits"]
    found = kit.sorted_listing(ObjectInfo(n, 1) for n in names)
    assert [i.path for i in found] == ["b/Z.fits", "b/a.fits", "b/z.fits", "b/é.fits"]


def test_index_content_types_follow_the_formats() -> None:
    for fmt in IndexFormat:
        assert kit.index_content_type(f"p/index{fmt.suffix}") == fmt.content_type
        assert kit.index_content_type(f"p/INDEX{fmt.suffix.upper()}") == fmt.content_type
    assert kit.index_content_type("p/index.parquet") == "application/vnd.apache.parquet"
    assert kit.index_content_type("p/x.json", "application/octet-stream") == (
        "application/octet-stream"
    )


@dataclass(frozen=True, kw_only=True)
class _Config:
    account: str = "acct"
    token: str | None = field(default=None, repr=False)


class _Edges(kit.ProviderEdges):
    name = "demo"
    scheme = "demo"

    def __init__(self, config: _Config) -> None:
        self.config = config


def test_repr_comes_from_the_config_without_secrets() -> None:
    provider = _Edges(_Config(token="TOKEN-SECRET-123"))
    assert repr(provider) == "_Edges(_Config(account='acct'))"
    err = provider.error(ErrorKind.DENIED, "listing", "b/p/", "access denied (403)")
    assert str(err) == "demo: listing demo://b/p/: access denied (403)"
    with pytest.raises(RangeResponseError, match=r"asked for bytes \[0, 4\), got 5 bytes"):
        provider.check_length("b/k", 0, 4, 5)
    provider.check_length("b/k", 0, 4, 4)


@pytest.mark.parametrize(
    ("module", "config"),
    [
        ("cloudfits.providers.s3", S3Config(anonymous=True)),
        ("cloudfits.providers.spaces", SpacesConfig(anonymous=True)),
        ("cloudfits.providers.https", HTTPSConfig(headers={"Authorization": "Bearer SECRET"})),
        ("cloudfits.providers.file", FileConfig()),
    ],
)
def test_every_builtin_provider_declares_range_into(module: str, config: Any) -> None:
    """Each built-in reads into buffers, and says so through the typed capability."""
    registry = cloudfits.get_registry()
    spec = next(s for s in registry.specs() if s.factory.__module__ == module)
    provider = spec.factory(config, spec.schemes[0])
    assert isinstance(provider, cloudfits.Provider)
    assert isinstance(provider, SupportsRangeInto)
    assert range_into(provider) is provider
    assert "SECRET" not in repr(provider)
    assert isinstance(provider, kit.ProviderEdges)


class _BytesOnly:
    """A provider written against the first contract: no buffer reads, no content type."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[str] = []
        self.stored: dict[str, bytes] = {}

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        self.calls.append("get_range")
        return self.data[start:end]

    def put_index(self, path: str, data: bytes) -> None:
        self.stored[path] = data

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        yield from ()

    def head(self, path: str) -> ObjectInfo:
        return ObjectInfo(path, len(self.data))


class _Typed(_BytesOnly):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.types: dict[str, str | None] = {}

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        self.stored[path] = data
        self.types[path] = content_type

    def get_range_into(
        self, path: str, start: int, out: memoryview, *, etag: str | None = None
    ) -> int:
        self.calls.append("get_range_into")
        return kit.copy_into(self.data[start : start + len(out)], out)


def test_a_capability_is_what_the_provider_has_by_class_or_by_instance() -> None:
    """The capability looked up once per class still sees a method set on an instance,
    and never one that neither has."""
    typed, plain = _Typed(b"abc"), _BytesOnly(b"abc")
    for _ in range(2):  # the second time from what was learnt of each class
        assert range_into(typed) is typed
        assert range_into(plain) is None
        assert read_range_of(plain) is None
        assert small_reads_of(plain) is None
    patched = _BytesOnly(b"abc")
    patched.get_range_into = typed.get_range_into  # type: ignore[attr-defined]
    assert range_into(patched) is patched
    assert range_into(_BytesOnly(b"abc")) is None
    assert ObjectReader(patched, "p", "mem://p", size=3).read(1, 3) == b"bc"
    assert patched.calls == []
    assert typed.calls == ["get_range_into"]


def test_engine_uses_the_capability_only_when_declared() -> None:
    data = bytes(range(200))
    plain, typed = _BytesOnly(data), _Typed(data)
    assert range_into(plain) is None
    assert not isinstance(plain, SupportsRangeInto)
    for provider, used in ((plain, "get_range"), (typed, "get_range_into")):
        reader = ObjectReader(provider, "k", "test://k")
        assert reader.read(10, 60) == data[10:60]
        assert reader.read_prefix(190, 400) == data[190:]
        assert set(provider.calls) == {used}


def test_store_index_passes_the_content_type_where_it_is_taken() -> None:
    plain, typed = _BytesOnly(b""), _Typed(b"")
    store_index(plain, "b/i.parquet", b"PAR1", content_type="application/vnd.apache.parquet")
    store_index(typed, "b/i.parquet", b"PAR1", content_type="application/vnd.apache.parquet")
    assert plain.stored == typed.stored == {"b/i.parquet": b"PAR1"}
    assert typed.types == {"b/i.parquet": "application/vnd.apache.parquet"}


def test_file_provider_errors_and_repr(tmp_path: Path) -> None:
    provider = FileProvider(FileConfig(root=str(tmp_path)))
    assert repr(provider) == f"FileProvider(FileConfig(root={str(tmp_path)!r}))"
    with pytest.raises(ObjectNotFoundError, match=r"file: opening 'nope\.fits': does not exist"):
        provider.get_range("nope.fits", 0, 10)
    with pytest.raises(AccessDeniedError, match="outside the root"):
        provider.head("../x")
    with pytest.raises(ValueError, match=r"invalid range \[5, 1\) for 'a'"):
        provider.get_range("a", 5, 1)
    pickle.dumps(provider.config)


class _Lazy:
    built = 0

    @kit.built_once
    def client(self) -> object:
        time.sleep(0.05)  # long enough for every thread to arrive while it builds
        type(self).built += 1
        return object()


def test_built_once_builds_one_client_for_many_threads() -> None:
    holder = _Lazy()
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: holder.client, range(16)))
    assert _Lazy.built == 1
    assert all(c is clients[0] for c in clients)
    assert _Lazy().client is not clients[0]


def test_lazy_factory_imports_the_implementation_on_first_use() -> None:
    factory = kit.lazy_factory("cloudfits.providers.file", "FileProvider")
    assert factory.__module__ == "cloudfits.providers"
    provider = factory(FileConfig(), "file")
    assert isinstance(provider, FileProvider)
    getter = kit.lazy_attributes("cloudfits.providers.s3", {"S3Provider": ".client"})
    assert getter("S3Provider").__name__ == "S3Provider"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        getter("Nope")


def test_check_anonymous() -> None:
    for good in (True, False, "auto"):
        kit.check_anonymous(good)
    with pytest.raises(ValueError, match="anonymous must be True, False or 'auto'"):
        kit.check_anonymous("yes")
    with pytest.raises(ValueError, match="contradict"):
        kit.check_anonymous(True, requester_pays=True)


def test_client_options_are_shared_and_read_their_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ("max_pool_connections", "connect_timeout", "read_timeout", "max_attempts")
    for config_type in (S3Config, SpacesConfig, HTTPSConfig):
        assert issubclass(config_type, kit.ClientOptions)
        assert {f.name for f in dataclasses.fields(config_type)} >= set(names)
    assert (S3Config().max_pool_connections, S3Config().read_timeout) == (128, 60.0)
    monkeypatch.setenv("CLOUDFITS_MAX_POOL_CONNECTIONS", "7")
    monkeypatch.setenv("CLOUDFITS_READ_TIMEOUT", "2.5")
    assert (HTTPSConfig().max_pool_connections, HTTPSConfig().read_timeout) == (7, 2.5)
    assert S3Config(max_pool_connections=3).max_pool_connections == 3
    monkeypatch.setenv("CLOUDFITS_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="CLOUDFITS_CONNECT_TIMEOUT='soon'"):
        SpacesConfig()


@pytest.mark.parametrize(
    "value",
    [
        "2025-01-01T00:00:00.000Z",
        "2024-06-30T23:59:59.123Z",
        "2024-02-29T12:00:00Z",
        "Wed, 01 Jan 2025 00:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "2025-01-01T00:00:00+02:00",
        "1700000000",
        1700000000,
    ],
)
def test_s3_timestamps_parse_as_botocore_parses_them(value: object) -> None:
    """The quick parser of listing and HEAD dates gives botocore's values."""
    import botocore.utils

    from cloudfits.providers.s3.wire import parse_timestamp

    ours, theirs = parse_timestamp(value), botocore.utils.parse_timestamp(value)
    assert ours == theirs
    assert ours.isoformat() == theirs.isoformat()
    assert ours.utcoffset() == theirs.utcoffset()


def test_s3_timestamp_parser_refuses_what_botocore_refuses() -> None:
    import botocore.utils

    from cloudfits.providers.s3.wire import parse_timestamp

    for bad in ("garbage T Z", "Mon, 99 Foo 2025 99:99:99 GMT"):
        with pytest.raises(ValueError, match="Invalid timestamp"):
            botocore.utils.parse_timestamp(bad)
        with pytest.raises(ValueError, match="Invalid timestamp"):
            parse_timestamp(bad)
