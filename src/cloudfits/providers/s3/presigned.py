"""Range reads of S3 objects through presigned URLs, without botocore's per-request work.

A ranged GET made by botocore spends about 3 ms of CPU in the client (parameter
validation, endpoint rules, signing, event hooks, response parsing) while holding the
GIL, so a read of ten runs costs 30 ms of CPU before any byte arrives, and indexing
hundreds of objects is bound by it. Here boto3 signs one URL per object (a presigned
``GetObject``, requester-pays included) and every range of that object is a plain
urllib3 request on it, read straight into the caller's buffer.

Any answer other than the expected ones (206, 200, 416, 412) makes the caller fall back
to the botocore path, which owns retries, redirects and error messages.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from botocore.httpsession import get_cert_path
from urllib3.util import parse_url

from ...errors import StaleIndexError, TransientProviderError
from ..answers import RangeAnswer, header_int, read_body, read_whole_into, unquote_etag
from ..base import check_content_range
from ..deadline import deadline_passed, deadline_pool_manager, request_deadline
from ..kit import copy_into, read_body_into

__all__ = ["BucketUrls", "PresignedReads"]

URL_SECONDS = 3600
"""Lifetime of a presigned URL."""
REUSE_SECONDS = 300
"""How long one presigned URL is used before a new one is signed."""


class PresignedReads:
    """Ranged GETs on presigned URLs over a urllib3 pool.

    Parameters
    ----------
    presign : callable
        ``presign(path)`` returns a presigned ``GetObject`` URL, or None when signing
        is not possible (then every read falls back).
    headers : dict
        Headers that were signed with the URL and must be sent with it.
    pool_size : int
        Connections kept per host.
    connect_timeout, read_timeout : float
        Seconds before a connection attempt or a read gives up.
    """

    def __init__(
        self,
        presign: Callable[[str], str | None],
        headers: dict[str, str],
        *,
        pool_size: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._presign = presign
        self._headers = headers
        self._urls: dict[str, tuple[float, _Target | None]] = {}
        self._lock = threading.Lock()
        self._pool = deadline_pool_manager(
            maxsize=pool_size,
            block=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=get_cert_path(True),
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=False,
        )
        self._timeouts = (connect_timeout, read_timeout)

    def _url(self, path: str) -> _Target | None:
        now = time.monotonic()
        entry = self._urls.get(path)
        if entry is None or entry[0] < now:
            url = self._presign(path)
            entry = (now + REUSE_SECONDS, None if url is None else _Target.of(url))
            with self._lock:
                self._urls[path] = entry
        return entry[1]

    def _get(self, target: _Target, headers: dict[str, str], timeout: Any = None) -> Any:
        """A GET of ``target`` on its host's pool, not yet read (``timeout``: the pool's
        when None)."""
        pool = self._pool.connection_from_host(target.host, port=target.port, scheme=target.scheme)
        kwargs = {} if timeout is None else {"timeout": timeout}
        return pool.urlopen(
            "GET",
            target.request_uri,
            headers=headers,
            preload_content=False,
            redirect=False,
            retries=False,
            assert_same_host=False,
            **kwargs,
        )

    def _range_headers(self, start: int, end: int, etag: str | None) -> dict[str, str]:
        """The signed headers, the range ``[start, end)`` (the bytes as stored, no
        transfer coding) and, with ``etag``, the condition that the object is unchanged."""
        headers = {
            **self._headers,
            "Range": f"bytes={start}-{end - 1}",
            "Accept-Encoding": "identity",
        }
        if etag is not None:
            headers["If-Match"] = f'"{etag}"'
        return headers

    def forget(self, path: str) -> None:
        """Sign a new URL for ``path`` next time."""
        with self._lock:
            self._urls.pop(path, None)

    def read_into(
        self, path: str, start: int, out: memoryview, *, etag: str | None, uri: str
    ) -> int | None:
        """Fill ``out`` from ``start``; None when the caller must use the botocore path."""
        target = self._url(path)
        if target is None:
            return None
        end = start + len(out)
        headers = self._range_headers(start, end, etag)
        try:
            response = self._get(target, headers)
        except urllib3.exceptions.HTTPError:
            return None  # the botocore path retries and reports
        try:
            status = response.status
            found = str(response.headers.get("ETag", "")).strip('"')
            if etag is not None and found and found != etag and status in (200, 206):
                raise StaleIndexError(
                    f"{uri} changed since it was indexed (ETag {found}, the index has {etag})"
                )
            if status == 206:
                got = read_body_into(response, out)
                check_content_range(
                    response.headers.get("Content-Range", ""), start, end, got, uri=uri
                )
                return got
            if status == 200:  # the store ignored the range
                return copy_into(response.read()[start:end], out)
            if status == 416:
                return 0
            if status == 412:
                raise StaleIndexError(
                    f"{uri} changed since it was indexed (ETag is no longer {etag!r})"
                )
            self.forget(path)  # an expired signature, a redirect, an error: start afresh
            return None
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as err:
            # The body broke off (reset, stall, truncation): the engine retries. The
            # message leaves out the presigned URL, which carries a signature.
            raise TransientProviderError(
                f"{uri}: reading bytes [{start}, {end}): {type(err).__name__}"
            ) from None
        finally:
            response.close()

    def read_range(
        self,
        path: str,
        start: int,
        out: memoryview,
        *,
        etag: str | None,
        uri: str,
        deadline: float | None,
    ) -> RangeAnswer | None:
        """Fill ``out`` from ``start`` and report the answer, unchecked (the engine
        checks it); None when the caller must use the botocore path."""
        target = self._url(path)
        if target is None:
            return None
        end = start + len(out)
        headers = self._range_headers(start, end, etag)
        timeout: Any = None
        if deadline is not None:
            left = max(0.001, deadline - time.monotonic())
            timeout = urllib3.Timeout(
                connect=min(self._timeouts[0], left), read=min(self._timeouts[1], left)
            )
        what = f"{uri}: reading bytes [{start}, {end})"
        try:
            with request_deadline(deadline):
                try:
                    response = self._get(target, headers, timeout)
                finally:
                    cut = deadline_passed()
        except urllib3.exceptions.HTTPError:
            if cut:  # the botocore path would wait for the same slow server
                raise TransientProviderError(
                    f"{what}: slower than the read deadline allows"
                ) from None
            return None  # the botocore path retries and reports
        try:
            status = response.status
            if status == 412:
                raise StaleIndexError(
                    f"{uri} changed since it was indexed (ETag is no longer {etag!r})"
                )
            if status not in (200, 206, 416):
                self.forget(path)  # an expired signature, a redirect, an error: start afresh
                return None
            got, more = 0, False
            if status == 206:
                got, more = read_body(response, out, deadline=deadline, what=what)
            elif status == 200:
                got, more = read_whole_into(response, start, out, deadline=deadline, what=what)
            h = response.headers
            return RangeAnswer(
                status=status,
                received=got,
                overflow=more,
                content_range=h.get("Content-Range"),
                content_length=header_int(h.get("Content-Length")),
                content_encoding=h.get("Content-Encoding"),
                etag=unquote_etag(h.get("ETag")),
            )
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as err:
            # The message leaves out the presigned URL, which carries a signature.
            raise TransientProviderError(f"{what}: {type(err).__name__}") from None
        finally:
            response.close()


@dataclass(frozen=True)
class _Target:
    """Where a presigned URL points, parsed once: each read of it sends the request line
    as it is (``PoolManager.request`` parses and percent-normalises the whole URL, about
    a third of a read's CPU)."""

    scheme: str
    host: str
    port: int | None
    request_uri: str

    @classmethod
    def of(cls, url: str) -> _Target:
        parsed = parse_url(url)
        return cls(parsed.scheme or "https", parsed.host or "", parsed.port, parsed.request_uri)


_HEADER_VALUES = {"x-amz-request-payer": "requester", "accept-encoding": "identity"}
"""Values of the headers boto3's hooks sign into a presigned ``GetObject`` URL."""


class BucketUrls:
    """Presigned URLs of one bucket's objects: botocore's first, the others signed here.

    ``generate_presigned_url`` resolves the endpoint (its rules, the addressing style)
    and runs its event hooks for every URL: about 1 ms of CPU each, the largest part of
    indexing hundreds of objects. The endpoint does not change from key to key, so the
    first URL gives the bucket's prefix and later keys are signed with botocore's own
    query signer (``S3SigV4QueryAuth``), with the headers the first URL signed: the same
    URL botocore makes, in a third of the time.

    Parameters
    ----------
    prefix : str
        The URL up to the key.
    headers : dict
        The headers signed besides ``host``.
    credentials : callable or None
        Returns botocore credentials; None for unsigned URLs.
    region : str
        The signing region.
    """

    def __init__(
        self,
        prefix: str,
        headers: dict[str, str],
        credentials: Callable[[], Any] | None,
        region: str,
    ) -> None:
        self._prefix = prefix
        self._headers = headers
        self._credentials = credentials
        self._region = region

    @classmethod
    def from_first(
        cls, url: str, key: str, credentials: Callable[[], Any], region: str | None
    ) -> BucketUrls | None:
        """The signer of ``url``'s bucket (``url`` presigned by botocore for ``key``), or
        None when its form is not one this can repeat."""
        from urllib.parse import parse_qs, quote, urlsplit

        parts = urlsplit(url)
        base = url.split("?", 1)[0]
        quoted = quote(key, safe="/~")
        if not base.endswith(quoted) or not region:
            return None
        query = parse_qs(parts.query)
        if not query:
            return cls(base[: -len(quoted)], {}, None, region)
        if query.get("X-Amz-Algorithm") != ["AWS4-HMAC-SHA256"]:
            return None
        signed = query.get("X-Amz-SignedHeaders", [""])[0].split(";")
        extra = [h for h in signed if h != "host"]
        if "host" not in signed or any(h not in _HEADER_VALUES for h in extra):
            return None
        return cls(base[: -len(quoted)], {h: _HEADER_VALUES[h] for h in extra}, credentials, region)

    def url(self, key: str) -> str:
        """The presigned ``GetObject`` URL of ``key``."""
        from urllib.parse import quote

        from botocore.auth import S3SigV4QueryAuth
        from botocore.awsrequest import AWSRequest

        url = self._prefix + quote(key, safe="/~")
        if self._credentials is None:
            return url
        request = AWSRequest(method="GET", url=url, headers=dict(self._headers))
        frozen = self._credentials().get_frozen_credentials()
        S3SigV4QueryAuth(frozen, "s3", self._region, expires=URL_SECONDS).add_auth(request)
        signed: str = request.url
        return signed
