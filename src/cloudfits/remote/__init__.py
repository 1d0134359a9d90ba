"""Remote FITS objects: `RemoteFITS`, `RemoteHDU`, `Section`, and `open`."""

from __future__ import annotations

from .hdulist import RemoteFITS, RemoteHDU, Section
from .opening import getdata, getheader, open

__all__ = ["RemoteFITS", "RemoteHDU", "Section", "getdata", "getheader", "open"]
