"""Kerchunk references of an index: every image HDU as a Zarr array, no data copied.

The references are fsspec's version 1 format, ``{"version": 1, "refs": {...}}``: Zarr
version 2 metadata, and ``[url, offset, length]`` for every chunk's bytes in its FITS
object. One group per indexed file, named by its path; one array ``hdu<N>`` per image
HDU with data, its header cards as attributes and ``_ARRAY_DIMENSIONS``
``hdu<N>_naxis<n> ... hdu<N>_naxis1`` for xarray. Every file's group and the root carry
consolidated metadata (``.zmetadata``): zarr cannot list the groups of a reference
file system. No array has a ``fill_value``, so xarray masks nothing.

Chunks follow the bytes:

- an uncompressed image is cut along its slowest axes into contiguous runs of at most
  ``chunk_bytes`` (a run is one value at least), decoded by the numcodecs codec
  ``cloudfits.fits_image`` (`cloudfits.fits.codecs.FitsImageCodec`);
- a tile-compressed image has one chunk per tile (`cloudfits.index.refs_tiles`).

Tables and random groups are not exported: see ``docs/zarr.rst``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from itertools import product
from math import prod
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io.fits import Header

from ..errors import CloudFitsError, CloudFitsWarning
from ..fits.geometry import HDUKind, hdu_kind, image_scaling, image_shape
from ..fits.scan import parse_header
from ..providers.base import store_index
from ..providers.registry import get_registry
from ..uri import as_url, join_uri, redact_uri, split_uri
from .entry import FileEntry
from .refs_tiles import tile_array

if TYPE_CHECKING:
    from .core import FitsIndex

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "contiguous_chunks",
    "is_parquet_refs",
    "kerchunk_references",
    "remote_url",
    "write_references",
]

DEFAULT_CHUNK_BYTES = 512 * 1024
"""Raw bytes per chunk of an uncompressed image, at most: a 10x10 slice of a 2-D image
larger than a few MB then reads one or two such runs."""

_FSSPEC_PROTOCOLS = {
    "file": "file",
    "s3": "s3",
    "gs": "gs",
    "gcs": "gs",
    "az": "az",
    "abfs": "abfs",
    "http": "http",
    "https": "https",
}
# Attributes that xarray's decoding acts on. FITS keywords are upper case, but a
# HIERARCH keyword need not be; such a card is left out rather than obeyed.
_DECODED_ATTRIBUTES = frozenset(
    {
        "_ARRAY_DIMENSIONS",
        "_FillValue",
        "_Unsigned",
        "add_offset",
        "bounds",
        "calendar",
        "coordinates",
        "dtype",
        "grid_mapping",
        "missing_value",
        "scale_factor",
        "units",
    }
)
_GROUP = {"zarr_format": 2}

Chunks = dict[str, list[Any]]


def remote_url(data_uri: str, path: str) -> str:
    """The URL fsspec reads an indexed object by (credentials never included).

    Raises
    ------
    ValueError
        When fsspec has no protocol for the index's scheme.
    """
    scheme = split_uri(data_uri)[0]
    if scheme not in _FSSPEC_PROTOCOLS:
        raise ValueError(f"{redact_uri(data_uri)}: no fsspec protocol reads {scheme}:// objects")
    # A local path becomes an absolute file:// URL; other URIs keep their path.
    rest = split_uri(as_url(join_uri(data_uri, path)))[1]
    return redact_uri(f"{_FSSPEC_PROTOCOLS[scheme]}://{rest}")


def header_attributes(header: Header) -> dict[str, Any]:
    """Header cards as JSON attributes: COMMENT and HISTORY joined by newlines."""
    attrs: dict[str, Any] = {}
    notes: dict[str, list[str]] = {}
    for card in header.cards:
        key, value = card.keyword, card.value
        if key in ("COMMENT", "HISTORY"):
            notes.setdefault(key, []).append(str(value))
        elif not key or key in _DECODED_ATTRIBUTES or key in attrs:
            continue
        elif isinstance(value, (bool, int, str)) or (
            isinstance(value, float) and np.isfinite(value)
        ):
            attrs[key] = value
        else:  # complex values, non-finite floats and undefined values
            attrs[key] = str(value)
    attrs.update({key: "\n".join(lines) for key, lines in notes.items()})
    return attrs


def zarray(
    shape: tuple[int, ...], chunks: tuple[int, ...], dtype: np.dtype[Any], codec: dict[str, Any]
) -> dict[str, Any]:
    """Zarr version 2 array metadata, decoded by one codec from raw chunk bytes."""
    return {
        "chunks": list(chunks),
        "compressor": None,
        "dimension_separator": ".",
        "dtype": dtype.str,
        "fill_value": None,
        "filters": [codec],
        "order": "C",
        "shape": list(shape),
        "zarr_format": 2,
    }


def contiguous_chunks(shape: tuple[int, ...], itemsize: int, chunk_bytes: int) -> tuple[int, ...]:
    """The chunk shape whose chunks are contiguous runs of at most ``chunk_bytes``.

    The first axis whose trailing block fits is cut; the axes before it get length 1.

    >>> from cloudfits.index.refs import contiguous_chunks
    >>> contiguous_chunks((100, 2048), 4, 512 * 1024)
    (64, 2048)
    >>> contiguous_chunks((10, 300, 2048), 8, 512 * 1024)
    (1, 32, 2048)
    """
    for axis in range(len(shape)):
        inner = prod(shape[axis + 1 :]) * itemsize
        if inner <= chunk_bytes:
            count = max(1, min(shape[axis], chunk_bytes // inner))
            return (1,) * axis + (count,) + tuple(shape[axis + 1 :])
    return (1,) * len(shape)  # less than one value: one value a chunk


def chunk_grid(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every chunk's grid position, in C order."""
    return product(*(range(-(-n // c)) for n, c in zip(shape, chunks, strict=True)))


def image_array(
    header: Header, data_offset: int, url: str, chunk_bytes: int
) -> tuple[dict[str, Any], Chunks]:
    """Metadata and chunk references of an uncompressed image HDU."""
    shape = image_shape(header)
    scaling = image_scaling(header)
    itemsize = scaling.raw_dtype.itemsize
    chunks = contiguous_chunks(shape, itemsize, chunk_bytes)
    per_chunk = prod(chunks)
    codec = {
        "id": "cloudfits.fits_image",
        "raw": scaling.raw_dtype.str,
        "dtype": scaling.dtype.str,
        "bscale": scaling.bscale,
        "bzero": scaling.bzero,
        "blank": scaling.blank,
        "unsigned": scaling.unsigned,
        "items": per_chunk,
    }
    strides = [prod(shape[i + 1 :]) for i in range(len(shape))]
    total = prod(shape)
    refs: Chunks = {}
    for where in chunk_grid(shape, chunks):
        first = sum(k * c * s for k, c, s in zip(where, chunks, strides, strict=True))
        count = min(per_chunk, total - first)
        refs[".".join(map(str, where))] = [url, data_offset + first * itemsize, count * itemsize]
    return zarray(shape, chunks, scaling.dtype, codec), refs


def file_group(
    index: FitsIndex, entry: FileEntry, chunk_bytes: int, options: dict[str, Any]
) -> tuple[dict[str, Any], Chunks]:
    """The metadata (by key below the file's group) and chunk references of one file.

    Only a tile-compressed image makes a request: its tile table.
    """
    url = remote_url(index.data_uri, entry.path)
    meta: dict[str, Any] = {".zgroup": _GROUP, ".zattrs": {"cloudfits_path": entry.path}}
    refs: Chunks = {}
    opened = None
    for number, layout in enumerate(entry.hdus):
        where = f"{redact_uri(join_uri(index.data_uri, entry.path))}: HDU {number}"
        header = parse_header(layout.header, where=where)
        kind = hdu_kind(header)
        if not kind.is_image or layout.data_size == 0:
            continue
        name = f"hdu{number}"
        if kind is HDUKind.COMPRESSED_IMAGE:
            opened = opened or index.open(entry.path, **options)
            hdu = opened[number]
            tiled, chunks = tile_array(hdu, url, entry.size)
            array = zarray(tiled.shape, tiled.chunks, tiled.dtype, tiled.codec)
            attributes = header_attributes(hdu.header)
        else:
            array, chunks = image_array(header, layout.data_offset, url, chunk_bytes)
            attributes = header_attributes(header)
        axes = len(array["shape"])
        attributes["_ARRAY_DIMENSIONS"] = [f"{name}_naxis{i}" for i in range(axes, 0, -1)]
        meta[f"{name}/.zarray"] = array
        meta[f"{name}/.zattrs"] = attributes
        refs.update({f"{name}/{key}": ref for key, ref in chunks.items()})
    return meta, refs


def _consolidated(metadata: dict[str, Any]) -> str:
    return json.dumps({"metadata": metadata, "zarr_consolidated_format": 1})


def kerchunk_references(
    index: FitsIndex,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    paths: Iterable[str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Version 1 kerchunk references of every image HDU of ``index``.

    Parameters
    ----------
    index : FitsIndex
        The index.
    chunk_bytes : int
        Most raw bytes in a chunk of an uncompressed image.
    paths : iterable of str, optional
        Only these files (paths of the index).
    **options
        Provider options for reading the tile tables of tile-compressed images.

    Returns
    -------
    dict
        ``{"version": 1, "refs": {key: JSON text or [url, offset, length]}}``.
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be at least 1, not {chunk_bytes}")
    every: dict[str, Any] = {".zgroup": _GROUP}
    refs: dict[str, Any] = {}
    entries = index.files if paths is None else [index.entry(p) for p in paths]
    for entry in entries:
        if entry.gzip is not None:
            # Its bytes are compressed as one stream: no byte range holds a chunk.
            message = (
                f"{redact_uri(join_uri(index.data_uri, entry.path))}: whole-file gzip has no"
                " byte ranges to reference (read it with cloudfits, or decompress it)"
            )
            if paths is not None:
                raise CloudFitsError(message)
            warnings.warn(f"{message}; left out of the references", CloudFitsWarning, stacklevel=2)
            continue
        meta, chunks = file_group(index, entry, chunk_bytes, options)
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            every.setdefault("/".join(parts[:depth]) + "/.zgroup", _GROUP)
        every.update({f"{entry.path}/{key}": value for key, value in meta.items()})
        refs[f"{entry.path}/.zmetadata"] = _consolidated(meta)
        refs.update({f"{entry.path}/{key}": ref for key, ref in chunks.items()})
    refs.update({key: json.dumps(value) for key, value in every.items()})
    refs[".zmetadata"] = _consolidated(every)
    return {"version": 1, "refs": refs}


def is_parquet_refs(path: str) -> bool:
    """Names ending in ``.parq`` or ``.parquet`` (fsspec's Parquet references, a directory)."""
    return path.rstrip("/").endswith((".parq", ".parquet"))


def write_references(
    references: dict[str, Any], path: str, *, record_size: int = 10_000, **options: Any
) -> None:
    """Write references as JSON through cloudfits' provider of ``path``, or as Parquet.

    A name ending in ``.parq`` or ``.parquet`` is written as fsspec's Parquet reference
    format (a directory, through fsspec, with ``options`` as its storage options; needs
    ``cloudfits[zarr]``); any other as one JSON document.
    """
    if not is_parquet_refs(path):
        provider, where = get_registry().for_uri(path, **options)
        text = json.dumps(references, separators=(",", ":")).encode()
        store_index(provider, where, text, content_type="application/json")
        return
    from fsspec.core import url_to_fs
    from fsspec.implementations.reference import LazyReferenceMapper

    fs, root = url_to_fs(path, **options)
    mapper = LazyReferenceMapper.create(root, fs=fs, record_size=record_size)
    refs = references["refs"]
    # A chunk is placed by its array's metadata, so the metadata goes in first.
    metadata = [key for key in refs if key.rpartition("/")[2].startswith(".z")]
    for key in metadata:
        # The store's own .zmetadata holds every key's metadata; xarray opens the root
        # one, and zarr refuses a group's .zmetadata listed inside it.
        if not key.endswith(".zmetadata"):
            mapper[key] = refs[key]
    for key, value in refs.items():
        if not key.rpartition("/")[2].startswith(".z"):
            mapper[key] = value
    mapper.flush()
