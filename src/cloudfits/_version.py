"""The installed version of cloudfits."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("cloudfits")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
