"""Small range reads of S3 objects through obstore, for the header reads of indexing.

Indexing hundreds of objects is hundreds of small reads, and each one through urllib3
costs about 0.4 ms of CPU on its own and nearly 1 ms with 64 of them at once (the
threads take turns at the interpreter lock to parse each answer). obstore (Rust,
``object_store``) signs, sends and parses the request without the interpreter lock:
the 704 header reads of 352 TESS cubes took 0.22 to 0.28 s of client CPU through it,
0.59 to 1.0 s through urllib3 on 64 threads (the performance page of the docs).

What obstore reports is checked like any answer (`cloudfits.fetch.checks`): it refuses
a 200 to a range request and a ``Content-Range`` other than the one asked for, and the
`RangeAnswer` made here carries the range and total it read, the body's length, its
``Content-Encoding`` and the ETag, so a longer, shorter, coded or other version's body
is refused by the engine. Any error of obstore's (a refusal, a timeout, a server that
will not answer a range) returns None, and the read takes the provider's own path,
which reports it as every read does.

Used only where a reader asks for it (`cloudfits.fetch.reader.ObjectReader`'s
``small_reads``), and only when it keeps the provider's promises: unsigned requests or
long-term keys (obstore follows a redirect to another host without the
``Authorization`` header, but a session token travels in a header of its own, so with
a session token every read stays on the presigned path, which follows no redirect), no
proxy in the environment (which obstore would read otherwise than botocore), and a
deadline no shorter than obstore's own timeout. botocore's CA bundle
(``AWS_CA_BUNDLE``) is trusted besides the system's roots.

A process forked from one that has read through obstore never reads through it: its
runtime's threads do not survive a fork, and a read there would wait forever (as a
``multiprocessing`` pool with the ``fork`` start method would otherwise meet).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ...errors import StaleIndexError
from ..answers import RangeAnswer, unquote_etag
from . import split_bucket_key

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, S3Credential
    from obstore.store import S3Config as StoreConfig

    from .client import S3Provider

__all__ = ["SMALL_READ", "NativeReads", "usable_here"]

SMALL_READ = 1 << 20
"""The largest read (bytes) taken through obstore: its answer is copied once into the
caller's buffer, which for a header costs nothing and for a large cutout would."""
TIMEOUT = 10.0
"""Seconds obstore allows a whole small read (connecting, answer and body)."""
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
"""Proxy settings, which obstore and botocore read differently: with one, no native reads."""


_used_in: list[int] = []
"""The process that first read through obstore here (its runtime started there)."""


def usable_here() -> bool:
    """Whether obstore can be used in this process: not forked from one that used it."""
    return not _used_in or _used_in[0] == os.getpid()


