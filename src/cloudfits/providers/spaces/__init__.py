"""``spaces://REGION/bucket/key``: DigitalOcean Spaces, which speaks S3.

The region is part of the URI because each Spaces region is its own endpoint,
``https://REGION.digitaloceanspaces.com``. Credentials are Spaces access keys given
the way boto3 takes any S3 credentials (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
or a profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .. import kit
from ..base import ProviderSpec

if TYPE_CHECKING:
    from .client import SpacesProvider

__all__ = ["SpacesConfig", "SpacesProvider"]


@dataclass(frozen=True, kw_only=True)
class SpacesConfig(kit.ClientOptions):
    """Options of the DigitalOcean Spaces provider.

    Attributes
    ----------
    endpoint_url : str or None
        Replaces ``https://REGION.digitaloceanspaces.com`` (for tests or a proxy).
    region : str or None
        The region for bare bucket names (``cloudfits-index --provider spaces``).
    profile, anonymous
        As for the S3 provider.
    max_pool_connections, connect_timeout, read_timeout, max_attempts
        The client options (`cloudfits.providers.kit.ClientOptions`).
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    anonymous: bool | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        kit.check_anonymous(self.anonymous)


def _bucket_uri(bucket: str, config: Any) -> str:
    if not config.region:
        raise ValueError("a bare Spaces bucket name needs a region (--region / region=)")
    return f"spaces://{config.region}/{bucket}"


_make_provider = kit.lazy_factory(f"{__name__}.client", "SpacesProvider")
__getattr__ = kit.lazy_attributes(__name__, {"SpacesProvider": ".client"})


cloudfits_register_providers = kit.registers(
    ProviderSpec(
        name="spaces",
        schemes=("spaces",),
        config_type=SpacesConfig,
        factory=_make_provider,
        description="DigitalOcean Spaces (spaces://REGION/bucket/key), S3 protocol",
        bucket_uri=_bucket_uri,
    )
)
