"""The ``example://`` provider. Replace the file operations with your SDK's calls."""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cloudfits import CloudFitsError, ObjectInfo
from cloudfits.providers import kit
from cloudfits.providers.kit import ErrorKind

from . import ExampleConfig

__all__ = ["ExampleProvider"]


class ExampleProvider(kit.ProviderEdges):
    """Serves the files below ``config.root``; paths use ``/``.

    `cloudfits.providers.kit.ProviderEdges` gives ``__repr__`` (from the config,
    without its secrets), ``uri(path)`` and ``error(kind, what, path, detail)``.
    """

    name = "example"
    scheme = "example"

    def __init__(self, config: ExampleConfig) -> None:
        self.config = config
        self.root = Path(config.root).resolve()

    def _file(self, path: str) -> Path:
        target = (self.root / path).resolve()
        if target != self.root and self.root not in target.parents:
            raise self.error(ErrorKind.DENIED, "opening", path, "it leaves the root")
        return target

    def _error(self, err: OSError, path: str, what: str) -> CloudFitsError:
        # Map every SDK error onto one kind of the cloudfits hierarchy; never a secret.
        if isinstance(err, (FileNotFoundError, NotADirectoryError, IsADirectoryError)):
            return self.error(ErrorKind.NOT_FOUND, what, path, "not found")
        if isinstance(err, PermissionError):
            return self.error(ErrorKind.DENIED, what, path, "access denied")
        return self.error(ErrorKind.OTHER, what, path, str(err))

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        """Bytes ``[start, end)``: fewer at the end of the object, none at or after it.

        With ``etag``, only of the version that has this entity tag; use the store's
        conditional read when it has one (``If-Match``), else compare `head` once.
        """
        kit.check_range(start, end, self.uri(path))
        what = kit.reading(start, end)
        try:
            with open(self._file(path), "rb") as handle:
                if etag is not None and _etag(handle) != etag:
                    raise self.error(ErrorKind.STALE, what, path)
                handle.seek(start)
                return handle.read(end - start)
        except OSError as err:
            raise self._error(err, path, what) from err

    def head(self, path: str) -> ObjectInfo:
        """Size, entity tag and modification time of one object."""
        try:
            target = self._file(path)
            if not target.is_file():
                raise FileNotFoundError(path)
            return _info(path, target)
        except OSError as err:
            raise self._error(err, path, "describing") from err

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose path starts with ``prefix`` (a string prefix), in path order."""
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self._file(directory)
        found = []
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                full = Path(dirpath) / name
                rel = full.relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    found.append(_info(rel, full))
        yield from kit.sorted_listing(found)

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` at ``path``, replacing what is there.

        A store with content types saves ``kit.index_content_type(path, content_type)``.
        """
        try:
            target = self._file(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(bytes(data))
            partial.replace(target)
        except OSError as err:
            raise self._error(err, path, "writing") from err


def _etag(handle: BinaryIO) -> str:
    """A digest of the content: a local directory has no entity tags, a store does."""
    handle.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()[:32]


def _info(path: str, target: Path) -> ObjectInfo:
    with open(target, "rb") as handle:
        st = os.fstat(handle.fileno())
        etag = _etag(handle)
    modified = datetime.datetime.fromtimestamp(st.st_mtime, tz=datetime.timezone.utc)
    return ObjectInfo(path, st.st_size, etag, modified.isoformat())
