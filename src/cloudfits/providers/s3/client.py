"""The S3 provider: range reads, listing and index writes through boto3."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.session
from botocore import UNSIGNED

from ...errors import CloudFitsError
from ..answers import RangeAnswer, header_int, read_body, read_whole_into, unquote_etag
from ..base import ObjectInfo, check_content_range
from ..kit import (
    ErrorKind,
    ProviderEdges,
    built_once,
    check_range,
    check_start,
    copy_into,
    index_content_type,
    kind_of_status,
    read_body_into,
    reading,
    sorted_listing,
)
from . import S3Config, split_bucket_key
from .native import NativeReads
from .presigned import URL_SECONDS, BucketUrls, PresignedReads
from .wire import (
    DENIED,
    NOT_FOUND,
    STALE,
    THROTTLED,
    TRANSIENT_BOTOCORE,
    TRANSIENT_STREAM,
    add_requester_pays,
    ask_identity,
    denied_hint,
    listing_pages,
    parse_timestamp,
    range_request,
)

__all__ = ["S3Provider"]
logger = logging.getLogger(__name__)


class S3Provider(ProviderEdges):
    """Reads ranges of S3 objects, lists prefixes and writes indexes."""

    def __init__(self, config: S3Config, *, name: str = "s3", uri_prefix: str = "s3://") -> None:
        self.config = config
        self.name = self.scheme = name
        self._uri_prefix = uri_prefix
        self._session: Any = None
        self._fast: PresignedReads | None = None
        self._bucket_urls: dict[str, BucketUrls] = {}
        self._unsigned = config.anonymous is True
        if config.presigned_reads:
            signed = {"x-amz-request-payer": "requester"} if config.requester_pays else {}
            self._fast = PresignedReads(
                self._presign,
                signed,
                pool_size=config.max_pool_connections,
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
            )

    @built_once
    def client(self) -> Any:
        """The boto3 client, built once; requester-pays is set on it here and only here."""
        return self._make_client()

    def _make_client(self) -> Any:
        c = self.config
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=parse_timestamp
        )
        session = boto3.session.Session(profile_name=c.profile, botocore_session=core)
        self._session = session
        region = c.region or session.region_name or "us-east-1"
        options: dict[str, Any] = {
            "max_pool_connections": c.max_pool_connections,
            "connect_timeout": c.connect_timeout,
            "read_timeout": c.read_timeout,
            "retries": {"total_max_attempts": c.max_attempts, "mode": "standard"},
        }
        # Signature version 4 for requests and presigned URLs alike (boto3 would
        # presign with the legacy version 2 for some endpoints).
        self._unsigned = not self._signs(session)
        options["signature_version"] = UNSIGNED if self._unsigned else "s3v4"
        client = session.client(
            "s3",
            region_name=region,
            endpoint_url=c.endpoint_url,
            config=botocore.config.Config(**options),
        )
        if c.requester_pays:
            client.meta.events.register("before-sign.s3", add_requester_pays)
        client.meta.events.register("before-sign.s3.GetObject", ask_identity)
        return client

    @built_once
    def _native(self) -> tuple[NativeReads, ...]:
        """The obstore reads of small ranges, where they can be used (see `read_small`)."""
        return NativeReads.of_provider(self)

    def read_small(
        self,
        path: str,
        start: int,
        out: memoryview,
        *,
        etag: str | None = None,
        deadline: float | None = None,
    ) -> RangeAnswer | None:
        """`read_range` through obstore (`cloudfits.providers.s3.native`) for a small read;
        None when the read must take `read_range`."""
        for native in self._native:
            return native.read_range(
                path, start, out, etag=etag, uri=self.uri(path), deadline=deadline
            )
        return None

    def _signs(self, session: Any) -> bool:
        """Whether requests are signed: ``anonymous="auto"`` asks botocore for credentials."""
        c = self.config
        if c.anonymous != "auto":
            return not c.anonymous
        if c.requester_pays:
            return True  # requester-pays bills the signer: unsigned cannot work
        try:
            found = session.get_credentials() is not None
        except botocore.exceptions.BotoCoreError:
            found = False
        if not found:
            logger.info(
                "%s: no AWS credentials found; sending unsigned requests (public data only)",
                self.scheme,
            )
        return found

    def _presign(self, path: str) -> str | None:
        bucket, key = split_bucket_key(path)
        signer = self._bucket_urls.get(bucket)
        try:
            if signer is not None:
                return signer.url(key)
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=URL_SECONDS
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            self._bucket_urls.pop(bucket, None)
            return None  # the botocore path reports the problem
        made = BucketUrls.from_first(
            url, key, self._session.get_credentials, self.client.meta.region_name
        )
        if made is not None:
            self._bucket_urls[bucket] = made
        return url

    def uri(self, path: str) -> str:
        return self._uri_prefix + path

    def _secrets(self) -> list[str]:
        """The credentials in use, so that no message can repeat them."""
        if self._session is None:
            return []
        try:
            creds = self._session.get_credentials()
            frozen = creds.get_frozen_credentials() if creds is not None else None
        except botocore.exceptions.BotoCoreError:
            return []
        if frozen is None:
            return []
        return [v for v in (frozen.access_key, frozen.secret_key, frozen.token) if v]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _error(self, err: Exception, path: str, what: str) -> CloudFitsError:
        found = self._classify(err, path, what)
        message = found.args[0] if found.args else ""
        hint = self._scrub(found.hint)
        return type(found)(self._scrub(str(message)), hint=hint)

    def _classify(self, err: Exception, path: str, what: str) -> CloudFitsError:
        if isinstance(err, botocore.exceptions.EndpointConnectionError):
            # botocore has already retried the connection: another round would only
            # make an unreachable (or mistyped) endpoint take a minute to report.
            endpoint = err.kwargs.get("endpoint_url") or self.config.endpoint_url or "AWS"
            return self.error(
                ErrorKind.OTHER,
                what,
                path,
                f"cannot connect to the endpoint {endpoint}",
                "check endpoint_url=URL (or AWS_ENDPOINT_URL) and the network",
            )
        if isinstance(err, (*TRANSIENT_BOTOCORE, *TRANSIENT_STREAM)):
            return self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__)
        if isinstance(err, botocore.exceptions.NoCredentialsError):
            public = (
                "" if self.config.requester_pays else ", or for a public bucket pass anonymous=True"
            )
            hint = (
                "configure AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,"
                f" or profile=NAME){public}"
            )
            return self.error(ErrorKind.DENIED, what, path, "no credentials found", hint)
        if isinstance(err, botocore.exceptions.ClientError):
            code = str(err.response.get("Error", {}).get("Code", ""))
            status = str(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            kind = kind_of_status(status)
            if code in STALE:
                kind = ErrorKind.STALE
            elif code in THROTTLED:
                kind = ErrorKind.TRANSIENT
            elif code in NOT_FOUND:
                kind = ErrorKind.NOT_FOUND
            elif code in DENIED:
                kind = ErrorKind.DENIED
            if kind is ErrorKind.STALE:
                return self.error(kind, what, path)
            if kind is ErrorKind.DENIED:
                detail = f"access denied ({code or 'HTTP 403'})"
                hint = denied_hint(code, self._unsigned, self.config)
                return self.error(kind, what, path, detail, hint)
            if kind is ErrorKind.NOT_FOUND:
                return self.error(kind, what, path, f"not found ({code})")
            message = str(err.response.get("Error", {}).get("Message", ""))
            detail = f"{code or status} (HTTP {status})"
            if kind is ErrorKind.OTHER and message:
                detail += f" {message}"
            return self.error(kind, what, path, detail)
        if isinstance(err, OSError):
            return self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__)
        return self.error(ErrorKind.OTHER, what, path, f"{type(err).__name__}: {err}")

    def _check_etag(self, response: Any, path: str, etag: str | None) -> None:
        found = str(response.get("ETag", "")).strip('"')
        if etag is not None and found and found != etag:
            # A store that ignores If-Match still names the version it sent.
            raise self.error(
                ErrorKind.STALE,
                "reading",
                path,
                f"the object changed since it was indexed (ETag {found}, the index has"
                f" {etag}); rebuild the index",
            )

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        check_range(start, end, self.uri(path))
        if end == start:
            return b""
        what = reading(start, end)
        request = range_request(path, start, end, etag)
        try:
            response = self.client.get_object(**request)
            body = response["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        except botocore.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise self._error(err, path, what) from err
        except (botocore.exceptions.BotoCoreError, OSError, *TRANSIENT_STREAM) as err:
            raise self._error(err, path, what) from err
        self._check_etag(response, path, etag)
        content_range = response.get("ContentRange")
        if content_range:
            check_content_range(content_range, start, end, len(data), uri=self.uri(path))
        elif start > 0 or len(data) > end - start:
            # The whole object came back (the store ignored the range).
            data = data[start:end]
        return data

    def get_range_into(
        self, path: str, start: int, out: memoryview, *, etag: str | None = None
    ) -> int:
        """Read bytes from ``start`` straight into ``out``; return how many were written.

        The body is read from the socket into ``out`` without an intermediate copy.
        With ``etag``, the read is conditional (``If-Match``) and a changed object
        raises `~cloudfits.errors.StaleIndexError`.
        """
        check_start(start, self.uri(path))
        end = start + len(out)
        if end == start:
            return 0
        if self._fast is not None:
            got = self._fast.read_into(path, start, out, etag=etag, uri=self.uri(path))
            if got is not None:
                return got
        what = reading(start, end)
        request = range_request(path, start, end, etag)
        try:
            response = self.client.get_object(**request)
            body = response["Body"]
            try:
                self._check_etag(response, path, etag)
                content_range = response.get("ContentRange")
                if content_range:
                    raw = getattr(body, "_raw_stream", None)
                    got = read_body_into(raw, out) if raw is not None else None
                    if got is None:
                        got = copy_into(body.read(), out)
                    check_content_range(content_range, start, end, got, uri=self.uri(path))
                    return got
                # The whole object came back (the store ignored the range).
                return copy_into(body.read()[start:end], out)
            finally:
                body.close()
        except botocore.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code == "InvalidRange":
                return 0
            raise self._error(err, path, what) from err
        except (botocore.exceptions.BotoCoreError, OSError, *TRANSIENT_STREAM) as err:
            raise self._error(err, path, what) from err

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

        Presigned URLs first (where enabled), else botocore; the range engine checks
        the `RangeAnswer` (`cloudfits.fetch.checks`).
        """
        end = start + len(out)
        uri = self.uri(path)
        if self._fast is not None:
            fast = self._fast.read_range(path, start, out, etag=etag, uri=uri, deadline=deadline)
            if fast is not None:
                return fast
        what = reading(start, end)
        request = range_request(path, start, end, etag)
        try:
            response = self.client.get_object(**request)
        except botocore.exceptions.ClientError as err:
            meta = err.response.get("ResponseMetadata", {})
            if err.response.get("Error", {}).get("Code") == "InvalidRange":
                found = meta.get("HTTPHeaders", {})
                return RangeAnswer(416, 0, content_range=found.get("content-range"))
            raise self._error(err, path, what) from err
        except (botocore.exceptions.BotoCoreError, OSError, *TRANSIENT_STREAM) as err:
            raise self._error(err, path, what) from err
        body = response["Body"]
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        try:
            raw = getattr(body, "_raw_stream", None)
            if raw is None:
                raise self.error(ErrorKind.OTHER, what, path, "no body stream")
            got, more = 0, False
            if status == 206:
                got, more = read_body(raw, out, deadline=deadline, what=f"{what} {uri}")
            elif status == 200:
                got, more = read_whole_into(
                    raw, start, out, deadline=deadline, what=f"{what} {uri}"
                )
            return RangeAnswer(
                status=status,
                received=got,
                overflow=more,
                content_range=response.get("ContentRange"),
                content_length=header_int(response.get("ContentLength")),
                content_encoding=response.get("ContentEncoding"),
                etag=unquote_etag(response.get("ETag")),
            )
        except (botocore.exceptions.BotoCoreError, OSError, *TRANSIENT_STREAM) as err:
            raise self._error(err, path, what) from err
        finally:
            body.close()

    def head(self, path: str) -> ObjectInfo:
        bucket, key = split_bucket_key(path)
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as err:
            raise self._error(self._with_code(err, bucket, key), path, "describing") from err
        except botocore.exceptions.BotoCoreError as err:
            raise self._error(err, path, "describing") from err
        modified = response.get("LastModified")
        return ObjectInfo(
            path,
            int(response["ContentLength"]),
            str(response.get("ETag", "")).strip('"') or None,
            modified.isoformat() if modified is not None else None,
        )

    def _with_code(
        self, err: botocore.exceptions.ClientError, bucket: str, key: str
    ) -> botocore.exceptions.ClientError:
        """A HEAD refusal has no body, so no AWS error code: a one-byte GET tells it."""
        if str(err.response.get("Error", {}).get("Code", "")) not in ("403", "Forbidden"):
            return err
        try:
            self.client.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")["Body"].close()
        except botocore.exceptions.ClientError as found:
            if found.response.get("Error", {}).get("Code") not in (None, "", "403"):
                return found
        except (botocore.exceptions.BotoCoreError, OSError):
            pass
        return err

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        bucket, key_prefix = split_bucket_key(prefix)
        found: list[ObjectInfo] = []
        try:
            for page in listing_pages(self.client, bucket, key_prefix):
                for item in page.get("Contents", []):
                    modified = item.get("LastModified")
                    found.append(
                        ObjectInfo(
                            f"{bucket}/{item['Key']}",
                            int(item["Size"]),
                            str(item.get("ETag", "")).strip('"') or None,
                            modified.isoformat() if modified is not None else None,
                        )
                    )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as err:
            raise self._error(err, prefix, "listing") from err
        yield from sorted_listing(found)

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        bucket, key = split_bucket_key(path)
        media_type = index_content_type(key, content_type)
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=media_type)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as err:
            raise self._error(err, path, "writing") from err
