"""``spaces://REGION/bucket/key``: DigitalOcean Spaces, which speaks S3.

The region is part of the URI because each Spaces region is its own endpoint,
``https://REGION.digitaloceanspaces.com``. Credentials are Spaces access keys given
the way boto3 takes any S3 credentials (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
or a profile).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from ..base import ProviderSpec
from ..hookspecs import hookimpl
from ..s3 import check_anonymous

if TYPE_CHECKING:
    from ..registry import ProviderRegistry
    from .client import SpacesProvider

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
    anonymous: bool | Literal["auto"] = "auto"
    max_pool_connections: int = 64
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5

    def __post_init__(self) -> None:
        check_anonymous(self.anonymous)


def _bucket_uri(bucket: str, config: Any) -> str:
    if not config.region:
        raise ValueError("a bare Spaces bucket name needs a region (--region / region=)")
    return f"spaces://{config.region}/{bucket}"


def _client() -> ModuleType:
    """The provider's module, which imports the SDK: loaded when the first provider is made."""
    return importlib.import_module(f"{__name__}.client")


def _make_provider(config: SpacesConfig, scheme: str) -> SpacesProvider:
    provider: SpacesProvider = _client().SpacesProvider(config)
    return provider


def __getattr__(name: str) -> Any:
    if name == "SpacesProvider":
        return _client().SpacesProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def cloudfits_register_providers(registry: ProviderRegistry) -> None:
    registry.add(
        ProviderSpec(
            name="spaces",
            schemes=("spaces",),
            config_type=SpacesConfig,
            factory=_make_provider,
            description="DigitalOcean Spaces (spaces://REGION/bucket/key), S3 protocol",
            bucket_uri=_bucket_uri,
        )
    )
