"""``https://`` (and ``http://``) URLs: read-only range reads from any web server.

This module holds the options and the registration; urllib3 is imported by
`cloudfits.providers.https.client` when the first provider is made.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..base import ProviderSpec
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..registry import ProviderRegistry
    from .client import HTTPSProvider

__all__ = ["HTTPSConfig", "HTTPSProvider"]


@dataclass(frozen=True, kw_only=True)
class HTTPSConfig:
    """Options of the HTTPS provider.

    Attributes
    ----------
    max_pool_connections : int
        Connections kept per host; reads use up to this many at once.
    connect_timeout, read_timeout : float
        Seconds before a connection attempt or a read gives up.
    max_attempts : int
        Attempts for connection errors and 429/5xx answers, with exponential backoff.
    verify : bool
        Check the server's TLS certificate.
    headers : mapping of str to str, optional
        Extra request headers, such as ``{"Authorization": "Bearer ..."}``. They are
        sent with every request and never shown (not in ``repr``, messages or logs).
        A ``user:password@`` in the URL is sent as HTTP basic authentication, and is
        likewise never shown.
    """

    max_pool_connections: int = 64
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    verify: bool = True
    headers: Mapping[str, str] | None = field(default=None, repr=False, hash=False)


def _client() -> ModuleType:
    """The provider's module, which imports the SDK: loaded when the first provider is made."""
    return importlib.import_module(f"{__name__}.client")


def _make_provider(config: HTTPSConfig, scheme: str) -> HTTPSProvider:
    provider: HTTPSProvider = _client().HTTPSProvider(config, scheme)
    return provider


def __getattr__(name: str) -> Any:
    if name == "HTTPSProvider":
        return _client().HTTPSProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def cloudfits_register_providers(registry: ProviderRegistry) -> None:
    registry.add(
        ProviderSpec(
            name="https",
            schemes=("https", "http"),
            config_type=HTTPSConfig,
            factory=_make_provider,
            description="any web server with range requests (read-only)",
        )
    )
