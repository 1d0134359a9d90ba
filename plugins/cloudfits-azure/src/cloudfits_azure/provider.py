"""The ``az://`` provider: range reads, listing, ``head`` and ``put_index`` on Azure Blob."""

from __future__ import annotations

import http.client
import logging
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3
from azure.core import MatchConditions
from azure.core import exceptions as aexc
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from azure.storage.blob import BlobServiceClient, ContentSettings

from cloudfits import AccessDeniedError, CloudFitsError, ObjectInfo, ProviderConfigError
from cloudfits.providers import kit
from cloudfits.providers.answers import RangeAnswer, read_answer, seconds_left
from cloudfits.providers.deadline import deadline_reached, request_deadline, watch_pool_manager
from cloudfits.providers.kit import ErrorKind

from . import AzureConfig

logger = logging.getLogger(__name__)

__all__ = ["AzureProvider", "split_container_blob"]


def split_container_blob(path: str) -> tuple[str, str]:
    """``"container/a/b.fits"`` -> ``("container", "a/b.fits")``."""
    return kit.split_bucket_key(path, "az", bucket="container")


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _parse_connection_string(text: str) -> dict[str, str]:
    parts = (item.split("=", 1) for item in text.split(";") if "=" in item)
    return {key.strip().lower(): value.strip() for key, value in parts}


def _cause(err: Exception) -> Exception | None:
    """The cause to chain to an error of ours: none where its text may hold a SAS.

    The SDK's connection errors quote the request's URL, and a SAS token is in its query.
    """
    if isinstance(err, (aexc.ServiceRequestError, aexc.ServiceResponseError)):
        return None
    return None if "sig=" in str(err) else err


