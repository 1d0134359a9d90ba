"""The edges of the provider contract that every provider shares.

Built-in providers and plugins alike use these, so that they agree on what a range
is, how a path splits into bucket and key, what an error says and which class it is,
the order of a listing and the content type of an index. A provider keeps only what
its SDK makes different: which SDK error means what.

* `ProviderEdges`: a mixin with ``__repr__`` from the config (fields declared
  ``repr=False`` never show), the URI of a path and `ProviderEdges.error`;
* `check_range`, `check_start`, `reading`: range validation and its wording;
* `split_bucket_key`, `sorted_listing`, `index_content_type`;
* `ErrorKind`, `error_for`, `kind_of_status`: one error hierarchy for every SDK;
* `copy_into`, `read_body_into`: bodies straight into a caller's buffer;
* `built_once`, `lazy_factory`, `lazy_attributes`: an SDK client built once per
  provider under a lock, and a provider class imported (with its SDK) only when the
  first provider is made;
* `registers`: the ``cloudfits_register_providers`` hook of a module of providers;
* `check_anonymous`: the values of the ``anonymous`` option of s3, spaces, gcs, azure;
* `ClientOptions`: the HTTP client's pool, timeouts and attempts, one place for the
  providers that take them (s3, spaces, https), each with its environment variable.
"""

from __future__ import annotations

import enum
import importlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..errors import (
    AccessDeniedError,
    CloudFitsError,
    ObjectNotFoundError,
    ProviderError,
    RangeResponseError,
    StaleIndexError,
    TransientProviderError,
)
from .base import ObjectInfo, ProviderSpec
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .registry import ProviderRegistry

__all__ = [
    "INDEX_CONTENT_TYPES",
    "ClientOptions",
    "ErrorKind",
    "ProviderEdges",
    "built_once",
    "check_anonymous",
    "check_range",
    "check_start",
    "copy_into",
    "error_for",
    "index_content_type",
    "kind_of_status",
    "lazy_attributes",
    "lazy_factory",
    "read_body_into",
    "reading",
    "registers",
    "sorted_listing",
    "split_bucket_key",
]

INDEX_CONTENT_TYPES: dict[str, str] = {
    ".parquet": "application/vnd.apache.parquet",
    ".json.gz": "application/gzip",
    ".json": "application/json",
}
"""Media types of the index formats by name ending (`cloudfits.index.formats` uses them)."""


class ErrorKind(enum.Enum):
    """What a failure means to the caller, whatever SDK reported it."""

    NOT_FOUND = ObjectNotFoundError
    DENIED = AccessDeniedError
    STALE = StaleIndexError
    TRANSIENT = TransientProviderError
    WRONG_RANGE = RangeResponseError
    OTHER = ProviderError


def kind_of_status(status: int | str | None) -> ErrorKind:
    """The kind of an HTTP error status: 404/410 not found, 401/403 denied, 412 stale,
    408/425/429/5xx transient, anything else other."""
    try:
        code = int(status) if status is not None else 0
    except ValueError:
        return ErrorKind.OTHER
    if code in (404, 410):
        return ErrorKind.NOT_FOUND
    if code in (401, 403):
        return ErrorKind.DENIED
    if code == 412:
        return ErrorKind.STALE
    if code in (408, 425, 429) or 500 <= code <= 599:
        return ErrorKind.TRANSIENT
    return ErrorKind.OTHER


def error_for(
    kind: ErrorKind, provider: str, what: str, uri: str, detail: str = "", hint: str = ""
) -> CloudFitsError:
    """The exception of ``kind``, its message naming the provider, the action and the URI.

    ``what`` says what was being done ("reading bytes [0, 10) of", see `reading`),
    ``detail`` what the store answered; ``hint`` what the user may do about it, in Python
    keywords (the error's ``hint``, which the command line rewrites with its flags).
    Neither may hold a credential.
    """
    if kind is ErrorKind.STALE and not detail:
        detail = "the object changed since it was indexed; rebuild the index"
    message = f"{provider}: {what} {uri}" + (f": {detail}" if detail else "")
    error: CloudFitsError = kind.value(message, hint=hint)
    return error


def reading(start: int, end: int) -> str:
    """The ``what`` of an error while reading bytes ``[start, end)``."""
    return f"reading bytes [{start}, {end}) of"


