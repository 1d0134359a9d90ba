"""The HTTPS provider: range reads from any web server through urllib3."""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import urllib3

from ...errors import ProviderError, UnsupportedOperationError
from ...uri import redact_uri
from ..answers import RangeAnswer, header_int, read_body, read_whole_into, unquote_etag
from ..base import ObjectInfo, check_content_range
from ..deadline import deadline_passed, deadline_pool_manager, request_deadline
from ..kit import (
    ErrorKind,
    ProviderEdges,
    check_range,
    check_start,
    copy_into,
    kind_of_status,
    read_body_into,
    reading,
)
from . import HTTPSConfig

__all__ = ["HTTPSProvider"]
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_TOTAL = re.compile(r"bytes \*/(\d+)")


def _range_headers(start: int, end: int, etag: str | None) -> dict[str, str]:
    """The headers of a read of ``[start, end)``, conditional on ``etag`` when strong."""
    headers = {"Range": f"bytes={start}-{end - 1}"}
    if etag is not None and not etag.startswith("W/"):
        # If-Match compares strong tags only; a weak tag is checked on the answer.
        headers["If-Match"] = f'"{etag}"'
    return headers


def _etag(value: str | None) -> str | None:
    """An ``ETag`` header as `ObjectInfo` holds it: unquoted, weak tags kept whole."""
    if not value:
        return None
    return value if value.startswith("W/") else value.strip('"')


