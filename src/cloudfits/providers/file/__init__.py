"""``file://`` URIs and plain local paths."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import Any

from ...errors import AccessDeniedError, ObjectNotFoundError
from .. import kit
from ..base import ObjectInfo, ProviderSpec
from ..kit import ErrorKind, ProviderEdges, check_range, check_start

__all__ = ["FileConfig", "FileProvider"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FileConfig:
    """Options of the local-file provider.

    Attributes
    ----------
    root : str or None
        When set, every path is taken relative to this directory and may not leave it
        (``..`` and symbolic links pointing outside are refused).
    """

    root: str | None = None


def file_tag(st: os.stat_result) -> str:
    """A file's entity tag: its size and modification time in nanoseconds, in hex.

    It changes when the file is rewritten, unless a rewrite keeps both the size and
    the time stamp (a rewrite within one tick of the file system's clock).
    """
    return f"{st.st_size:x}-{st.st_mtime_ns:x}"


class FileProvider(ProviderEdges):
    """Reads and writes local files."""

    name = scheme = "file"

    def __init__(self, config: FileConfig) -> None:
        self.config = config
        self._root = os.path.realpath(config.root) if config.root is not None else None

    def uri(self, path: str) -> str:
        """A local path as messages show it: quoted, as the user gave it."""
        return repr(path)

    def _resolve(self, path: str) -> str:
        if self._root is None:
            return os.path.abspath(path)
        base = path if os.path.isabs(path) else os.path.join(self._root, path)
        candidate = os.path.realpath(base)
        if os.path.commonpath([candidate, self._root]) != self._root:
            raise self.error(
                ErrorKind.DENIED, "opening", path, f"outside the root {self.config.root!r}"
            )
        return candidate

    def _check_tag(self, fd: int, path: str, etag: str | None) -> None:
        if etag is None:
            return
        found = file_tag(os.fstat(fd))
        if found != etag:
            raise self.error(
                ErrorKind.STALE,
                "reading",
                path,
                f"changed since it was indexed (tag {found}, the index has {etag})",
            )

    @contextlib.contextmanager
    def _open(self, path: str, etag: str | None) -> Iterator[BufferedReader]:
        """The file at ``path`` opened for reading, its tag checked against ``etag``."""
        real = self._resolve(path)
        try:
            # No symbolic link is followed at the last step, and the opened file's own
            # path is checked: a directory swapped for a link between the check and
            # the open cannot lead outside the root.
            fd = os.open(
                real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
            )
            with os.fdopen(fd, "rb") as f:
                self._check_opened(f.fileno(), real, path)
                self._check_tag(f.fileno(), path, etag)
                yield f
        except FileNotFoundError as err:
            raise self.error(ErrorKind.NOT_FOUND, "opening", path, "does not exist") from err
        except AccessDeniedError:
            raise
        except PermissionError as err:
            raise self.error(ErrorKind.DENIED, "opening", path, "permission denied") from err
        except IsADirectoryError as err:
            raise self.error(ErrorKind.NOT_FOUND, "opening", path, "is a directory") from err
        except OSError as err:  # a link loop, a link where a file was, ...
            raise self.error(ErrorKind.NOT_FOUND, "opening", path, str(err.strerror)) from err

    def _check_opened(self, fd: int, real: str, path: str) -> None:
        """Refuse a file that is not the one resolved inside the root (a swapped link)."""
        if self._root is None:
            return
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # no /proc: the resolved path must still be the opened file
            st, now = os.fstat(fd), os.stat(os.path.realpath(real))
            same = (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino)
            opened = real if same and os.path.realpath(real) == real else ""
        if not opened or os.path.commonpath([opened, self._root]) != self._root:
            raise self.error(
                ErrorKind.DENIED, "opening", path, f"outside the root {self.config.root!r}"
            )

    def get_range(self, path: str, start: int, end: int, *, etag: str | None = None) -> bytes:
        check_range(start, end, self.uri(path))
        with self._open(path, etag) as f:
            return os.pread(f.fileno(), end - start, start) if end > start else b""

    def get_range_into(
        self, path: str, start: int, out: memoryview, *, etag: str | None = None
    ) -> int:
        """Read bytes from ``start`` straight into ``out`` (``preadv``); return the count.

        With ``etag``, the opened file's tag (`file_tag`) must equal it, else
        `~cloudfits.StaleIndexError`.
        """
        check_start(start, self.uri(path))
        with self._open(path, etag) as f:
            got = 0
            while got < len(out):
                if hasattr(os, "preadv"):
                    k = os.preadv(f.fileno(), [out[got:]], start + got)
                else:  # pragma: no cover - platforms without preadv
                    f.seek(start + got)
                    k = f.readinto(out[got:]) or 0
                if not k:
                    break
                got += k
            return got

    def head(self, path: str) -> ObjectInfo:
        real = self._resolve(path)
        try:
            st = os.stat(real)
        except FileNotFoundError as err:
            raise self.error(ErrorKind.NOT_FOUND, "describing", path, "does not exist") from err
        except OSError as err:  # a link loop
            raise self.error(ErrorKind.NOT_FOUND, "describing", path, str(err.strerror)) from err
        if not os.path.isfile(real):
            raise self.error(ErrorKind.NOT_FOUND, "describing", path, "not a file")
        modified = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc)
        return ObjectInfo(path, st.st_size, file_tag(st), modified.isoformat())

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # As in an object store, ``prefix`` is a plain string prefix of the paths:
        # "dir/a" lists "dir/a/b.fits" and "dir/ab.fits" alike.
        head_dir, _, stem = prefix.rpartition("/")
        head_dir = head_dir + "/" if head_dir or prefix.startswith("/") else ""
        directory = self._resolve(head_dir or ".")
        if not os.path.isdir(directory):
            return
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(directory):
            rel_dir = os.path.relpath(dirpath, directory).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = [
                d
                for d in dirnames
                if (rel_dir + d + "/").startswith(stem) or stem.startswith(rel_dir + d + "/")
            ]
            found.extend(rel_dir + n for n in filenames if (rel_dir + n).startswith(stem))
        for rel in sorted(found):
            try:
                yield self.head(head_dir + rel)
            except AccessDeniedError:
                logger.warning("file: %r leads outside the root and is not listed", rel)
            except ObjectNotFoundError as err:  # a broken or looping link: not an object
                logger.warning("file: %r is not listed: %s", rel, err)

    def put_index(self, path: str, data: bytes, *, content_type: str | None = None) -> None:
        real = self._resolve(path)
        target = Path(real)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".cloudfits-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except OSError as err:
            raise self.error(ErrorKind.OTHER, "writing", path, str(err.strerror)) from err


def _local_source(provider: Any, path: str) -> tuple[str, list[ObjectInfo]]:
    """An indexing source on disk: one file (based in its directory), or a directory."""
    real = os.path.abspath(path)
    if os.path.isfile(real):
        return os.path.dirname(real), [provider.head(real)]
    if not os.path.isdir(real):
        raise FileNotFoundError(f"{path!r} is neither a file nor a directory")
    return real, list(provider.list(real.rstrip(os.sep) + "/"))


def _rooted_below(base: str, relative: str, options: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Objects below a local directory are read with that directory as the root, so that
    a relative path (from an index, say) can never reach a file outside it."""
    root = options.get("root")
    return {**options, "root": os.path.join(root, base) if root else base}, relative


cloudfits_register_providers = kit.registers(
    ProviderSpec(
        name="file",
        schemes=("file",),
        config_type=FileConfig,
        factory=lambda config, scheme: FileProvider(config),
        description="local files (file:// URIs and plain paths)",
        below=_rooted_below,
        source_listing=_local_source,
    )
)
