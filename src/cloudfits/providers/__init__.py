"""Storage providers: one object per URI scheme, found through the plugin registry."""

from __future__ import annotations

from .base import ObjectInfo, Provider, ProviderSpec

__all__ = ["ObjectInfo", "Provider", "ProviderSpec"]
