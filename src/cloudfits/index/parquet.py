"""Index format version 2: one Parquet object, read column by column with range requests.

One row per HDU, sorted by path then HDU number:

============== ========== =====================================================
column         type       meaning
============== ========== =====================================================
path           string     the file's path relative to ``data_uri`` (repeated)
size           int64      the file's size in bytes (repeated)
etag           string     the file's ETag, or null (repeated)
last_modified  string     the file's last modification, or null (repeated)
hdu            int32      the HDU's number in its file, from 0
header_offset  int64      byte offset of the header
data_offset    int64      byte offset of the data
data_size      int64      bytes of data, without padding
header         string     the header's cards up to and including END
kw:KEYWORD     string     value token of KEYWORD's first card (see
                          `cloudfits.fits.keywords`), null where absent
============== ========== =====================================================

and, for whole-file gzip objects, their decompressed size and seek points
(`cloudfits.index.parquet_gzip`; null for plain objects, absent from older indexes).

The ``header`` column is the source of truth; the ``kw:`` columns are derived from it
when the index is written, for searches (at most `MAX_KEYWORD_COLUMNS`, the most
common keywords first; a search on another keyword reads the headers). The key-value
metadata ``cloudfits-index`` holds a JSON object with ``format``, ``version`` (2),
``generator``, ``created`` and ``data_uri``. A file's rows never span two row groups.

Loading reads the footer and the eight layout columns (and the decompressed size); the
headers of a row group are read when one of its files is first opened, and the ``kw:``
columns only by a search.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import IndexFormatError
from ..fetch.rangefile import RangeFile, SeekableRaw
from ..fits.keywords import keyword_values
from .entry import FORMAT_NAME, FileEntry, check_format
from .json_schema import MAX_INDEX_BYTES
from .parquet_gzip import GZIP_SIZE_COLUMN, gzip_columns, gzip_types

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .core import FitsIndex

__all__ = [
    "KEYWORD_PREFIX",
    "LAYOUT_COLUMNS",
    "MAX_KEYWORD_COLUMNS",
    "METADATA_KEY",
    "PARQUET_MAGIC",
    "ROW_GROUP_SIZE",
    "VERSION",
    "index_to_parquet",
    "encode",
    "document_fields",
    "read_metadata",
]

VERSION = 2
PARQUET_MAGIC = b"PAR1"
METADATA_KEY = b"cloudfits-index"
KEYWORD_PREFIX = "kw:"
#: HDUs per row group (whole files only): a file opened costs its row group's headers.
ROW_GROUP_SIZE = 4096
#: Most keyword columns written (the footer grows with row groups times columns).
MAX_KEYWORD_COLUMNS = 1000
LAYOUT_COLUMNS = (
    "path",
    "size",
    "etag",
    "last_modified",
    "hdu",
    "header_offset",
    "data_offset",
    "data_size",
)


@cache
def _types() -> dict[str, pa.DataType]:
    """The Arrow type of each layout column (and of ``header``)."""
    import pyarrow as pa

    return {
        "path": pa.string(),
        "size": pa.int64(),
        "etag": pa.string(),
        "last_modified": pa.string(),
        "hdu": pa.int32(),
        "header_offset": pa.int64(),
        "data_offset": pa.int64(),
        "data_size": pa.int64(),
        "header": pa.string(),
    }


_TAIL = 64 * 1024


# -- writing ----------------------------------------------------------------------


def _batches(files: list[FileEntry], rows: int) -> list[list[FileEntry]]:
    batches: list[list[FileEntry]] = [[]]
    count = 0
    for entry in files:
        if count and count + len(entry.hdus) > rows:
            batches.append([])
            count = 0
        batches[-1].append(entry)
        count += len(entry.hdus)
    return [b for b in batches if b]


def _layout_table(batch: list[FileEntry]) -> dict[str, Any]:
    def repeat(get: Any) -> list[Any]:
        return [get(f) for f in batch for _ in f.hdus]

    return {
        "path": repeat(lambda f: f.path),
        "size": repeat(lambda f: f.size),
        "etag": repeat(lambda f: f.etag),
        "last_modified": repeat(lambda f: f.last_modified),
        "hdu": [i for f in batch for i in range(len(f.hdus))],
        "header_offset": [h.header_offset for f in batch for h in f.hdus],
        "data_offset": [h.data_offset for f in batch for h in f.hdus],
        "data_size": [h.data_size for f in batch for h in f.hdus],
        "header": [h.header for f in batch for h in f.hdus],
    }


def index_to_parquet(
    index: FitsIndex,
    *,
    row_group_size: int = ROW_GROUP_SIZE,
    max_keyword_columns: int = MAX_KEYWORD_COLUMNS,
) -> bytes:
    """The index as a version 2 document (Parquet bytes); see `encode`."""
    fields = {"generator": index.generator, "created": index.created, "data_uri": index.data_uri}
    return encode(
        fields,
        index.files,
        row_group_size=row_group_size,
        max_keyword_columns=max_keyword_columns,
    )


def encode(
    fields: dict[str, str],
    files: list[FileEntry],
    *,
    row_group_size: int = ROW_GROUP_SIZE,
    max_keyword_columns: int = MAX_KEYWORD_COLUMNS,
) -> bytes:
    """A version 2 document (Parquet bytes) of ``files``.

    Parameters
    ----------
    fields : dict
        ``generator``, ``created`` and ``data_uri`` of the document.
    files : list of FileEntry
        The entries, in path order.
    row_group_size : int
        HDUs per row group (whole files only; a file with more HDUs has its own).
    max_keyword_columns : int
        Most ``kw:`` columns, the keywords found in most HDUs first.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    batches = _batches(files, row_group_size)
    counts: Counter[str] = Counter()
    for batch in batches:
        counts.update(keyword_values([h.header for f in batch for h in f.hdus]).counts())
    keywords = sorted(k for k, _ in counts.most_common(max_keyword_columns))
    # The decompressed size beside the layout columns (loading reads them as one span
    # per row group), the seek points after the headers (read with them).
    layout, gzip = dict(_types()), gzip_types()
    header = layout.pop("header")
    written = {**layout, GZIP_SIZE_COLUMN: gzip[GZIP_SIZE_COLUMN], "header": header, **gzip}
    columns_ = [pa.field(name, kind) for name, kind in written.items()]
    columns_ += [pa.field(KEYWORD_PREFIX + k, pa.string()) for k in keywords]
    meta = {
        "format": FORMAT_NAME,
        "version": VERSION,
        "generator": fields["generator"],
        "created": fields["created"],
        "data_uri": fields["data_uri"],
    }
    schema = pa.schema(columns_, metadata={METADATA_KEY: json.dumps(meta).encode()})
    sink = io.BytesIO()
    dictionary = ["path", "etag", "last_modified"] + [KEYWORD_PREFIX + k for k in keywords]
    with pq.ParquetWriter(
        sink,
        schema,
        compression="zstd",
        compression_level=3,
        use_dictionary=dictionary,
        write_statistics=False,
    ) as writer:
        for batch in batches:
            columns = {**_layout_table(batch), **gzip_columns(batch)}
            values = keyword_values(columns["header"])
            n = len(columns["header"])
            arrays = [pa.array(columns[name], kind) for name, kind in written.items()]
            arrays += [values.column(k, n) for k in keywords]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=n)
    return sink.getvalue()


