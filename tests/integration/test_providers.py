"""Providers against real local servers: the shared conformance suite and each one's extras.

- ``file``: a temporary directory (also with ``root``); ``s3`` and ``spaces``: SeaweedFS;
  ``https``: `cloudfits.testing.http.StaticHTTPServer`, honouring and ignoring ranges.
- The plugin registry, with throwaway third-party plugins found through real entry points
  (a ``*.dist-info`` directory on ``sys.path``).
- S3 errors from a SeaweedFS that enforces signatures.
- The command line, in process and as a subprocess.
"""

from __future__ import annotations

import gzip
import http.client
import io
import os
import subprocess
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

import cloudfits
from cloudfits.cli import index_main, main
from cloudfits.errors import (
    AccessDeniedError,
    CloudFitsWarning,
    ObjectNotFoundError,
    ProviderConfigError,
    ProviderNotFoundError,
)
from cloudfits.providers.file import FileConfig, FileProvider
from cloudfits.providers.registry import get_registry, reset_registry
from cloudfits.providers.s3 import S3Config, S3Provider
from cloudfits.testing.http import StaticHTTPServer
from cloudfits.testing.proxy import RecordingProxy
from cloudfits.testing.seaweedfs import S3Server, start_seaweedfs

from ..aws_credentials import use_only

# Detailed assertion messages inside the inherited conformance tests.
pytest.register_assert_rewrite("cloudfits.testing.conformance")
from cloudfits.testing.conformance import (  # noqa: E402
    ConformanceStore,
    ProviderConformanceTests,
)

BUILTIN_PROVIDERS = ("file", "s3", "spaces", "https")
CONFORMANCE_BUCKET = "conformance"


def _fits_bytes(shape: tuple[int, int] = (30, 40), *, with_table: bool = True) -> bytes:
    """A small FITS file: an int16 image and (optionally) a binary table."""
    image = np.arange(shape[0] * shape[1], dtype=">i2").reshape(shape)
    primary = fits.PrimaryHDU(image)
    primary.header["OBJECT"] = "conformance"
    hdus: list[Any] = [primary]
    if with_table:
        hdus.append(
            fits.BinTableHDU.from_columns(
                [fits.Column(name="TSTART", format="D", array=np.linspace(0.0, 1.0, 25))],
                name="TIMES",
            )
        )
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """Plugins are loaded again before and after the test."""
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def builtins_only(monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> None:
    """No third-party entry point is loaded, whatever is installed in this environment."""
    monkeypatch.setenv("CLOUDFITS_PLUGINS", "")
    monkeypatch.delenv("CLOUDFITS_DISABLE_PLUGINS", raising=False)


# =============================================================== conformance: file


class TestFileProvider(ProviderConformanceTests):
    large_listing = True

    @pytest.fixture
    def conformance_store(self, tmp_path: Path) -> ConformanceStore:
        base = tmp_path / "store"
        base.mkdir()
        provider, path = get_registry().for_uri(str(base))
        assert isinstance(provider, FileProvider)
        return ConformanceStore(provider, path, lambda rel, data: _write(base / rel, data))


class TestFileProviderWithRoot(ProviderConformanceTests):
    """Paths relative to ``root``, as ``FileConfig(root=...)`` takes them."""

    @pytest.fixture
    def conformance_store(self, tmp_path: Path) -> ConformanceStore:
        provider = FileProvider(FileConfig(root=str(tmp_path)))
        return ConformanceStore(
            provider, "store", lambda rel, data: _write(tmp_path / "store" / rel, data)
        )


# ================================================================= conformance: s3


@pytest.fixture(scope="module")
def s3_client(s3_server: S3Server) -> Any:
    s3_server.create_bucket(CONFORMANCE_BUCKET)
    return s3_server.client()


def _s3_put(client: Any, prefix: str) -> Callable[[str, bytes], None]:
    def put(relpath: str, data: bytes) -> None:
        client.put_object(Bucket=CONFORMANCE_BUCKET, Key=f"{prefix}/{relpath}", Body=data)

    return put


@pytest.mark.s3
class TestS3Provider(ProviderConformanceTests):
    has_etag = True
    large_listing = True
    missing_bucket = "no-such-bucket-here"

    @pytest.fixture
    def conformance_store(self, s3_client: Any) -> ConformanceStore:
        prefix = f"s3-{uuid.uuid4().hex[:12]}"
        provider, path = get_registry().for_uri(f"s3://{CONFORMANCE_BUCKET}/{prefix}")
        assert isinstance(provider, S3Provider)
        return ConformanceStore(provider, path, _s3_put(s3_client, prefix))


@pytest.mark.s3
class TestSpacesProvider(ProviderConformanceTests):
    has_etag = True
    missing_bucket = "nyc3/no-such-bucket-here"

    @pytest.fixture
    def conformance_store(self, s3_server: S3Server, s3_client: Any) -> ConformanceStore:
        prefix = f"spaces-{uuid.uuid4().hex[:12]}"
        provider, path = get_registry().for_uri(
            f"spaces://nyc3/{CONFORMANCE_BUCKET}/{prefix}", endpoint_url=s3_server.endpoint_url
        )
        assert path == f"nyc3/{CONFORMANCE_BUCKET}/{prefix}"
        return ConformanceStore(provider, path, _s3_put(s3_client, prefix))


# ============================================================== conformance: https


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticHTTPServer]:
    with StaticHTTPServer(tmp_path_factory.mktemp("http-root")) as server:
        yield server


