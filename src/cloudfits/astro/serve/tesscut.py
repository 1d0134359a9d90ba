"""MAST TESSCut API v0.1, as astroquery's ``Tesscut`` calls it.

* ``sector?ra=&dec=&radius=``: ``{"results": [{"sectorName", "sector", "camera",
  "ccd"}, ...]}`` for every cube whose footprint holds the position (or comes within
  ``radius``: a bare number is degrees; ``d``, ``m``, ``s`` or ``px`` may follow).
* ``astrocut?ra=&dec=&x=&y=&units=px|d|m|s[&sector=N]``: a zip of the target-pixel
  files astrocut makes (its file names), one per cube holding the target, or
  ``{"msg": ...}`` when none does.

Both answer ``GET`` with a query string and ``POST`` with a form, as MAST does
(``get_sectors`` and ``get_cutouts`` post forms; ``download_cutouts`` gets a URL).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..cube_cutouts import Target, TargetCutout, cube_cutouts, fits_bytes
from .params import ParameterError, angle_deg, integer, number, read_params, sky_position
from .zipstream import ZipChunks

if TYPE_CHECKING:
    from starlette.requests import Request

    from .catalog import Catalog, Cube
    from .context import ServeContext

__all__ = ["astrocut", "cutout_size", "sector"]

_UNITS = {"px": None, "pixel": None, "d": "deg", "deg": "deg", "m": "arcmin", "arcmin": "arcmin",
          "s": "arcsec", "arcsec": "arcsec"}  # fmt: skip
_PER_DEGREE = {"deg": 1.0, "arcmin": 60.0, "arcsec": 3600.0}


async def sector(request: Request) -> Response:
    """``/tesscut/api/v0.1/sector``: the cubes that hold a position."""
    context: ServeContext = request.app.state.context
    params = await read_params(request, context.limits.max_body_bytes)
    ra, dec = sky_position(params)
    radius = angle_deg(params.get("radius", 0), "radius", pixel_deg=21.0 / 3600)
    if radius > context.limits.max_radius_deg:
        raise ParameterError(
            f"radius is over {context.limits.max_radius_deg} degrees", parameter="radius"
        )
    cubes = context.catalog.sectors(ra, dec, radius)
    return JSONResponse({"results": [c.as_result() for c in cubes]})


def cutout_size(
    params: dict[str, Any], cube: Cube, limits: Any, *, default: float = 5
) -> tuple[Any, int]:
    """astrocut's ``cutout_size`` ``(ny, nx)`` for ``x``, ``y`` and ``units``, and its
    pixel count (checked against the limits for this cube's pixel size and frames)."""
    from astropy import units as u

    unit_name = str(params.get("units", "px") or "px").lower()
    if unit_name not in _UNITS:
        raise ParameterError(f"units must be px, d, m or s, not {unit_name!r}", parameter="units")
    unit = _UNITS[unit_name]
    y_default = params.get("x", default)  # a square when only x is given, as MAST does
    x = number(params, "x", default=float(default), low=0, high=1e6)
    y = number({"y": params.get("y", y_default)}, "y", low=0, high=1e6)
    if unit is None:
        nx, ny = math.ceil(x), math.ceil(y)
        if x != int(x) or y != int(y):
            raise ParameterError("x and y in pixels must be integers", parameter="x")
        size: Any = (int(y), int(x))
    else:
        per_pixel = cube.footprint.pixel_scale * _PER_DEGREE[unit]
        nx, ny = math.ceil(x / per_pixel), math.ceil(y / per_pixel)
        size = u.Quantity([y, x], getattr(u, unit))
    pixels = max(nx, 1) * max(ny, 1)
    if nx < 1 or ny < 1:
        raise ParameterError("the cutout must be at least 1 pixel on a side", parameter="x")
    if pixels > limits.max_cutout_pixels:
        raise ParameterError(
            f"the cutout of {ny}x{nx} pixels is over the limit of {limits.max_cutout_pixels}"
            " pixels",
            status=413,
            parameter="x",
        )
    if pixels * cube.frames > limits.max_cutout_values:
        raise ParameterError(
            f"{ny}x{nx} pixels x {cube.frames} frames is over the limit of"
            f" {limits.max_cutout_values} values",
            status=413,
            parameter="x",
        )
    return size, pixels


def _cut(
    catalog: Catalog, cube: Cube, targets: list[Target], size: Any, opened: list[Any]
) -> list[TargetCutout]:
    rf = catalog.open(cube.path, opened)
    pieces = catalog.pieces(rf, cube.path)
    return cube_cutouts(rf, targets, size, pieces=pieces, cube=cube.path)


async def zip_of_cutouts(
    context: ServeContext,
    jobs: list[tuple[Cube, list[Target], Any]],
    opened: list[Any],
    *,
    manifest: bool = False,
    unmatched: list[Target] | None = None,
) -> Response:
    """Cut each job (one cube, its targets) in turn and stream the zip of the results.

    The first cube is cut before the answer starts, so that a failure there is still
    a clean error; each further cube is cut while the previous one's bytes go out.
    """
    catalog = context.catalog

    async def run(job: tuple[Cube, list[Target], Any]) -> list[TargetCutout]:
        cube, targets, size = job
        return await to_thread.run_sync(_cut, catalog, cube, targets, size, opened)

    first = await run(jobs[0])
    if not manifest and not any(r.hdulist is not None for r in first) and len(jobs) == 1:
        return JSONResponse({"msg": first[0].error or "the target is not in any cube"})

    async def chunks() -> AsyncIterator[bytes]:
        archive = ZipChunks()
        report: list[dict[str, Any]] = []
        results = first
        for step in range(len(jobs)):
            if step:
                results = await run(jobs[step])
            for result in results:
                entry = {"ra": result.target.ra, "dec": result.target.dec, "cube": result.cube}
                if result.hdulist is None:
                    report.append({**entry, "error": result.error})
                    continue
                data = await to_thread.run_sync(fits_bytes, result.hdulist)
                report.append({**entry, "file": result.name})
                yield archive.add(result.name, data)
        for target in unmatched or []:
            report.append({"ra": target.ra, "dec": target.dec, "cube": None,
                           "error": "no cube of the index holds the target"})  # fmt: skip
        if manifest:
            yield archive.add("manifest.json", json.dumps(report, indent=1).encode())
        yield archive.close()

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="astrocut.zip"'},
    )


async def astrocut(request: Request) -> Response:
    """``/tesscut/api/v0.1/astrocut``: target-pixel files of a position, zipped."""
    context: ServeContext = request.app.state.context
    params = await read_params(request, context.limits.max_body_bytes)
    ra, dec = sky_position(params)
    wanted = params.get("sector")
    cubes = context.catalog.sectors(ra, dec)
    if wanted not in (None, ""):
        number_wanted = integer(params, "sector", low=1, high=10_000)
        cubes = [c for c in cubes if c.sector == number_wanted]
    if not cubes:
        where = f"RA {ra:.6f} Dec {dec:.6f}"
        extra = f" in sector {wanted}" if wanted not in (None, "") else ""
        return JSONResponse({"msg": f"No data found for {where}{extra}: no cube holds it."})
    jobs = []
    for cube in cubes:
        size, _ = cutout_size(params, cube, context.limits)
        jobs.append((cube, [Target(ra, dec)], size))
    return await zip_of_cutouts(context, jobs, request.scope["cloudfits.opened"])
