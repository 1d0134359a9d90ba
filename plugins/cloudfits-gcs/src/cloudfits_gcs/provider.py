"""The ``gs://`` provider: range reads, listing, ``head`` and ``put_index`` on GCS."""

from __future__ import annotations

import dataclasses
import http.client
import logging
from collections.abc import Iterator
from typing import Any

import google.auth.exceptions
import google.oauth2.credentials
import requests.adapters
import urllib3
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cloudfits import AccessDeniedError, CloudFitsError, ObjectInfo
from cloudfits.providers import kit
from cloudfits.providers.answers import RangeAnswer, read_answer, seconds_left
from cloudfits.providers.deadline import deadline_reached, request_deadline, watch_pool_manager
from cloudfits.providers.kit import ErrorKind

from . import GCSConfig

__all__ = ["GCSProvider", "split_bucket_key"]

logger = logging.getLogger(__name__)


def split_bucket_key(path: str) -> tuple[str, str]:
    """``"bucket/a/b.fits"`` -> ``("bucket", "a/b.fits")``."""
    return kit.split_bucket_key(path, "gs")


class GCSProvider(kit.ProviderEdges):
    """Reads ranges of GCS objects, lists prefixes and writes indexes."""

    name = "gcs"
    scheme = "gs"

    def __init__(self, config: GCSConfig) -> None:
        self.config = config
        self._anonymous = config.anonymous is True

    # ------------------------------------------------------------- client

    @kit.built_once
    def client(self) -> Any:
        """The ``google.cloud.storage.Client``, built on first use."""
        return self._make_client()

    def _make_client(self) -> Any:
        c = self.config
        options = ClientOptions(api_endpoint=c.endpoint_url) if c.endpoint_url else None
        client: Any = None
        if c.token is not None and c.anonymous is not True:
            credentials = google.oauth2.credentials.Credentials(token=c.token)  # type: ignore[no-untyped-call]
            client = storage.Client(
                project=c.project or "unknown",
                credentials=credentials,
                client_options=options,
            )
        elif c.anonymous is not True:
            try:
                client = storage.Client(project=c.project, client_options=options)
            except google.auth.exceptions.DefaultCredentialsError as err:
                if c.anonymous is False:
                    raise AccessDeniedError(
                        "gcs: no Google credentials found (Application Default Credentials)",
                        hint="set GOOGLE_APPLICATION_CREDENTIALS or run 'gcloud auth"
                        " application-default login', or pass anonymous=True for a public"
                        " bucket",
                    ) from err
                logger.info("gcs: no Google credentials found; gs:// requests are anonymous")
        if client is None:
            self._anonymous = True
            client = storage.Client(
                project=c.project or "anonymous",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options=options,
            )
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=c.max_pool_connections, pool_maxsize=c.max_pool_connections
        )
        # Range reads must have their status line and headers by the read's deadline.
        watch_pool_manager(adapter.poolmanager)
        for prefix in ("http://", "https://"):
            client._http.mount(prefix, adapter)
        # Newer SDKs fetch bucket metadata in the background for tracing: an extra
        # request per bucket, without userProject (refused on requester-pays buckets).
        if getattr(client, "_bucket_metadata_cache", None) is not None:
            client._bucket_metadata_cache = None
        return client

    def _blob(self, path: str, generation: int | None = None) -> Any:
        bucket, key = split_bucket_key(path)
        owner = self.client.bucket(bucket, user_project=self.config.billing_project)
        return owner.blob(key, generation=generation)

    # -------------------------------------------------------------- errors

    def _error(self, err: Exception, path: str, what: str) -> CloudFitsError:
        if isinstance(err, gexc.PreconditionFailed):
            return self.error(ErrorKind.STALE, what, path)
        if isinstance(err, (gexc.Forbidden, gexc.Unauthorized)) or (
            isinstance(err, gexc.BadRequest) and "requester pays" in str(err).lower()
        ):
            hints = []
            if self._anonymous:
                hints.append(
                    "no credentials were sent: for a private bucket set"
                    " GOOGLE_APPLICATION_CREDENTIALS (or run 'gcloud auth application-default"
                    " login')"
                )
            if self.config.billing_project is None:
                hints.append(
                    "if the bucket is requester-pays, pass billing_project=PROJECT to accept"
                    " its charges"
                )
            detail = f"access denied ({err.code})"
            return self.error(ErrorKind.DENIED, what, path, detail, "; ".join(hints))
        if isinstance(err, google.auth.exceptions.GoogleAuthError):
            return self.error(ErrorKind.DENIED, what, path, f"{type(err).__name__}: {err}")
        if isinstance(err, gexc.GoogleAPICallError):
            kind = kit.kind_of_status(err.code)
            detail = "not found" if kind is ErrorKind.NOT_FOUND else f"{err.code}: {err.message}"
            return self.error(kind, what, path, detail)
        if isinstance(err, requests.RequestException):
            return self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__)
        return self.error(ErrorKind.OTHER, what, path, f"{type(err).__name__}: {err}")

    # ----------------------------------------------------------- provider

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        """Bytes ``[start, end)`` of the object (fewer at its end).

        With ``etag`` (for GCS, the object's generation, as `head` reports it) the bytes
        come from that generation only: the store serves exactly that version, and when
        it is gone `cloudfits.StaleIndexError` is raised.
        """
        kit.check_range(start, end, self.uri(path))
        what = kit.reading(start, end)
        generation = _generation(etag, path)
        if end == start:
            if etag is not None:
                self._check_generation(path, etag, what)
            return b""
        blob = self._blob(path, generation)
        try:
            data: bytes = blob.download_as_bytes(
                start=start,
                end=end - 1,
                raw_download=True,
                checksum=None,
                timeout=self.config.timeout,
            )
        except gexc.RequestRangeNotSatisfiable:
            if etag is not None:
                self._check_generation(path, etag, what)
            return b""
        except gexc.NotFound as err:
            if etag is not None:
                self._check_generation(path, etag, what)
            raise self._error(err, path, what) from err
        except (gexc.GoogleAPICallError, google.auth.exceptions.GoogleAuthError) as err:
            raise self._error(err, path, what) from err
        except requests.RequestException as err:
            raise self._error(err, path, what) from err
        if etag is not None:
            self._check_served_generation(path, etag, what, blob)
        self.check_length(path, start, end, len(data))
        return data

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

        One media download on the client's authorized session, with ``Range``,
        ``Accept-Encoding: identity`` and, with ``etag``, the generation asked for.
        The answer's version is its ``x-goog-generation`` header; where the store sends
        none, a pinned read is compared with the live object's generation after the
        body (generations only grow). The range engine checks the `RangeAnswer`
        (`cloudfits.fetch.checks`); the body is read one byte past the range, without
        decoding, by ``deadline``.
        """
        kit.check_start(start, self.uri(path))
        end = start + len(out)
        what = kit.reading(start, end)
        blob = self._blob(path, _generation(etag, path))
        headers = {"Range": f"bytes={start}-{max(start, end - 1)}", "Accept-Encoding": "identity"}
        timeout = seconds_left(deadline, self.config.timeout)
        # The SDK's downloads read and check the body themselves: the request is made
        # on its session, to the URL its downloads use.
        url = blob._get_download_url(self.client)
        cut = False
        try:
            with request_deadline(deadline):
                try:
                    response = self.client._http.request(
                        "GET", url, headers=headers, stream=True, timeout=(timeout, timeout)
                    )
                finally:
                    cut = deadline_reached(deadline)
        except google.auth.exceptions.GoogleAuthError as err:
            raise self._error(err, path, what) from err
        except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
            if cut:
                detail = "slower than the read deadline allows"
                raise self.error(ErrorKind.TRANSIENT, what, path, detail) from None
            if isinstance(err, urllib3.exceptions.HTTPError):
                raise self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__) from None
            raise self._error(err, path, what) from None  # its text holds the URL
        status = response.status_code
        if status >= 400 and status != 416:
            response.close()
            if status == 404 and etag is not None:
                self._check_generation(path, etag, what)
            error = gexc.from_http_status(status, f"HTTP {status}")  # type: ignore[no-untyped-call]
            raise self._error(error, path, what)
        shown = f"gcs: {what} {self.uri(path)}"
        try:
            answer = read_answer(
                response.raw,
                response.headers,
                start,
                out,
                deadline=deadline,
                what=shown,
                version_header="x-goog-generation",
            )
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as err:
            raise self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__) from None
        finally:
            response.close()
        if etag is not None and answer.etag is None and answer.status in (200, 206):
            self._check_generation(path, etag, what)
            answer = dataclasses.replace(answer, etag=etag)
        return answer

    def _check_served_generation(self, path: str, etag: str, what: str, blob: Any) -> None:
        """Raise StaleIndexError unless the bytes just read are of generation ``etag``.

        The download asked for that generation, but a server that ignores the request
        would serve the live object; so the generation the response reports (its
        ``x-goog-generation`` header, which the SDK puts in ``blob.generation``) must be
        ``etag``. A response without one is checked against the live object's
        generation instead: generations only grow, so if the object still has
        generation ``etag`` after the read, it had it during the read.
        """
        served = blob.generation
        if served is None:
            self._check_generation(path, etag, what)
        elif str(served) != etag:
            raise self.error(
                ErrorKind.STALE,
                what,
                path,
                "the object changed since it was indexed"
                f" (generation {etag} was asked for, generation {served} was served)",
            )

    def _check_generation(self, path: str, etag: str, what: str) -> None:
        """Raise StaleIndexError unless the live object has generation ``etag``."""
        live = self.head(path).etag
        if live != etag:
            raise self.error(
                ErrorKind.STALE,
                what,
                path,
                "the object changed since it was indexed"
                f" (generation {etag} is gone; the object now has generation {live})",
            )

    def head(self, path: str) -> ObjectInfo:
        """Size, ETag and modification time of one object."""
        bucket, _ = split_bucket_key(path)
        blob = self._blob(path)
        try:
            blob.reload(projection="noAcl", timeout=self.config.timeout)
        except (gexc.GoogleAPICallError, google.auth.exceptions.GoogleAuthError) as err:
            raise self._error(err, path, "describing") from err
        return _info(bucket, blob)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose path starts with ``prefix``, in path order."""
        bucket, key_prefix = split_bucket_key(prefix)
        try:
            found = [
                _info(bucket, blob)
                for blob in self.client.list_blobs(
                    self.client.bucket(bucket, user_project=self.config.billing_project),
                    prefix=key_prefix or None,
                    page_size=self.config.list_page_size,
                    timeout=self.config.timeout,
                )
            ]
        except (gexc.GoogleAPICallError, google.auth.exceptions.GoogleAuthError) as err:
            raise self._error(err, prefix, "listing") from err
        yield from kit.sorted_listing(found)

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` at ``path``, replacing what is there."""
        media_type = kit.index_content_type(path, content_type)
        try:
            self._blob(path).upload_from_string(
                bytes(data), content_type=media_type, timeout=self.config.timeout
            )
        except (gexc.GoogleAPICallError, google.auth.exceptions.GoogleAuthError) as err:
            raise self._error(err, path, "writing") from err


def _generation(etag: str | None, path: str) -> int | None:
    if etag is None:
        return None
    if not etag.isdigit():
        raise kit.error_for(
            ErrorKind.STALE,
            "gcs",
            "reading",
            f"gs://{path}",
            f"{etag!r} is not a GCS generation; re-index the object",
        )
    return int(etag)


def _info(bucket: str, blob: Any) -> ObjectInfo:
    """What cloudfits records of a blob; its entity tag is the generation.

    The generation changes exactly when the content does (metadata edits leave it) and
    GCS serves a given generation on request, which makes conditional reads exact.
    """
    updated = blob.updated
    return ObjectInfo(
        f"{bucket}/{blob.name}",
        int(blob.size or 0),
        str(blob.generation) if blob.generation is not None else None,
        updated.isoformat() if updated is not None else None,
    )
