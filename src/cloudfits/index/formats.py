"""Index formats: which one a name asks for, which one bytes hold, and their content types.

* ``.json``: JSON, format version 1, ``application/json``;
* ``.json.gz``: gzip-compressed JSON, version 1, ``application/gzip``;
* ``.parquet``: Parquet, version 2, ``application/vnd.apache.parquet``.
"""

from __future__ import annotations

import enum

from ..errors import IndexFormatError
from ..providers.kit import INDEX_CONTENT_TYPES

__all__ = [
    "SNIFF_BYTES",
    "IndexFormat",
    "check_index_head",
    "format_of_bytes",
    "format_of_name",
    "index_suffixes",
    "is_parquet_name",
]


class IndexFormat(enum.Enum):
    """A stored form of an index: its name suffix, content type and format version."""

    JSON = (".json", INDEX_CONTENT_TYPES[".json"], 1)
    JSON_GZIP = (".json.gz", INDEX_CONTENT_TYPES[".json.gz"], 1)
    PARQUET = (".parquet", INDEX_CONTENT_TYPES[".parquet"], 2)

    def __init__(self, suffix: str, content_type: str, version: int) -> None:
        self.suffix = suffix
        self.content_type = content_type
        self.version = version

    @property
    def compressed(self) -> bool:
        """Whether the JSON document is gzip-compressed."""
        return self is IndexFormat.JSON_GZIP


def index_suffixes() -> tuple[str, ...]:
    """The name endings of index objects (``.json``, ``.json.gz``, ``.parquet``)."""
    return tuple(f.suffix for f in IndexFormat)


def format_of_name(uri: str) -> IndexFormat:
    """The format an index name asks for; an `IndexFormatError` for any other name."""
    lower = uri.lower().split("?", 1)[0]
    for fmt in sorted(IndexFormat, key=lambda f: -len(f.suffix)):
        if lower.endswith(fmt.suffix):
            return fmt
    raise IndexFormatError(
        f"{uri}: an index name ends in {', '.join(index_suffixes())}"
        " (JSON, gzip-compressed JSON, or Parquet)"
    )


def format_of_bytes(head: bytes) -> IndexFormat | None:
    """The format whose magic bytes ``head`` starts with, if any (``None`` for FITS and others)."""
    if head[:4] == b"PAR1":
        return IndexFormat.PARQUET
    if head[:2] == b"\x1f\x8b":
        return IndexFormat.JSON_GZIP
    if head.lstrip()[:1] == b"{":
        return IndexFormat.JSON
    return None


#: Bytes read first from an object named as an index, to see what it holds.
SNIFF_BYTES = 64 * 1024


def check_index_head(head: bytes, size: int, *, source: str, limit: int) -> IndexFormat:
    """The format of an object from its first bytes, before the rest is read.

    A FITS file (``SIMPLE  =``), or anything that does not start like an index (Parquet's
    ``PAR1``, gzip, or ``{``), is an `IndexFormatError` naming it, as is a JSON
    document of more than ``limit`` bytes: a 44 GB data cube named by mistake costs one
    small read, not a download.
    """
    found = format_of_bytes(head)
    if found is None:
        what = "a FITS file" if head[:9] == b"SIMPLE  =" else "not an index"
        first = head[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
        hint = " (open it with cloudfits.open, or pass an index)" if "FITS" in what else ""
        raise IndexFormatError(
            f"{source}: {what}{hint}: an index starts with '{{', gzip or PAR1 bytes,"
            f" this object ({size:,} bytes) with {first!r}"
        )
    if found is not IndexFormat.PARQUET and size > limit:
        raise IndexFormatError(
            f"{source}: {size:,} bytes is more than an index document may hold"
            f" ({limit:,}); not read"
        )
    return found


def is_parquet_name(uri: str) -> bool:
    """Whether ``uri`` names a version 2 index (``.parquet``), read by ranges when loaded."""
    return uri.lower().split("?", 1)[0].endswith(IndexFormat.PARQUET.suffix)
