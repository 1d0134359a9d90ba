"""The Spaces provider: one S3 client per region, each at that region's endpoint."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import fields

from ..base import ObjectInfo
from ..kit import ProviderEdges
from ..s3 import S3Config
from ..s3.client import S3Provider
from . import SpacesConfig

__all__ = ["SpacesProvider"]


class SpacesProvider(ProviderEdges):
    """One S3 client per Spaces region, chosen by the first part of the path."""

    name = scheme = "spaces"

    def __init__(self, config: SpacesConfig) -> None:
        self.config = config
        self._regions: dict[str, S3Provider] = {}
        self._lock = threading.Lock()

    def _split(self, path: str) -> tuple[str, S3Provider, str]:
        region, _, rest = path.partition("/")
        if not region or not rest:
            raise ValueError(f"spaces path {path!r} must be REGION/bucket/key")
        with self._lock:
            provider = self._regions.get(region)
            if provider is None:
                shared = {f.name: getattr(self.config, f.name) for f in fields(self.config)}
                shared["region"] = region
                shared["endpoint_url"] = (
                    self.config.endpoint_url or f"https://{region}.digitaloceanspaces.com"
                )
                provider = S3Provider(
                    S3Config(**shared), name="spaces", uri_prefix=f"spaces://{region}/"
                )
                self._regions[region] = provider
        return region, provider, rest

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        _, provider, rest = self._split(path)
        return provider.get_range(rest, start, end, etag=etag)

    def get_range_into(
        self, path: str, start: int, buffer: memoryview, *, etag: str | None = None
    ) -> int:
        """Read ``len(buffer)`` bytes from ``start`` straight into ``buffer``."""
        _, provider, rest = self._split(path)
        return provider.get_range_into(rest, start, buffer, etag=etag)

    def head(self, path: str) -> ObjectInfo:
        region, provider, rest = self._split(path)
        info = provider.head(rest)
        return ObjectInfo(f"{region}/{info.path}", info.size, info.etag, info.last_modified)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        region, provider, rest = self._split(prefix)
        for info in provider.list(rest):
            yield ObjectInfo(f"{region}/{info.path}", info.size, info.etag, info.last_modified)

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        _, provider, rest = self._split(path)
        provider.put_index(rest, data, content_type=content_type)
