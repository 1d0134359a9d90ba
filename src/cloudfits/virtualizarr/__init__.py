"""A VirtualiZarr parser that opens indexed FITS files as datasets of ManifestArrays.

Targets VirtualiZarr 2 (``virtualizarr>=2.1,<3``; tested with 2.5.1), whose parsers are
callables ``parser(url, registry) -> ManifestStore``. `CloudFitsParser` builds a file's
chunk manifest from the index alone (plus, for a tile-compressed image, its tile
table), with the chunks and codecs of `cloudfits.index.refs`: the arrays are those of
``FitsIndex.to_kerchunk``, in zarr version 3 metadata whose array-to-bytes codec is
``numcodecs.cloudfits.fits_image`` or ``numcodecs.cloudfits.fits_tile``.

>>> from obspec_utils.registry import ObjectStoreRegistry      # doctest: +SKIP
>>> from obstore.store import S3Store                          # doctest: +SKIP
>>> registry = ObjectStoreRegistry({"s3://bucket": S3Store("bucket")})  # doctest: +SKIP
>>> vds = virtualizarr.open_virtual_dataset(                   # doctest: +SKIP
...     "s3://bucket/prefix/a.fits", registry=registry, parser=CloudFitsParser(idx))
>>> vds.vz.to_icechunk(session.store)                          # doctest: +SKIP

Needs ``cloudfits[virtualizarr]``. VirtualiZarr's own kerchunk writer
(``vds.vz.to_kerchunk``) drops array-to-bytes codecs, so it loses these; write kerchunk
references with ``FitsIndex.to_kerchunk`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from virtualizarr.manifests import ManifestStore
from virtualizarr.parsers.kerchunk.translator import manifestgroup_from_kerchunk_refs
from virtualizarr.types.kerchunk import KerchunkStoreRefs

from ..index.refs import DEFAULT_CHUNK_BYTES, kerchunk_references, remote_url

if TYPE_CHECKING:
    from obspec_utils.registry import ObjectStoreRegistry

    from ..index.core import FitsIndex

__all__ = ["CloudFitsParser"]


class CloudFitsParser:
    """Parse a file of a cloudfits index into a VirtualiZarr `ManifestStore`.

    Parameters
    ----------
    index : FitsIndex
        The index that holds the files to be parsed.
    chunk_bytes : int
        Most raw bytes in a chunk of an uncompressed image.
    skip_variables : iterable of str, optional
        Arrays (``hdu<N>``) to leave out.
    **options
        Provider options for reading tile tables (tile-compressed images only).
    """

    def __init__(
        self,
        index: FitsIndex,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        skip_variables: Iterable[str] | None = None,
        **options: Any,
    ) -> None:
        self.index = index
        self.chunk_bytes = chunk_bytes
        self.skip_variables = list(skip_variables or [])
        self.options = options

    def path_of(self, url: str) -> str:
        """The index path of ``url`` (an object URL below the index's data, or a path)."""
        prefix = remote_url(self.index.data_uri, "_")[:-1]
        path = url[len(prefix) :] if url.startswith(prefix) else url
        if path not in self.index:
            raise KeyError(f"{url!r} is not a file of the index of {self.index.data_uri!r}")
        return path

    def __call__(self, url: str, registry: ObjectStoreRegistry[Any]) -> ManifestStore:
        """The file at ``url`` as a `ManifestStore` (one array per image HDU)."""
        path = self.path_of(url)
        refs = kerchunk_references(
            self.index, chunk_bytes=self.chunk_bytes, paths=[path], **self.options
        )
        group = manifestgroup_from_kerchunk_refs(
            KerchunkStoreRefs(refs), group=path, skip_variables=self.skip_variables
        )
        return ManifestStore(group=group, registry=registry)
