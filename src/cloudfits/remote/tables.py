"""Reading rows and columns of table HDUs (and random groups) into astropy Tables.

The rows are fetched as exact byte runs; decoding is astropy's own: the fetched rows
are presented to astropy as a table HDU of just those rows (and the heap, for
variable-length columns), so units, TNULL, TSCAL/TZERO, TDIM and string handling
come out exactly as ``Table.read`` gives them.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.utils.exceptions import AstropyWarning

from ..errors import CloudFitsError, CloudFitsWarning, FitsFormatError
from ..fits.geometry import HDUKind, axis_lengths, bitpix, int_card
from ..fits.heap import HeapColumn, compact_heap, heap_columns
from ..fits.rowlayout import plain_row_type
from ..fits.scan import padded, parse_header
from .colruns import cheaper_by_columns, column_groups, read_column_runs
from .narrow import narrow_rows

if TYPE_CHECKING:
    from astropy.table import Table

    from ..fetch.spans import FetchOptions
    from .hdulist import RemoteHDU

__all__ = [
    "TableColumns",
    "column_definitions",
    "header_only_hdu",
    "read_table",
    "row_indices",
    "row_nbytes",
    "row_count",
    "table_columns",
    "table_item",
]


def _read_column_runs(
    hdu: RemoteHDU,
    rows: np.ndarray,
    rowlen: int,
    groups: list[tuple[int, int]],
    options: FetchOptions,
) -> np.ndarray:
    return read_column_runs(hdu.file.reader, hdu.layout.data_offset, rows, rowlen, groups, options)


_HDU_CLASSES: dict[HDUKind, type[Any]] = {
    HDUKind.BINTABLE: fits.BinTableHDU,
    HDUKind.COMPRESSED_IMAGE: fits.BinTableHDU,
    HDUKind.TABLE: fits.TableHDU,
    HDUKind.GROUPS: fits.GroupsHDU,
}
_HEAP_KINDS = (HDUKind.BINTABLE, HDUKind.COMPRESSED_IMAGE)
_OPEN_OPTIONS: dict[str, Any] = {"uint": True, "character_as_bytes": True}
"""What ``Table.read(path)`` opens a file with, so text columns are bytes (dtype ``S``)
as there, and its empty-string masks (``mask_invalid``) apply."""


def row_count(kind: HDUKind, header: fits.Header) -> int:
    """Rows of a table (NAXIS2), or groups of a random-groups HDU (GCOUNT)."""
    if kind is HDUKind.GROUPS:
        return int_card(header, "GCOUNT", 1)
    lengths = axis_lengths(header)
    return lengths[1] if len(lengths) > 1 else 0


def row_nbytes(kind: HDUKind, header: fits.Header) -> int:
    """Bytes per row (NAXIS1), or per group for random groups."""
    lengths = axis_lengths(header)
    if kind is HDUKind.GROUPS:
        elements = int_card(header, "PCOUNT", 0)
        count = 1
        for n in lengths[1:]:
            count *= n
        return abs(bitpix(header)) // 8 * (elements + count)
    return lengths[0] if lengths else 0


def header_only_hdu(kind: HDUKind, header: fits.Header) -> Any:
    """An astropy HDU made from the header alone (for column definitions)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        return _HDU_CLASSES[kind].fromstring(header.tostring().encode("latin-1"), **_OPEN_OPTIONS)


@dataclass(frozen=True)
class TableColumns:
    """What reads need of a table's astropy column definitions, worked out once.

    Attributes
    ----------
    names : tuple of str
        Column names, in order.
    dtype : numpy.dtype
        astropy's record type of a whole row.
    variable : tuple of HeapColumn
        The variable-length columns (their descriptors' places in a row).
    """

    names: tuple[str, ...]
    dtype: np.dtype[Any]
    variable: tuple[HeapColumn, ...]


_KNOWN_COLUMNS: dict[tuple[HDUKind, str], TableColumns] = {}
_KNOWN_LOCK = threading.Lock()
_KNOWN_MAX = 64


