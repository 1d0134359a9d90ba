"""The provider interface and the typed description a plugin registers."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from ..errors import ProviderConfigError, RangeResponseError
from .answers import RangeAnswer

__all__ = [
    "ObjectInfo",
    "Provider",
    "ProviderSpec",
    "SupportsRangeInto",
    "SupportsReadRange",
    "SupportsSmallReads",
    "check_content_range",
    "range_into",
    "read_range_of",
    "small_reads_of",
    "store_index",
]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store says about one object.

    Attributes
    ----------
    path : str
        The object's path for its provider (for ``s3://b/k``, ``"b/k"``).
    size : int
        Size in bytes.
    etag : str or None
        The store's entity tag, without quotes, where it has one.
    last_modified : str or None
        ISO 8601 time of the last change, where the store gives it.
    """

    path: str
    size: int
    etag: str | None = None
    last_modified: str | None = None


@runtime_checkable
class Provider(Protocol):
    """Serves the objects of one URI scheme.

    Ranges are half-open: ``get_range(path, start, end)`` returns bytes
    ``[start, min(end, size))``, which is empty when ``start >= size``. Paths are what
    follows ``scheme://`` in a URI.

    Errors: `cloudfits.ObjectNotFoundError`, `cloudfits.AccessDeniedError`,
    `cloudfits.StaleIndexError` are permanent; `cloudfits.TransientProviderError`
    (throttling, 5xx, resets, timeouts, a body cut short) and
    `cloudfits.RangeResponseError` (other bytes than asked for) are retried by the
    range engine. No message or ``repr`` may contain a credential.

    A provider that can read into a caller's buffer declares it by implementing
    `SupportsRangeInto` as well; the range engine then reads the body from the network
    into the result array with no copy. A provider over HTTP should implement
    `SupportsReadRange`: it reports every answer, which the engine checks.
    """

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        """Return the object's bytes ``[start, end)`` (fewer at the end of the object).

        When ``etag`` is given, return bytes of that version of the object only (the
        entity tag as `head` reports it); if the object changed, raise
        `cloudfits.StaleIndexError` naming its URI.
        """
        ...

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` (an index document) at ``path``, replacing what is there.

        ``content_type`` is the index format's media type (from `FitsIndex.save`); when
        None the provider chooses by the name (`cloudfits.providers.kit.index_content_type`).
        A store without content types (local files) ignores it.
        """
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Yield every object whose path starts with ``prefix``, in path order."""
        ...

    def head(self, path: str) -> ObjectInfo:
        """Describe one object without reading it."""
        ...


@runtime_checkable
class SupportsRangeInto(Protocol):
    """The capability of a `Provider` to read a range straight into a caller's buffer.

    Declared by implementing the method (``isinstance(provider, SupportsRangeInto)``);
    the range engine checks it once per reader, never per request.
    """

    def get_range_into(
        self, path: str, start: int, out: memoryview, *, etag: str | None = None
    ) -> int:
        """Fill ``out`` with the bytes from ``start`` (fewer at the end of the object).

        Returns how many bytes were written; ``etag`` as for `Provider.get_range`.
        """
        ...


@runtime_checkable
class SupportsReadRange(Protocol):
    """The capability of a `Provider` to report what it received for a range read.

    The engine prefers it to the others and checks every answer against the object's
    known size and ETag (`cloudfits.fetch.checks`): one check for every provider.
    """

    def read_range(
        self,
        path: str,
        start: int,
        out: memoryview,
        *,
        etag: str | None = None,
        deadline: float | None = None,
    ) -> RangeAnswer:
        """Fill ``out`` from ``start`` and report the answer, unchecked.

        The body is read without decoding it and one byte past the range
        (`cloudfits.providers.answers.read_body`), by ``deadline`` (a `time.monotonic`
        time); the request asks for ``Accept-Encoding: identity``.
        """
        ...


@runtime_checkable
class SupportsSmallReads(Protocol):
    """The capability of a `Provider` to read small ranges through a cheaper transport.

    A reader that asks for it (`cloudfits.fetch.reader.ObjectReader`'s
    ``small_reads``, as indexing does for its header reads) tries it first; the answer
    is checked like any other, and None sends the read to `SupportsReadRange.read_range`.
    """

    def read_small(
        self,
        path: str,
        start: int,
        out: memoryview,
        *,
        etag: str | None = None,
        deadline: float | None = None,
    ) -> RangeAnswer | None:
        """As `SupportsReadRange.read_range`, or None when the read must take that path."""
        ...


_DECLARED_BY_CLASS: dict[tuple[type, str], bool] = {}
"""Whether a provider class defines a capability's method (classes do not change)."""


def _declares(provider: Provider, protocol: type, method: str) -> bool:
    """``isinstance(provider, protocol)`` for a protocol of one method, with what its
    class defines looked up once (a protocol check costs microseconds, and readers are
    made per object); an instance that has the method without its class (a proxy, an
    attribute set on it) is checked as before."""
    key = (type(provider), method)
    by_class = _DECLARED_BY_CLASS.get(key)
    if by_class is None:
        by_class = _DECLARED_BY_CLASS[key] = callable(getattr(type(provider), method, None))
    return by_class or isinstance(provider, protocol)


def small_reads_of(provider: Provider) -> SupportsSmallReads | None:
    """``provider`` as a `SupportsSmallReads` when it declares that capability, else None."""
    found = _declares(provider, SupportsSmallReads, "read_small")
    return cast(SupportsSmallReads, provider) if found else None


def read_range_of(provider: Provider) -> SupportsReadRange | None:
    """``provider`` as a `SupportsReadRange` when it declares that capability, else None."""
    found = _declares(provider, SupportsReadRange, "read_range")
    return cast(SupportsReadRange, provider) if found else None


def range_into(provider: Provider) -> SupportsRangeInto | None:
    """``provider`` as a `SupportsRangeInto` when it declares that capability, else None."""
    found = _declares(provider, SupportsRangeInto, "get_range_into")
    return cast(SupportsRangeInto, provider) if found else None


def _takes_content_type(method: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return "content_type" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def store_index(provider: Provider, path: str, data: bytes, *, content_type: str) -> None:
    """Store an index through ``provider`` with its content type.

    Providers written before ``put_index`` took ``content_type`` are called without it
    and keep choosing by the name.
    """
    if _takes_content_type(provider.put_index):
        provider.put_index(path, data, content_type=content_type)
    else:
        provider.put_index(path, data)


def check_content_range(
    content_range: str, start: int, end: int, received: int, *, uri: str
) -> None:
    """Raise `RangeResponseError` unless a 206 answer holds exactly the bytes asked for.

    ``content_range`` is the answer's ``Content-Range`` header, ``[start, end)`` the
    range asked for and ``received`` the body's length. The answer may stop early only
    at the end of the object.
    """
    match = _CONTENT_RANGE.match(content_range)
    ok = match is not None
    if match is not None:
        first, last, total = int(match.group(1)), int(match.group(2)), match.group(3)
        expected_last = end - 1 if total == "*" else min(end, int(total)) - 1
        ok = first == start and last == expected_last and received == last - first + 1
    if not ok:
        raise RangeResponseError(
            f"{uri}: asked for bytes [{start}, {end}), the answer is {content_range!r}"
            f" with {received} bytes"
        )


def _default_bucket_uri(scheme: str) -> Callable[[str, Any], str]:
    def bucket_uri(bucket: str, config: Any) -> str:
        return f"{scheme}://{bucket}"

    return bucket_uri


@dataclass(frozen=True)
class ProviderSpec:
    """What a plugin registers for one provider.

    Attributes
    ----------
    name : str
        The provider's name, as given to ``cloudfits-index --provider``.
    schemes : tuple of str
        URI schemes it serves. A scheme ending in ``+`` serves every scheme that
        starts with it (``"libcloud+"`` serves ``libcloud+s3://``).
    config_type : type
        A frozen, keyword-only dataclass of the provider's options.
    factory : callable
        ``factory(config, scheme)`` returns a `Provider`.
    description : str
        One line for ``cloudfits-index providers``.
    bucket_uri : callable, optional
        ``bucket_uri(bucket, config)`` turns a bare bucket name into a URI.
    below : callable, optional
        ``below(base, relative, options)`` returns the options and the path of the
        object ``relative`` below the provider path ``base``. By default the paths are
        joined with ``/`` and the options kept; the file provider roots its reads at
        ``base`` instead, so that no relative path can leave it.
    """

    name: str
    schemes: tuple[str, ...]
    config_type: type[Any]
    factory: Callable[[Any, str], Provider]
    description: str = ""
    bucket_uri: Callable[[str, Any], str] | None = field(default=None)
    below: Callable[[str, str, dict[str, Any]], tuple[dict[str, Any], str]] | None = field(
        default=None
    )
    source_listing: Callable[[Provider, str], tuple[str, list[ObjectInfo]]] | None = field(
        default=None
    )

    def make_config(self, options: dict[str, Any]) -> Any:
        """Build the provider's config from keyword options; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(self.config_type)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ProviderConfigError(
                f"provider {self.name!r} has no option {', '.join(map(repr, unknown))};"
                f" its options are: {', '.join(sorted(known)) or '(none)'}"
            )
        try:
            return self.config_type(**options)
        except (TypeError, ValueError) as err:
            raise ProviderConfigError(f"provider {self.name!r}: {err}") from err

    def path_below(
        self, base: str, relative: str, options: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        """The options and provider path of ``relative`` below the provider path ``base``."""
        if self.below is not None:
            return self.below(base, relative, options)
        joined = base.rstrip("/") + "/" + relative.lstrip("/") if base else relative
        return options, joined

    def list_source(self, provider: Provider, path: str) -> tuple[str, list[ObjectInfo]]:
        """The base path and the objects, in path order, of the indexing source ``path``."""
        if self.source_listing is not None:
            return self.source_listing(provider, path)
        if path.endswith("/"):
            base = path.rstrip("/")
        else:
            base = path.rpartition("/")[0] if "/" in path else path
        return base, list(provider.list(path))

    def secret_options(self) -> frozenset[str]:
        """The options that hold credentials: fields declared with ``repr=False``."""
        return frozenset(f.name for f in dataclasses.fields(self.config_type) if not f.repr)

    def uri_for_bucket(self, bucket: str, config: Any) -> str:
        """The URI of a bare bucket name (``"b"`` -> ``"s3://b"``) with this config."""
        make = self.bucket_uri or _default_bucket_uri(self.schemes[0].rstrip("+"))
        return make(bucket, config)
