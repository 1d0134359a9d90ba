"""The files of a version 2 index, kept as arrays; entries built when asked for.

Loading checks every row of the layout at once with numpy and Arrow (paths relative,
sorted and unique; HDUs numbered from 0; each header where the previous HDU ends; data
aligned to 2880 bytes and inside the object). A header is checked when its row group is
read (Latin-1 text, whole cards ending with END, the data right after its blocks).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import IndexFormatError
from ..fetch.rangefile import RangeFile
from ..fits.keywords import as_bools, keyword_values
from ..fits.scan import BLOCK, CARD, HDULayout, padded
from .entry import END_CARD_TEXT, NOT_A_BYTE, FileEntry
from .parquet import (
    KEYWORD_PREFIX,
    LAYOUT_COLUMNS,
    column_chunk_ranges,
    column_types_ok,
    document_fields,
    read_metadata,
)
from .parquet_gzip import GZIP_POINTS_COLUMN, GZIP_SIZE_COLUMN, gzip_sizes, parse_gzip_text
from .source import EntrySource, HDURows

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["ParquetFiles"]

T = TypeVar("T")

#: Row groups of headers kept in memory.
HEADER_CACHE = 4
# No control characters (C0, DEL, C1), line separators or bidirectional overrides.
_NOT_IN_PATH = r"/\\\x00-\x1f\x7f-\x9f\x{2028}\x{2029}\x{202a}-\x{202e}\x{2066}-\x{2069}"
_PATH_OK = rf"^[^{_NOT_IN_PATH}]+(/[^{_NOT_IN_PATH}]+)*$"
_PATH_DOTS = r"(^|/)\.{1,2}(/|$)"
_LARGEST = 1 << 62


def _ints(table: pa.Table, name: str, source: str) -> np.ndarray:
    import pyarrow as pa

    column = table.column(name)
    if column.null_count:
        raise IndexFormatError(f"{source}: column {name!r} has nulls")
    try:
        return np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
    except pa.ArrowException as err:
        raise IndexFormatError(f"{source}: column {name!r}: {err}") from None


class ParquetFiles(EntrySource):
    """The files of a version 2 index (see `cloudfits.index.parquet`).

    Parameters
    ----------
    file : RangeFile
        The index object.
    md : pyarrow.parquet.FileMetaData
        Its footer, already read.
    source : str
        Its URI, for messages.
    """

    def __init__(self, file: RangeFile, md: pq.FileMetaData, source: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.source = source
        self.file = file
        self.md = md
        try:
            self.parquet = pq.ParquetFile(file, metadata=md)
            schema = self.parquet.schema_arrow
        except (pa.ArrowException, OSError, ValueError) as err:
            raise IndexFormatError(f"{source}: broken Parquet schema: {err}") from None
        problem = column_types_ok(schema)
        if problem is not None:
            raise IndexFormatError(f"{source}: {problem}")
        self.schema = schema
        self.keyword_columns = {
            n[len(KEYWORD_PREFIX) :]: i
            for i, n in enumerate(schema.names)
            if n.startswith(KEYWORD_PREFIX)
        }
        groups = [md.row_group(g).num_rows for g in range(md.num_row_groups)]
        self.group_start = np.concatenate(([0], np.cumsum(groups, dtype=np.int64)))
        layout = [
            *LAYOUT_COLUMNS,
            *([GZIP_SIZE_COLUMN] if GZIP_SIZE_COLUMN in schema.names else []),
        ]
        table = self._read(list(range(md.num_row_groups)), layout)
        file.clear()
        self._check(table)
        del table
        # Arrow's allocator keeps the pages of the decoded columns and of the checks'
        # temporaries; give them back, as the index stays loaded for long.
        pa.default_memory_pool().release_unused()
        self._lock = threading.Lock()
        self._headers: OrderedDict[int, list[str]] = OrderedDict()
        self._gzip: OrderedDict[int, list[Any]] = OrderedDict()

    # -- loading ---------------------------------------------------------------------

    def _read(self, groups: list[int], names: list[str]) -> pa.Table:
        import pyarrow as pa

        columns = [self.schema.get_field_index(n) for n in names]
        try:
            self.file.prefetch(
                column_chunk_ranges(self.md, groups, columns, self.source, self.file.size)
            )
            table = self.parquet.read_row_groups(groups, columns=names, use_threads=False)
            table.validate(full=True)  # UTF-8 of strings, offsets
        except IndexFormatError:
            raise
        except (pa.ArrowException, OSError, ValueError, EOFError) as err:
            raise IndexFormatError(f"{self.source}: broken Parquet data: {err}") from None
        if table.num_rows != int(sum(self.md.row_group(g).num_rows for g in groups)):
            raise IndexFormatError(f"{self.source}: row counts disagree with the footer")
        return table

    def _header_texts(self, groups: list[int]) -> list[str]:
        """The header column of row groups, in row order."""
        column = self._read(groups, ["header"]).column(0)
        if column.null_count:
            raise IndexFormatError(f"{self.source}: column 'header' has nulls")
        texts: list[str] = column.to_pylist()
        return texts

    def _fail(self, row: int, message: str) -> IndexFormatError:
        path = self._path_rows.column(0)[row].as_py()
        hdu = int(self.hdu[row])
        return IndexFormatError(f"{self.source}: file {path!r}, HDU {hdu}: {message}")

    def _check(self, table: pa.Table) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        source = self.source
        paths = table.column("path").combine_chunks().cast(pa.string())
        if paths.null_count:
            raise IndexFormatError(f"{source}: column 'path' has nulls")
        self._path_rows = pa.table({"path": paths})
        n = len(paths)
        new = np.ones(n, dtype=bool)
        if n > 1:
            new[1:] = as_bools(pc.not_equal(paths[1:], paths[:-1]))
        starts = np.flatnonzero(new)
        distinct = paths.take(pa.array(starts))
        ordered = as_bools(pc.less(distinct[:-1], distinct[1:])) if len(distinct) > 1 else None
        if ordered is not None and not ordered.all():
            at = int(np.argmin(ordered)) + 1
            raise IndexFormatError(
                f"{source}: file {distinct[at].as_py()!r} is listed twice or out of order"
            )
        bad = pc.or_(
            pc.invert(pc.match_substring_regex(distinct, _PATH_OK)),
            pc.or_(
                pc.match_substring_regex(distinct, _PATH_DOTS),
                pc.greater(pc.utf8_length(distinct), 4096),
            ),
        )
        if pc.any(bad).as_py():
            at = int(np.flatnonzero(as_bools(bad))[0])
            raise IndexFormatError(
                f"{source}: path {distinct[at].as_py()!r} must be relative, '/'-separated,"
                " and must not contain '..', '.', empty parts, backslashes or control characters"
            )
        self.paths: list[str] = distinct.to_pylist()
        self.row_of = {p: i for i, p in enumerate(self.paths)}
        self.file_start = np.append(starts, n).astype(np.int64)
        file_of_row = np.repeat(np.arange(len(starts)), np.diff(self.file_start))
        self.file_of_row = file_of_row
        self.hdu = _ints(table, "hdu", source)
        size = _ints(table, "size", source)
        self.header_offset = _ints(table, "header_offset", source)
        self.data_offset = _ints(table, "data_offset", source)
        self.data_size = _ints(table, "data_size", source)
        self.size = size[starts]
        self.gzip_size = gzip_sizes(table, starts, source)
        fits_size = np.where(self.gzip_size >= 0, self.gzip_size, self.size)
        first = starts[file_of_row]
        if np.any(size != self.size[file_of_row]):
            raise self._fail(int(np.argmax(size != self.size[file_of_row])), "size differs by HDU")
        for name in ("etag", "last_modified"):
            values = table.column(name).combine_chunks().cast(pa.string())
            firsts = values.take(pa.array(first))
            same = pc.fill_null(pc.equal(values, firsts), False)
            both_null = pc.and_(pc.is_null(values), pc.is_null(firsts))
            ok = as_bools(pc.or_(same, both_null))
            if not ok.all():
                raise self._fail(int(np.argmin(ok)), f"{name} differs by HDU")
            setattr(self, name, values.take(pa.array(starts)))
        rows = np.arange(n, dtype=np.int64)
        wrong = self.hdu != rows - first
        if wrong.any():
            raise self._fail(int(np.argmax(wrong)), "HDUs must be numbered 0, 1, ... in order")
        # Offsets and sizes beyond 2**62 would wrap the int64 sums below: refuse first.
        for name in ("header_offset", "data_offset", "data_size"):
            values = getattr(self, name)
            out_of_range = (values < 0) | (values > _LARGEST)
            if out_of_range.any():
                row = int(np.argmax(out_of_range))
                raise self._fail(row, f"{name} {values[row]} is outside [0, 2**62]")
        if ((self.size < 0) | (self.size > _LARGEST)).any():
            raise IndexFormatError(f"{self.source}: a file size is outside [0, 2**62]")
        previous_end = np.zeros(n, dtype=np.int64)
        previous_end[1:] = self.data_offset[:-1] + -(-self.data_size[:-1] // BLOCK) * BLOCK
        previous_end[new] = 0
        header_blocks = self.data_offset - self.header_offset
        bad_layout = (
            (self.header_offset != previous_end)
            | (header_blocks < BLOCK)
            | (header_blocks % BLOCK != 0)
            | (self.data_size < 0)
            | (self.size[file_of_row] < 0)
            | (self.data_offset + self.data_size > fits_size[file_of_row])
        )
        if bad_layout.any():
            row = int(np.argmax(bad_layout))
            raise self._fail(
                row,
                f"inconsistent layout (header at {self.header_offset[row]}, data at"
                f" {self.data_offset[row]}, {self.data_size[row]} bytes, FITS file"
                f" {fits_size[file_of_row[row]]} bytes)",
            )

    # -- headers and entries ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self.paths)

    def __contains__(self, path: object) -> bool:
        return path in self.row_of

    def _groups_of(self, first: int, stop: int) -> list[int]:
        a = int(np.searchsorted(self.group_start, first, side="right")) - 1
        b = int(np.searchsorted(self.group_start, stop - 1, side="right")) - 1
        return list(range(a, b + 1))

    def header_groups(self, groups: list[int]) -> dict[int, list[str]]:
        """The header texts of row groups (cached, fetched together when missing)."""
        with self._lock:
            missing = [g for g in groups if g not in self._headers]
            if missing:
                texts = self._header_texts(missing)
                self.file.clear()
                at = 0
                for g in missing:
                    rows = int(self.group_start[g + 1] - self.group_start[g])
                    self._headers[g] = texts[at : at + rows]
                    at += rows
            found = {}
            for g in groups:
                self._headers.move_to_end(g)
                found[g] = self._headers[g]
            while len(self._headers) > max(HEADER_CACHE, len(groups)):
                self._headers.popitem(last=False)
            return found

    def _headers_of_rows(self, first: int, stop: int) -> list[str]:
        groups = self._groups_of(first, stop)
        texts = self.header_groups(groups)
        out: list[str] = []
        for g in groups:
            g0 = int(self.group_start[g])
            a, b = max(first, g0) - g0, min(stop, int(self.group_start[g + 1])) - g0
            out += texts[g][a:b]
        return out

    def _layout(self, row: int, header: str) -> HDULayout:
        if NOT_A_BYTE.search(header):
            raise self._fail(row, "header is not Latin-1 text (the file's bytes)")
        if len(header) % CARD or not header.endswith(END_CARD_TEXT):
            raise self._fail(row, "header must be whole 80-character cards ending with END")
        if self.data_offset[row] != self.header_offset[row] + padded(len(header)):
            raise self._fail(row, "data does not start after the header's blocks")
        return HDULayout(
            int(self.header_offset[row]),
            int(self.data_offset[row]),
            int(self.data_size[row]),
            header,
        )

    def entry_at(self, i: int, headers: list[str] | None = None) -> FileEntry:
        """The entry of the ``i``-th file."""
        first, stop = int(self.file_start[i]), int(self.file_start[i + 1])
        if headers is None:
            headers = self._headers_of_rows(first, stop)
        etag: Any = self.etag[i].as_py()  # type: ignore[attr-defined]
        modified: Any = self.last_modified[i].as_py()  # type: ignore[attr-defined]
        gzip = None
        if self.gzip_size[i] >= 0:
            where = f"{self.source}: file {self.paths[i]!r}"
            text = self._gzip_text(first)
            size, usize = int(self.size[i]), int(self.gzip_size[i])
            gzip = parse_gzip_text(text, size=size, uncompressed_size=usize, where=where)
        return FileEntry(
            self.paths[i],
            int(self.size[i]),
            tuple(self._layout(first + k, h) for k, h in enumerate(headers)),
            etag,
            modified,
            gzip,
        )

    def _gzip_text(self, row: int) -> Any:
        """The ``gzip`` value of a row (its row group's column read once, then kept)."""
        if GZIP_POINTS_COLUMN not in self.schema.names:
            return None
        (group,) = self._groups_of(row, row + 1)
        with self._lock:
            if group not in self._gzip:
                self._gzip[group] = self._read([group], [GZIP_POINTS_COLUMN]).column(0).to_pylist()
                self.file.clear()
                while len(self._gzip) > HEADER_CACHE:
                    self._gzip.popitem(last=False)
            return self._gzip[group][row - int(self.group_start[group])]

    def entry(self, path: str) -> FileEntry:
        """The entry of ``path`` (KeyError when absent)."""
        return self.entry_at(self.row_of[path])

    def entries(self) -> list[FileEntry]:
        """Every entry: reads every header of the index."""
        texts = self.header_column()
        return [
            self.entry_at(i, texts[int(self.file_start[i]) : int(self.file_start[i + 1])])
            for i in range(len(self.paths))
        ]

    def hdu_rows(self) -> HDURows:
        return self.paths, self.file_of_row, self.hdu

    def keyword_tokens(self, keywords: tuple[str, ...]) -> dict[str, pa.Array]:
        """Each keyword's tokens: its ``kw:`` column, else parsed from the headers.

        Headers are parsed one row group at a time: they may be gigabytes in all.
        """
        import pyarrow as pa

        found = {k: v.combine_chunks() for k, v in self.stored_keyword_tokens(keywords).items()}
        missing = [k for k in keywords if k not in found]
        if missing:

            def columns(headers: list[str]) -> list[pa.Array]:
                values = keyword_values(headers, only=missing)
                return [values.column(k, len(headers)) for k in missing]

            parts = self.map_header_groups(columns)
            for i, keyword in enumerate(missing):
                found[keyword] = pa.concat_arrays(
                    [p[i] for p in parts] or [pa.array([], pa.string())]
                )
        return found

    def stored_keyword_tokens(self, keywords: tuple[str, ...]) -> dict[str, pa.ChunkedArray]:
        """The ``kw:`` columns of ``keywords`` that exist, read for every row."""
        present = [k for k in keywords if k in self.keyword_columns]
        if not present:
            return {}
        with self._lock:
            groups = list(range(len(self.group_start) - 1))
            table = self._read(groups, [KEYWORD_PREFIX + k for k in present])
            self.file.clear()
        return {k: table.column(KEYWORD_PREFIX + k) for k in present}

    def map_header_groups(self, function: Callable[[list[str]], T]) -> list[T]:
        """``function`` of each row group's headers, in order (one group in memory)."""
        groups = list(range(len(self.group_start) - 1))
        header = [self.schema.get_field_index("header")]
        with self._lock:
            self.file.prefetch(
                column_chunk_ranges(self.md, groups, header, self.source, self.file.size)
            )
            try:
                return [function(self._header_texts([g])) for g in groups]
            finally:
                self.file.clear()

    def header_column(self) -> list[str]:
        """Every header of the index, in row order."""
        with self._lock:
            texts = self._header_texts(list(range(len(self.group_start) - 1)))
            self.file.clear()
        return texts


def decode(
    reader: Any, size: int, *, source: str, data: bytes | None = None
) -> tuple[dict[str, str], ParquetFiles]:
    """Open a version 2 index: footer and layout columns now, headers when needed.

    Parameters
    ----------
    reader : ObjectReader or None
        Reads the index object (None when ``data`` holds it).
    size : int
        The object's size.
    source : str
        Its URI, for messages.
    data : bytes, optional
        The whole object, when already in memory.

    Returns
    -------
    fields : dict
        ``generator``, ``created`` and ``data_uri``.
    files : ParquetFiles
        The entries, read when asked for.

    Raises
    ------
    IndexFormatError
        Naming ``source``, for anything but a well-formed version 2 index.
    """
    file = RangeFile(reader, size, data=data)
    md = read_metadata(file, source)
    fields = document_fields(md, source)
    files = ParquetFiles(file, md, source)
    return fields, files