def check_range(start: int, end: int, uri: str) -> None:
    """Raise ``ValueError`` unless ``[start, end)`` is a range (``0 <= start <= end``)."""
    if start < 0 or end < start:
        raise ValueError(f"invalid range [{start}, {end}) for {uri}")


def check_start(start: int, uri: str) -> None:
    """Raise ``ValueError`` unless ``start`` is a valid first byte of a read into a buffer."""
    if start < 0:
        raise ValueError(f"invalid start {start} for {uri}")


def split_bucket_key(path: str, scheme: str, *, bucket: str = "bucket") -> tuple[str, str]:
    """``"bucket/a/b.fits"`` -> ``("bucket", "a/b.fits")``; a path without one is an error.

    ``bucket`` names the first part in the message ("container" on Azure).
    """
    first, _, key = path.partition("/")
    if not first:
        raise ValueError(f"{scheme} path {path!r} has no {bucket}")
    return first, key


def sorted_listing(found: Iterable[ObjectInfo]) -> list[ObjectInfo]:
    """Objects in path order as the contract has it: by the UTF-8 bytes of the paths.

    AWS lists in that order; other stores (and SDKs) do not always.
    """
    return sorted(found, key=lambda info: info.path.encode("utf-8"))


def index_content_type(path: str, content_type: str | None = None) -> str:
    """The content type to store an index at ``path`` with.

    ``content_type`` (the index format's, given by `FitsIndex.save`) wins; without it
    the name decides (`INDEX_CONTENT_TYPES`), and an unknown name is JSON.
    """
    if content_type:
        return content_type
    lower = path.lower()
    for suffix, media_type in INDEX_CONTENT_TYPES.items():
        if lower.endswith(suffix):
            return media_type
    return "application/gzip" if lower.endswith(".gz") else "application/json"


class ProviderEdges:
    """What a provider class shares with every other: ``repr``, URIs, errors.

    A subclass sets ``config`` (its frozen config dataclass), ``name`` (the provider
    name messages start with) and ``scheme`` (of its URIs), or overrides `uri` where a
    path needs more than ``scheme://`` (a credential to hide, a region to prepend).
    """

    config: Any
    name: str
    scheme: str

    def __repr__(self) -> str:
        # The config's dataclass repr leaves out the fields declared repr=False (secrets).
        return f"{type(self).__name__}({self.config!r})"

    def uri(self, path: str) -> str:
        """The URI of ``path`` as messages show it."""
        return f"{self.scheme}://{path}"

    def error(
        self, kind: ErrorKind, what: str, path: str, detail: str = "", hint: str = ""
    ) -> CloudFitsError:
        """`error_for` with this provider's name and the URI of ``path``."""
        return error_for(kind, self.name, what, self.uri(path), detail, hint)

    def check_length(self, path: str, start: int, end: int, received: int) -> None:
        """Raise `RangeResponseError` when an answer holds more bytes than ``[start, end)``."""
        if received > end - start:
            raise self.error(
                ErrorKind.WRONG_RANGE,
                "reading",
                path,
                f"asked for bytes [{start}, {end}), got {received} bytes",
            )


def copy_into(data: bytes, out: memoryview) -> int:
    """Copy ``data`` (at most ``len(out)`` bytes of it) to the start of ``out``."""
    n = min(len(data), len(out))
    out[:n] = data[:n]
    return n


def read_body_into(response: Any, out: memoryview) -> int:
    """Read up to ``len(out)`` body bytes of a urllib3 response into ``out``.

    urllib3's own ``readinto`` reads into a temporary ``bytes`` and copies it; for a
    body without content coding this reads through the underlying
    `http.client.HTTPResponse`, whose ``readinto`` fills ``out`` from the socket
    directly. When the whole body has been read the connection goes back to the
    pool; otherwise the caller must close the response (which drops the connection).

    Returns
    -------
    int
        Bytes written to ``out``.
    """
    n = len(out)
    coding = str(response.headers.get("content-encoding", "")).strip().lower()
    raw: Any = getattr(response, "_fp", None)
    direct = coding in ("", "identity") and raw is not None and hasattr(raw, "readinto")
    source = raw if direct else response
    got = 0
    while got < n:
        k = source.readinto(out[got:])
        if not k:
            break
        got += k
    if direct and raw.isclosed():
        response.release_conn()  # the body is complete: the connection is reusable
    return got


T = TypeVar("T")


