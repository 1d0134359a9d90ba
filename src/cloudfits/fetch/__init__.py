"""The range engine: plan spans, fetch them in parallel, check every answer.

Layer: imports `cloudfits.providers` and the modules of this package only.
"""

from __future__ import annotations

from .pool import prestart, shared_pool
from .reader import ObjectReader
from .spans import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_GAP,
    DEFAULT_MAX_PART,
    FetchOptions,
    Span,
    coalesce,
    merge_ranges,
    split_parts,
)
from .stats import ReadStats, process_stats

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_GAP",
    "DEFAULT_MAX_PART",
    "FetchOptions",
    "ObjectReader",
    "ReadStats",
    "Span",
    "coalesce",
    "merge_ranges",
    "prestart",
    "process_stats",
    "shared_pool",
    "split_parts",
]
