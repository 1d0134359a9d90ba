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
* `copy_into`, `read_body_into`: bodies straight into a caller's buffer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from ..errors import (
    AccessDeniedError,
    CloudFitsError,
    ObjectNotFoundError,
    ProviderError,
    RangeResponseError,
    StaleIndexError,
    TransientProviderError,
)
from .base import ObjectInfo

__all__ = [
    "INDEX_CONTENT_TYPES",
    "ErrorKind",
    "ProviderEdges",
    "check_range",
    "check_start",
    "copy_into",
    "error_for",
    "index_content_type",
    "kind_of_status",
    "read_body_into",
    "reading",
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