class built_once(Generic[T]):
    """A property computed once per instance under a lock: a provider's SDK client.

    ``functools.cached_property`` takes no lock (since Python 3.12), and two threads
    reading at once would build two clients; this builds exactly one.
    """

    def __init__(self, build: Callable[[Any], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._attr = f"_{build.__name__}_built"
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = f"_{name}_built"

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        found: T | None = instance.__dict__.get(self._attr)
        if found is None:
            with self._lock:
                found = instance.__dict__.get(self._attr)
                if found is None:
                    found = self._build(instance)
                    instance.__dict__[self._attr] = found
        return found


def lazy_factory(module: str, class_name: str, *, with_scheme: bool = False) -> Callable[..., Any]:
    """A `ProviderSpec` factory that imports ``module`` (and so the SDK) on first use.

    The factory makes ``class_name(config)``, or ``class_name(config, scheme)`` with
    ``with_scheme``.
    """

    def factory(config: Any, scheme: str) -> Any:
        cls = getattr(importlib.import_module(module), class_name)
        return cls(config, scheme) if with_scheme else cls(config)

    factory.__module__ = module.rpartition(".")[0] or module
    factory.__qualname__ = f"make_{class_name}"
    return factory


def lazy_attributes(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[name]`` (a submodule) on first use,
    so that ``from package import S3Provider`` works without importing the SDK early."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def check_anonymous(anonymous: object, *, requester_pays: bool = False) -> None:
    """Refuse an ``anonymous`` that is not True, False or ``"auto"``, or one that
    contradicts ``requester_pays`` (which bills the account signing the requests)."""
    if not (anonymous is True or anonymous is False or anonymous == "auto"):
        raise ValueError(f"anonymous must be True, False or 'auto', not {anonymous!r}")
    if anonymous is True and requester_pays:
        raise ValueError(
            "anonymous=True and requester_pays=True contradict each other: requester-pays"
            " bills the account that signs the requests"
        )


def _from_environment(variable: str, default: T, kind: Callable[[str], T]) -> Callable[[], T]:
    def read() -> T:
        value = os.environ.get(variable, "").strip()
        if not value:
            return default
        try:
            return kind(value)
        except ValueError as err:
            raise ValueError(f"{variable}={value!r} is not a valid {kind.__name__}") from err

    return read


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """The HTTP client options shared by the s3, spaces and https providers.

    Each option is documented here once; its default comes from its environment
    variable when that is set. A provider's config inherits these fields, so they are
    given like any other option (``max_pool_connections=16``, ``--max-pool-connections 16``).

    Attributes
    ----------
    max_pool_connections : int
        Connections kept per host; reads use up to this many at once
        (``CLOUDFITS_MAX_POOL_CONNECTIONS``, default 128: the objects an index scan
        reads at once).
    connect_timeout : float
        Seconds before a connection attempt gives up (``CLOUDFITS_CONNECT_TIMEOUT``,
        default 10).
    read_timeout : float
        Seconds a read may wait for data (``CLOUDFITS_READ_TIMEOUT``, default 60).
    max_attempts : int
        Attempts per request by the client itself for connection errors and throttling
        (``CLOUDFITS_REQUEST_ATTEMPTS``, default 5); the range engine's own retries
        (``CLOUDFITS_MAX_ATTEMPTS``) come on top.
    """

    max_pool_connections: int = field(
        default_factory=_from_environment("CLOUDFITS_MAX_POOL_CONNECTIONS", 128, int)
    )
    connect_timeout: float = field(
        default_factory=_from_environment("CLOUDFITS_CONNECT_TIMEOUT", 10.0, float)
    )
    read_timeout: float = field(
        default_factory=_from_environment("CLOUDFITS_READ_TIMEOUT", 60.0, float)
    )
    max_attempts: int = field(
        default_factory=_from_environment("CLOUDFITS_REQUEST_ATTEMPTS", 5, int)
    )


def registers(*specs: ProviderSpec) -> Callable[[ProviderRegistry], None]:
    """The ``cloudfits_register_providers`` hook implementation that adds ``specs``.

    ``cloudfits_register_providers = kit.registers(ProviderSpec(...))`` in the module
    the entry point names is the same as writing the ``@cloudfits.hookimpl`` function.
    """

    def cloudfits_register_providers(registry: ProviderRegistry) -> None:
        for spec in specs:
            registry.add(spec)

    names = ", ".join(spec.name for spec in specs)
    cloudfits_register_providers.__doc__ = f"Register the providers {names}."
    marked: Callable[[ProviderRegistry], None] = hookimpl(cloudfits_register_providers)
    return marked
