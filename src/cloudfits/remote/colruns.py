"""Per-column byte runs of a binary table.

A FITS binary table stores whole rows one after another, so the bytes of one column
are scattered: one field per row. When a few narrow columns of wide rows are wanted,
fetching only those fields (one run per row and group of adjacent wanted columns)
can move far fewer bytes than whole rows. `cheaper_by_columns` decides with the cost
model: per-column runs are used when they fetch fewer bytes in no more round trips.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..fetch.spans import FetchOptions, split_parts

if TYPE_CHECKING:
    from ..fetch.reader import ObjectReader

__all__ = ["cell_runs", "cheaper_by_columns", "column_groups", "read_column_runs", "requests_for"]


def column_groups(hdu: Any, names: list[str], rowlen: int) -> list[tuple[int, int]] | None:
    """Byte ranges ``[a, b)`` within a row holding the named columns, adjacent ones merged.

    Returns None when astropy's row layout does not account for every byte of the
    row (then whole rows are read).
    """
    dtype = np.dtype(hdu.dtype)
    if dtype.names is None or dtype.itemsize != rowlen:
        return None
    all_names = list(hdu.columns)
    if len(all_names) != len(dtype.names):
        return None
    ranges = []
    for name in dict.fromkeys(names):
        field_type, offset = dtype.fields[dtype.names[all_names.index(name)]][:2]
        ranges.append((int(offset), int(offset) + int(field_type.itemsize)))
    ranges.sort()
    groups: list[tuple[int, int]] = []
    for a, b in ranges:
        if b <= a:
            continue
        if groups and a <= groups[-1][1]:
            groups[-1] = (groups[-1][0], max(b, groups[-1][1]))
        else:
            groups.append((a, b))
    return groups or None


def cell_runs(
    rows: np.ndarray, rowlen: int, groups: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and lengths of every (row, group) field, in file order."""
    starts = np.array([a for a, _ in groups], dtype=np.int64)
    lengths = np.array([b - a for a, b in groups], dtype=np.int64)
    offsets = (rows.astype(np.int64)[:, None] * rowlen + starts[None, :]).reshape(-1)
    return offsets, np.tile(lengths, rows.size)


def requests_for(
    offsets: np.ndarray, lengths: np.ndarray | int, options: FetchOptions
) -> tuple[int, int]:
    """Requests and bytes the engine would use for these runs."""
    spans = options.spans(offsets, lengths)
    requests = sum(len(split_parts(s.start, s.end, options.max_part)) for s in spans)
    return requests, sum(s.end - s.start for s in spans)


def cheaper_by_columns(
    rows: np.ndarray, rowlen: int, groups: list[tuple[int, int]], options: FetchOptions
) -> bool:
    """True when per-column runs fetch fewer bytes than whole rows, in no more waves."""
    if rows.size == 0 or rowlen == 0:
        return False
    by_rows = requests_for(rows.astype(np.int64) * rowlen, rowlen, options)
    by_cells = requests_for(*cell_runs(rows, rowlen, groups), options)
    waves_rows = -(-by_rows[0] // options.max_concurrency)
    waves_cells = -(-by_cells[0] // options.max_concurrency)
    return by_cells[1] < by_rows[1] and waves_cells <= waves_rows


def read_column_runs(
    reader: ObjectReader,
    base: int,
    rows: np.ndarray,
    rowlen: int,
    groups: list[tuple[int, int]],
    options: FetchOptions,
) -> np.ndarray:
    """Fetch the grouped fields of ``rows`` into whole rows (other bytes zero)."""
    offsets, lengths = cell_runs(rows, rowlen, groups)
    cells = reader.read_runs(base, offsets, lengths, options)
    width = sum(b - a for a, b in groups)
    cells2d = cells.reshape(rows.size, width)
    body = np.zeros((rows.size, rowlen), dtype=np.uint8)
    position = 0
    for a, b in groups:
        body[:, a:b] = cells2d[:, position : position + b - a]
        position += b - a
    return body.reshape(-1)
