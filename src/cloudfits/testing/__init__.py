"""Test support: local servers on 127.0.0.1 and the provider conformance suite.

`ProviderConformanceTests` and `ConformanceStore` are importable from here; they need
pytest, which is imported only when they are first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConformanceStore", "ProviderConformanceTests"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
