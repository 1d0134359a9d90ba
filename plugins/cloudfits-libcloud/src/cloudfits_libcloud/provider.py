"""The ``libcloud+DRIVER://`` provider: any Libcloud storage driver behind the provider contract."""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.storage.base import Container, Object, StorageDriver
from libcloud.storage.providers import get_driver
from libcloud.storage.types import (
    ContainerDoesNotExistError,
    ObjectDoesNotExistError,
)

from cloudfits import CloudFitsError, ObjectInfo, ProviderConfigError
from cloudfits.providers import kit
from cloudfits.providers.answers import RangeAnswer, read_answer, seconds_left
from cloudfits.providers.deadline import deadline_reached, request_deadline, watch_pool_manager
from cloudfits.providers.kit import ErrorKind

from . import LibcloudConfig

__all__ = ["CheckedLibcloudProvider", "LibcloudProvider", "make_provider"]

#: Drivers that speak S3 and take AWS_* credentials and AWS_ENDPOINT_URL by default.
_S3_FAMILY = ("s3", "minio", "s3_rgw", "digitalocean_spaces", "scaleway", "ovh", "wasabi")
_ENV: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # driver prefix: (key variables, secret variables, endpoint variables)
    "s3": (("AWS_ACCESS_KEY_ID",), ("AWS_SECRET_ACCESS_KEY",), ("AWS_ENDPOINT_URL",)),
    "azure_blobs": (
        ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"),
        ("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"),
        (),
    ),
}


def _env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _split(path: str, driver: str) -> tuple[str, str]:
    return kit.split_bucket_key(path, f"libcloud+{driver}", bucket="container")