def _account_from_url(url: str) -> str | None:
    """The account of a blob service URL: the host's first label, or an emulator's path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.replace(".", "").isdigit() or host == "localhost":
        return parts.path.strip("/").split("/")[0] or None
    return host.split(".")[0] or None


class AzureProvider(kit.ProviderEdges):
    """Reads ranges of blobs, lists prefixes and writes indexes."""

    name = "azure"
    scheme = "az"

    def __init__(self, config: AzureConfig) -> None:
        self.config = config
        self._credential_kind = "anonymous"

    # ------------------------------------------------------------- client

    @kit.built_once
    def service(self) -> BlobServiceClient:
        """The ``BlobServiceClient``, built on first use."""
        return self._make_service()

    def _transport(self) -> RequestsTransport:
        c = self.config
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=c.max_pool_connections, pool_maxsize=c.max_pool_connections
        )
        # Range reads must have their status line and headers by the read's deadline.
        watch_pool_manager(adapter.poolmanager)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return RequestsTransport(
            session=session, connection_timeout=c.timeout, read_timeout=c.timeout
        )

    def _make_service(self) -> BlobServiceClient:
        c = self.config
        explicit_account = c.account_name or c.account_url
        connection = c.connection_string or (
            None if explicit_account else _env("AZURE_STORAGE_CONNECTION_STRING")
        )
        transport = self._transport()
        if connection and c.anonymous is not True:
            self._credential_kind = "connection string"
            return BlobServiceClient.from_connection_string(connection, transport=transport)
        parsed = _parse_connection_string(connection) if connection else {}
        account = c.account_name or parsed.get("accountname")
        url = c.account_url or parsed.get("blobendpoint")
        if not explicit_account and not parsed:
            account = account or _env("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME")
            url = url or _env("AZURE_STORAGE_ACCOUNT_URL")
        if url is None and account:
            url = f"https://{account}.blob.core.windows.net"
        if url is None:
            raise ProviderConfigError(
                "azure: no storage account: give account_name, account_url or"
                " connection_string, or set AZURE_STORAGE_ACCOUNT or"
                " AZURE_STORAGE_CONNECTION_STRING"
            )
        credential: Any = None
        if c.anonymous is not True:
            sas = c.sas_token or _env("AZURE_STORAGE_SAS_TOKEN")
            key = c.account_key or _env("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY")
            if sas:
                credential, self._credential_kind = sas.lstrip("?"), "SAS token"
            elif key:
                name = account or _account_from_url(url)
                credential = {"account_name": name, "account_key": key}
                self._credential_kind = "account key"
            elif c.anonymous is False:
                raise AccessDeniedError(
                    f"azure: no credentials found for {url}",
                    hint="set AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or"
                    " AZURE_STORAGE_CONNECTION_STRING, or pass anonymous=True for a public"
                    " container",
                )
            else:
                logger.info("azure: no credentials found; az:// requests are anonymous")
        return BlobServiceClient(url, credential=credential, transport=transport)

    def _blob(self, path: str) -> Any:
        container, blob = split_container_blob(path)
        return self.service.get_blob_client(container, blob)

    # -------------------------------------------------------------- errors

    def _error(self, err: Exception, path: str, what: str) -> CloudFitsError:
        status = getattr(err, "status_code", None)
        code = getattr(err, "error_code", None) or status or type(err).__name__
        kind = kit.kind_of_status(status)
        if isinstance(err, aexc.ResourceNotFoundError):
            kind = ErrorKind.NOT_FOUND
        elif isinstance(err, aexc.ResourceModifiedError):
            kind = ErrorKind.STALE
        elif isinstance(err, aexc.ClientAuthenticationError):
            kind = ErrorKind.DENIED
        elif isinstance(err, (aexc.ServiceRequestError, aexc.ServiceResponseError)):
            detail = f"connection failed ({type(err).__name__})"
            return self.error(ErrorKind.TRANSIENT, what, path, detail)
        return self._status_error(kind, code, path, what)

    def _status_error(self, kind: ErrorKind, code: object, path: str, what: str) -> CloudFitsError:
        hint = ""
        if kind is ErrorKind.DENIED and self._credential_kind == "anonymous":
            hint = (
                "no credentials were sent, and the container is not public: set"
                " AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or"
                " AZURE_STORAGE_CONNECTION_STRING"
            )
        detail = {
            ErrorKind.NOT_FOUND: f"not found ({code})",
            ErrorKind.STALE: f"the object changed since it was indexed ({code})",
            ErrorKind.DENIED: f"access denied ({code}; credentials used: {self._credential_kind})",
        }.get(kind, str(code))
        return self.error(kind, what, path, detail, hint)

    # ----------------------------------------------------------- provider

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        """Bytes ``[start, end)`` of the blob (fewer at its end).

        With ``etag``, only of the version with that entity tag (the store checks
        ``If-Match``); a changed blob raises `cloudfits.StaleIndexError`.
        """
        kit.check_range(start, end, self.uri(path))
        what = kit.reading(start, end)
        if end == start:
            if etag is not None and self.head(path).etag != etag:
                raise self._error(aexc.ResourceModifiedError("etag"), path, what)
            return b""
        conditions: dict[str, Any] = {}
        if etag is not None:
            conditions = {"etag": f'"{etag}"', "match_condition": MatchConditions.IfNotModified}
        try:
            downloader = self._blob(path).download_blob(
                offset=start, length=end - start, max_concurrency=1, **conditions
            )
            data: bytes = downloader.readall()
        except aexc.HttpResponseError as err:
            if err.status_code == 416:
                if etag is not None and self.head(path).etag != etag:
                    raise self._error(aexc.ResourceModifiedError("etag"), path, what) from _cause(
                        err
                    )
                return b""
            raise self._error(err, path, what) from _cause(err)
        except aexc.AzureError as err:
            raise self._error(err, path, what) from _cause(err)
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

        One ``GET`` through the SDK's pipeline (which signs it with the key, or carries
        the SAS), with ``x-ms-range``, ``Accept-Encoding: identity`` and, with ``etag``,
        ``If-Match``; the SDK's own retries are off, for the range engine retries and
        checks the `RangeAnswer` (`cloudfits.fetch.checks`). The body is read one byte
        past the range, without decoding, by ``deadline``.
        """
        kit.check_start(start, self.uri(path))
        end = start + len(out)
        what = kit.reading(start, end)
        blob = self._blob(path)
        headers = {
            "x-ms-range": f"bytes={start}-{max(start, end - 1)}",
            "x-ms-version": blob.api_version,
            "Accept-Encoding": "identity",
        }
        if etag is not None:
            headers["If-Match"] = f'"{etag}"'
        timeout = seconds_left(deadline, self.config.timeout)
        cut = False
        try:
            with request_deadline(deadline):
                try:
                    # The blob client has no public call for a request of one's own;
                    # its generated client's is the one the SDK's operations go through.
                    answer = blob._client._send_request(
                        HttpRequest("GET", blob.url, headers=headers),
                        stream=True,
                        retry_total=0,
                        connection_timeout=timeout,
                        read_timeout=timeout,
                    )
                finally:
                    cut = deadline_reached(deadline)
        except (aexc.AzureError, urllib3.exceptions.HTTPError) as err:
            # The causes' text holds the request's URL, and a SAS with it.
            if cut:
                detail = "slower than the read deadline allows"
                raise self.error(ErrorKind.TRANSIENT, what, path, detail) from None
            if isinstance(err, aexc.AzureError):
                raise self._error(err, path, what) from None
            raise self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__) from None
        response: requests.Response = answer.internal_response
        status = response.status_code
        if status >= 400 and status != 416:
            response.close()
            code = response.headers.get("x-ms-error-code") or status
            raise self._status_error(kit.kind_of_status(status), code, path, what)
        shown = f"azure: {what} {self.uri(path)}"
        try:
            return read_answer(
                response.raw, response.headers, start, out, deadline=deadline, what=shown
            )
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as err:
            raise self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__) from None
        finally:
            response.close()

    def head(self, path: str) -> ObjectInfo:
        """Size, ETag and modification time of one blob."""
        try:
            props = self._blob(path).get_blob_properties()
        except aexc.AzureError as err:
            raise self._error(err, path, "describing") from _cause(err)
        return _info(split_container_blob(path)[0], props)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every blob whose path starts with ``prefix``, in path order."""
        container, blob_prefix = split_container_blob(prefix)
        client = self.service.get_container_client(container)
        try:
            found = [
                _info(container, props)
                for props in client.list_blobs(
                    name_starts_with=blob_prefix or None,
                    results_per_page=self.config.list_page_size,
                )
            ]
        except aexc.AzureError as err:
            raise self._error(err, prefix, "listing") from _cause(err)
        yield from kit.sorted_listing(found)

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` at ``path``, replacing what is there."""
        media_type = kit.index_content_type(path, content_type)
        try:
            self._blob(path).upload_blob(
                bytes(data),
                overwrite=True,
                content_settings=ContentSettings(content_type=media_type),
            )
        except aexc.AzureError as err:
            raise self._error(err, path, "writing") from _cause(err)


def _info(container: str, props: Any) -> ObjectInfo:
    modified = props.last_modified
    return ObjectInfo(
        f"{container}/{props.name}",
        int(props.size or 0),
        str(props.etag).strip('"') if props.etag else None,
        modified.isoformat() if modified is not None else None,
    )
