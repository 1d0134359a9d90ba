"""Index format version 1: one JSON document, gzip-compressed when its name ends in ``.gz``.

`encode` writes the document with a fixed key order and one file per entry, so that it
diffs well; `decode` parses and checks one (bounded, schema-checked, every entry
checked by `cloudfits.index.entry.parse_file_entry`).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from ..errors import IndexFormatError
from .entry import FORMAT_NAME, FORMAT_VERSION, FileEntry, check_format, field_of, parse_file_entry
from .json_schema import (
    MAX_GZIP_EXPANSION,
    gzip_within_bound,
    parse_index_document,
    validate_index_document,
)

__all__ = ["DocumentFields", "decode", "decode_document", "document", "encode"]

DocumentFields = dict[str, str]
"""``generator``, ``created`` and ``data_uri`` of a document."""


def document(fields: DocumentFields, files: list[FileEntry]) -> dict[str, Any]:
    """The version 1 document as a dict, keys in the order they are written."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "generator": fields["generator"],
        "created": fields["created"],
        "data_uri": fields["data_uri"],
        "files": [f.to_dict() for f in files],
    }


def encode(fields: DocumentFields, files: list[FileEntry], *, compress: bool = False) -> bytes:
    """The version 1 document as bytes; gzip-compressed when ``compress``."""
    text = json.dumps(document(fields, files), indent=1, ensure_ascii=True) + "\n"
    data = text.encode("ascii")
    if not compress:
        return data
    packed = gzip.compress(data, mtime=0)
    if not gzip_within_bound(len(data), len(packed)):
        raise IndexFormatError(
            f"this index ({len(data):,} bytes of JSON) compresses {len(data) / len(packed):.0f}"
            f" times, more than a .json.gz index may expand when loaded"
            f" ({MAX_GZIP_EXPANSION} times): save it as .json or .parquet"
        )
    return packed


def decode_document(raw: Any, *, source: str) -> tuple[DocumentFields, list[FileEntry]]:
    """Check a parsed version 1 document; its fields and entries."""
    check_format(raw, FORMAT_VERSION, "JSON", source)
    validate_index_document(raw, source=source)
    fields = {key: field_of(raw, key, str, source) for key in ("generator", "created", "data_uri")}
    files_raw = field_of(raw, "files", list, source)
    files = [parse_file_entry(f, f"{source}: files[{i}]") for i, f in enumerate(files_raw)]
    seen: set[str] = set()
    for entry in files:
        if entry.path in seen:
            raise IndexFormatError(f"{source}: file {entry.path!r} is listed twice")
        seen.add(entry.path)
    return fields, files


def decode(data: bytes, *, source: str) -> tuple[DocumentFields, list[FileEntry]]:
    """Parse and check a version 1 document (JSON, or gzip-compressed JSON)."""
    return decode_document(parse_index_document(data, source=source), source=source)
