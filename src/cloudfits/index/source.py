"""Where an index's entries come from: a list in memory, or a Parquet document read lazily.

`FitsIndex` asks its `EntrySource` for paths, entries and, for header search, the
value tokens of keywords; it never looks inside. `ListSource` holds the entries of a
JSON index or of a fresh scan; `cloudfits.index.parquet_store.ParquetFiles` reads a
version 2 index a row group at a time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ..fits.keywords import keyword_values
from .entry import FileEntry

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EntrySource", "HDURows", "ListSource"]

HDURows = tuple[list[str], np.ndarray, np.ndarray]
"""``(paths, file_of_row, hdu)``: one row per HDU of the index, in path order."""


class EntrySource(ABC):
    """The entries of an index, in path order.

    Attributes
    ----------
    paths : list of str
        Every path, in order.
    """

    paths: list[str]

    @abstractmethod
    def __len__(self) -> int:
        """The number of files."""

    @abstractmethod
    def __contains__(self, path: object) -> bool:
        """Whether ``path`` is indexed."""

    @abstractmethod
    def entry(self, path: str) -> FileEntry:
        """The entry of ``path``; `KeyError` when it is not indexed."""

    @abstractmethod
    def entries(self) -> list[FileEntry]:
        """Every entry, in path order."""

    @abstractmethod
    def hdu_rows(self) -> HDURows:
        """One row per HDU: the paths, each row's file number and HDU number."""

    @abstractmethod
    def keyword_tokens(self, keywords: tuple[str, ...]) -> dict[str, pa.Array]:
        """Each keyword's value token in every HDU row (null where it is absent)."""


class ListSource(EntrySource):
    """Entries held in memory (a JSON index, or a fresh scan)."""

    def __init__(self, files: list[FileEntry]) -> None:
        self._files = sorted(files, key=lambda f: f.path)
        self._by_path = {f.path: f for f in self._files}
        self.paths = [f.path for f in self._files]

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, path: object) -> bool:
        return path in self._by_path

    def entry(self, path: str) -> FileEntry:
        return self._by_path[path]

    def entries(self) -> list[FileEntry]:
        return self._files

    def hdu_rows(self) -> HDURows:
        counts = [len(f.hdus) for f in self._files]
        file_of_row = np.repeat(np.arange(len(self._files)), counts)
        hdu = np.concatenate([np.arange(c) for c in counts]) if counts else np.zeros(0, int)
        return self.paths, file_of_row, hdu

    def keyword_tokens(self, keywords: tuple[str, ...]) -> dict[str, pa.Array]:
        headers = [h.header for f in self._files for h in f.hdus]
        values = keyword_values(headers, only=keywords)
        return {k: values.column(k, len(headers)) for k in keywords}