class NativeReads:
    """obstore stores, one per bucket, reading small ranges for the S3 provider.

    Parameters
    ----------
    endpoint : str
        The endpoint botocore resolved (``https://s3.amazonaws.com``, a local server).
    region : str
        The signing region.
    credentials : callable or None
        Returns ``(access_key, secret_key)`` for each signature; None for unsigned
        requests.
    requester_pays : bool
        Send ``x-amz-request-payer: requester``.
    pool_size : int
        Connections kept per host.
    connect_timeout : float
        Seconds before a connection attempt gives up.
    """

    def __init__(
        self,
        endpoint: str,
        region: str,
        credentials: Callable[[], tuple[str, str]] | None,
        *,
        requester_pays: bool,
        pool_size: int,
        connect_timeout: float,
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._requester_pays = requester_pays
        self._pool_size = pool_size
        self._connect_timeout = min(connect_timeout, TIMEOUT)
        self._stores: dict[str, Any] = {}
        self._bundle = os.environ.get("AWS_CA_BUNDLE") if endpoint.startswith("https://") else None
        self._lock = threading.Lock()

    @classmethod
    def of_provider(cls, provider: S3Provider) -> tuple[NativeReads, ...]:
        """The native reads of an S3 provider, or none where they are turned off
        (``native_reads=False``) or cannot keep its promises (see the module)."""
        c = provider.config
        if not c.native_reads:
            return ()
        try:
            import obstore  # noqa: F401
        except ImportError:
            return ()
        if any(os.environ.get(name) for name in _PROXIES):
            return ()
        client = provider.client  # built first: it says whether requests are signed
        endpoint = str(client.meta.endpoint_url or "")
        region = client.meta.region_name
        if not endpoint.startswith(("https://", "http://")) or not region:
            return ()
        credentials: Callable[[], tuple[str, str]] | None = None
        if not provider._unsigned:
            session = provider._session
            found = session.get_credentials()
            if found is None:
                return ()
            frozen = found.get_frozen_credentials()
            if frozen.token or not (frozen.access_key and frozen.secret_key):
                return ()  # a redirect would carry the session token's header

            def credentials() -> tuple[str, str]:
                now = session.get_credentials().get_frozen_credentials()
                if now.token:
                    raise PermissionError("the credentials now carry a session token")
                return now.access_key, now.secret_key

        made = cls(
            endpoint,
            region,
            credentials,
            requester_pays=c.requester_pays,
            pool_size=c.max_pool_connections,
            connect_timeout=c.connect_timeout,
        )
        return (made,)

    def _store(self, bucket: str) -> Any:
        store = self._stores.get(bucket)
        if store is not None:
            return store
        from obstore.store import S3Store

        options: ClientConfig = {
            "allow_http": self._endpoint.startswith("http://"),
            "timeout": f"{TIMEOUT:g}s",
            "connect_timeout": f"{self._connect_timeout:g}s",
            "pool_max_idle_per_host": str(self._pool_size),
        }
        if self._bundle:
            with open(self._bundle, "rb") as pem:
                options["root_certificate"] = pem.read()
        config: StoreConfig = {
            "endpoint": self._endpoint,
            "region": self._region,
            "virtual_hosted_style_request": False,
            "request_payer": self._requester_pays,
        }
        provider = None
        if self._credentials is None:
            config["skip_signature"] = True
        else:
            keys = self._credentials

            def provider() -> S3Credential:
                access, secret = keys()
                return {
                    "access_key_id": access,
                    "secret_access_key": secret,
                    "token": None,
                    # Asked again after a while, so that changed keys are taken up.
                    "expires_at": datetime.now(timezone.utc) + timedelta(minutes=5),
                }

        with self._lock:
            store = self._stores.get(bucket)
            if store is None:
                store = self._stores[bucket] = S3Store(
                    bucket,
                    config=config,
                    client_options=options,
                    retry_config={"max_retries": 0},
                    credential_provider=provider,
                )
        return store

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
        """Fill ``out`` from ``start`` and report the answer, unchecked; None when the
        read must take the provider's own path (too large, too little time left for
        obstore's timeout, or any error of obstore's)."""
        if not 0 < len(out) <= SMALL_READ:
            return None
        if deadline is not None and deadline - time.monotonic() < TIMEOUT:
            return None
        if not usable_here():
            return None
        if not _used_in:
            _used_in.append(os.getpid())
        import obstore
        from obstore.exceptions import BaseError, PreconditionError

        bucket, key = split_bucket_key(path)
        end = start + len(out)
        options: GetOptions = {"range": (start, end)}
        if etag is not None:
            options["if_match"] = f'"{etag}"'
        try:
            result = obstore.get(self._store(bucket), key, options=options)
            body = memoryview(result.bytes())
            first, last = result.range
            meta = result.meta
        except PreconditionError:
            raise StaleIndexError(
                f"{uri} changed since it was indexed (ETag is no longer {etag!r})"
            ) from None
        except (BaseError, OSError, TimeoutError, ValueError):
            return None  # the provider's own path reads it again and reports
        got = min(len(body), len(out))
        out[:got] = body[:got]
        encoding = result.attributes.get("Content-Encoding")
        return RangeAnswer(
            status=206,
            received=got,
            overflow=len(body) > len(out),
            content_range=f"bytes {first}-{last - 1}/{meta['size']}",
            content_length=len(body),
            content_encoding=str(encoding).lower() if encoding else None,
            etag=unquote_etag(meta.get("e_tag")),
        )
