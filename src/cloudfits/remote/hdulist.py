"""`RemoteFITS` and `RemoteHDU`: astropy-like access to a FITS object in a store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TextIO, overload

import numpy as np
from astropy.io.fits import Header

from ..fetch.spans import FetchOptions
from ..fetch.stats import ReadStats
from ..fits.astropy_view import astropy_hdu, hdu_kind_of, presented_header, standard_view
from ..fits.geometry import (
    HDUKind,
    ImageScaling,
    card_value,
    image_scaling,
    image_shape,
    scale_image,
)
from ..fits.planner import plan_section
from ..fits.scan import HDULayout, HDUScanner, parse_header
from ..providers.location import ObjectLocation
from .compressed import TileCompressedImage
from .gzipped import reader_for
from .info import hdu_repr, hdu_summary, print_info
from .lazy_hdus import LazyHDUs
from .lookup import check_layout, has_hdu, hdu_number, no_data_reason
from .section import Section, iter_chunks, split_fetch_options
from .sky import cutout, header_wcs
from .tables import TableColumns, read_table, row_count, table_columns, table_item

if TYPE_CHECKING:
    import dask.array

    from ..fetch.reader import ObjectReader
    from ..index.core import FileEntry, FitsIndex
    from .seekpoints import GzipSeekPoints

__all__ = ["RemoteFITS", "RemoteHDU", "Section", "split_fetch_options"]


class RemoteHDU:
    """One HDU of a `RemoteFITS`. The header is in hand; data is read on request."""

    def __init__(self, file: RemoteFITS, number: int, layout: HDULayout) -> None:
        self.file = file
        self.number = number
        self.layout = layout
        self._layout_checked = False

    def __repr__(self) -> str:
        return hdu_repr(self)

    @cached_property
    def stored_header(self) -> Header:
        """The header as indexed, source of layout and scaling; `header` is a copy to edit."""
        return parse_header(self.layout.header, where=f"{self.file.uri}: HDU {self.number}")

    @cached_property
    def raw_header(self) -> Header:
        """The header as stored in the file (no request), a copy of `stored_header`: that
        is `header`, except for a tile-compressed image (the header of its tile table)."""
        return self.stored_header.copy()

    @cached_property
    def _astropy(self) -> Any:
        """The HDU astropy makes of this header (its data not read)."""
        where = f"{self.file.uri}: HDU {self.number}"
        return astropy_hdu(self.layout.header, where=where)

    @cached_property
    def header(self) -> Header:
        """The header as astropy presents it, an `~astropy.io.fits.Header` (no request).

        That is ``fits.open(...)[n].header``: the cards of the file, with the changes
        astropy makes on opening (``EXTEND = T`` in a primary header followed by
        extensions; ``NAXIS1 = 0`` for random groups). For a tile-compressed image,
        the image header astropy presents (``CompImageHDU.header``); the cards as
        stored are `raw_header`. Editing it changes no read: layout and scaling follow
        `stored_header`.
        """
        if self.kind.is_compressed:
            return self.compressed.header.copy()
        count = 2 if self.file.scanned(2) else 1  # all that astropy's EXTEND rule asks
        return presented_header(self._astropy, self.number, count).copy()

    @property
    def _image_header(self) -> Header:
        """The header the data's layout and scaling follow (never the user's copy)."""
        return self.compressed.header if self.kind.is_compressed else self.stored_header

    @cached_property
    def kind(self) -> HDUKind:
        """The kind of HDU astropy makes of it (`~cloudfits.fits.geometry.HDUKind`)."""
        # A standard header says it without astropy's HDU (see `standard_view`).
        return (self._standard_view or (hdu_kind_of(self._astropy),))[0]

    _standard_view = cached_property(lambda self: standard_view(self.layout.header))

    def _scaling(self) -> ImageScaling:
        if self.kind is HDUKind.NONSTANDARD:
            raw = np.dtype("u1")
            return ImageScaling(raw, raw, 1, 0, None, False)
        where = f"{self.file.uri}: HDU {self.number} at byte {self.layout.header_offset}: "
        return image_scaling(self._image_header, where=where)

    @cached_property
    def compressed(self) -> TileCompressedImage:
        """The tile-compressed image of this HDU (its tile table is read once, then kept)."""
        if not self.kind.is_compressed:
            raise TypeError(f"{self!r} is not a tile-compressed image")
        return TileCompressedImage(self)

    @property
    def name(self) -> str:
        """EXTNAME; ``"PRIMARY"`` for HDU 0 without one, else ``""``.

        For a tile-compressed image without an EXTNAME of its own (ZEXTNAME), the
        EXTNAME of the table that holds it, as astropy names it.
        """
        default = "PRIMARY" if self.number == 0 else ""
        outer = card_value(self.stored_header, "EXTNAME", default)
        name = card_value(self._image_header, "EXTNAME", outer)
        return str(name).strip()

    @property
    def ver(self) -> int:
        """EXTVER, or 1 where it is missing or not an integer."""
        value = card_value(self._image_header, "EXTVER", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) else 1

    @property
    def is_image(self) -> bool:
        """True for primary and image HDUs (read with ``section``)."""
        return self.kind.is_image

    @cached_property
    def shape(self) -> tuple[int, ...]:
        """Numpy shape: the image's, or ``(rows,)`` for tables and random groups."""
        if self.kind.is_compressed:
            return self.compressed.shape
        if self.kind is HDUKind.NONSTANDARD:
            return (self.layout.data_size,) if self.layout.data_size else ()
        if self.kind.is_image:
            return image_shape(self.stored_header)
        return (row_count(self.kind, self.stored_header),)

    @cached_property
    def dtype(self) -> np.dtype[Any]:
        """Type of the values returned: astropy's (scaled) image type, or the row type."""
        if self.kind.is_compressed:
            return self.compressed.dtype
        if self.kind.is_image:
            return self._scaling().dtype
        return self.table_columns.dtype

    @property
    def ndim(self) -> int:
        """Number of axes of ``shape``."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Bytes of data in the object."""
        return self.layout.data_size

    @property
    def section(self) -> Section:
        """Partial reads of an image with numpy indexing."""
        self._require_image("section")
        return Section(self)

    @cached_property
    def table_columns(self) -> TableColumns:
        """Names, row type and variable-length columns of a table (`TableColumns`)."""
        if self.kind.is_image and not self.kind.is_compressed:
            raise TypeError(f"{self!r} is an image; it has no columns")
        return table_columns(self.kind, self.layout.header, self.stored_header)

    @property
    def columns(self) -> list[str]:
        """Column names of a table HDU (of the tile table, for a compressed image)."""
        return list(self.table_columns.names)

    def _check_layout(self) -> None:
        """Refuse to read when the layout disagrees with the header (an edited index)."""
        if not self._layout_checked:
            check_layout(self)
            self._layout_checked = True

    def _require_image(self, what: str) -> None:
        if not self.kind.is_image:
            raise TypeError(f"{self!r} is a {self.kind.value}; use read(rows=, columns=)")
        if not self.shape:
            raise TypeError(f"{self!r} has no data ({what} needs NAXIS > 0)")

    def read_section(self, key: Any = ..., **tuning: int) -> np.ndarray:
        """Read ``data[key]`` of an image; ``tuning`` overrides the fetch options."""
        self._require_image("read_section")
        self._check_layout()
        options = self.file.fetch_options.updated(**tuning)
        if self.kind.is_compressed:
            return self.compressed.read(key, options)
        scaling = self._scaling()
        plan = plan_section(
            self.shape, scaling.raw_dtype.itemsize, key, widen_below=options.max_gap
        )
        raw = self.file.reader.read_runs(
            self.layout.data_offset, plan.run_offsets, plan.run_nbytes, options
        )
        values = raw.view(scaling.raw_dtype).reshape(plan.buffer_shape)
        result: np.ndarray = scale_image(values, scaling)[plan.finish]
        return result

    def to_dask(self, chunks: Any = None, **tuning: int) -> dask.array.Array:
        """A lazy `dask.array.Array` of this image; building it makes no request.

        Each chunk is computed by a planned read of exactly its bytes, with the values
        and type of `section`. The graph pickles without the open file, so it runs on
        ``dask.distributed`` workers (see :doc:`dask-arrays`). Needs
        ``pip install -e '.[dask]'``.

        Parameters
        ----------
        chunks : int, tuple, dict or str, optional
            Anything ``dask.array`` takes (``"auto"`` included). By default the chunks
            follow the file's layout: the fastest axes whole, the slowest split, each
            chunk one contiguous byte run of at most dask's ``array.chunk-size``
            (whole tiles for a tile-compressed image).
        **tuning
            ``max_gap``, ``max_part``, ``max_concurrency`` of every chunk read.
        """
        from ..scale.daskarray import to_dask

        return to_dask(self, chunks, **tuning)

    def read(self, rows: Any = None, columns: Any = None, **tuning: int) -> Any:
        """Read table rows and columns as an astropy `~astropy.table.Table`.

        Parameters
        ----------
        rows : int, slice, sequence of int or boolean mask, optional
            The rows (all by default), in the order given.
        columns : str, int or sequence of them, optional
            Column names (case-insensitive) or numbers (all by default).
        **tuning
            ``max_gap``, ``max_part``, ``max_concurrency`` for this read.

        For an image HDU, tile-compressed or not, ``read()`` returns the whole array
        (as ``section[...]``); the tile table of a compressed image is read with
        `read_tile_table`.
        """
        if self.kind.is_image:
            if rows is not None or columns is not None:
                hint = "; its tile table: read_tile_table()" if self.kind.is_compressed else ""
                raise TypeError(f"{self!r} is an image; use section[...]{hint}")
            return self.read_section(..., **tuning)
        self._check_layout()
        options = self.file.fetch_options.updated(**tuning)
        return read_table(self, rows, columns, options)

    def read_tile_table(self, rows: Any = None, columns: Any = None, **tuning: int) -> Any:
        """Read rows of a compressed image's tile table, as astropy's ``Table.read``
        of the binary table gives them (one row per tile; compressed bytes included).

        Parameters are those of `read`; only the heap bytes of those rows are fetched.
        """
        if not self.kind.is_compressed:
            raise TypeError(f"{self!r} is not a tile-compressed image; use read()")
        self._check_layout()
        options = self.file.fetch_options.updated(**tuning)
        return read_table(self, rows, columns, options)

    def __getitem__(self, key: Any) -> Any:
        """``data[key]`` of an image; of a table, what `table_item` says ``key`` picks."""
        return self.read_section(key) if self.kind.is_image else table_item(self, key)

    def __iter__(self) -> Iterator[Any]:
        """Table rows (or image planes along the first axis), a chunk per request."""
        return iter_chunks(self)

    @property
    def data(self) -> Any:
        """Not provided: it would read the whole HDU (`section`, `read`, ``getdata``)."""
        raise AttributeError(no_data_reason(self))

    @cached_property
    def wcs(self) -> Any:
        """The image's `astropy.wcs.WCS`, from the indexed header (no request)."""
        return header_wcs(self)

    def cutout(
        self, position: Any, size: Any, *, mode: str = "trim", fill_value: float = np.nan
    ) -> Any:
        """An `astropy.nddata.Cutout2D` of a 2-D image, fetching only its pixels.

        Parameters
        ----------
        position : `~astropy.coordinates.SkyCoord` or (x, y)
            The centre: a sky position (needs a celestial WCS) or a pixel pair.
        size : int, pair, or `~astropy.units.Quantity`
            ``(ny, nx)`` pixels, or angles, as `~astropy.nddata.Cutout2D` takes them.
        mode, fill_value
            As for `~astropy.nddata.Cutout2D` (``"trim"``, ``"partial"``, ``"strict"``).
        """
        return cutout(self, position, size, mode=mode, fill_value=fill_value)

    def summary(self) -> tuple[int, str, Any, str, int, Any, str, str]:
        """The row `astropy.io.fits.HDUList.info` shows (`cloudfits.remote.info.hdu_summary`)."""
        return hdu_summary(self)


