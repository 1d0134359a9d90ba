"""The index: file entries, `FitsIndex`, its JSON and Parquet formats, search, build, verify."""

from __future__ import annotations

from .core import FORMAT_NAME, FORMAT_VERSION, FileEntry, FitsIndex, IndexFailure, check_format

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FileEntry",
    "FitsIndex",
    "IndexFailure",
    "check_format",
]