def table_columns(
    kind: HDUKind, header_text: str, header: fits.Header | None = None
) -> TableColumns:
    """The `TableColumns` of a table header's cards (``HDULayout.header``).

    A binary table of fixed-width columns gets them from its cards
    (`~cloudfits.fits.rowlayout.plain_row_type`); any other from astropy's column
    definitions, which take some 6 ms for a 55-column table. Kept for the 64 headers
    met last, which every open of the same file (and every cube of a sector) shares.
    ``header``, when given, is ``header_text`` already parsed.

    Raises
    ------
    FitsFormatError
        When astropy cannot make columns of the header.
    """
    key = (kind, header_text)
    known = _KNOWN_COLUMNS.get(key)
    if known is not None:
        return known
    if header is None:
        header = parse_header(header_text, where="table header")
    plain = plain_row_type(header) if kind is HDUKind.BINTABLE else None
    if plain is not None:
        known = TableColumns(*plain, ())
    else:
        coldefs = column_definitions(kind, header)
        variable = tuple(heap_columns(coldefs)) if kind in _HEAP_KINDS else ()
        known = TableColumns(tuple(coldefs.names), np.dtype(coldefs.dtype), variable)
    with _KNOWN_LOCK:
        if len(_KNOWN_COLUMNS) >= _KNOWN_MAX:
            del _KNOWN_COLUMNS[next(iter(_KNOWN_COLUMNS))]
        _KNOWN_COLUMNS[key] = known
    return known


