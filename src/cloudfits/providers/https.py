"""``https://`` (and ``http://``) URLs: read-only range reads from any web server."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3

from ..errors import (
    AccessDeniedError,
    ObjectNotFoundError,
    ProviderError,
    RangeResponseError,
    StaleIndexError,
    UnsupportedOperationError,
)
from ..hookspecs import hookimpl
from ..plugins import ProviderRegistry
from .base import ObjectInfo, ProviderSpec
from .streams import copy_into, read_body_into

__all__ = ["HTTPSConfig", "HTTPSProvider"]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_TOTAL = re.compile(r"bytes \*/(\d+)")


@dataclass(frozen=True, kw_only=True)
class HTTPSConfig:
    """Options of the HTTPS provider.

    Attributes
    ----------
    max_pool_connections : int
        Connections kept per host; reads use up to this many at once.
    connect_timeout, read_timeout : float
        Seconds before a connection attempt or a read gives up.
    max_attempts : int
        Attempts for connection errors and 429/5xx answers, with exponential backoff.
    verify : bool
        Check the server's TLS certificate.
    """

    max_pool_connections: int = 64
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    verify: bool = True


class HTTPSProvider:
    """Range reads over plain HTTP(S); ``list`` and ``put_index`` are not possible."""

    def __init__(self, config: HTTPSConfig, scheme: str = "https") -> None:
        self.config = config
        self.scheme = scheme
        self._pool: urllib3.PoolManager | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HTTPSProvider({self.config!r})"

    @property
    def pool(self) -> urllib3.PoolManager:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    c = self.config
                    self._pool = urllib3.PoolManager(
                        maxsize=c.max_pool_connections,
                        block=False,
                        cert_reqs="CERT_REQUIRED" if c.verify else "CERT_NONE",
                        timeout=urllib3.Timeout(connect=c.connect_timeout, read=c.read_timeout),
                        retries=urllib3.Retry(
                            total=c.max_attempts - 1,
                            backoff_factor=0.2,
                            status_forcelist=(429, 500, 502, 503, 504),
                            allowed_methods=("GET", "HEAD"),
                            raise_on_status=False,
                        ),
                    )
        return self._pool

    def _url(self, path: str) -> str:
        return f"{self.scheme}://{path}"

    def _request(
        self, method: str, path: str, headers: dict[str, str], what: str, *, preload: bool = True
    ) -> Any:
        url = self._url(path)
        try:
            response = self.pool.request(method, url, headers=headers, preload_content=preload)
        except urllib3.exceptions.HTTPError as err:
            raise ProviderError(f"{self.scheme}: {what} {url}: {type(err).__name__}") from err
        status = response.status
        if status >= 400 and not preload:
            response.drain_conn()
        if status == 404 or status == 410:
            raise ObjectNotFoundError(f"{self.scheme}: {what} {url}: not found ({status})")
        if status in (401, 403):
            raise AccessDeniedError(f"{self.scheme}: {what} {url}: access denied ({status})")
        if status >= 400 and status != 416:
            raise ProviderError(f"{self.scheme}: {what} {url}: HTTP {status}")
        return response

    def get_range(self, path: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"invalid range [{start}, {end}) for {self._url(path)}")
        if end == start:
            return b""
        what = f"reading bytes [{start}, {end}) of"
        response = self._request("GET", path, {"Range": f"bytes={start}-{end - 1}"}, what)
        data: bytes = response.data
        if response.status == 416:
            return b""
        if response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            match = _CONTENT_RANGE.match(content_range)
            if match is None or int(match.group(1)) != start:
                raise RangeResponseError(
                    f"{self.scheme}: {self._url(path)}: asked for bytes [{start}, {end}),"
                    f" the answer is {content_range!r}"
                )
            return data
        # 200: the server ignored the range and sent the whole object.
        return data[start:end]

    def get_range_into(
        self, path: str, start: int, out: memoryview, *, etag: str | None = None
    ) -> int:
        """Read bytes from ``start`` straight into ``out``; return how many were written.

        The body goes from the socket into ``out`` without an intermediate copy. With
        ``etag``, the request carries ``If-Match`` and a changed object raises
        `~cloudfits.errors.StaleIndexError`.
        """
        if start < 0:
            raise ValueError(f"invalid start {start} for {self._url(path)}")
        end = start + len(out)
        if end == start:
            return 0
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if etag is not None:
            headers["If-Match"] = f'"{etag}"'
        what = f"reading bytes [{start}, {end}) of"
        response = self._request("GET", path, headers, what, preload=False)
        try:
            if response.status == 412:
                raise StaleIndexError(
                    f"{self._url(path)} changed since it was indexed (ETag is no longer {etag!r})"
                )
            if response.status == 416:
                return 0
            if response.status == 206:
                content_range = response.headers.get("Content-Range", "")
                match = _CONTENT_RANGE.match(content_range)
                if match is None or int(match.group(1)) != start:
                    raise RangeResponseError(
                        f"{self.scheme}: {self._url(path)}: asked for bytes [{start}, {end}),"
                        f" the answer is {content_range!r}"
                    )
                return read_body_into(response, out)
            # 200: the server ignored the range and sent the whole object.
            return copy_into(response.read()[start:end], out)
        finally:
            response.close()

    def head(self, path: str) -> ObjectInfo:
        response = self._request("HEAD", path, {}, "describing")
        length = response.headers.get("Content-Length")
        if length is None or response.status != 200:
            probe = self._request("GET", path, {"Range": "bytes=0-0"}, "describing")
            match = _CONTENT_RANGE.match(probe.headers.get("Content-Range", "")) or _TOTAL.match(
                probe.headers.get("Content-Range", "")
            )
            if match is None or match.groups()[-1] == "*":
                raise ProviderError(f"{self.scheme}: {self._url(path)}: size unknown")
            length = match.groups()[-1]
            response = probe
        etag = response.headers.get("ETag")
        return ObjectInfo(
            path,
            int(length),
            etag.strip('"') if etag else None,
            response.headers.get("Last-Modified"),
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        raise UnsupportedOperationError(
            f"{self.scheme}: cannot list {self._url(prefix)}: plain HTTP has no listing;"
            " index the files through their store's provider (s3://, gs://, ...)"
        )

    def put_index(self, path: str, data: bytes) -> None:
        raise UnsupportedOperationError(
            f"{self.scheme}: cannot write {self._url(path)}: the HTTPS provider is read-only"
        )


@hookimpl
def cloudfits_register_providers(registry: ProviderRegistry) -> None:
    registry.add(
        ProviderSpec(
            name="https",
            schemes=("https", "http"),
            config_type=HTTPSConfig,
            factory=lambda config, scheme: HTTPSProvider(config, scheme),
            description="any web server with range requests (read-only)",
        )
    )
