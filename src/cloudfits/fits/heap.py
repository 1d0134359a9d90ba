"""The heap of a binary table: variable-length array (P and Q) columns, fetched in part.

A P or Q cell holds a descriptor ``(count, offset)``: ``count`` elements at ``offset``
bytes into the heap, which starts ``THEAP`` bytes into the HDU's data. To read some
rows, only the heap bytes their descriptors point at are fetched; they are laid end to
end in a compact heap and the descriptors rewritten to point into it, so astropy
decodes the rows exactly as if it had the whole heap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FitsFormatError
from ..fetch.spans import merge_ranges
from .rowlayout import ELEMENT_BYTES

if TYPE_CHECKING:
    from ..fetch.reader import ObjectReader
    from ..fetch.spans import FetchOptions

__all__ = ["HeapColumn", "compact_heap", "heap_columns"]


@dataclass(frozen=True)
class HeapColumn:
    """Where a variable-length column's descriptors sit in a row, and what they count.

    Attributes
    ----------
    name : str
        The column name.
    row_offset : int
        Byte offset of the descriptor within a row.
    descriptor : numpy.dtype
        ``>i4`` (P) or ``>i8`` (Q): the type of ``count`` and ``offset``.
    element : str
        The TFORM letter of the elements (``E`` in ``PE(100)``).
    """

    name: str
    row_offset: int
    descriptor: np.dtype[Any]
    element: str

    def nbytes(self, counts: np.ndarray) -> np.ndarray:
        """Heap bytes taken by ``counts`` elements."""
        counts = counts.astype(np.int64)
        if self.element == "X":
            result: np.ndarray = (counts + 7) // 8
            return result
        return counts * ELEMENT_BYTES[self.element]


def heap_columns(coldefs: Any) -> list[HeapColumn]:
    """The variable-length columns of astropy ``ColDefs``, with their descriptor places."""
    fields = coldefs.dtype.fields
    found = []
    for column in coldefs:
        fmt = column.format
        letter = str(getattr(fmt, "format", "")).upper()
        if letter not in ("P", "Q") or not hasattr(fmt, "p_format"):
            continue
        element = str(fmt.p_format).upper()
        if element not in ELEMENT_BYTES and element != "X":
            raise FitsFormatError(f"column {column.name!r}: unknown element type {fmt}")
        descriptor = np.dtype(">i4" if letter == "P" else ">i8")
        found.append(HeapColumn(column.name, int(fields[column.name][1]), descriptor, element))
    return found


def descriptors(body: np.ndarray, rowlen: int, column: HeapColumn) -> np.ndarray:
    """A writeable ``(rows, 2)`` view of one column's ``(count, offset)`` in row bytes."""
    nrows = body.size // rowlen if rowlen else 0
    view: np.ndarray = np.ndarray(
        (nrows, 2),
        dtype=column.descriptor,
        buffer=body.data,
        offset=column.row_offset,
        strides=(rowlen, column.descriptor.itemsize),
    )
    return view


def compact_heap(
    reader: ObjectReader,
    body: np.ndarray,
    rowlen: int,
    columns: list[HeapColumn],
    heap_start: int,
    heap_size: int,
    options: FetchOptions,
    *,
    where: str,
) -> bytes:
    """Fetch the heap bytes the rows in ``body`` point at and rewrite their descriptors.

    Parameters
    ----------
    reader : ObjectReader
        Reads the object.
    body : numpy.ndarray
        The fetched rows (bytes, writeable); descriptors are rewritten in place.
    rowlen : int
        Bytes per row.
    columns : list of HeapColumn
        The variable-length columns.
    heap_start : int
        Offset of the heap in the object (data offset + THEAP).
    heap_size : int
        Bytes of heap in the HDU.
    options : FetchOptions
        Tuning of the fetch.
    where : str
        The HDU, for error messages.

    Returns
    -------
    bytes
        The compact heap the rewritten descriptors point into.
    """
    cells = []
    for column in columns:
        desc = descriptors(body, rowlen, column)
        counts, offsets = desc[:, 0].astype(np.int64), desc[:, 1].astype(np.int64)
        nbytes = column.nbytes(counts)
        bad = (counts < 0) | ((nbytes > 0) & ((offsets < 0) | (offsets + nbytes > heap_size)))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise FitsFormatError(
                f"{where}: column {column.name!r}: a descriptor (count {counts[row]}, offset"
                f" {offsets[row]}) points outside the heap of {heap_size} bytes"
            )
        cells.append((desc, offsets, nbytes))
    all_starts = np.concatenate([o for _, o, _ in cells]) if cells else np.zeros(0, np.int64)
    all_ends = np.concatenate([o + n for _, o, n in cells]) if cells else np.zeros(0, np.int64)
    starts, ends, _ = merge_ranges(all_starts, all_ends)
    pieces = reader.read_ranges(heap_start, starts, ends, options)
    new_starts = np.concatenate(([0], np.cumsum(ends - starts)[:-1])).astype(np.int64)
    for desc, offsets, nbytes in cells:
        block = np.clip(np.searchsorted(starts, offsets, side="right") - 1, 0, None)
        moved = new_starts[block] + offsets - starts[block] if starts.size else offsets
        desc[:, 1] = np.where(nbytes > 0, moved, 0)
    return b"".join(piece.tobytes() for piece in pieces)
