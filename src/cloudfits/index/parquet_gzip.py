"""The seek points of whole-file gzip objects in a version 2 (Parquet) index.

Two nullable columns, null for every plain FITS object:

=========================== ======= ===================================================
column                      type    meaning
=========================== ======= ===================================================
``gzip_uncompressed_size``  int64   the decompressed size (repeated on every HDU row);
                                    read with the layout columns, as the HDU offsets of
                                    a gzip object are checked against it
``gzip``                    string  the seek points, the JSON object of index format
                                    version 1's ``gzip`` field, on the row of HDU 0;
                                    read when the file is opened
=========================== ======= ===================================================

An index written before these columns existed has neither; every file in it is plain.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import IndexFormatError
from ..remote.seekpoints import MAX_SEEK_POINTS, MAX_WINDOW_TEXT, GzipSeekPoints
from .entry import FileEntry

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "GZIP_POINTS_COLUMN",
    "GZIP_SIZE_COLUMN",
    "gzip_columns",
    "gzip_sizes",
    "gzip_types",
    "parse_gzip_text",
]

GZIP_SIZE_COLUMN = "gzip_uncompressed_size"
GZIP_POINTS_COLUMN = "gzip"
#: Longest ``gzip`` text accepted: every point's window at its longest, and its numbers.
MAX_GZIP_TEXT = MAX_SEEK_POINTS * (MAX_WINDOW_TEXT + 256) + 1024


def gzip_types() -> dict[str, pa.DataType]:
    """The Arrow types of the two columns."""
    import pyarrow as pa

    return {GZIP_SIZE_COLUMN: pa.int64(), GZIP_POINTS_COLUMN: pa.string()}


def gzip_columns(batch: list[FileEntry]) -> dict[str, list[Any]]:
    """The two columns of a batch of entries, one value per HDU row."""
    sizes: list[int | None] = []
    points: list[str | None] = []
    for entry in batch:
        gzip = entry.gzip
        text = None if gzip is None else json.dumps(gzip.to_dict(), separators=(",", ":"))
        for i in range(len(entry.hdus)):
            sizes.append(None if gzip is None else gzip.uncompressed_size)
            points.append(text if i == 0 else None)
    return {GZIP_SIZE_COLUMN: sizes, GZIP_POINTS_COLUMN: points}


def gzip_sizes(table: pa.Table, first_rows: np.ndarray, source: str) -> np.ndarray:
    """Each file's decompressed size, -1 for a plain file, from the layout table.

    Raises
    ------
    IndexFormatError
        When the value differs between the rows of one file, or is negative.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n_files = len(first_rows)
    if GZIP_SIZE_COLUMN not in table.column_names:
        return np.full(n_files, -1, dtype=np.int64)
    try:
        column = pc.fill_null(table.column(GZIP_SIZE_COLUMN).cast(pa.int64()), -1)
        values = np.asarray(column.to_numpy(), dtype=np.int64)
    except pa.ArrowException as err:
        raise IndexFormatError(f"{source}: column {GZIP_SIZE_COLUMN!r}: {err}") from None
    sizes: np.ndarray = values[first_rows]
    file_of_row = np.repeat(np.arange(n_files), np.diff(np.append(first_rows, len(values))))
    if np.any(values != sizes[file_of_row]) or np.any(values < -1):
        raise IndexFormatError(
            f"{source}: column {GZIP_SIZE_COLUMN!r} must be one non-negative value per file"
        )
    return sizes


def parse_gzip_text(text: Any, *, size: int, uncompressed_size: int, where: str) -> GzipSeekPoints:
    """The seek points of one file from its ``gzip`` value, checked."""
    if not isinstance(text, str) or len(text) > MAX_GZIP_TEXT:
        raise IndexFormatError(
            f"{where}: column {GZIP_POINTS_COLUMN!r} must hold the seek points of a gzip"
            f" object (at most {MAX_GZIP_TEXT} characters) on its first row"
        )
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise IndexFormatError(f"{where}: gzip seek points are not JSON: {err}") from None
    points = GzipSeekPoints.from_dict(raw, size=size, where=where)
    if points.uncompressed_size != uncompressed_size:
        raise IndexFormatError(
            f"{where}: the gzip seek points say {points.uncompressed_size} decompressed"
            f" bytes, column {GZIP_SIZE_COLUMN!r} says {uncompressed_size}"
        )
    return points