def column_definitions(kind: HDUKind, header: fits.Header) -> Any:
    """The astropy column definitions of a table header.

    Raises
    ------
    FitsFormatError
        When astropy cannot make columns of the header.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            return header_only_hdu(kind, header).columns
    except Exception as err:
        # astropy parses column cards lazily and complains about a hostile one (an
        # edited index) with any of half a dozen exception types.
        raise FitsFormatError(f"table columns: {type(err).__name__}: {err}") from err


def row_indices(rows: Any, nrows: int) -> np.ndarray:
    """The row numbers a ``rows`` argument selects, in the order asked for.

    Accepts ``None`` (all rows), an integer, a slice, a sequence of integers or a
    boolean mask, with numpy's meaning (negative numbers count from the end).
    """
    if rows is None:
        return np.arange(nrows, dtype=np.int64)
    if isinstance(rows, slice):
        # The slice's own rows only: a few rows of a 10^9-row table cost a few bytes.
        start, stop, step = rows.indices(nrows)
        return np.arange(start, stop, step, dtype=np.int64)
    picked = np.asarray(rows)
    if picked.size == 0:
        return np.zeros(0, dtype=np.int64)
    if picked.dtype == bool:
        if picked.shape != (nrows,):
            raise IndexError(f"a boolean row mask must have {nrows} entries, not {picked.shape}")
        return np.flatnonzero(picked).astype(np.int64)
    if picked.dtype.kind not in "iu":
        raise TypeError(f"rows must be integers, a slice or a boolean mask, not {rows!r}")
    picked = picked.astype(np.int64).reshape(-1)
    if picked.size and (picked.max() >= nrows or picked.min() < -nrows):
        bad = picked[(picked >= nrows) | (picked < -nrows)][0]
        raise IndexError(f"row {bad} is out of range for a table of {nrows} rows")
    return np.where(picked < 0, picked + nrows, picked)


def _fake_header(kind: HDUKind, header: fits.Header, nrows: int, heap: int | None) -> Any:
    fake = header.copy()
    if kind is HDUKind.GROUPS:
        fake["GCOUNT"] = nrows
        return fake
    fake["NAXIS2"] = nrows
    if kind is HDUKind.TABLE:
        return fake
    if heap is None:
        fake["PCOUNT"] = 0
        fake.remove("THEAP", ignore_missing=True)
    else:
        fake["PCOUNT"] = heap
        theap = nrows * row_nbytes(kind, header)
        if "THEAP" in fake:
            fake["THEAP"] = theap
        else:  # appending must not use up the header's blank cards, which astropy keeps
            fake.append(("THEAP", theap), useblanks=False)
    if kind is HDUKind.COMPRESSED_IMAGE:
        fake["ZIMAGE"] = False
    return fake


def read_table(
    hdu: RemoteHDU,
    rows: Any = None,
    columns: Any = None,
    options: FetchOptions | None = None,
) -> Table:
    """Read rows and columns of a table HDU as an astropy `~astropy.table.Table`.

    See `RemoteHDU.read`.
    """
    kind, header = hdu.kind, hdu.stored_header
    nrows = row_count(kind, header)
    rowlen = row_nbytes(kind, header)
    wanted = row_indices(rows, nrows)
    unique, inverse = np.unique(wanted, return_inverse=True)
    empty = unique.size == 0 and nrows > 0
    if empty:
        # astropy cannot decode some zero-row tables from memory: read one row, keep none.
        unique = np.zeros(1, dtype=np.int64)
    options = options or hdu.file.fetch_options
    layout = hdu.layout
    variable = list(hdu.table_columns.variable)
    groups = None
    narrowed = None
    if columns is not None and kind is HDUKind.BINTABLE and not variable:
        wanted_names = _column_names(hdu.columns, columns)
        groups = column_groups(hdu, wanted_names, rowlen)
        if groups is not None and not cheaper_by_columns(unique, rowlen, groups, options):
            groups = None
    if groups is None:
        body = hdu.file.reader.read_runs(layout.data_offset, unique * rowlen, rowlen, options)
    else:
        body = _read_column_runs(hdu, unique, rowlen, groups, options)
    if columns is not None and kind is HDUKind.BINTABLE and not variable:
        narrowed = _narrowed(hdu, wanted_names, body, int(unique.size), rowlen)
    if narrowed is not None:
        table = _decode(kind, *narrowed, hdu)
        # Column numbers counted in the whole table: select by the names they gave.
        return _finish(table, kind, empty, unique, wanted, inverse, wanted_names)
    heap_size: int | None = None
    parts = [body.tobytes()]
    if variable and layout.data_size > nrows * rowlen:
        theap = _theap(header, nrows * rowlen, layout.data_size, hdu)
        heap = compact_heap(
            hdu.file.reader,
            body,
            rowlen,
            variable,
            layout.data_offset + theap,
            nrows * rowlen + int(header.get("PCOUNT", 0)) - theap,
            options,
            where=f"{hdu.file.uri}: HDU {hdu.number}",
        )
        heap_size = len(heap)
        parts = [body.tobytes(), heap]
    data = b"".join(parts)
    fake = _fake_header(kind, header, int(unique.size), heap_size)
    table = _decode(kind, fake.tostring(), data, hdu)
    return _finish(table, kind, empty, unique, wanted, inverse, columns)


def _narrowed(
    hdu: RemoteHDU, names: list[str], body: np.ndarray, nrows: int, rowlen: int
) -> tuple[str, bytes] | None:
    dtype = np.dtype(hdu.dtype)
    all_names = list(hdu.columns)
    if dtype.names is None or dtype.itemsize != rowlen or len(all_names) != len(dtype.names):
        return None
    picked = [all_names.index(name) for name in names]
    return narrow_rows(hdu.layout.header, dtype, picked, body, nrows)


def _decode(kind: HDUKind, header_text: str, data: bytes, hdu: RemoteHDU) -> Table:
    head = header_text.encode("latin-1")
    head += b" " * (padded(len(head)) - len(head))
    blob = head + data + b"\0" * (padded(len(data)) - len(data))
    try:
        with warnings.catch_warnings():
            # The header's own complaints came when it was parsed; Table.read's (units) pass.
            warnings.simplefilter("ignore", VerifyWarning)
            table_hdu = _HDU_CLASSES[kind].fromstring(blob, **_OPEN_OPTIONS)
        return _as_table(table_hdu, hdu)
    except CloudFitsError:
        raise
    except (ArithmeticError, LookupError, TypeError, ValueError) as err:
        # A column card astropy accepts but cannot apply (TSCALn = 'abc', a TDISPn
        # that cannot show the values): the same failure as Table.read's, named.
        raise FitsFormatError(
            f"{hdu.file.uri}: HDU {hdu.number} (data at byte {hdu.layout.data_offset}):"
            f" astropy cannot decode the table: {type(err).__name__}: {err}"
        ) from err


def _finish(
    table: Table,
    kind: HDUKind,
    empty: bool,
    unique: np.ndarray,
    wanted: np.ndarray,
    inverse: np.ndarray,
    columns: Any,
) -> Table:
    if kind is HDUKind.COMPRESSED_IMAGE and "ZIMAGE" in table.meta:
        table.meta["ZIMAGE"] = True
    if empty:
        table = table[:0]
    elif unique.size != wanted.size or not np.array_equal(unique, wanted):
        table = table[inverse.reshape(-1)]
    if columns is not None:
        names = _column_names(table.colnames, columns)
        table = table[names]
    return table


def _theap(header: fits.Header, table_bytes: int, data_size: int, hdu: RemoteHDU) -> int:
    """The heap's offset in the data, checked: a heap never overlaps the rows."""
    value = header.get("THEAP", table_bytes)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        value = -1
    if not table_bytes <= int(value) <= data_size:
        raise FitsFormatError(
            f"{hdu.file.uri}: HDU {hdu.number} (data at byte {hdu.layout.data_offset}):"
            f" THEAP = {header.get('THEAP')!r} is outside [{table_bytes}, {data_size}]"
            " (the heap follows the rows)"
        )
    return int(value)