# -- reading ----------------------------------------------------------------------


def read_metadata(file: RangeFile, source: str) -> pq.FileMetaData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = file.size
    if size < 12:
        raise IndexFormatError(f"{source}: {size} bytes is too short for a Parquet index")
    file.prefetch([(max(0, size - _TAIL), size)])
    file.seek(size - 8)
    tail = file.read(8)
    if tail[4:] != PARQUET_MAGIC:
        raise IndexFormatError(f"{source}: not a Parquet document (truncated?)")
    footer = int.from_bytes(tail[:4], "little")
    if footer + 12 > size:
        raise IndexFormatError(f"{source}: Parquet footer of {footer} bytes in {size} bytes")
    file.prefetch([(size - 8 - footer, size)])
    try:
        md = pq.read_metadata(file)
    except (pa.ArrowException, OSError, ValueError, EOFError) as err:
        raise IndexFormatError(f"{source}: broken Parquet footer: {err}") from None
    check_bounds(md, size, source)
    return md


def check_bounds(md: pq.FileMetaData, size: int, source: str) -> None:
    """Refuse, before any column is read, a document that would expand without bound.

    An index row is an HDU, whose path, offsets and header cannot take less than a
    byte of a real document: more rows than bytes is a decompression bomb (run-length
    or dictionary coding of one row repeated). The columns' decompressed sizes are
    bounded like a JSON index's (`cloudfits.index.json_schema.MAX_INDEX_BYTES`).
    """
    if md.num_rows > max(1024, size):
        raise IndexFormatError(
            f"{source}: {md.num_rows} rows in {size} bytes: more than one HDU per byte"
            " cannot be a real index (a decompression bomb?)"
        )
    total = 0
    for group in range(md.num_row_groups):
        # The row group's own total, not its column chunks' metadata: pyarrow (26)
        # aborts the process on some damaged column chunk metadata that it is asked
        # to describe, where reading the data raises an error instead.
        nbytes = md.row_group(group).total_byte_size
        if nbytes < 0:
            raise IndexFormatError(f"{source}: row group {group}: negative size")
        total += nbytes
    if total > MAX_INDEX_BYTES:
        raise IndexFormatError(
            f"{source}: the columns expand to {total} bytes, more than {MAX_INDEX_BYTES}"
        )


