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

Format version 2 (`cloudfits.index.parquet`) holds the same in one Parquet object, for
indexes of many thousands of files; `FitsIndex` reads and writes both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import AccessDeniedError
from ..providers.base import store_index
from ..providers.location import ObjectLocation
from ..providers.registry import get_registry
from ..remote.hdulist import RemoteFITS
from ..uri import is_local_uri, redact_uri
from . import formats, json_v1, parquet, parquet_store, refs
from .entry import (
    FORMAT_NAME,
    FORMAT_VERSION,
    FileEntry,
    IndexFailure,
    check_format,
    generator_name,
)
from .search import search_index
from .source import EntrySource, ListSource

if TYPE_CHECKING:
    from astropy.table import Table

    from ..remote.hdulist import RemoteHDU

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FileEntry",
    "FitsIndex",
    "IndexFailure",
    "check_format",
]


class FitsIndex:
    """An index of FITS objects under one base URI.

    Parameters
    ----------
    data_uri : str
        Base URI that the file paths are relative to.
    files : iterable of FileEntry, or EntrySource
        The indexed objects (an `EntrySource` for entries read when needed).
    generator, created : str, optional
        Provenance, filled in when not given.
    """

    def __init__(
        self,
        data_uri: str,
        files: Iterable[FileEntry] | EntrySource,
        *,
        generator: str | None = None,
        created: str | None = None,
    ) -> None:
        self.data_uri = data_uri
        self.source = files if isinstance(files, EntrySource) else ListSource(list(files))
        self.generator = generator or generator_name()
        self.created = (
            created or dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        )
        self.uri: str | None = None
        #: Options of the index object's own provider (reading a Parquet index's headers).
        self.options: dict[str, Any] = {}
        #: Options of the data's provider when `open` is given none.
        self.data_options: dict[str, Any] = {}
        #: True for an index read from a store that is not local (see `data_location`).
        self.foreign = False
        #: Let a foreign index name local data (``load_index(..., allow_local=True)``).
        self.allow_local = False
        self.failures: list[IndexFailure] = []

    @property
    def files(self) -> list[FileEntry]:
        """Every entry, in path order.

        For an index loaded from a version 2 (Parquet) document, the first use reads
        every header of the index; `paths`, `entry`, `open`, ``len`` and ``in`` do not.
        """
        return self.source.entries()

    @files.setter
    def files(self, files: Iterable[FileEntry]) -> None:
        self.source = ListSource(list(files))

    def __repr__(self) -> str:
        n = len(self)
        shown = redact_uri(self.data_uri)
        return f"<FitsIndex {shown!r}: {n:,} file{'' if n == 1 else 's'}>"

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(self.files)

    def __contains__(self, path: object) -> bool:
        return path in self.source

    @property
    def paths(self) -> list[str]:
        """The indexed paths, relative to ``data_uri``."""
        return list(self.source.paths)

    def entry(self, path: str) -> FileEntry:
        """The entry for ``path`` (relative to ``data_uri``)."""
        try:
            return self.source.entry(path)
        except KeyError:
            raise KeyError(f"{path!r} is not in the index of {self.data_uri!r}") from None

    # -- reading -------------------------------------------------------------------

    def data_location(self, options: dict[str, Any] | None = None) -> ObjectLocation:
        """Where the indexed files live, reached with the provider ``options``.

        Without options, the ``data_options`` the index was loaded with are used; the
        options that reached the index itself (its credentials, headers, requester-pays)
        never reach the data, whose host the index names.

        Raises
        ------
        AccessDeniedError
            When the index is foreign (loaded from a store that is not local) and its
            ``data_uri`` is local (a local path, ``localhost``, a loopback, link-local
            or private address), unless it was loaded with ``allow_local=True``.
        """
        if self.foreign and not self.allow_local and is_local_uri(self.data_uri):
            raise AccessDeniedError(
                f"the index {redact_uri(self.uri or '')} names local data"
                f" ({redact_uri(self.data_uri)}), but it was read from a store that is not"
                " local: an index from elsewhere may not make this process read its own files"
                " or services; pass allow_local=True to load_index if you trust it"
            )
        chosen = dict(options) if options else dict(self.data_options)
        return ObjectLocation.from_uri(self.data_uri, **chosen)

    def open(self, path: str | None = None, **options: Any) -> RemoteFITS:
        """Open an indexed file without reading anything from it.

        Parameters
        ----------
        path : str, optional
            Path relative to ``data_uri``; optional when the index holds one file.
        **options
            Provider options for the data (``requester_pays=True``, ...); by default
            the ``data_options`` given to `cloudfits.load_index`, never the options the
            index itself was read with.
        """
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
        return search_index(self, expression)

    # -- serialization -------------------------------------------------------------

    def _fields(self) -> json_v1.DocumentFields:
        # Nothing secret is ever in an index: no password, no signed-URL token.
        data_uri = redact_uri(self.data_uri)
        return {"generator": self.generator, "created": self.created, "data_uri": data_uri}

    def to_dict(self) -> dict[str, Any]:
        """The index document as a dict, keys in the order they are written."""
        return json_v1.document(self._fields(), self.files)

    def to_parquet(self) -> bytes:
        """The index as a version 2 document (Parquet; see `cloudfits.index.parquet`)."""
        return parquet.encode(self._fields(), self.files)

    def to_bytes(self, *, compress: bool = False) -> bytes:
        """The version 1 document (JSON); gzip-compressed when ``compress``."""
        return json_v1.encode(self._fields(), self.files, compress=compress)

    def encode(self, fmt: formats.IndexFormat) -> bytes:
        """The index in format ``fmt``."""
        if fmt is formats.IndexFormat.PARQUET:
            return self.to_parquet()
        return self.to_bytes(compress=fmt.compressed)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "<bytes>") -> FitsIndex:
        """Parse and check an index document (JSON, gzip-compressed JSON, or Parquet)."""
        if formats.format_of_bytes(data) is formats.IndexFormat.PARQUET:
            fields, entries = parquet_store.decode(None, len(data), source=source, data=data)
            return cls.from_source(fields, entries)
        return cls.from_source(*json_v1.decode(data, source=source))

    @classmethod
    def from_dict(cls, document: Any, *, source: str = "<dict>") -> FitsIndex:
        """Build an index from its parsed document, checking every field."""
        return cls.from_source(*json_v1.decode_document(document, source=source))

    @classmethod
    def from_source(
        cls, fields: json_v1.DocumentFields, files: Iterable[FileEntry] | EntrySource
    ) -> FitsIndex:
        """An index of a decoded document: its ``data_uri``, provenance and entries."""
        return cls(
            fields["data_uri"], files, generator=fields["generator"], created=fields["created"]
        )

    def save(self, uri: str, **options: Any) -> None:
        """Write the index through the provider of ``uri``.

        The name chooses the format (`cloudfits.index.formats`): ``.parquet`` version 2,
        ``.json`` version 1, ``.json.gz`` version 1 gzip-compressed; any other name is
        an `IndexFormatError`, raised before anything is written.
        """
        fmt = formats.format_of_name(uri)
        provider, path = get_registry().for_uri(uri, **options)
        store_index(provider, path, self.encode(fmt), content_type=fmt.content_type)

    def to_kerchunk(
        self,
        path: str | None = None,
        *,
        chunk_bytes: int = refs.DEFAULT_CHUNK_BYTES,
        write_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Kerchunk references of every image HDU, for xarray and zarr (`cloudfits.index.refs`).

        Parameters
        ----------
        path : str, optional
            Also write them here: JSON, or fsspec's Parquet references for a name
            ending in ``.parq`` or ``.parquet`` (needs ``cloudfits[zarr]``).
        chunk_bytes : int
            Most raw bytes in a chunk of an uncompressed image.
        write_options : dict, optional
            Provider options for writing ``path`` (fsspec storage options for Parquet).
        **options
            Provider options for reading the data (the tile tables of tile-compressed
            images are read; nothing else is).

        Returns
        -------
        dict
            Version 1 references: ``{"version": 1, "refs": {...}}``.
        """
        references = refs.kerchunk_references(self, chunk_bytes=chunk_bytes, **options)
        if path is not None:
            refs.write_references(references, path, **(write_options or {}))
        return references
