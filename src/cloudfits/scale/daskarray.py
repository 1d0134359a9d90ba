"""Dask arrays of remote images, each chunk a planned read of exactly its bytes.

`to_dask` (``RemoteHDU.to_dask``) wraps an image HDU in a `dask.array.Array`.
Building the array makes no request: the shape, type and byte layout come from the
header in hand, and dask is given the array's ``meta`` so that it never reads a
zero-size slice to learn the type. Each chunk is computed by
`RemoteHDU.read_section`, so it costs the byte runs the planner finds for that
chunk and nothing else.

The graph holds a small `ArrayRecipe` rather than the open file: thread pools and
HTTP clients do not pickle. A process that receives the recipe (a
``dask.distributed`` worker) opens the file once from it, through its
`~cloudfits.providers.location.ObjectLocation` and `RemoteFITS.from_location`, and
keeps it for the following chunks. The recipe holds no credential: options a provider marks secret
(fields with ``repr=False``, a ``user:password@`` in a URL) are left out
(`cloudfits.providers.location.ObjectLocation.portable`), and
workers find credentials where the provider looks for them (the environment, a
profile, instance roles). In the process that built the array the open file itself
is used, so its ``stats`` count every chunk read there.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CloudFitsError
from ..fetch.spans import FetchOptions
from ..fits.scan import HDULayout
from ..providers.location import ObjectLocation
from ..remote.gzipped import GzippedReader
from ..remote.seekpoints import GzipSeekPoints

if TYPE_CHECKING:
    import dask.array

    from ..remote.hdulist import RemoteFITS, RemoteHDU

__all__ = ["ArrayRecipe", "RemoteArray", "layout_chunks", "to_dask"]

INSTALL_HINT = "pip install 'cloudfits[dask]'"
DEFAULT_CHUNK_BYTES = 128 * 2**20
"""Target chunk size when dask's ``array.chunk-size`` setting cannot be read."""


@dataclasses.dataclass(frozen=True)
class ArrayRecipe:
    """What another process needs to read chunks of one HDU; picklable, no secret.

    Attributes
    ----------
    location : ObjectLocation
        The file and the provider options to reach it, secrets left out.
    size : int
        The file's size.
    etag : str or None
        The version of the file every read stays pinned to.
    layouts : tuple of HDULayout
        The layouts of HDUs 0 to ``hdu`` (no header is read again).
    hdu : int
        The HDU number.
    fetch : tuple of int
        ``(max_gap, max_part, max_concurrency)`` of every chunk read.
    withheld : tuple of str
        Names of the options left out because they are secret.
    opener : type
        The class whose ``from_location`` reopens the file (`RemoteFITS`).
    gzip : GzipSeekPoints or None
        The seek points of a whole-file gzip object.
    """

    location: ObjectLocation
    size: int
    etag: str | None
    layouts: tuple[HDULayout, ...]
    hdu: int
    fetch: tuple[int, int, int] = (0, 1, 1)
    withheld: tuple[str, ...] = ()
    opener: type[RemoteFITS] | None = dataclasses.field(default=None, compare=False)
    gzip: GzipSeekPoints | None = None

    @property
    def uri(self) -> str:
        """The file's URI, as messages show it."""
        return self.location.uri

    @functools.cached_property
    def token(self) -> str:
        """A deterministic digest of the recipe (it names the dask array's keys)."""
        from dask.base import tokenize

        layouts = [(h.header_offset, h.data_offset, h.data_size, h.header) for h in self.layouts]
        where = (self.location.scheme, self.location.path, sorted(self.location.options.items()))
        return str(
            tokenize(where, self.size, self.etag, layouts, self.hdu, self.fetch, self.withheld)
        )

    def __dask_tokenize__(self) -> str:
        return self.token

    def open(self) -> RemoteHDU:
        """The HDU, opened in this process from the recipe (once; then kept)."""
        return _reopen(self)

    def tuning(self) -> dict[str, int]:
        """The fetch options as keyword arguments of `RemoteHDU.read_section`."""
        gap, part, concurrency = self.fetch
        return {"max_gap": gap, "max_part": part, "max_concurrency": concurrency}


