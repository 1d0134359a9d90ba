"""A zip archive written as a stream of byte chunks, one member at a time.

The standard library's `zipfile` writes to a file object it cannot seek (it then
puts each member's sizes and CRC in a data descriptor after the member, which every
unzip tool, and `zipfile` itself, reads). `ZipChunks` is such a file object that
hands over what has been written so far; a server sends those chunks and forgets
them, so the memory of a zip answer is that of one member, not of the archive.
Members are deflated, as astrocut's zips are.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

__all__ = ["ZipChunks"]


class _Sink(io.RawIOBase):
    """A write-only, unseekable file that keeps what was written until taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        # zipfile asks for the position to record offsets; it never seeks back here.
        return self._written

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class ZipChunks:
    """Build a zip member by member; `add` and `close` return the bytes to send next.

    Examples
    --------
    >>> archive = ZipChunks()
    >>> chunks = [archive.add("a.txt", b"hello"), archive.close()]
    >>> zipfile.ZipFile(io.BytesIO(b"".join(chunks))).read("a.txt")
    b'hello'
    """

    def __init__(self) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, mode="w", compression=zipfile.ZIP_DEFLATED)
        self.names: list[str] = []

    def add(self, name: str, data: bytes) -> bytes:
        """Write one member; return the archive's bytes written since the last call."""
        self._zip.writestr(name, data)
        self.names.append(name)
        return self._sink.take()

    def close(self) -> bytes:
        """Write the central directory; return the archive's last bytes."""
        self._zip.close()
        return self._sink.take()