def _as_table(table_hdu: Any, hdu: RemoteHDU) -> Table:
    # Imported on the first table read: astropy.table (with the readers it registers)
    # is a quarter of a second of ``import cloudfits``, which a command that reads no
    # table (``cloudfits index``) should not pay.
    from astropy.table import Table

    try:
        return Table.read(table_hdu)
    except (TypeError, ValueError) as err:
        # astropy's Table reader fails on a string TNULL of a numeric column (every
        # ASCII table column with TNULL, for one); its FITS_rec still decodes them.
        # Read it without those TNULLs: units, formats and metadata as Table.read.
        unusable = [
            f"TNULL{i}"
            for i, column in enumerate(table_hdu.columns, 1)
            if isinstance(column.null, str) and column.dtype.kind not in "SU"
        ]
        if not unusable:
            raise
        warnings.warn(
            f"{hdu.file.uri}: HDU {hdu.number}: astropy's Table reader fails on this table"
            f" ({err}); the cells holding {', '.join(unusable)} are masked",
            CloudFitsWarning,
            stacklevel=4,
        )
        return read_with_text_nulls(table_hdu)


def read_with_text_nulls(table_hdu: Any) -> Table:
    """``Table.read`` of a table whose numeric columns have a text TNULL.

    The values are those astropy decodes (the TNULL text gives NaN, or 0 for an
    integer column); ``Table.read`` then runs with those TNULLs cleared, so units,
    formats, metadata and its masks (NaN, empty text) are its own, and the cells
    holding a TNULL text are masked as well.
    """
    data = table_hdu.data
    nulls: dict[str, Any] = {}
    for i, column in enumerate(table_hdu.columns):
        if isinstance(column.null, str) and data.field(i).dtype.kind not in "SU":
            raw = np.char.strip(data.base.field(i))
            if (raw == column.null.strip().encode("latin-1")).any():
                nulls[column.name] = raw == column.null.strip().encode("latin-1")
            column.null = None  # the decoded values stay: astropy caches them
    from astropy.table import MaskedColumn, Table

    table = Table.read(table_hdu)
    for name, mask in nulls.items():
        table[name] = MaskedColumn(table[name], mask=np.ma.getmaskarray(table[name]) | mask)
    return table


def table_item(hdu: RemoteHDU, key: Any) -> Any:
    """``hdu[key]`` of a table: a column (name), a cell (row, column), a table of
    columns (list of names), a row (int), or a table of rows (anything ``rows`` takes)."""
    if isinstance(key, str):
        return hdu.read(columns=[key])[key]
    if isinstance(key, tuple) and len(key) == 2:
        row, column = key
        table = hdu.read(rows=[row], columns=[column])
        return table[table.colnames[0]][0]
    if isinstance(key, list) and key and all(isinstance(k, str) for k in key):
        return hdu.read(columns=key)
    if isinstance(key, (int, np.integer)):
        return hdu.read(rows=[key])[0]
    return hdu.read(rows=key)


def _column_names(available: list[str], columns: Any) -> list[str]:
    if isinstance(columns, (str, int, np.integer)):
        columns = [columns]
    names: list[str] = []
    lowered = {name.lower(): name for name in available}
    for column in columns:
        if isinstance(column, (int, np.integer)):
            names.append(available[int(column)])
        elif column in available:
            names.append(column)
        elif str(column).lower() in lowered:
            names.append(lowered[str(column).lower()])
        else:
            raise KeyError(f"no column {column!r}; columns are {', '.join(available)}")
    return names