class LibcloudProvider(kit.ProviderEdges):
    """Reads ranges through a Libcloud storage driver, lists and writes indexes.

    Libcloud drivers keep per-request state on their connection, so each thread
    gets its own driver instance.
    """

    def __init__(self, config: LibcloudConfig, driver: str) -> None:
        self.config = config
        self.driver_name = driver.lower().replace("-", "_")
        self.name = self.scheme = f"libcloud+{self.driver_name}"
        try:
            self._driver_class: type[StorageDriver] = get_driver(self.driver_name)
        except AttributeError as err:
            raise ProviderConfigError(
                f"{self.scheme}: libcloud has no storage driver {driver!r}"
            ) from err
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.driver_name!r}, {self.config!r})"

    # ------------------------------------------------------------- driver

    def _driver_arguments(self) -> tuple[list[Any], dict[str, Any]]:
        c = self.config
        family = "s3" if self.driver_name in _S3_FAMILY else self.driver_name
        key_vars, secret_vars, endpoint_vars = _ENV.get(family, ((), (), ()))
        key = c.key or _env(("CLOUDFITS_LIBCLOUD_KEY", *key_vars))
        secret = c.secret or _env(("CLOUDFITS_LIBCLOUD_SECRET", *secret_vars))
        options: dict[str, Any] = {}
        endpoint = c.endpoint_url or _env(endpoint_vars)
        if endpoint:
            parts = urlsplit(endpoint)
            if not parts.hostname:
                raise ProviderConfigError(f"{self.scheme}: endpoint_url {endpoint!r} has no host")
            options["host"] = parts.hostname
            options["secure"] = parts.scheme != "http"
            if parts.port:
                options["port"] = parts.port
            account = parts.path.strip("/")
            if account and self.driver_name == "azure_blobs":
                options["account_prefix"] = account
        if c.region:
            options["region"] = c.region
        options.update(dict(c.driver_options))
        return [key, secret], options

    @property
    def driver(self) -> StorageDriver:
        """This thread's driver instance."""
        driver: StorageDriver | None = getattr(self._local, "driver", None)
        if driver is None:
            args, options = self._driver_arguments()
            try:
                driver = self._driver_class(*args, **options)
            except (TypeError, ValueError) as err:
                raise ProviderConfigError(f"{self.scheme}: {err}") from err
            self._local.driver = driver
        return driver

    def _object(self, path: str) -> Object:
        """An ``Object`` to read from, made without a request."""
        container_name, key = _split(path, self.driver_name)
        driver = self.driver
        container = Container(name=container_name, extra={}, driver=driver)
        return Object(
            name=key, size=0, hash="", extra={}, meta_data={}, container=container, driver=driver
        )

    # -------------------------------------------------------------- errors

    def _error(self, err: Exception, path: str, what: str) -> CloudFitsError:
        if isinstance(err, (ObjectDoesNotExistError, ContainerDoesNotExistError)):
            return self.error(ErrorKind.NOT_FOUND, what, path, "not found")
        if isinstance(err, requests.RequestException):
            return self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__)
        text = str(getattr(err, "value", "") or err)
        if isinstance(err, InvalidCredsError) or "403" in text or "401" in text:
            return self.error(
                ErrorKind.DENIED,
                what,
                path,
                "access denied",
                "check the key and secret (CLOUDFITS_LIBCLOUD_KEY / CLOUDFITS_LIBCLOUD_SECRET)",
            )
        if "404" in text or "NoSuchBucket" in text or "ContainerNotFound" in text:
            return self.error(ErrorKind.NOT_FOUND, what, path, "not found")
        return self.error(ErrorKind.OTHER, what, path, f"{type(err).__name__}: {text[:200]}")

    # ----------------------------------------------------------- provider

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        """Bytes ``[start, end)`` through the driver's range download.

        Libcloud has no conditional read, so with ``etag`` the object's entity tag is
        compared once (by `head`) before reading; a changed object raises
        `cloudfits.StaleIndexError`.
        """
        kit.check_range(start, end, self.uri(path))
        what = kit.reading(start, end)
        if etag is not None and self.head(path).etag != etag:
            raise self.error(ErrorKind.STALE, what, path)
        if end == start:
            return b""
        obj = self._object(path)
        try:
            stream = self.driver.download_object_range_as_stream(obj, start, end)
            data = b"".join(stream)
        except (ObjectDoesNotExistError, ContainerDoesNotExistError, InvalidCredsError) as err:
            raise self._error(err, path, what) from err
        except LibcloudError as err:
            if "416" in str(err.value):  # at or after the end of the object
                return b""
            raise self._error(err, path, what) from err
        except requests.RequestException as err:
            raise self._error(err, path, what) from err
        self.check_length(path, start, end, len(data))
        return data

    def head(self, path: str) -> ObjectInfo:
        """Size, entity tag and modification time of one object."""
        container, key = _split(path, self.driver_name)
        try:
            obj = self.driver.get_object(container, key)
        except (LibcloudError, requests.RequestException) as err:
            raise self._error(err, path, "describing") from err
        return self._info(container, obj)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose path starts with ``prefix``, in path order."""
        container_name, key_prefix = _split(prefix, self.driver_name)
        driver = self.driver
        container = Container(name=container_name, extra={}, driver=driver)
        try:
            found = [
                self._info(container_name, obj)
                for obj in driver.iterate_container_objects(container, prefix=key_prefix or None)
            ]
        except (LibcloudError, requests.RequestException) as err:
            raise self._error(err, prefix, "listing") from err
        yield from kit.sorted_listing(found)

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` at ``path`` with the driver's streaming upload."""
        container_name, key = _split(path, self.driver_name)
        driver = self.driver
        container = Container(name=container_name, extra={}, driver=driver)
        media_type = kit.index_content_type(key, content_type)
        try:
            driver.upload_object_via_stream(
                iter([bytes(data)]), container, key, extra={"content_type": media_type}
            )
        except (LibcloudError, requests.RequestException) as err:
            raise self._error(err, path, "writing") from err

    def _info(self, container: str, obj: Object) -> ObjectInfo:
        etag = obj.extra.get("etag") or obj.hash
        modified = obj.extra.get("last_modified")
        return ObjectInfo(
            f"{container}/{obj.name}",
            int(obj.size or 0),
            str(etag).strip('"') if etag else None,
            str(modified) if modified else None,
        )


_WATCHED = watch_pool_manager(urllib3.PoolManager()).pool_classes_by_scheme["http"]


class _KeptResponse:
    """A libcloud raw response class that keeps the ``requests`` response unread."""

    def __init__(self, connection: Any, response: Any = None) -> None:
        self.response = response


