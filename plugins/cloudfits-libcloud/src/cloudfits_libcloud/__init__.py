"""Apache Libcloud storage drivers for cloudfits: ``libcloud+DRIVER://container/key``.

``DRIVER`` is a name of ``libcloud.storage.types.Provider`` in lower case: ``s3``,
``azure_blobs``, ``google_storage``, ``backblaze_b2``, ``minio``, ... Installed, this
distribution registers the ``libcloud`` provider for every ``libcloud+`` scheme through
the ``cloudfits`` entry point group. Libcloud is imported only when such a URI is
first used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cloudfits import ProviderSpec
from cloudfits.providers import kit

if TYPE_CHECKING:
    from .provider import LibcloudProvider

__all__ = ["LibcloudConfig", "cloudfits_register_providers"]
__version__ = "0.1.0"

SCHEME_PREFIX = "libcloud+"


@dataclass(frozen=True, kw_only=True)
class LibcloudConfig:
    """Options of the ``libcloud`` provider.

    Attributes
    ----------
    key : str or None
        The driver's first credential (an access key id, an account name, ...).
        Default: ``CLOUDFITS_LIBCLOUD_KEY``; for the S3 family of drivers also
        ``AWS_ACCESS_KEY_ID``, for ``azure_blobs`` ``AZURE_STORAGE_ACCOUNT``.
    secret : str or None
        The driver's secret. Default: ``CLOUDFITS_LIBCLOUD_SECRET``; for the S3 family
        also ``AWS_SECRET_ACCESS_KEY``, for ``azure_blobs`` ``AZURE_STORAGE_KEY``.
        Never shown in ``repr`` or error messages.
    endpoint_url : str or None
        Another endpoint, ``http(s)://host[:port][/account]``: sets the driver's
        ``host``, ``port`` and ``secure`` (and ``account_prefix`` for ``azure_blobs``
        when a path is given). Default for the S3 family: ``AWS_ENDPOINT_URL``.
    region : str or None
        The driver's ``region``, for drivers that take one.
    driver_options : mapping
        Further keyword arguments of the driver's constructor, passed as they are.
    """

    key: str | None = None
    secret: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    region: str | None = None
    driver_options: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # Stored as sorted pairs so that the configuration stays hashable.
        options = self.driver_options
        pairs = options.items() if isinstance(options, Mapping) else options
        normalized = tuple(sorted((str(k), v) for k, v in pairs))
        object.__setattr__(self, "driver_options", normalized)


def _make_provider(config: LibcloudConfig, scheme: str) -> LibcloudProvider:
    from .provider import make_provider

    return make_provider(config, scheme[len(SCHEME_PREFIX) :])


cloudfits_register_providers = kit.registers(
    ProviderSpec(
        name="libcloud",
        schemes=(SCHEME_PREFIX,),
        config_type=LibcloudConfig,
        factory=_make_provider,
        description="any Apache Libcloud storage driver: libcloud+s3://,"
        " libcloud+azure_blobs://, ...",
    )
)