def document_fields(md: pq.FileMetaData, source: str) -> dict[str, str]:
    raw = (md.metadata or {}).get(METADATA_KEY)
    try:
        meta = json.loads(raw) if raw is not None else None
    except ValueError:
        meta = None
    meta = check_format(meta, VERSION, "Parquet", source)
    for key in ("generator", "created", "data_uri"):
        if not isinstance(meta.get(key), str):
            raise IndexFormatError(f"{source}: metadata {key!r} must be str")
    return {k: meta[k] for k in ("generator", "created", "data_uri")}


def column_types_ok(schema: pa.Schema) -> str | None:
    """What is wrong with the columns of a version 2 index, or None."""
    import pyarrow as pa

    for name, kind in _types().items():
        index = schema.get_field_index(name)
        if index < 0:
            return f"missing column {name!r}"
        found = schema.field(index).type
        if pa.types.is_string(kind) and not (
            pa.types.is_string(found) or pa.types.is_large_string(found)
        ):
            return f"column {name!r} must hold strings, not {found}"
        if pa.types.is_integer(kind) and not pa.types.is_integer(found):
            return f"column {name!r} must hold integers, not {found}"
    for name, kind in gzip_types().items():
        if name in schema.names and not (
            schema.field(name).type == kind or pa.types.is_large_string(schema.field(name).type)
        ):
            return f"column {name!r} must hold {kind}, not {schema.field(name).type}"
    for name in schema.names:
        if name.startswith(KEYWORD_PREFIX):
            found = schema.field(name).type
            if not (pa.types.is_string(found) or pa.types.is_large_string(found)):
                return f"column {name!r} must hold strings, not {found}"
    return None


class _Unread(Exception):
    """What `_NoData` raises for every read: the probe went as far as the data."""


class _NoData(SeekableRaw):
    """A file of ``size`` bytes none of which can be read."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    @property
    def extent(self) -> int:
        return self._size

    def readinto(self, buffer: Any) -> int:
        raise _Unread(f"read at byte {self._position}")


def check_chunk_metadata(
    md: pq.FileMetaData, size: int, row_groups: list[int], columns: list[int], source: str
) -> None:
    """Have pyarrow's reader describe these column chunks before Python asks for them.

    pyarrow (26) aborts the process when Python asks for the metadata of some damaged
    column chunks (a level histogram of the wrong size), where its reader raises an
    error for the same bytes. The reader is run over a file that yields no byte, with
    every chunk's range computed first: it stops at its first read when the metadata
    is sound, and raises, turned into `IndexFormatError`, when it is not.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        probe = pq.ParquetFile(_NoData(size), metadata=md, pre_buffer=True)
        names = [probe.schema_arrow.names[c] for c in columns]
        probe.read_row_groups(row_groups, columns=names, use_threads=False)
    except _Unread:
        return
    except (pa.ArrowException, OSError, ValueError, IndexError, EOFError) as err:
        raise IndexFormatError(f"{source}: broken Parquet column metadata: {err}") from None


def column_chunk_ranges(
    md: pq.FileMetaData, row_groups: list[int], columns: list[int], source: str, size: int
) -> list[tuple[int, int]]:
    """Byte ranges of the given columns in the given row groups, checked."""
    check_chunk_metadata(md, size, row_groups, columns, source)
    ranges = []
    for g in row_groups:
        group = md.row_group(g)
        for c in columns:
            chunk = group.column(c)
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and 0 < (chunk.dictionary_page_offset or 0) < start:
                start = chunk.dictionary_page_offset
            end = start + chunk.total_compressed_size
            if start < 0 or chunk.total_compressed_size < 0:
                raise IndexFormatError(f"{source}: row group {g}, column {c}: bad byte range")
            ranges.append((start, end))
    return ranges
