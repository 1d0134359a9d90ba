"""The FITS codecs as Zarr version 3 codecs, for VirtualiZarr, Icechunk and zarr 3 arrays.

Zarr 3 names a numcodecs codec ``numcodecs.<id>``; these classes are registered under
zarr's ``zarr.codecs`` entry point group by those names. Each turns a chunk's stored
bytes into its array, so it is the array-to-bytes codec of the array's pipeline.
"""

from __future__ import annotations

from zarr.codecs.numcodecs import _NumcodecsArrayBytesCodec

__all__ = ["FitsImage", "FitsTile"]


class FitsImage(_NumcodecsArrayBytesCodec, codec_name="cloudfits.fits_image"):
    """`~cloudfits.fits.codecs.FitsImageCodec` as ``numcodecs.cloudfits.fits_image``."""


class FitsTile(_NumcodecsArrayBytesCodec, codec_name="cloudfits.fits_tile"):
    """`~cloudfits.fits.codecs.FitsTileCodec` as ``numcodecs.cloudfits.fits_tile``."""