@pytest.fixture(scope="module")
def range_ignoring_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StaticHTTPServer]:
    with StaticHTTPServer(tmp_path_factory.mktemp("http-norange"), ignore_ranges=True) as server:
        yield server


def _http_store(server: StaticHTTPServer) -> ConformanceStore:
    sub = f"t-{uuid.uuid4().hex[:12]}"
    provider, path = get_registry().for_uri(f"{server.url}/{sub}")
    directory = server.directory / sub
    return ConformanceStore(provider, path, lambda rel, data: _write(directory / rel, data))


class TestHTTPSProvider(ProviderConformanceTests):
    can_list = False
    can_write = False
    has_etag = True

    @pytest.fixture
    def conformance_store(self, http_server: StaticHTTPServer) -> ConformanceStore:
        return _http_store(http_server)


class TestHTTPSProviderRangesIgnored(ProviderConformanceTests):
    """A server that answers every range with ``200`` and the whole object."""

    can_list = False
    can_write = False
    has_etag = True

    @pytest.fixture
    def conformance_store(self, range_ignoring_server: StaticHTTPServer) -> ConformanceStore:
        return _http_store(range_ignoring_server)

    def test_one_request_per_range(
        self, conformance_store: ConformanceStore, range_ignoring_server: StaticHTTPServer
    ) -> None:
        data = bytes(range(256)) * 100
        conformance_store.put("whole.bin", data)
        before = range_ignoring_server.requests
        got = conformance_store.provider.get_range(conformance_store.path("whole.bin"), 300, 310)
        assert got == data[300:310]
        assert range_ignoring_server.requests == before + 1


# ======================================================== the static test server itself


