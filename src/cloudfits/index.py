"""The index: every HDU's header and byte layout, for a set of FITS objects.

Format version 1 is one JSON document (gzip-compressed when its name ends in
``.gz``), written with a fixed key order and one file per entry so that it diffs well:

.. code-block:: json

    {"format": "cloudfits-index", "version": 1, "generator": "cloudfits 0.1.0",
     "created": "2026-01-01T00:00:00+00:00", "data_uri": "s3://bucket/prefix",
     "files": [{"path": "a.fits", "size": 8640, "etag": "...", "last_modified": "...",
                "hdus": [{"header_offset": 0, "data_offset": 2880, "data_size": 5760,
                          "header": "SIMPLE  =  ...END     ..."}]}]}

``header`` holds the header's 80-character cards up to and including ``END``;
``data_size`` is the data's length without padding. Paths are relative to
``data_uri`` and never contain ``..``.

Format version 2 (`cloudfits.index_v2`) holds the same in one Parquet object, for
indexes of many thousands of files; `FitsIndex` reads and writes both.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import IndexFormatError
from .index_schema import parse_index_document, validate_index_document
from .scan import BLOCK, CARD, HDULayout, padded

if TYPE_CHECKING:
    from astropy.table import Table

    from .index_v2_store import ParquetFiles
    from .remote import RemoteFITS, RemoteHDU

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "FileEntry", "FitsIndex"]

END_CARD_TEXT = "END" + " " * 77
_NON_PRINTABLE = re.compile(r"[^ -~]")
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
    """

    path: str
    size: int
    hdus: tuple[HDULayout, ...]
    etag: str | None = None
    last_modified: str | None = None

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
        return entry


def _generator() -> str:
    from . import __version__

    return f"cloudfits {__version__}"


class FitsIndex:
    """An index of FITS objects under one base URI.

    Parameters
    ----------
    data_uri : str
        Base URI that the file paths are relative to.
    files : iterable of FileEntry
        The indexed objects.
    generator, created : str, optional
        Provenance, filled in when not given.
    """

    def __init__(
        self,
        data_uri: str,
        files: list[FileEntry],
        *,
        generator: str | None = None,
        created: str | None = None,
    ) -> None:
        self.data_uri = data_uri
        self._store: ParquetFiles | None = None
        self._files: list[FileEntry] | None = None
        self._by_path: dict[str, FileEntry] = {}
        self.files = files
        self.generator = generator or _generator()
        self.created = (
            created or dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        )
        self.uri: str | None = None
        self.options: dict[str, Any] = {}
        self.failures: list[IndexFailure] = []

    @classmethod
    def _lazy(cls, data_uri: str, store: ParquetFiles, generator: str, created: str) -> FitsIndex:
        """An index whose entries are read from a version 2 document when needed."""
        index = cls(data_uri, [], generator=generator, created=created)
        index._store = store
        index._files = None
        return index

    @property
    def files(self) -> list[FileEntry]:
        """Every entry, in path order.

        For an index loaded from a version 2 (Parquet) document, the first use reads
        every header of the index; `paths`, `entry`, `open`, ``len`` and ``in`` do not.
        """
        if self._files is None:
            assert self._store is not None
            self._files = self._store.entries()
            self._by_path = {f.path: f for f in self._files}
        return self._files

    @files.setter
    def files(self, files: list[FileEntry]) -> None:
        self._files = sorted(files, key=lambda f: f.path)
        self._by_path = {f.path: f for f in self._files}
        self._store = None

    def __repr__(self) -> str:
        return f"<FitsIndex {self.data_uri!r}: {len(self)} files>"

    def __len__(self) -> int:
        return len(self._store) if self._store is not None else len(self.files)

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(self.files)

    def __contains__(self, path: object) -> bool:
        if self._store is not None:
            return path in self._store
        return path in self._by_path

    @property
    def paths(self) -> list[str]:
        """The indexed paths, relative to ``data_uri``."""
        if self._store is not None:
            return list(self._store.paths)
        return [f.path for f in self.files]

    def entry(self, path: str) -> FileEntry:
        """The entry for ``path`` (relative to ``data_uri``)."""
        try:
            if self._store is not None:
                return self._store.entry(path)
            return self._by_path[path]
        except KeyError:
            raise KeyError(f"{path!r} is not in the index of {self.data_uri!r}") from None

    # -- reading -------------------------------------------------------------------

    def open(self, path: str | None = None, **options: Any) -> RemoteFITS:
        """Open an indexed file without reading anything from it.

        Parameters
        ----------
        path : str, optional
            Path relative to ``data_uri``; optional when the index holds one file.
        **options
            Provider options for the data (``requester_pays=True``, ...). By default,
            the options the index was loaded with when the data uses the same kind of
            store, else none.
        """
        from .remote import RemoteFITS

        if path is None:
            if len(self) != 1:
                raise ValueError(f"the index holds {len(self)} files: name one")
            path = self.paths[0]
        return RemoteFITS.from_entry(self, self.entry(path), options)

    @property
    def headers(self) -> list[RemoteHDU]:
        """The HDUs of the first file (the form of the ``cloud-fits`` tutorial)."""
        if not len(self):
            raise IndexError("the index holds no files")
        return list(self.open(self.paths[0]))

    def search(self, expression: str) -> Table:
        """HDUs whose headers satisfy ``expression``, without any data request.

        Parameters
        ----------
        expression : str
            Comparisons of keywords with constants, combined with ``and``, ``or`` and
            ``not``: ``"OBJECT == 'M31'"``, ``"EXPTIME > 100 and FILTER in ('g', 'r')"``.
            A keyword that is not a Python name is written in backquotes
            (```DATE-OBS` >= '2020'``). See :doc:`/search`.

        Returns
        -------
        astropy.table.Table
            ``path``, ``hdu`` and one column per keyword used, one row per matching HDU.
        """
        from .search import search_index

        return search_index(self, expression)

    # -- serialization -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The index document as a dict, keys in the order they are written."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "generator": self.generator,
            "created": self.created,
            "data_uri": self.data_uri,
            "files": [f.to_dict() for f in self.files],
        }

    def to_parquet(self) -> bytes:
        """The index as a version 2 document (Parquet; see `cloudfits.index_v2`)."""
        from .index_v2 import index_to_parquet

        return index_to_parquet(self)

    def to_bytes(self, *, compress: bool = False) -> bytes:
        """The version 1 document (JSON); gzip-compressed when ``compress``."""
        text = json.dumps(self.to_dict(), indent=1, ensure_ascii=True) + "\n"
        data = text.encode("ascii")
        return gzip.compress(data, mtime=0) if compress else data

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "<bytes>") -> FitsIndex:
        """Parse and check an index document (JSON, gzip-compressed JSON, or Parquet)."""
        if data[:4] == b"PAR1":
            from .index_v2 import read_parquet_index

            return read_parquet_index(None, len(data), source=source, data=data)
        document = parse_index_document(data, source=source)
        return cls.from_dict(document, source=source)

    @classmethod
    def from_dict(cls, document: Any, *, source: str = "<dict>") -> FitsIndex:
        """Build an index from its parsed document, checking every field."""
        check_format(document, FORMAT_VERSION, "JSON", source)
        validate_index_document(document, source=source)
        data_uri = _field(document, "data_uri", str, source)
        files_raw = _field(document, "files", list, source)
        files = [_file_entry(raw, f"{source}: files[{i}]") for i, raw in enumerate(files_raw)]
        seen: set[str] = set()
        for entry in files:
            if entry.path in seen:
                raise IndexFormatError(f"{source}: file {entry.path!r} is listed twice")
            seen.add(entry.path)
        return cls(
            data_uri,
            files,
            generator=_field(document, "generator", str, source),
            created=_field(document, "created", str, source),
        )

    def save(self, uri: str, **options: Any) -> None:
        """Write the index through the provider of ``uri``.

        The name chooses the format: ``.parquet`` version 2, else version 1 (JSON,
        gzip-compressed when the name ends in ``.gz``).
        """
        from .index_v2 import is_parquet_name
        from .plugins import get_registry

        provider, path = get_registry().for_uri(uri, **options)
        if is_parquet_name(uri):
            data = self.to_parquet()
        else:
            data = self.to_bytes(compress=uri.endswith(".gz"))
        provider.put_index(path, data)


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


