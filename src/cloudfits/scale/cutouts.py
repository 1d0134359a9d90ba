"""`batch_cutouts`: target-pixel files of many targets, one task per TESS cube.

The footprints of the index's cubes are found first (one small read of each cube's
frame table), every target is given to each cube that holds it, and each cube with
targets becomes one task: its targets planned and read together
(`~cloudfits.astro.cube_cutouts.cube_cutouts`). Tasks run on a local thread pool,
or as Dask tasks (``executor="dask"``, a scheduler address or a
``distributed.Client``), where each task rebuilds a one-file index from the cube's
index entry and sends back the target-pixel files as FITS bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..astro.cube_cutouts import Target, TargetCutout, cube_cutouts, fits_bytes
from ..astro.footprints import FootprintTable, footprint_of, is_tess_cube
from ..errors import CloudFitsError
from ..index.core import FileEntry, FitsIndex
from ..providers.location import ObjectLocation
from .executors import dask_client

__all__ = ["batch_cutouts"]


@dataclass(frozen=True)
class _CubeJob:
    """What a task needs: the cube's index entry, not an open file or a client."""

    data_uri: str
    entry: FileEntry
    targets: tuple[Target, ...]
    size: Any
    options: tuple[tuple[str, Any], ...]

    def run(self) -> list[tuple[Target, str, str, bytes | None, str | None]]:
        index = FitsIndex(self.data_uri, [self.entry])
        rf = index.open(self.entry.path, **dict(self.options))
        found = cube_cutouts(rf, list(self.targets), self.size, cube=self.entry.path)
        return [
            (r.target, r.cube, r.name, fits_bytes(r.hdulist) if r.hdulist else None, r.error)
            for r in found
        ]


def _as_target(item: Any) -> Target:
    if isinstance(item, Target):
        return item
    if hasattr(item, "icrs"):
        return Target(float(item.icrs.ra.deg), float(item.icrs.dec.deg))
    ra, dec = item
    return Target(float(ra) % 360.0, float(dec))


def _run_job(job: _CubeJob) -> list[tuple[Target, str, str, bytes | None, str | None]]:
    return job.run()


def batch_cutouts(
    index: FitsIndex,
    targets: Sequence[Any],
    size: Any = 10,
    *,
    executor: Any = None,
    threads: int = 4,
    **options: Any,
) -> list[TargetCutout]:
    """Cut target-pixel files of many targets out of every TESS cube that holds them.

    Parameters
    ----------
    index : FitsIndex
        An index holding TESS cubes (other files are ignored).
    targets : sequence
        Positions: ``(ra, dec)`` pairs in degrees, `~astropy.coordinates.SkyCoord`
        scalars, or `~cloudfits.astro.cube_cutouts.Target`.
    size : int, pair, or `~astropy.units.Quantity`
        As astrocut's ``cutout_size``: ``(ny, nx)`` pixels or an angle.
    executor : None, "threads", "dask", str or distributed.Client
        Where the per-cube tasks run: a local thread pool (None, ``"threads"``) or Dask.
    threads : int
        Size of the local thread pool.
    **options
        Provider options for reading the cubes (``requester_pays=True``, ...). With
        Dask they travel in the task graph, so secrets are refused here: give them to
        the workers through the provider's environment or configuration instead.

    Returns
    -------
    list of TargetCutout
        One per (cube, target) pair whose cube holds the target, cubes in path order
        and targets in the order given, plus one with ``error`` for each target that
        no cube holds.
    """
    from astropy.io import fits

    wanted = [_as_target(t) for t in targets]
    cubes = [path for path in index.paths if is_tess_cube(index.open(path, **options))]
    table = FootprintTable(
        [fp for path in cubes for fp in footprint_of(path, index.open(path, **options))]
    )
    per_cube: dict[str, list[Target]] = {}
    missing = []
    for target in wanted:
        found = table.search(target.ra, target.dec)
        if not found:
            missing.append(TargetCutout(target, "", error="no cube of the index holds the target"))
        for footprint in found:
            per_cube.setdefault(footprint.path, []).append(target)
    jobs = [
        _CubeJob(index.data_uri, index.entry(path), tuple(chosen), size, tuple(options.items()))
        for path, chosen in sorted(per_cube.items())
    ]
    outputs = _run(jobs, executor, threads, ObjectLocation.from_uri(index.data_uri, **options))
    results = [
        TargetCutout(t, cube, name, fits.HDUList.fromstring(data) if data else None, error)
        for output in outputs
        for t, cube, name, data, error in output
    ]
    return results + missing


def _run(
    jobs: list[_CubeJob], executor: Any, threads: int, location: ObjectLocation
) -> list[list[Any]]:
    if not jobs:
        return []
    if executor in (None, "threads"):
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            return list(pool.map(_run_job, jobs))
    withheld = location.portable()[1]
    if withheld:
        raise CloudFitsError(
            f"batch_cutouts on Dask does not send {', '.join(withheld)} in the task graph:"
            " configure the workers' provider credentials instead"
        )
    client, created = dask_client(executor)
    try:
        futures = client.map(_run_job, jobs, pure=False)
        return list(client.gather(futures))  # type: ignore[no-untyped-call]
    finally:
        if created:
            client.close()  # type: ignore[no-untyped-call]
