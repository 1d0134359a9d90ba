"""cloudfits: index FITS files once, then read them from object storage byte-exactly.

>>> import cloudfits
>>> idx = cloudfits.build_index("s3://bucket/prefix/")            # doctest: +SKIP
>>> f = idx.open("cube.fits")                                       # doctest: +SKIP
>>> f[1].section[100:110, 200:210, :, 0]                            # doctest: +SKIP
"""

from __future__ import annotations

import gc as _gc

# Importing makes hundreds of thousands of objects that live as long as the process
# (astropy's units, botocore's models); the cyclic collector would walk them again and
# again meanwhile (some 70 ms). It is off for the import only, as it was before.
_collecting = _gc.isenabled()
_gc.disable()

try:
    from . import _compat
    from ._version import __version__
    from .astro.tess import tess_cutout
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
    from .fetch.spans import FetchOptions
    from .fetch.stats import ReadStats, process_stats
    from .index.build import build_index, download_index, load_index
    from .index.core import FileEntry, FitsIndex, IndexFailure
    from .index.search import SearchExpressionError
    from .providers.base import ObjectInfo, Provider, ProviderSpec
    from .providers.hookspecs import hookimpl
    from .providers.registry import ProviderRegistry, get_registry
    from .remote import RemoteFITS, RemoteHDU, Section, getdata, getheader, open
    from .scale.cutouts import batch_cutouts

    _compat.install()
finally:
    if _collecting:
        _gc.enable()
    del _collecting


def __dir__() -> list[str]:
    """The public names: ``dir(cloudfits)`` lists the API, not the subpackages."""
    return sorted(__all__)


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
    "batch_cutouts",
    "build_index",
    "download_index",
    "get_registry",
    "getdata",
    "getheader",
    "hookimpl",
    "load_index",
    "open",
    "stats",
    "tess_cutout",
]
