"""cloudfits: index FITS files once, then read them from object storage byte-exactly.

>>> import cloudfits
>>> idx = cloudfits.build_index("s3://bucket/prefix/")            # doctest: +SKIP
>>> f = idx.open("cube.fits")                                       # doctest: +SKIP
>>> f[1].section[100:110, 200:210, :, 0]                            # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .accounting import ReadStats, process_stats
from .errors import (
    AccessDeniedError,
    CloudFitsError,
    CloudFitsWarning,
    FitsFormatError,
    IndexFormatError,
    ObjectNotFoundError,
    ProviderConfigError,
    ProviderError,
    ProviderNotFoundError,
    RangeResponseError,
    StaleIndexError,
    TransientProviderError,
    UnsupportedOperationError,
)
from .fetcher import FetchOptions
from .hookspecs import hookimpl
from .index import FileEntry, FitsIndex, IndexFailure
from .indexer import build_index, download_index, load_index
from .plugins import ProviderRegistry, get_registry
from .providers.base import ObjectInfo, Provider, ProviderSpec
from .remote import RemoteFITS, RemoteHDU, Section, open
from .search import SearchExpressionError
from .tess import tess_cutout

try:
    __version__ = version("cloudfits")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

stats = process_stats
"""Requests and bytes of every read made by this process (a `ReadStats`)."""

__all__ = [
    "AccessDeniedError",
    "CloudFitsError",
    "CloudFitsWarning",
    "FetchOptions",
    "FileEntry",
    "FitsFormatError",
    "FitsIndex",
    "IndexFailure",
    "IndexFormatError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "Provider",
    "ProviderConfigError",
    "ProviderError",
    "ProviderNotFoundError",
    "ProviderRegistry",
    "ProviderSpec",
    "RangeResponseError",
    "ReadStats",
    "RemoteFITS",
    "RemoteHDU",
    "SearchExpressionError",
    "Section",
    "StaleIndexError",
    "TransientProviderError",
    "UnsupportedOperationError",
    "__version__",
    "build_index",
    "download_index",
    "get_registry",
    "hookimpl",
    "load_index",
    "open",
    "stats",
    "tess_cutout",
]
