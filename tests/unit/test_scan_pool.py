"""The scan's long-lived thread pool: kept between scans, never blocked by a scan within a scan.

Local FITS files written by astropy; the index is compared with astropy's offsets.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from astropy.io import fits

import cloudfits
from cloudfits.providers.base import ObjectInfo


def _files(directory: Path, count: int) -> list[Path]:
    directory.mkdir()
    paths = []
    for n in range(count):
        path = directory / f"f{n}.fits"
        image = fits.ImageHDU(np.full((4 + n, 3), n, dtype=">i2"))
        fits.HDUList([fits.PrimaryHDU(), image]).writeto(path)
        paths.append(path)
    return paths


def _offsets(path: Path) -> list[tuple[int, int]]:
    with fits.open(path) as hdul:
        return [(h.fileinfo()["hdrLoc"], h.fileinfo()["datLoc"]) for h in hdul]


def test_scans_share_the_pools_threads(tmp_path: Path) -> None:
    paths = _files(tmp_path / "a", 5)
    seen: list[list[threading.Thread]] = [[], []]
    for number in range(2):
        index = cloudfits.build_index(
            tmp_path / "a",
            concurrency=2,
            on_scanned=lambda _, n=number: seen[n].append(threading.current_thread()),
        )
        assert [[(h.header_offset, h.data_offset) for h in e.hdus] for e in index.files] == [
            _offsets(p) for p in paths
        ]
    assert len(seen[0]) == len(seen[1]) == 5
    assert set(seen[1]) <= set(seen[0])  # the same threads, not new ones
    assert len(set(seen[0])) <= 2


def test_a_scan_started_from_a_scan_finishes(tmp_path: Path) -> None:
    outer_paths = _files(tmp_path / "outer", 4)
    inner_paths = _files(tmp_path / "inner", 3)
    inner: list[cloudfits.FitsIndex] = []

    def scan_inside(info: ObjectInfo) -> None:
        # Every thread of the shared pool (two) is busy with the outer scan here.
        inner.append(cloudfits.build_index(tmp_path / "inner", concurrency=2))

    outcome: list[cloudfits.FitsIndex] = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            cloudfits.build_index(tmp_path / "outer", concurrency=2, on_scanned=scan_inside)
        ),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the scan within a scan waited for the pool it filled"
    assert [e.path for e in outcome[0].files] == [p.name for p in outer_paths]
    assert len(inner) == 4
    for index in inner:
        assert [[(h.header_offset, h.data_offset) for h in e.hdus] for e in index.files] == [
            _offsets(p) for p in inner_paths
        ]
