"""What a server worker knows of its index: files, TESS cubes, footprints, caches.

Built once when a worker starts. The footprints of TESS cubes need the WCS row of
each cube's frame table (one small range request per cube, made in parallel); the
footprints of 2-D images come from their indexed headers without any read. A
cube's primary header and frame table, shared by all of its cutouts, are read on
first use and kept in a cache bounded in bytes. Files are only ever opened by their
path in the index: no request parameter reaches a provider in any other way.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ...errors import CloudFitsError
from ...fetch.stats import ReadStats
from ...uri import redact_uri
from ..footprints import Footprint, FootprintTable, footprint_of, is_tess_cube
from ..tess import cube_pieces
from .params import ParameterError

if TYPE_CHECKING:
    from astropy.io import fits

    from ...index.core import FitsIndex
    from ...remote.hdulist import RemoteFITS

__all__ = ["Catalog", "Cube"]

log = logging.getLogger("cloudfits.serve")
_CUBE_NAME = re.compile(r"tess-s(\d{4})-(\d)-(\d)")


@dataclass(frozen=True)
class Cube:
    """A TESS cube of the index, as TESSCut names it."""

    path: str
    sector: int
    camera: int
    ccd: int
    footprint: Footprint
    frames: int

    @property
    def sector_name(self) -> str:
        """``tess-s0001-1-1``."""
        return f"tess-s{self.sector:04d}-{self.camera}-{self.ccd}"

    def as_result(self) -> dict[str, str]:
        """The entry of TESSCut's ``sector`` answer."""
        return {
            "sectorName": self.sector_name,
            "sector": f"{self.sector:04d}",
            "camera": str(self.camera),
            "ccd": str(self.ccd),
        }


def _cube_numbers(path: str, rf: RemoteFITS) -> tuple[int, int, int] | None:
    primary = rf[0].header
    try:
        return int(primary["SECTOR"]), int(primary["CAMERA"]), int(primary["CCD"])
    except (KeyError, TypeError, ValueError):
        found = _CUBE_NAME.search(path)
        return tuple(int(v) for v in found.groups()) if found else None  # type: ignore[return-value]


class _PiecesCache:
    """Primary HDUs and frame tables of cubes, least recently used first out."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.nbytes = 0

    def get(self, path: str, load: Any) -> Any:
        with self._lock:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:  # one read per cube even when many requests want it at once
            with self._lock:
                if path in self._items:
                    self._items.move_to_end(path)
                    return self._items[path][0]
            value, size = load()
            with self._lock:
                self._items[path] = (value, size)
                self.nbytes += size
                while self.nbytes > self._max and len(self._items) > 1:
                    _, (_, dropped) = self._items.popitem(last=False)
                    self.nbytes -= dropped
            return value


class Catalog:
    """The index of one server, with its footprints.

    Parameters
    ----------
    index : FitsIndex
        The loaded index.
    data_options : dict
        Provider options for reading the data (``requester_pays``, ...).
    cache_bytes : int
        Bound of the cache of cube headers and frame tables.
    threads : int
        Parallel reads while footprints are computed.
    """

    def __init__(
        self,
        index: FitsIndex,
        data_options: dict[str, Any] | None = None,
        *,
        cache_bytes: int = 256 * 1024 * 1024,
        threads: int = 16,
    ) -> None:
        self.index = index
        self.data_options = dict(data_options or {})
        self.paths = set(index.paths)
        self._pieces = _PiecesCache(cache_bytes)
        self.startup = ReadStats()
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            found = list(pool.map(self._describe, sorted(self.paths)))
        self.cubes: dict[str, Cube] = {}
        footprints: list[Footprint] = []
        for cube, prints in found:
            footprints.extend(prints)
            if cube is not None:
                self.cubes[cube.path] = cube
        self.footprints = FootprintTable(footprints)
        self._cube_table = FootprintTable([c.footprint for c in self.cubes.values()])
        self.startup_seconds = time.perf_counter() - began

    def _describe(self, path: str) -> tuple[Cube | None, list[Footprint]]:
        rf = self.open(path)
        try:
            prints = footprint_of(path, rf)
        except (CloudFitsError, OSError, ValueError) as err:
            log.warning("%s: no footprint (%s)", path, err)
            return None, []
        finally:
            self.startup.add(rf.stats.requests, rf.stats.bytes)
        if not is_tess_cube(rf) or not prints:
            return None, prints
        numbers = _cube_numbers(path, rf)
        if numbers is None:
            return None, prints
        frames = int(rf[1].shape[2])
        return Cube(path, *numbers, footprint=prints[0], frames=frames), prints

    def open(self, path: str, opened: list[RemoteFITS] | None = None) -> RemoteFITS:
        """Open a file of the index by its path (a 404 answer for any other path).

        ``opened`` collects the files a request opened, for its access-log line.
        """
        if path not in self.paths:
            raise ParameterError(
                f"{path!r} is not a file of this index", status=404, parameter="path"
            )
        rf = self.index.open(path, **self.data_options)
        if opened is not None:
            opened.append(rf)
        return rf

    def pieces(self, rf: RemoteFITS, path: str) -> tuple[fits.PrimaryHDU, fits.BinTableHDU]:
        """The cube's primary HDU and frame table, from the cache or read with ``rf``."""

        def load() -> tuple[Any, int]:
            pieces = cube_pieces(rf)
            return pieces, rf[0].layout.data_size + rf[2].layout.data_size + 5760

        result: tuple[fits.PrimaryHDU, fits.BinTableHDU] = self._pieces.get(path, load)
        return result

    def sectors(self, ra: float, dec: float, radius_deg: float = 0.0) -> list[Cube]:
        """Cubes whose footprint holds (RA, Dec) or comes within the radius, by sector."""
        found = self._cube_table.search(ra, dec, radius_deg)
        by_path = {c.footprint.path: c for c in self.cubes.values()}
        cubes = [by_path[f.path] for f in found]
        return sorted(cubes, key=lambda c: (c.sector, c.camera, c.ccd))

    @cached_property
    def listing(self) -> dict[str, Any]:
        """The ``files`` answer: what the index holds, from the index alone."""
        by_path: dict[str, list[Any]] = defaultdict(list)
        for footprint in self.footprints.footprints:
            by_path[footprint.path].append(footprint)
        entries = []
        for path in sorted(self.paths):
            rf = self.index.open(path, **self.data_options)
            hdus = [
                {"hdu": h.number, "name": h.name, "kind": h.kind.value, "shape": list(h.shape)}
                for h in rf
            ]
            cube = self.cubes.get(path)
            entries.append(
                {
                    "path": path,
                    "size": rf.size,
                    "hdus": hdus,
                    "cube": cube.as_result() if cube else None,
                    "footprints": [
                        {
                            "hdu": f.hdu,
                            "outline": [[round(a, 6), round(b, 6)] for a, b in f.corners_deg()],
                        }
                        for f in by_path[path]
                    ],
                }
            )
        return {"data_uri": redact_uri(self.index.data_uri), "files": entries}