# HDUs opened by this process, by recipe token: chunks computed here read through
# the file the array was made from (its provider, its stats), even after a pickle
# round trip within the process.
_local: weakref.WeakValueDictionary[str, RemoteHDU] = weakref.WeakValueDictionary()


# Files this process opened from recipes: each once, however many chunks it computes.
_opened: dict[ArrayRecipe, RemoteHDU] = {}
_opened_lock = threading.Lock()
_MAX_OPENED = 256


def _reopen(recipe: ArrayRecipe) -> RemoteHDU:
    with _opened_lock:
        hdu = _opened.get(recipe)
        if hdu is not None:
            return hdu
        if recipe.withheld:
            raise CloudFitsError(
                f"{recipe.uri}: HDU {recipe.hdu} was opened with credentials given as"
                f" options ({', '.join(recipe.withheld)}), which are not sent to other"
                " processes; give the workers their credentials the way the provider"
                " finds them (environment variables, a profile), not as options"
            )
        if recipe.opener is None:
            raise CloudFitsError(f"{recipe.uri}: the recipe does not say how to open the file")
        fits = recipe.opener.from_location(
            recipe.location,
            recipe.layouts,
            size=recipe.size,
            etag=recipe.etag,
            fetch_options=FetchOptions().updated(**recipe.tuning()),
            gzip=recipe.gzip,
        )
        hdu = fits[recipe.hdu]
        if len(_opened) >= _MAX_OPENED:
            _opened.pop(next(iter(_opened)))
        _opened[recipe] = hdu
        return hdu