@contextlib.contextmanager
def _raw_identity(connection: Any, timeout: float) -> Iterator[None]:
    """Let one raw request of ``connection`` go out as a range read needs it.

    Libcloud asks for gzip on every request, reads (and parses) the body of any raw
    answer other than a 200 and sends raw requests without a timeout: for the request
    made in this block, ``Accept-Encoding`` is ``identity`` (set before the request is
    signed), the answer is kept unread and the socket times out after ``timeout``.
    The driver belongs to one thread, so the changes are seen by this request only.
    """
    if connection.connection is None:
        connection.connect()
    session = connection.connection.session
    for adapter in session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None and manager.pool_classes_by_scheme.get("http") is not _WATCHED:
            watch_pool_manager(manager)  # the status line and headers by the deadline
    signing = connection.pre_connect_hook

    def identity(params: Any, headers: dict[str, str]) -> Any:
        headers["Accept-Encoding"] = "identity"
        return signing(params, headers)

    connection.rawResponseCls = _KeptResponse
    connection.pre_connect_hook = identity
    session.send = functools.partial(session.send, timeout=(timeout, timeout))
    try:
        yield
    finally:
        del connection.rawResponseCls, connection.pre_connect_hook, session.send


class CheckedLibcloudProvider(LibcloudProvider):
    """A `LibcloudProvider` whose range reads report their answers to the range engine.

    For drivers that name an object's request path (the S3 family, Azure Blobs,
    Google Storage and OSS): the ranged ``GET`` goes through the driver's connection,
    which signs it, and the answer is reported unchecked (`read_range`).
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
        """Read bytes from ``start`` into ``out`` and report the answer, unchecked.

        The request carries ``Range``, ``Accept-Encoding: identity`` and, with
        ``etag``, ``If-Match`` (which S3 and Azure honour); the range engine checks
        the `RangeAnswer` (`cloudfits.fetch.checks`). The body is read one byte past
        the range, without decoding, by ``deadline``.
        """
        kit.check_start(start, self.uri(path))
        end = start + len(out)
        what = kit.reading(start, end)
        container_name, key = _split(path, self.driver_name)
        driver: Any = self.driver
        container = Container(name=container_name, extra={}, driver=driver)
        headers = {"Range": f"bytes={start}-{max(start, end - 1)}"}
        if etag is not None:
            headers["If-Match"] = f'"{etag}"'
        connection = driver.connection
        timeout = seconds_left(deadline, connection.timeout or 60.0)
        cut = False
        try:
            with _raw_identity(connection, timeout), request_deadline(deadline):
                try:
                    kept = connection.request(
                        driver._get_object_path(container, key),
                        method="GET",
                        headers=headers,
                        raw=True,
                        stream=True,
                    )
                finally:
                    cut = deadline_reached(deadline)
        except (LibcloudError, requests.RequestException, urllib3.exceptions.HTTPError) as err:
            if cut:
                detail = "slower than the read deadline allows"
                raise self.error(ErrorKind.TRANSIENT, what, path, detail) from err
            if isinstance(err, urllib3.exceptions.HTTPError):
                raise self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__) from err
            raise self._error(err, path, what) from err
        response: requests.Response = kept.response
        status = response.status_code
        if status >= 400 and status != 416:
            response.close()
            kind = kit.kind_of_status(status)
            if kind is ErrorKind.DENIED:
                raise self._error(InvalidCredsError(str(status)), path, what)
            detail = {ErrorKind.NOT_FOUND: "not found", ErrorKind.STALE: ""}.get(kind, "")
            raise self.error(kind, what, path, detail or f"HTTP {status}")
        shown = f"{self.scheme}: {what} {self.uri(path)}"
        try:
            return read_answer(
                response.raw, response.headers, start, out, deadline=deadline, what=shown
            )
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as err:
            raise self.error(ErrorKind.TRANSIENT, what, path, type(err).__name__) from err
        finally:
            response.close()


def make_provider(config: LibcloudConfig, driver: str) -> LibcloudProvider:
    """The provider of ``driver``: a `CheckedLibcloudProvider` where the driver allows."""
    provider = LibcloudProvider(config, driver)
    if hasattr(provider._driver_class, "_get_object_path"):
        return CheckedLibcloudProvider(config, driver)
    return provider
