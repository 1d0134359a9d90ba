"""Check an index against its store: is every file still the one that was indexed?

`verify_index` asks the store about every file of an index (one ``head`` each, no data
read) and compares the size, and the entity tag (or, where the index has none, the
modification time) with what the index recorded. The command line's
``cloudfits verify`` (`cloudfits.cli.verify`) prints its report.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ..errors import CloudFitsError, ObjectNotFoundError
from ..providers.location import ObjectLocation
from .core import FitsIndex
from .entry import FileEntry

__all__ = ["CHANGED", "FAILED", "MISSING", "OK", "FileCheck", "verify_index"]

OK, CHANGED, MISSING, FAILED = "ok", "changed", "missing", "error"


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one indexed file.

    Attributes
    ----------
    path : str
        The file's path in the index.
    status : str
        ``"ok"``, ``"changed"``, ``"missing"`` or ``"error"`` (the store could not say).
    size, etag, last_modified : int, str or None
        What the index recorded.
    found_size, found_etag, found_last_modified : int, str or None
        What the store says now.
    message : str
        What differs, or the error.
    """

    path: str
    status: str
    size: int
    etag: str | None
    last_modified: str | None
    found_size: int | None = None
    found_etag: str | None = None
    found_last_modified: str | None = None
    message: str = ""


def _check(location: ObjectLocation, entry: FileEntry) -> FileCheck:
    verdict = FileCheck(entry.path, OK, entry.size, entry.etag, entry.last_modified)
    try:
        info = location.provider().head(location.path)
    except ObjectNotFoundError:
        return replace(verdict, status=MISSING, message="not found")
    except CloudFitsError as err:
        return replace(verdict, status=FAILED, message=str(err))
    differences = []
    if info.size != entry.size:
        differences.append(f"size {entry.size} -> {info.size}")
    if entry.etag is not None and info.etag != entry.etag:
        differences.append(f"etag {entry.etag} -> {info.etag}")
    if (
        entry.etag is None
        and entry.last_modified is not None
        and info.last_modified is not None
        and info.last_modified != entry.last_modified
    ):
        differences.append(f"last modified {entry.last_modified} -> {info.last_modified}")
    return replace(
        verdict,
        status=CHANGED if differences else OK,
        found_size=info.size,
        found_etag=info.etag,
        found_last_modified=info.last_modified,
        message="; ".join(differences),
    )


def verify_index(index: FitsIndex, *, concurrency: int = 16, **options: Any) -> list[FileCheck]:
    """Compare every file of ``index`` with what its store says now.

    Parameters
    ----------
    index : FitsIndex
        The index to check.
    concurrency : int
        ``head`` requests in flight at once.
    **options
        Options of the data's provider (by default the ``data_options`` the index was
        loaded with).

    Returns
    -------
    list of FileCheck
        One per file, in the index's order.
    """
    base = index.data_location(dict(options))

    def one(entry: FileEntry) -> FileCheck:
        return _check(base.below(entry.path), entry)

    if not index.files:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(index.files)))) as pool:
        return list(pool.map(one, index.files))