class RemoteFITS:
    """A FITS object in a store, opened from an index entry or by scanning its headers.

    Indexing gives `RemoteHDU` objects: by number, by EXTNAME, or by ``(EXTNAME,
    EXTVER)``; HDUs that ``scanner`` has not found yet are scanned when asked for.
    ``stats`` counts the requests and bytes of every read of this file.
    """

    def __init__(
        self,
        reader: ObjectReader,
        layouts: Sequence[HDULayout],
        *,
        uri: str,
        size: int,
        etag: str | None = None,
        fetch_options: FetchOptions | None = None,
        stats: ReadStats | None = None,
        location: ObjectLocation | None = None,
        scanner: HDUScanner | None = None,
    ) -> None:
        self.reader = reader
        self.location = location
        self.uri = uri
        self.size = size
        self.etag = etag
        self.fetch_options = fetch_options or FetchOptions.from_environment()
        self.live_stats = stats or ReadStats()
        self._hdus = LazyHDUs(layouts, lambda i, layout: RemoteHDU(self, i, layout), scanner)

    @property
    def hdus(self) -> list[RemoteHDU]:
        """Every HDU, in order (the headers not yet scanned are read first)."""
        return self._hdus.all()

    def scanned(self, count: int) -> bool:
        """Whether the object has at least ``count`` HDUs, scanning only as far as needed."""
        return self._hdus.at_least(count)

    @classmethod
    def from_location(
        cls,
        location: ObjectLocation,
        layouts: Sequence[HDULayout],
        *,
        size: int,
        etag: str | None = None,
        fetch_options: FetchOptions | None = None,
        gzip: GzipSeekPoints | None = None,
    ) -> RemoteFITS:
        """Open an object whose layout is known, without a request.

        Every read is pinned to ``etag`` when given: a replaced object raises
        `cloudfits.StaleIndexError` instead of returning other bytes. ``gzip``: the
        seek points of a whole-file gzip object, through which it is read.
        """
        stats = ReadStats()
        reader = reader_for(location, [stats], etag=etag, gzip=gzip, size=size)
        return cls(
            reader,
            layouts,
            uri=location.uri,
            size=size,
            etag=etag,
            fetch_options=fetch_options,
            stats=stats,
            location=location,
        )

    @classmethod
    def from_entry(cls, index: FitsIndex, entry: FileEntry, options: dict[str, Any]) -> RemoteFITS:
        """Open an index entry (see `FitsIndex.open`)."""
        tuning, options = split_fetch_options(dict(options or {}))
        location, gzip = index.data_location(options).below(entry.path), entry.gzip
        return cls.from_location(
            location, entry.hdus, size=entry.size, etag=entry.etag, fetch_options=tuning, gzip=gzip
        )

    @property
    def stats(self) -> ReadStats:
        """Requests and bytes of every read of this file so far: a snapshot.

        ``before = f.stats; ...; f.stats - before`` is what the reads between cost.
        `live_stats` is the counter itself (for a progress bar); `reset_stats` zeroes it.
        """
        return self.live_stats.copy()

    def reset_stats(self) -> None:
        """Set this file's counters back to zero."""
        self.live_stats.reset()

    def __repr__(self) -> str:
        n, complete = self._hdus.found, self._hdus.complete
        return f"<RemoteFITS {self.uri} ({'' if complete else 'at least '}{n} HDU{'s' * (n != 1)})>"

    def __len__(self) -> int:
        return len(self.hdus)

    def __iter__(self) -> Iterator[RemoteHDU]:
        return iter(self._hdus)

    def __enter__(self) -> RemoteFITS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: connections belong to the shared provider."""

    def index_of(self, key: int | str | tuple[str, int]) -> int:
        """The HDU number for a number, an EXTNAME or an ``(EXTNAME, EXTVER)`` pair."""
        return hdu_number(self, key)

    def __contains__(self, key: object) -> bool:
        """``"SCI" in f``, ``("SCI", 2) in f``, ``1 in f``, as for an ``HDUList``."""
        return has_hdu(self, key)

    @overload
    def __getitem__(self, key: slice) -> list[RemoteHDU]: ...
    @overload
    def __getitem__(self, key: int | str | tuple[str, int]) -> RemoteHDU: ...
    def __getitem__(self, key: Any) -> RemoteHDU | list[RemoteHDU]:
        """An HDU by number, EXTNAME or ``(EXTNAME, EXTVER)``; a slice gives a list."""
        if isinstance(key, slice):
            return self.hdus[key]
        return self._hdus[self.index_of(key)]

    def info(self, output: TextIO | bool | None = None) -> list[tuple[Any, ...]] | None:
        """Print a summary of the HDUs, like astropy's ``HDUList.info``.

        With ``output=False``, return the rows instead of printing them.
        """
        return print_info(self, output)
