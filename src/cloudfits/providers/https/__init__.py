"""``https://`` (and ``http://``) URLs: read-only range reads from any web server.

This module holds the options and the registration; urllib3 is imported by
`cloudfits.providers.https.client` when the first provider is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import kit
from ..base import ProviderSpec

if TYPE_CHECKING:
    from .client import HTTPSProvider

__all__ = ["HTTPSConfig", "HTTPSProvider"]


@dataclass(frozen=True, kw_only=True)
class HTTPSConfig(kit.ClientOptions):
    """Options of the HTTPS provider.

    Attributes
    ----------
    max_pool_connections, connect_timeout, read_timeout, max_attempts
        The client options (`cloudfits.providers.kit.ClientOptions`); ``max_attempts``
        covers connection errors and 429/5xx answers, with exponential backoff.
    verify : bool
        Check the server's TLS certificate.
    headers : mapping of str to str, optional
        Extra request headers, such as ``{"Authorization": "Bearer ..."}``. They are
        sent with every request and never shown (not in ``repr``, messages or logs).
        A ``user:password@`` in the URL is sent as HTTP basic authentication, and is
        likewise never shown.
    """

    verify: bool = True
    headers: Mapping[str, str] | None = field(default=None, repr=False, hash=False)


_make_provider = kit.lazy_factory(f"{__name__}.client", "HTTPSProvider", with_scheme=True)
__getattr__ = kit.lazy_attributes(__name__, {"HTTPSProvider": ".client"})


cloudfits_register_providers = kit.registers(
    ProviderSpec(
        name="https",
        schemes=("https", "http"),
        config_type=HTTPSConfig,
        factory=_make_provider,
        description="any web server with range requests (read-only)",
    )
)
