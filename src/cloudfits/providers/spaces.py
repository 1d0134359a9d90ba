"""``spaces://REGION/bucket/key``: DigitalOcean Spaces, which speaks S3.

The region is part of the URI because each Spaces region is its own endpoint,
``https://REGION.digitaloceanspaces.com``. Credentials are Spaces access keys given
the way boto3 takes any S3 credentials (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
or a profile).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from ..hookspecs import hookimpl
from ..plugins import ProviderRegistry
from .base import ObjectInfo, ProviderSpec
from .s3 import S3Config, S3Provider

__all__ = ["SpacesConfig", "SpacesProvider"]


@dataclass(frozen=True, kw_only=True)
class SpacesConfig:
    """Options of the DigitalOcean Spaces provider.

    Attributes
    ----------
    endpoint_url : str or None
        Replaces ``https://REGION.digitaloceanspaces.com`` (for tests or a proxy).
    region : str or None
        The region for bare bucket names (``cloudfits-index --provider spaces``).
    profile, anonymous, max_pool_connections, connect_timeout, read_timeout, max_attempts
        As for the S3 provider.
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    anonymous: bool = False
    max_pool_connections: int = 64
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5


class SpacesProvider:
    """One S3 client per Spaces region, chosen by the first part of the path."""

    def __init__(self, config: SpacesConfig) -> None:
        self.config = config
        self._regions: dict[str, S3Provider] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SpacesProvider({self.config!r})"

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

    def head(self, path: str) -> ObjectInfo:
        region, provider, rest = self._split(path)
        info = provider.head(rest)
        return ObjectInfo(f"{region}/{info.path}", info.size, info.etag, info.last_modified)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        region, provider, rest = self._split(prefix)
        for info in provider.list(rest):
            yield ObjectInfo(f"{region}/{info.path}", info.size, info.etag, info.last_modified)

    def put_index(self, path: str, data: bytes) -> None:
        _, provider, rest = self._split(path)
        provider.put_index(rest, data)


def _bucket_uri(bucket: str, config: Any) -> str:
    if not config.region:
        raise ValueError("a bare Spaces bucket name needs a region (--region / region=)")
    return f"spaces://{config.region}/{bucket}"


@hookimpl
def cloudfits_register_providers(registry: ProviderRegistry) -> None:
    registry.add(
        ProviderSpec(
            name="spaces",
            schemes=("spaces",),
            config_type=SpacesConfig,
            factory=lambda config, scheme: SpacesProvider(config),
            description="DigitalOcean Spaces (spaces://REGION/bucket/key), S3 protocol",
            bucket_uri=_bucket_uri,
        )
    )