def _raw_request(
    server: StaticHTTPServer, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    port = int(server.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticHTTPServer]:
    """A served directory with one file, a subdirectory and a symbolic link leaving it."""
    root = tmp_path_factory.mktemp("site")
    _write(root / "data.bin", bytes(range(256)) * 4)
    (root / "sub").mkdir()
    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text("secret")
    (root / "escape").symlink_to(outside)
    with StaticHTTPServer(root) as server:
        yield server


class TestStaticHTTPServer:
    @pytest.mark.parametrize(
        ("header", "status", "content_range", "span"),
        [
            ("bytes=10-19", 206, "bytes 10-19/1024", (10, 20)),
            ("bytes=1000-5000", 206, "bytes 1000-1023/1024", (1000, 1024)),
            ("bytes=1023-", 206, "bytes 1023-1023/1024", (1023, 1024)),
            ("bytes=-4", 206, "bytes 1020-1023/1024", (1020, 1024)),
            ("bytes=1024-", 416, "bytes */1024", None),
            ("bytes=2000-3000", 416, "bytes */1024", None),
            ("bytes=5-2", 200, None, (0, 1024)),
            ("bytes=0-1,4-5", 200, None, (0, 1024)),
        ],
    )
    def test_ranges(
        self,
        site: StaticHTTPServer,
        header: str,
        status: int,
        content_range: str | None,
        span: tuple[int, int] | None,
    ) -> None:
        data = bytes(range(256)) * 4
        got_status, headers, body = _raw_request(site, "GET", "/data.bin", {"Range": header})
        assert got_status == status
        assert headers.get("Content-Range") == content_range
        if span is not None:
            assert body == data[span[0] : span[1]]
            assert int(headers["Content-Length"]) == len(body)

    def test_head(self, site: StaticHTTPServer) -> None:
        status, headers, body = _raw_request(site, "HEAD", "/data.bin")
        assert (status, body) == (200, b"")
        assert headers["Content-Length"] == "1024"
        assert headers["ETag"].startswith('"400-')
        assert headers["Last-Modified"].endswith("GMT")

    @pytest.mark.parametrize(
        ("target", "status"),
        [
            ("/missing.bin", 404),
            ("/sub/", 404),
            ("/", 404),
            ("/../outside/secret.txt", 403),
            ("/%2e%2e/%2e%2e/etc/passwd", 403),
            ("/escape", 403),
        ],
    )
    def test_refusals(self, site: StaticHTTPServer, target: str, status: int) -> None:
        got, _, body = _raw_request(site, "GET", target)
        assert got == status
        assert b"secret" not in body

    def test_keep_alive_and_counter(self, site: StaticHTTPServer) -> None:
        port = int(site.url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        before = site.requests
        try:
            connection.request("GET", "/data.bin", headers={"Range": "bytes=0-0"})
            connection.getresponse().read()
            first_socket = connection.sock
            connection.request("GET", "/missing", headers={})
            connection.getresponse().read()
            assert connection.sock is first_socket  # the same connection served both
        finally:
            connection.close()
        assert site.requests == before + 2

    def test_ignore_ranges(self, range_ignoring_server: StaticHTTPServer) -> None:
        _write(range_ignoring_server.directory / "all.bin", b"0123456789")
        status, headers, body = _raw_request(
            range_ignoring_server, "GET", "/all.bin", {"Range": "bytes=2-3"}
        )
        assert (status, body, headers.get("Content-Range")) == (200, b"0123456789", None)

    def test_stop_closes_idle_connections(self, tmp_path: Path) -> None:
        server = StaticHTTPServer(tmp_path).start()
        _write(tmp_path / "x", b"x")
        port = int(server.url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/x")
        assert connection.getresponse().read() == b"x"
        server.stop()
        server.stop()  # idempotent

        def again() -> None:
            connection.request("GET", "/x")
            connection.getresponse()

        with pytest.raises((http.client.HTTPException, OSError)):
            again()
        connection.close()
        with pytest.raises(RuntimeError):
            _ = server.url


# ============================================================ file provider: root


class TestFileRoot:
    @pytest.fixture
    def layout(self, tmp_path: Path) -> tuple[FileProvider, Path]:
        root = tmp_path / "root"
        _write(root / "a.bin", b"inside")
        _write(root / "sub" / "b.bin", b"deeper")
        _write(tmp_path / "x", b"outside")
        _write(tmp_path / "root-sibling" / "c.bin", b"sibling")
        (root / "to-outside").symlink_to(tmp_path / "x")
        (root / "dir-outside").symlink_to(tmp_path / "root-sibling")
        (root / "to-inside").symlink_to(root / "sub" / "b.bin")
        return FileProvider(FileConfig(root=str(root))), tmp_path

    @pytest.mark.parametrize(
        "path",
        [
            "../x",
            "sub/../../x",
            "to-outside",
            "dir-outside/c.bin",
            "../root-sibling/c.bin",  # shares the root's name as a prefix
        ],
    )
    def test_relative_escapes_are_refused(
        self, layout: tuple[FileProvider, Path], path: str
    ) -> None:
        provider, _ = layout
        with pytest.raises(AccessDeniedError):
            provider.get_range(path, 0, 10)
        with pytest.raises(AccessDeniedError):
            provider.head(path)
        with pytest.raises(PermissionError):  # also the standard library's error
            provider.put_index(path, b"{}")

    def test_absolute_outside_is_refused(self, layout: tuple[FileProvider, Path]) -> None:
        provider, tmp_path = layout
        for path in (str(tmp_path / "x"), str(tmp_path / "root-sibling" / "c.bin"), "/etc"):
            with pytest.raises(AccessDeniedError):
                provider.get_range(path, 0, 10)
            with pytest.raises(AccessDeniedError):
                provider.head(path)
        with pytest.raises(AccessDeniedError):
            list(provider.list("../"))
        assert (tmp_path / "x").read_bytes() == b"outside"

    def test_inside_paths_work(self, layout: tuple[FileProvider, Path]) -> None:
        provider, tmp_path = layout
        assert provider.get_range("a.bin", 0, 100) == b"inside"
        assert provider.get_range("sub/../a.bin", 2, 4) == b"si"
        assert provider.get_range(str(tmp_path / "root" / "sub" / "b.bin"), 0, 3) == b"dee"
        assert provider.get_range("to-inside", 0, 100) == b"deeper"
        assert provider.head("sub/b.bin").size == 6
        assert [i.path for i in provider.list("sub/")] == ["sub/b.bin"]
        provider.put_index("indexes/i.json", b"{}")
        assert (tmp_path / "root" / "indexes" / "i.json").read_bytes() == b"{}"

    def test_root_through_the_registry(self, layout: tuple[FileProvider, Path]) -> None:
        _, tmp_path = layout
        root = str(tmp_path / "root")
        provider, path = get_registry().for_uri("../x", root=root)
        with pytest.raises(AccessDeniedError):
            provider.head(path)
        provider, path = get_registry().for_uri("a.bin", root=root)
        assert provider.get_range(path, 0, 6) == b"inside"


# ===================================================================== registry


@pytest.mark.usefixtures("builtins_only")
class TestRegistry:
    def test_builtins_are_registered(self) -> None:
        names = [spec.name for spec in get_registry().specs()]
        assert set(BUILTIN_PROVIDERS) <= set(names)
        assert get_registry().by_scheme("http").name == "https"
        assert get_registry().by_scheme("S3").name == "s3"

    @pytest.mark.parametrize(
        ("uri", "package"),
        [
            ("gs://b/k.fits", "cloudfits-gcs"),
            ("az://container/k.fits", "cloudfits-azure"),
            ("libcloud+s3://b/k.fits", "cloudfits-libcloud"),
        ],
    )
    def test_unknown_scheme_names_the_package(self, uri: str, package: str) -> None:
        with pytest.raises(ProviderNotFoundError, match=f"install {package}") as caught:
            cloudfits.open(uri)
        assert isinstance(caught.value, LookupError)
        assert "s3" in str(caught.value)  # the known schemes are listed

    def test_unknown_scheme_without_hint(self) -> None:
        with pytest.raises(ProviderNotFoundError) as caught:
            cloudfits.open("nosuchscheme://b/k")
        assert "install" not in str(caught.value)

    def test_unknown_provider_name(self) -> None:
        with pytest.raises(ProviderNotFoundError, match="cloudfits-gcs"):
            cloudfits.download_index("bucket", provider="gs")

    def test_unknown_option_lists_the_valid_ones(self) -> None:
        with pytest.raises(ProviderConfigError) as caught:
            cloudfits.open("s3://b/k", requester_pay=True)
        message = str(caught.value)
        assert "requester_pay" in message
        for option in ("requester_pays", "endpoint_url", "region", "anonymous"):
            assert option in message
        assert isinstance(caught.value, TypeError)

    def test_options_of_another_provider_are_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ProviderConfigError, match="root"):
            cloudfits.open(str(tmp_path / "x.fits"), requester_pays=True)

    def test_builtins_load_whatever_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CLOUDFITS_DISABLE_PLUGINS", ",".join(BUILTIN_PROVIDERS))
        monkeypatch.setenv("CLOUDFITS_PLUGINS", "nothing-of-that-name")
        reset_registry()
        names = {spec.name for spec in get_registry().specs()}
        assert set(BUILTIN_PROVIDERS) <= names


# ------------------------------------------------------- third-party plugins for real

_PLUGIN_SOURCE = '''
"""A throwaway cloudfits plugin: objects kept in memory, read from a FITS file beside it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cloudfits
from cloudfits import ObjectInfo, ObjectNotFoundError, ProviderSpec

SCHEME = "__SCHEME__"

OBJECTS = {"shelf/tiny.fits": Path(__file__).with_name("tiny.fits").read_bytes()}


@dataclass(frozen=True, kw_only=True)
class MemoryConfig:
    label: str = "memory"


class MemoryProvider:
    def __init__(self, config):
        self.config = config

    def _object(self, path):
        try:
            return OBJECTS[path]
        except KeyError as err:
            raise ObjectNotFoundError(f"{SCHEME}: {path!r} not found") from err

    def get_range(self, path, start, end):
        return self._object(path)[start:end]

    def head(self, path):
        return ObjectInfo(path, len(self._object(path)))

    def list(self, prefix):
        for path in sorted(OBJECTS):
            if path.startswith(prefix):
                yield ObjectInfo(path, len(OBJECTS[path]))

    def put_index(self, path, data):
        OBJECTS[path] = bytes(data)


@cloudfits.hookimpl
def cloudfits_register_providers(registry):
    registry.add(
        ProviderSpec(
            name=SCHEME,
            schemes=(SCHEME,),
            config_type=MemoryConfig,
            factory=lambda config, scheme: MemoryProvider(config),
            description="objects in memory (test plugin)",
        )
    )
'''

_BROKEN_HOOK_SOURCE = """
import cloudfits


@cloudfits.hookimpl
def cloudfits_register_providers(registry):
    raise RuntimeError("this plugin is broken on purpose")
"""

_BROKEN_IMPORT_SOURCE = 'raise ImportError("cannot import this plugin on purpose")\n'


class PluginSite:
    """A directory on ``sys.path`` where throwaway distributions are installed."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token
        self.modules: list[str] = []

    def install(self, entry_point: str, source: str) -> str:
        """Install a distribution with one ``cloudfits`` entry point; return its module."""
        module = f"cloudfits_test_{entry_point}_{self.token}"
        (self.root / f"{module}.py").write_text(source)
        info = self.root / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n"
        )
        (info / "entry_points.txt").write_text(f"[cloudfits]\n{entry_point} = {module}\n")
        self.modules.append(module)
        return module


@pytest.fixture
def plugin_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> Iterator[PluginSite]:
    root = tmp_path / "site-packages"
    root.mkdir()
    site = PluginSite(root, uuid.uuid4().hex[:8])
    monkeypatch.delenv("CLOUDFITS_PLUGINS", raising=False)
    monkeypatch.delenv("CLOUDFITS_DISABLE_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(root))
    yield site
    for module in site.modules:
        sys.modules.pop(module, None)


def _install_memory_plugin(site: PluginSite) -> tuple[str, bytes]:
    """Install the working plugin under a scheme of its own; return scheme and FITS bytes."""
    scheme = f"mem{site.token}"
    data = _fits_bytes()
    (site.root / "tiny.fits").write_bytes(data)
    site.install("memory", _PLUGIN_SOURCE.replace("__SCHEME__", scheme))
    return scheme, data


class TestThirdPartyPlugins:
    def test_a_plugin_adds_a_scheme_that_open_uses(self, plugin_site: PluginSite) -> None:
        scheme, data = _install_memory_plugin(plugin_site)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CloudFitsWarning)
            spec = get_registry().by_scheme(scheme)
        assert spec.name == scheme
        with (
            fits.open(io.BytesIO(data)) as expected,
            cloudfits.open(f"{scheme}://shelf/tiny.fits") as remote,
        ):
            assert remote[0].header["OBJECT"] == "conformance"
            np.testing.assert_array_equal(remote[0].section[3:7, 5:9], expected[0].data[3:7, 5:9])
            table = remote["TIMES"].read(rows=slice(2, 5), columns=["TSTART"])
            np.testing.assert_array_equal(table["TSTART"], expected[1].data["TSTART"][2:5])
        # The registry's other services work for it too: options and indexing.
        with pytest.raises(ProviderConfigError, match="label"):
            cloudfits.open(f"{scheme}://shelf/tiny.fits", lable="x")
        index = cloudfits.build_index(f"{scheme}://shelf/")
        assert index.data_uri == f"{scheme}://shelf"
        assert [entry.path for entry in index.files] == ["tiny.fits"]

    def test_broken_plugins_are_reported_and_skipped(self, plugin_site: PluginSite) -> None:
        scheme, _ = _install_memory_plugin(plugin_site)
        plugin_site.install("brokenhook", _BROKEN_HOOK_SOURCE)
        plugin_site.install("brokenimport", _BROKEN_IMPORT_SOURCE)
        with pytest.warns(CloudFitsWarning) as record:
            registry = get_registry()
        messages = [str(w.message) for w in record]
        assert any("'brokenhook'" in m and "broken on purpose" in m for m in messages), messages
        assert any("'brokenimport'" in m and "cannot import" in m for m in messages), messages
        for name in (*BUILTIN_PROVIDERS, scheme):
            assert registry.by_name(name).name == name

    def test_allow_list(self, plugin_site: PluginSite, monkeypatch: pytest.MonkeyPatch) -> None:
        scheme, _ = _install_memory_plugin(plugin_site)
        plugin_site.install("brokenhook", _BROKEN_HOOK_SOURCE)
        monkeypatch.setenv("CLOUDFITS_PLUGINS", "memory")
        with warnings.catch_warnings():
            warnings.simplefilter("error", CloudFitsWarning)  # the broken one is not loaded
            assert get_registry().by_scheme(scheme).name == scheme
        monkeypatch.setenv("CLOUDFITS_PLUGINS", " ,")
        reset_registry()
        with pytest.raises(ProviderNotFoundError):
            get_registry().by_scheme(scheme)
        assert get_registry().by_scheme("s3").name == "s3"

    def test_block_list(self, plugin_site: PluginSite, monkeypatch: pytest.MonkeyPatch) -> None:
        scheme, _ = _install_memory_plugin(plugin_site)
        plugin_site.install("brokenhook", _BROKEN_HOOK_SOURCE)
        monkeypatch.setenv("CLOUDFITS_DISABLE_PLUGINS", "brokenhook, memory")
        with warnings.catch_warnings():
            warnings.simplefilter("error", CloudFitsWarning)
            registry = get_registry()
        with pytest.raises(ProviderNotFoundError):
            registry.by_scheme(scheme)
        assert {s.name for s in registry.specs()} >= set(BUILTIN_PROVIDERS)
        monkeypatch.setenv("CLOUDFITS_DISABLE_PLUGINS", "brokenhook")
        reset_registry()
        assert get_registry().by_scheme(scheme).name == scheme


# ================================================================== s3: errors


SECRET = "CANARYSECRET123"
ACCESS_KEY = "cloudfitsauth"
RIGHT_SECRET = "right-secret-456"
PRIVATE_BUCKET = "private"
PRIVATE_KEY = "data/tiny.fits"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS that checks signatures, holding one small FITS object."""
    server = start_seaweedfs(
        tmp_path_factory.mktemp("seaweedfs-auth"), access_key=ACCESS_KEY, secret_key=RIGHT_SECRET
    )
    try:
        server.create_bucket(PRIVATE_BUCKET)
        server.client().put_object(Bucket=PRIVATE_BUCKET, Key=PRIVATE_KEY, Body=_fits_bytes())
        yield server
    finally:
        server.stop()


def _use_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secret: str | None) -> None:
    """Point boto3 at these credentials only (no files, no instance metadata), then reload."""
    use_only(monkeypatch, tmp_path, ACCESS_KEY, secret)


def _full_text(err: BaseException) -> str:
    return "".join(traceback.format_exception(err)) + repr(err)


@pytest.mark.s3
@pytest.mark.usefixtures("fresh_registry")
class TestS3Errors:
    def test_wrong_secret_is_access_denied_naming_the_refused_credentials(
        self, auth_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        _use_credentials(monkeypatch, tmp_path, SECRET)
        uri = f"s3://{PRIVATE_BUCKET}/{PRIVATE_KEY}"
        with pytest.raises(AccessDeniedError) as caught:
            cloudfits.open(uri, endpoint_url=auth_server.endpoint_url)
        message = str(caught.value)
        assert uri in message
        assert "SignatureDoesNotMatch" in message  # the AWS error code, even after a HEAD
        assert "AWS_SECRET_ACCESS_KEY" in message
        assert "requester" not in message
        assert SECRET not in _full_text(caught.value)
        provider, path = get_registry().for_uri(uri, endpoint_url=auth_server.endpoint_url)
        assert SECRET not in repr(provider)
        for call in (
            lambda: provider.get_range(path, 0, 10),
            lambda: list(provider.list(f"{PRIVATE_BUCKET}/data/")),
            lambda: provider.put_index(f"{PRIVATE_BUCKET}/i.json", b"{}"),
        ):
            with pytest.raises(AccessDeniedError, match="AWS_SECRET_ACCESS_KEY") as caught:
                call()
            assert SECRET not in _full_text(caught.value)

    def test_no_hint_when_requester_pays_is_on(
        self, auth_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        _use_credentials(monkeypatch, tmp_path, SECRET)
        uri = f"s3://{PRIVATE_BUCKET}/{PRIVATE_KEY}"
        with pytest.raises(AccessDeniedError) as caught:
            cloudfits.open(uri, endpoint_url=auth_server.endpoint_url, requester_pays=True)
        assert "requester_pays" not in str(caught.value)
        assert uri in str(caught.value)
        assert SECRET not in _full_text(caught.value)
        provider, _ = get_registry().for_uri(
            uri, endpoint_url=auth_server.endpoint_url, requester_pays=True
        )
        assert SECRET not in repr(provider)

    def test_no_credentials(
        self, auth_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        _use_credentials(monkeypatch, tmp_path, None)
        with pytest.raises(AccessDeniedError, match="no credentials"):
            cloudfits.open(
                f"s3://{PRIVATE_BUCKET}/{PRIVATE_KEY}", endpoint_url=auth_server.endpoint_url
            )

    def test_anonymous_is_refused(
        self, auth_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        _use_credentials(monkeypatch, tmp_path, SECRET)
        with pytest.raises(AccessDeniedError, match="requester_pays=True"):
            cloudfits.open(
                f"s3://{PRIVATE_BUCKET}/{PRIVATE_KEY}",
                endpoint_url=auth_server.endpoint_url,
                anonymous=True,
            )

    def test_right_credentials_read_and_missing_key_names_the_uri(
        self, auth_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        _use_credentials(monkeypatch, tmp_path, RIGHT_SECRET)
        endpoint = auth_server.endpoint_url
        with cloudfits.open(f"s3://{PRIVATE_BUCKET}/{PRIVATE_KEY}", endpoint_url=endpoint) as f:
            assert f[0].header["OBJECT"] == "conformance"
        for missing in (f"s3://{PRIVATE_BUCKET}/data/missing.fits", "s3://no-such-bucket/a.fits"):
            with pytest.raises(ObjectNotFoundError) as caught:
                cloudfits.open(missing, endpoint_url=endpoint)
            assert missing in str(caught.value)
            provider, path = get_registry().for_uri(missing, endpoint_url=endpoint)
            with pytest.raises(ObjectNotFoundError, match=missing):
                provider.get_range(path, 0, 10)

    def test_presigned_range_reads_are_checked_by_the_server(
        self, auth_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Right credentials read through presigned URLs; a wrong secret is still denied."""
        data = _fits_bytes()
        with RecordingProxy(auth_server.endpoint_url) as proxy:
            _use_credentials(monkeypatch, tmp_path, RIGHT_SECRET)
            provider = S3Provider(S3Config(endpoint_url=proxy.url))
            buffer = bytearray(100)
            path = f"{PRIVATE_BUCKET}/{PRIVATE_KEY}"
            assert provider.get_range_into(path, 10, memoryview(buffer)) == 100
            assert bytes(buffer) == data[10:110]
            assert "X-Amz-Signature=" in proxy.records[-1].target
            _use_credentials(monkeypatch, tmp_path, SECRET)
            wrong = S3Provider(S3Config(endpoint_url=proxy.url))
            with pytest.raises(AccessDeniedError, match="SignatureDoesNotMatch") as caught:
                wrong.get_range_into(path, 0, memoryview(bytearray(10)))
            assert SECRET not in _full_text(caught.value)

    def test_requester_pays_header_on_every_request(self, s3_server: S3Server) -> None:
        s3_server.create_bucket(CONFORMANCE_BUCKET)
        key = f"rp-{uuid.uuid4().hex[:8]}/a.bin"
        s3_server.client().put_object(Bucket=CONFORMANCE_BUCKET, Key=key, Body=b"0123456789")
        with RecordingProxy(s3_server.endpoint_url) as proxy:
            for requester_pays in (True, False):
                proxy.reset()
                provider = S3Provider(
                    S3Config(endpoint_url=proxy.url, requester_pays=requester_pays)
                )
                path = f"{CONFORMANCE_BUCKET}/{key}"
                assert provider.get_range(path, 2, 5) == b"234"
                buffer = bytearray(3)
                assert provider.get_range_into(path, 2, memoryview(buffer)) == 3
                assert bytes(buffer) == b"234"
                assert provider.head(path).size == 10
                assert len(list(provider.list(path))) == 1
                provider.put_index(f"{CONFORMANCE_BUCKET}/rp-indexes/{key}.json", b"{}")
                deadline = time.monotonic() + 5
                while proxy.request_count < 5 and time.monotonic() < deadline:
                    time.sleep(0.01)  # the proxy records a request after relaying its answer
                headers = [r.headers.get("x-amz-request-payer") for r in proxy.records]
                assert [r.method for r in proxy.records] == ["GET", "GET", "HEAD", "GET", "PUT"]
                expected = "requester" if requester_pays else None
                assert headers == [expected] * len(headers)


# ========================================================================== CLI


def _run(func: Callable[[list[str]], int], argv: list[str]) -> int:
    """The exit status of a command, whether it returns it or argparse exits."""
    try:
        return func(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


def _fits_dir(tmp_path: Path) -> Path:
    source = tmp_path / "fits"
    _write(source / "a.fits", _fits_bytes())
    _write(source / "nested" / "b.fits", _fits_bytes((8, 9), with_table=False))
    _write(source / "notes.txt", b"not FITS, not indexed")
    return source


@pytest.mark.usefixtures("builtins_only")
class TestCommandLine:
    @pytest.mark.parametrize(
        ("func", "argv"),
        [
            (index_main, ["providers"]),
            (index_main, ["--list-providers"]),
            (main, ["providers"]),
        ],
    )
    def test_list_providers(
        self, func: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert _run(func, argv) == 0
        lines = capsys.readouterr().out.splitlines()
        names = {line.split()[0] for line in lines if line and not line[0].isspace()}
        assert set(BUILTIN_PROVIDERS) <= names
        assert any("requester_pays" in line for line in lines)

    def test_providers_subprocess(self) -> None:
        env = {**os.environ, "CLOUDFITS_PLUGINS": ""}
        done = subprocess.run(
            [sys.executable, "-m", "cloudfits", "providers"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        names = {line.split()[0] for line in done.stdout.splitlines() if line[:1].strip()}
        assert set(BUILTIN_PROVIDERS) <= names

    def test_missing_source(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert _run(index_main, ["--index-uri", str(tmp_path / "i.json")]) == 2
        assert "SOURCE" in capsys.readouterr().err
        assert _run(main, ["index", "--index-uri", str(tmp_path / "i.json")]) == 2

    def test_missing_index_uri(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        source = _fits_dir(tmp_path)
        assert _run(index_main, [str(source)]) == 2
        assert "--index-uri" in capsys.readouterr().err
        assert not list(tmp_path.rglob("*.json*"))

    def test_requester_pays_with_local_files(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        source = _fits_dir(tmp_path)
        index = tmp_path / "i.json"
        status = _run(index_main, [str(source), "--index-uri", str(index), "--requester-pays"])
        assert status == 2
        assert "--requester-pays" in capsys.readouterr().err
        assert not index.exists()

    def test_directory_without_fits(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        source = tmp_path / "empty"
        _write(source / "readme.txt", b"nothing here")
        assert _run(index_main, [str(source), "--index-uri", str(tmp_path / "i.json")]) == 1
        err = capsys.readouterr().err
        assert "no FITS" in err
        assert str(source) in err

    def test_missing_source_directory(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        source = tmp_path / "does-not-exist"
        assert _run(index_main, [str(source), "--index-uri", str(tmp_path / "i.json")]) == 1
        assert str(source) in capsys.readouterr().err

    def test_truncated_fits_names_the_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        source = _fits_dir(tmp_path)
        whole = _fits_bytes((100, 100))
        _write(source / "cut" / "truncated.fits", whole[: 3 * 2880 + 100])
        index = tmp_path / "i.json"
        assert _run(index_main, [str(source), "--index-uri", str(index)]) == 1
        err = capsys.readouterr().err
        assert "failed: cut/truncated.fits: FitsFormatError: " in err
        assert "1 of 3 objects could not be indexed; the others are in the index" in err
        assert sorted(cloudfits.load_index(index).paths) == ["a.fits", "nested/b.fits"]

    @pytest.mark.parametrize("command", ["cloudfits-index", "cloudfits index"])
    def test_index_with_uris(
        self, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        source = _fits_dir(tmp_path)
        index_path = tmp_path / "out" / "cloudfits-index.json.gz"
        argv = [f"file://{source}", "--index-uri", str(index_path)]
        status = (
            _run(index_main, argv) if command == "cloudfits-index" else _run(main, ["index", *argv])
        )
        assert status == 0, capsys.readouterr().err
        assert "indexed 2 files (3 HDUs)" in capsys.readouterr().out
        assert gzip.decompress(index_path.read_bytes()).startswith(b"{")
        index = cloudfits.load_index(index_path)
        assert sorted(index.paths) == ["a.fits", "nested/b.fits"]
        with (
            fits.open(source / "nested" / "b.fits") as expected,
            index.open("nested/b.fits") as remote,
        ):
            np.testing.assert_array_equal(remote[0].section[:, :], expected[0].data)

    def test_index_uri_as_file_uri(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        source = _fits_dir(tmp_path)
        index_path = tmp_path / "idx.json"
        status = _run(index_main, [str(source), "--index-uri", f"file://{index_path}", "--quiet"])
        assert status == 0, capsys.readouterr().err
        assert capsys.readouterr().out == ""
        assert len(cloudfits.load_index(f"file://{index_path}").files) == 2