def _field(raw: Any, key: str, kind: type, where: str) -> Any:
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


def _file_entry(raw: Any, where: str) -> FileEntry:
    path = _field(raw, "path", str, where)
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
    size = _field(raw, "size", int, where)
    if size < 0:
        raise IndexFormatError(f"{where}: negative size")
    hdus: list[HDULayout] = []
    end_of_previous = 0
    for i, hdu in enumerate(_field(raw, "hdus", list, where)):
        at = f"{where}: HDU {i}"
        header_offset = _field(hdu, "header_offset", int, at)
        data_offset = _field(hdu, "data_offset", int, at)
        data_size = _field(hdu, "data_size", int, at)
        header = _field(hdu, "header", str, at)
        bad = _NON_PRINTABLE.search(header)
        if bad is not None:
            raise IndexFormatError(
                f"{at}: header character {bad.start()} is not printable ASCII ({bad.group()!r})"
            )
        if len(header) % CARD or not header.endswith(END_CARD_TEXT):
            raise IndexFormatError(
                f"{at}: header must be whole 80-character cards ending with the END card"
            )
        if (
            header_offset != end_of_previous
            or data_offset != header_offset + padded(len(header))
            or data_size < 0
            or data_offset + data_size > size
            or data_offset % BLOCK
        ):
            raise IndexFormatError(
                f"{at}: inconsistent layout (header at {header_offset}, data at"
                f" {data_offset}, {data_size} bytes, object {size} bytes)"
            )
        hdus.append(HDULayout(header_offset, data_offset, data_size, header))
        end_of_previous = data_offset + padded(data_size)
    return FileEntry(
        path,
        size,
        tuple(hdus),
        _optional_str(raw, "etag", where),
        _optional_str(raw, "last_modified", where),
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