class HTTPSProvider(ProviderEdges):
    """Range reads over plain HTTP(S); ``list`` and ``put_index`` are not possible."""

    def __init__(self, config: HTTPSConfig, scheme: str = "https") -> None:
        self.config = config
        self.name = self.scheme = scheme
        self._pool: urllib3.PoolManager | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> urllib3.PoolManager:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    c = self.config
                    self._pool = deadline_pool_manager(
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
                            # Every configured header may be a secret: none follows a
                            # redirect to another host.
                            remove_headers_on_redirect=[
                                *urllib3.Retry.DEFAULT_REMOVE_HEADERS_ON_REDIRECT,
                                *(c.headers or {}),
                            ],
                        ),
                    )
        return self._pool

    def _split_auth(self, path: str) -> tuple[str, dict[str, str]]:
        """The URL to request, without ``user:password@``, and the headers to send."""
        headers = dict(self.config.headers or {})
        host, slash, rest = path.partition("/")
        userinfo, at, hostport = host.rpartition("@")
        if at:
            user, _, password = userinfo.partition(":")
            basic = f"{unquote(user)}:{unquote(password)}"
            headers.update(urllib3.util.make_headers(basic_auth=basic))
            path = hostport + slash + rest
        return f"{self.scheme}://{path}", headers

    def uri(self, path: str) -> str:
        """The URL as messages show it: never with credentials."""
        return redact_uri(f"{self.scheme}://{path}")

    def _request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        what: str,
        *,
        preload: bool = True,
        deadline: float | None = None,
    ) -> Any:
        url, auth = self._split_auth(path)
        extra: dict[str, Any] = {}
        if deadline is not None:
            left = max(0.001, deadline - time.monotonic())
            c = self.config
            extra["timeout"] = urllib3.Timeout(
                connect=min(c.connect_timeout, left), read=min(c.read_timeout, left)
            )
        cut = False
        try:
            with request_deadline(deadline):
                try:
                    response = self.pool.request(
                        method, url, headers={**auth, **headers}, preload_content=preload, **extra
                    )
                finally:
                    cut = deadline_passed()
        except (urllib3.exceptions.SSLError, urllib3.exceptions.LocationValueError) as err:
            raise self.error(ErrorKind.OTHER, what, path, type(err).__name__) from err
        except urllib3.exceptions.HTTPError as err:
            if cut:  # the status line and headers came slower than the deadline allows
                detail = "slower than the read deadline allows"
            elif isinstance(err, urllib3.exceptions.MaxRetryError) and err.reason is not None:
                detail = type(err.reason).__name__
            else:
                detail = type(err).__name__
            raise self.error(ErrorKind.TRANSIENT, what, path, detail) from err
        status = response.status
        if status >= 400 and not preload:
            response.drain_conn()
        if status >= 400 and status != 416:
            kind = kind_of_status(status)
            detail = {
                ErrorKind.NOT_FOUND: f"not found ({status})",
                ErrorKind.DENIED: f"access denied ({status})",
                ErrorKind.STALE: "",
            }.get(kind, f"HTTP {status}")
            raise self.error(kind, what, path, detail)
        return response

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        check_range(start, end, self.uri(path))
        if end == start:
            return b""
        what = reading(start, end)
        response = self._request("GET", path, _range_headers(start, end, etag), what)
        data: bytes = response.data
        self._check_etag(response, path, etag)
        if response.status == 416:
            return b""
        if response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            check_content_range(content_range, start, end, len(data), uri=self.uri(path))
            return data
        # 200: the server ignored the range and sent the whole object.
        return data[start:end]

    def _check_etag(self, response: Any, path: str, etag: str | None) -> None:
        """Raise `StaleIndexError` when the answer names another version than ``etag``."""
        found = _etag(response.headers.get("ETag"))
        if etag is not None and found is not None and found != etag:
            raise self.error(
                ErrorKind.STALE,
                "reading",
                path,
                f"the object changed since it was indexed (ETag {found}, the index has"
                f" {etag}); rebuild the index",
            )

    def get_range_into(
        self, path: str, start: int, out: memoryview, *, etag: str | None = None
    ) -> int:
        """Read bytes from ``start`` straight into ``out``; return how many were written.

        The body goes from the socket into ``out`` without an intermediate copy. With
        ``etag``, the request carries ``If-Match`` and a changed object raises
        `~cloudfits.errors.StaleIndexError`.
        """
        check_start(start, self.uri(path))
        end = start + len(out)
        if end == start:
            return 0
        what = reading(start, end)
        response = self._request("GET", path, _range_headers(start, end, etag), what, preload=False)
        try:
            self._check_etag(response, path, etag)
            if response.status == 416:
                return 0
            if response.status == 206:
                got = read_body_into(response, out)
                content_range = response.headers.get("Content-Range", "")
                check_content_range(content_range, start, end, got, uri=self.uri(path))
                return got
            # 200: the server ignored the range and sent the whole object.
            return copy_into(response.read()[start:end], out)
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as err:
            raise self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__) from err
        finally:
            response.close()

    def read_range(
        self,
        path: str,
        start: int,
        out: memoryview,
        *,
        etag: str | None = None,
        deadline: float | None = None,
    ) -> RangeAnswer:
        """Read bytes from ``start`` into ``out`` and report the answer, unchecked.

        The range engine checks the `RangeAnswer` (`cloudfits.fetch.checks`); the body
        is read one byte past the range, without decoding, by ``deadline``.
        """
        end = start + len(out)
        what = reading(start, end)
        headers = {**_range_headers(start, end, etag), "Accept-Encoding": "identity"}
        response = self._request("GET", path, headers, what, preload=False, deadline=deadline)
        shown = f"{self.scheme}: {what} {self.uri(path)}"
        try:
            got, more = 0, False
            if response.status == 206:
                got, more = read_body(response, out, deadline=deadline, what=shown)
            elif response.status == 200:
                got, more = read_whole_into(response, start, out, deadline=deadline, what=shown)
            h = response.headers
            return RangeAnswer(
                status=response.status,
                received=got,
                overflow=more,
                content_range=h.get("Content-Range"),
                content_length=header_int(h.get("Content-Length")),
                content_encoding=h.get("Content-Encoding"),
                etag=unquote_etag(h.get("ETag")),
                # The bytes before the range, and the one byte past it read to see
                # whether the body goes on, came over the network too.
                skipped=start + int(more) if response.status == 200 and got else 0,
            )
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as err:
            raise self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__) from err
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
                raise ProviderError(f"{self.scheme}: {self.uri(path)}: size unknown")
            length = match.groups()[-1]
            response = probe
        return ObjectInfo(
            path,
            int(length),
            _etag(response.headers.get("ETag")),
            response.headers.get("Last-Modified"),
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        raise UnsupportedOperationError(
            f"{self.scheme}: cannot list {self.uri(prefix)}: plain HTTP has no listing;"
            " index the files through their store's provider (s3://, gs://, ...)"
        )

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        raise UnsupportedOperationError(
            f"{self.scheme}: cannot write {self.uri(path)}: the HTTPS provider is read-only"
        )
