"""Index entries and the rules every entry obeys, whatever format it was read from.

A `FileEntry` is one indexed object: its path relative to the index's ``data_uri``,
its size and version tags, every HDU's layout (`cloudfits.fits.scan.HDULayout`) and,
for a whole-file gzip object, its seek points (offsets are then those of the
decompressed bytes).
`parse_file_entry` checks a decoded entry as untrusted input: a relative path without
``..``, Latin-1 headers (the file's bytes) of whole cards ending with ``END``, and
HDUs that follow one another exactly as the FITS standard lays them out.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..errors import IndexFormatError
from ..fits.scan import BLOCK, CARD, HDULayout, padded
from ..remote.seekpoints import GzipSeekPoints

__all__ = [
    "END_CARD_TEXT",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "NOT_A_BYTE",
    "FileEntry",
    "IndexFailure",
    "check_format",
    "field_of",
    "generator_name",
    "parse_file_entry",
]

END_CARD_TEXT = "END" + " " * 77
NOT_A_BYTE = re.compile(r"[^\x00-\xff]")
"""A header holds the file's bytes as Latin-1 text, any byte astropy reads included."""
FORMAT_NAME = "cloudfits-index"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FileEntry:
    """One indexed FITS object.

    Attributes
    ----------
    path : str
        Path relative to the index's ``data_uri``.
    size : int
        Object size in bytes when indexed.
    hdus : tuple of HDULayout
        Every HDU, in order.
    etag, last_modified : str or None
        What the store said about the object when it was indexed, where it said it.
    gzip : GzipSeekPoints or None
        For a whole-file gzip object, its seek points; the HDU offsets are those of the
        decompressed bytes.
    """

    path: str
    size: int
    hdus: tuple[HDULayout, ...]
    etag: str | None = None
    last_modified: str | None = None
    gzip: GzipSeekPoints | None = None

    @property
    def fits_size(self) -> int:
        """Bytes of the FITS file: the object's size, or its decompressed size."""
        return self.size if self.gzip is None else self.gzip.uncompressed_size

    def to_dict(self) -> dict[str, Any]:
        """The entry as it appears in the index document."""
        entry: dict[str, Any] = {"path": self.path, "size": self.size}
        if self.etag is not None:
            entry["etag"] = self.etag
        if self.last_modified is not None:
            entry["last_modified"] = self.last_modified
        entry["hdus"] = [
            {
                "header_offset": h.header_offset,
                "data_offset": h.data_offset,
                "data_size": h.data_size,
                "header": h.header,
            }
            for h in self.hdus
        ]
        if self.gzip is not None:
            entry["gzip"] = self.gzip.to_dict()
        return entry


def generator_name() -> str:
    """The ``generator`` written into new indexes: this cloudfits and its version."""
    return f"cloudfits {__version__}"


def check_format(document: Any, version: int, container: str, source: str) -> dict[str, Any]:
    """``document``, refused unless it is a cloudfits index of ``version``.

    ``container`` names where the document was found (``"JSON"``, ``"Parquet"``), for
    the message about an unsupported version.
    """
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{source}: not a {FORMAT_NAME} document")
    found = document.get("version")
    if type(found) is not int or found != version:
        raise IndexFormatError(
            f"{source}: index format version {found!r} is not supported in {container}"
            f" (this cloudfits reads version {FORMAT_VERSION} as JSON, version 2 as"
            " Parquet); upgrade cloudfits"
        )
    return document


def field_of(raw: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(raw, dict) or key not in raw:
        raise IndexFormatError(f"{where}: missing {key!r}")
    value = raw[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise IndexFormatError(f"{where}: {key!r} must be {kind.__name__}, not {value!r}")
    return value


def _optional_str(raw: dict[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise IndexFormatError(f"{where}: {key!r} must be a string")
    return value


def parse_file_entry(raw: Any, where: str) -> FileEntry:
    path = field_of(raw, "path", str, where)
    where = f"{where} ({path!r})"
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(p in ("", ".", "..") for p in parts)
        or posixpath.isabs(path)
    ):
        raise IndexFormatError(f"{where}: path must be relative and must not contain '..'")
    size = field_of(raw, "size", int, where)
    if size < 0:
        raise IndexFormatError(f"{where}: negative size")
    gzip = None
    if raw.get("gzip") is not None:
        gzip = GzipSeekPoints.from_dict(raw["gzip"], size=size, where=where)
    fits_size = size if gzip is None else gzip.uncompressed_size
    hdus: list[HDULayout] = []
    end_of_previous = 0
    for i, hdu in enumerate(field_of(raw, "hdus", list, where)):
        at = f"{where}: HDU {i}"
        header_offset = field_of(hdu, "header_offset", int, at)
        data_offset = field_of(hdu, "data_offset", int, at)
        data_size = field_of(hdu, "data_size", int, at)
        header = field_of(hdu, "header", str, at)
        bad = NOT_A_BYTE.search(header)
        if bad is not None:
            raise IndexFormatError(
                f"{at}: header character {bad.start()} is not a Latin-1 byte"
                f" (U+{ord(bad.group()):04X})"
            )
        if len(header) % CARD or not header.endswith(END_CARD_TEXT):
            raise IndexFormatError(
                f"{at}: header must be whole 80-character cards ending with the END card"
            )
        if (
            header_offset != end_of_previous
            or data_offset != header_offset + padded(len(header))
            or data_size < 0
            or data_offset + data_size > fits_size
            or data_offset % BLOCK
        ):
            raise IndexFormatError(
                f"{at}: inconsistent layout (header at {header_offset}, data at"
                f" {data_offset}, {data_size} bytes, FITS file {fits_size} bytes)"
            )
        hdus.append(HDULayout(header_offset, data_offset, data_size, header))
        end_of_previous = data_offset + padded(data_size)
    return FileEntry(
        path,
        size,
        tuple(hdus),
        _optional_str(raw, "etag", where),
        _optional_str(raw, "last_modified", where),
        gzip,
    )


@dataclass(frozen=True)
class IndexFailure:
    """An object that could not be indexed (see ``build_index(errors="collect")``).

    Failures are reported to the caller (`FitsIndex.failures`); they are never written
    into the index document.

    Attributes
    ----------
    path : str
        The object's path relative to the index's ``data_uri``, as an entry would have.
    uri : str
        The object's URI (without any ``user:password@`` part).
    error : str
        The exception's class name (``"ObjectNotFoundError"``, ``"FitsFormatError"``, ...).
    message : str
        The exception's message, which names the object (never a credential).
    """

    path: str
    uri: str
    error: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The failure as a JSON-ready dict."""
        return {"path": self.path, "uri": self.uri, "error": self.error, "message": self.message}