class RemoteArray:
    """The array-like object a dask array of a remote HDU reads its chunks from.

    ``array[key]`` is ``hdu.read_section(key)`` with the recipe's fetch options. It
    pickles as its `ArrayRecipe`, and opens the file again where it is unpickled in
    another process.

    Parameters
    ----------
    recipe : ArrayRecipe
        How to open the HDU.
    shape : tuple of int
        The image's shape.
    dtype : numpy.dtype
        The type of the values read.
    chunks : tuple of int
        The chunk shape following the file layout (`layout_chunks`); dask's
        ``"auto"`` chunks are multiples of it.
    hdu : RemoteHDU, optional
        The open HDU, used in this process.
    """

    def __init__(
        self,
        recipe: ArrayRecipe,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        chunks: tuple[int, ...],
        hdu: RemoteHDU | None = None,
    ) -> None:
        self.recipe = recipe
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.chunks = chunks
        self._hdu = hdu
        if hdu is not None:
            _local[recipe.token] = hdu

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    def __repr__(self) -> str:
        return (
            f"<RemoteArray {self.shape} {self.dtype} of HDU {self.recipe.hdu} of {self.recipe.uri}>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (RemoteArray, (self.recipe, self.shape, self.dtype.str, self.chunks))

    def __dask_tokenize__(self) -> tuple[str, tuple[int, ...], str]:
        return (self.recipe.token, self.shape, self.dtype.str)

    def hdu(self) -> RemoteHDU:
        """The HDU in this process: the one the array was made from, or reopened."""
        if self._hdu is None:
            self._hdu = _local.get(self.recipe.token) or self.recipe.open()
        return self._hdu

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.hdu().read_section(key, **self.recipe.tuning())


def _import_dask_array() -> Any:
    try:
        import dask.array
    except ImportError as err:
        raise ImportError(f"dask arrays of remote images need dask: {INSTALL_HINT}") from err
    return dask.array


def _chunk_bytes() -> int:
    import dask
    from dask.utils import parse_bytes

    value = dask.config.get("array.chunk-size", None)
    return int(parse_bytes(value)) if value else DEFAULT_CHUNK_BYTES


def layout_chunks(
    shape: Sequence[int],
    itemsize: int,
    target_bytes: int,
    unit: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """The chunk shape that follows the row-major byte layout of a FITS image.

    The fastest axes (last in numpy order) are kept whole and the slowest are
    split, so that a chunk is one contiguous byte run of about ``target_bytes``:
    trailing axes are taken whole while they fit, the next axis is cut into pieces
    that fill the target (of near-equal length), and every slower axis has chunks of
    one. With ``unit`` (a tile shape) chunks are whole multiples of it, counting
    tiles instead of pixels, so that no tile is read by two chunks.

    Parameters
    ----------
    shape : sequence of int
        The image's numpy shape.
    itemsize : int
        Bytes of one value.
    target_bytes : int
        The size a chunk should not exceed, unless one unit is larger.
    unit : sequence of int, optional
        Chunks are whole multiples of this shape (the last one may be cut by the
        image's edge).

    Examples
    --------
    >>> from cloudfits.scale.daskarray import layout_chunks
    >>> layout_chunks((2000, 256, 256), 4, 2**20)
    (4, 256, 256)
    >>> layout_chunks((100, 100), 8, 10**9)
    (100, 100)
    """
    shape = tuple(int(n) for n in shape)
    unit = tuple(int(u) for u in unit) if unit is not None else (1,) * len(shape)
    counts = [-(-n // u) if n else 0 for n, u in zip(shape, unit, strict=True)]
    unit_bytes = max(1, itemsize * math.prod(unit))
    budget = max(1, target_bytes // unit_bytes)  # units per chunk
    chunks = list(counts)
    whole = 1
    for axis in range(len(shape) - 1, -1, -1):
        if whole * counts[axis] <= budget:
            whole *= max(counts[axis], 1)
            continue
        step = max(1, budget // whole)
        pieces = -(-counts[axis] // step)
        chunks[axis] = -(-counts[axis] // pieces)
        chunks[:axis] = [1] * axis
        break
    return tuple(
        max(1, min(c * u, n)) if n else 0 for c, u, n in zip(chunks, unit, shape, strict=True)
    )


def recipe_of(hdu: RemoteHDU, **tuning: int) -> ArrayRecipe:
    """The `ArrayRecipe` of an open HDU (no request).

    Parameters
    ----------
    hdu : RemoteHDU
        An HDU of a file opened from an index or with `cloudfits.open`.
    **tuning
        ``max_gap``, ``max_part``, ``max_concurrency`` of the chunk reads, over the
        file's own fetch options.
    """
    fits = hdu.file
    if fits.location is None:
        raise CloudFitsError(f"{fits.uri}: opened from a reader alone; it cannot be reopened")
    location, withheld = fits.location.portable()
    options_fetch: FetchOptions = fits.fetch_options.updated(**tuning)
    return ArrayRecipe(
        location=location,
        size=fits.size,
        etag=fits.etag,
        # The HDUs up to this one: those after it may not be scanned yet (and are not read).
        layouts=tuple(fits[n].layout for n in range(hdu.number + 1)),
        hdu=hdu.number,
        fetch=(options_fetch.max_gap, options_fetch.max_part, options_fetch.max_concurrency),
        withheld=withheld,
        opener=type(fits),
        gzip=fits.reader.points if isinstance(fits.reader, GzippedReader) else None,
    )


def to_dask(hdu: RemoteHDU, chunks: Any = None, **tuning: int) -> dask.array.Array:
    """A lazy `dask.array.Array` of an image HDU; see `RemoteHDU.to_dask`."""
    da = _import_dask_array()
    hdu._require_image("to_dask")
    hdu._check_layout()
    shape, dtype = hdu.shape, hdu.dtype
    unit = hdu.compressed.tile_shape if hdu.kind.is_compressed else None
    natural = layout_chunks(shape, dtype.itemsize, _chunk_bytes(), unit)
    recipe = recipe_of(hdu, **tuning)
    source = RemoteArray(recipe, shape, dtype, natural, hdu)
    normalized = da.core.normalize_chunks(
        natural if chunks is None else chunks, shape, dtype=dtype, previous_chunks=natural
    )
    from dask.base import tokenize

    name = f"cloudfits-hdu{hdu.number}-{tokenize(recipe.token, normalized)}"
    meta = np.empty((0,) * len(shape), dtype=dtype)
    array: dask.array.Array = da.from_array(
        source, chunks=normalized, name=name, meta=meta, asarray=False, fancy=False, lock=False
    )
    return array
