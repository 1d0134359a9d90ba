"""``/api/v1``: any indexed file's list entry, header and cutouts, and batches.

* ``GET /api/v1/files``: every file with its HDUs (number, name, kind, shape) and
  footprints; TESS cubes with their sector, camera and CCD. No read.
* ``GET /api/v1/header?path=&hdu=``: the header cards of an HDU. No read.
* ``GET /api/v1/cutout?path=&hdu=&ra=&dec=&size=[&format=fits|png]``: for a TESS
  cube the target-pixel file astrocut makes, for another file the cutout of a 2-D
  image with its WCS; ``png`` is a quick look (frame median for a cube).
* ``POST /api/v1/batch`` (JSON ``{"targets": [[ra, dec], ...], "size": 10,
  "sector": N}``, or a form with ``targets=ra,dec;ra,dec``): a zip of the
  target-pixel files of every target in every cube that holds it, the targets of
  each cube planned and read together, with ``manifest.json`` saying what came from
  where and which targets no cube holds.
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from starlette.responses import JSONResponse, Response

from ..cube_cutouts import Target, cube_cutouts, fits_bytes, only_cutout
from ..footprints import is_tess_cube
from ..quicklook import quicklook_png
from ..tess import BUILD_LOCK
from .params import ParameterError, integer, read_params, sky_position
from .tesscut import cutout_size, zip_of_cutouts

if TYPE_CHECKING:
    from starlette.requests import Request

    from ...remote.hdulist import RemoteFITS, RemoteHDU
    from .context import ServeContext

__all__ = ["batch", "cutout", "files", "header"]


async def files(request: Request) -> Response:
    """``/api/v1/files``."""
    context: ServeContext = request.app.state.context
    return JSONResponse(context.catalog.listing)


def _hdu(rf: RemoteFITS, raw: Any) -> RemoteHDU:
    text = str(raw).strip()
    try:
        return rf[int(text)] if text.lstrip("-").isdigit() else rf[text]
    except (KeyError, IndexError):
        raise ParameterError(f"{rf.uri.rsplit('/', 1)[-1]} has no HDU {text!r}", status=404,
                             parameter="hdu") from None  # fmt: skip


def _path(params: dict[str, Any]) -> str:
    path = params.get("path")
    if not path:
        raise ParameterError("path is required", parameter="path")
    return str(path)


async def header(request: Request) -> Response:
    """``/api/v1/header``."""
    context: ServeContext = request.app.state.context
    params = dict(request.query_params)
    rf = context.catalog.open(_path(params))
    hdu = _hdu(rf, params.get("hdu", 0))
    cards = [card.image for card in hdu.raw_header.cards]
    return JSONResponse({"path": params["path"], "hdu": hdu.number, "cards": cards})


def _image_hdu(rf: RemoteFITS, raw: Any) -> RemoteHDU:
    if raw not in (None, ""):
        return _hdu(rf, raw)
    for hdu in rf:
        if hdu.kind.is_image and len(hdu.shape) == 2 and hdu.wcs.has_celestial:
            return hdu
    raise ParameterError("the file has no 2-D image with a celestial WCS (choose an hdu)",
                         parameter="hdu")  # fmt: skip


def _image_cutout(hdu: RemoteHDU, ra: float, dec: float, size: int, kind: str) -> tuple[bytes, str]:
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.nddata import NoOverlapError

    try:
        cut = hdu.cutout(SkyCoord(ra, dec, unit="deg"), size)
    except NoOverlapError:
        raise ParameterError(f"RA {ra} Dec {dec} is not on HDU {hdu.number}", status=404) from None
    with BUILD_LOCK:
        if kind == "png":
            return quicklook_png(cut.data), "image/png"
        header = cut.wcs.to_header(relax=True) if cut.wcs is not None else fits.Header()
        buffer = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(cut.data, header)]).writeto(buffer)
    return buffer.getvalue(), "application/fits"


async def cutout(request: Request) -> Response:
    """``/api/v1/cutout``."""
    context: ServeContext = request.app.state.context
    catalog, limits = context.catalog, context.limits
    params = dict(request.query_params)
    path = _path(params)
    ra, dec = sky_position(params)
    kind = params.get("format", "fits")
    if kind not in ("fits", "png"):
        raise ParameterError("format must be fits or png", parameter="format")
    side = integer(params, "size", default=10, low=1, high=int(limits.max_cutout_pixels**0.5))
    opened = request.scope["cloudfits.opened"]
    rf = catalog.open(path, opened)
    cube = catalog.cubes.get(path)
    if cube is not None and is_tess_cube(rf) and params.get("hdu") in (None, "", "1"):
        size, _ = cutout_size({"x": side, "y": side}, cube, limits)

        def tpf() -> tuple[bytes, str]:
            pieces = catalog.pieces(rf, path)
            made = only_cutout(cube_cutouts(rf, [Target(ra, dec)], size, pieces=pieces, cube=path))
            assert made.hdulist is not None
            if kind == "png":
                with BUILD_LOCK:
                    return quicklook_png(made.hdulist[1].data["FLUX"]), "image/png"
            return fits_bytes(made.hdulist), "application/fits"

        data, media = await to_thread.run_sync(tpf)
    else:
        hdu = _image_hdu(rf, params.get("hdu"))
        data, media = await to_thread.run_sync(_image_cutout, hdu, ra, dec, side, kind)
    return Response(data, media_type=media)


def _targets(raw: Any, limit: int) -> list[Target]:
    if isinstance(raw, str):
        raw = [part.split(",") for part in raw.replace("\n", ";").split(";") if part.strip()]
    if not isinstance(raw, list) or not raw:
        raise ParameterError("targets must be a list of [ra, dec] (or ra,dec;ra,dec)",
                             parameter="targets")  # fmt: skip
    if len(raw) > limit:
        raise ParameterError(f"{len(raw)} targets is over the limit of {limit}", status=413,
                             parameter="targets")  # fmt: skip
    found = []
    for item in raw:
        pair = [item.get("ra"), item.get("dec")] if isinstance(item, dict) else item
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ParameterError(f"a target must be [ra, dec], not {item!r}", parameter="targets")
        found.append(Target(*sky_position({"ra": pair[0], "dec": pair[1]})))
    return found


async def batch(request: Request) -> Response:
    """``/api/v1/batch``."""
    context: ServeContext = request.app.state.context
    catalog = context.catalog
    params = await read_params(request, context.limits.max_body_bytes)
    targets = _targets(params.get("targets"), context.limits.max_targets)
    side = params.get("size", 10)
    wanted = params.get("sector")
    per_cube: dict[str, list[Target]] = defaultdict(list)
    unmatched = []
    for target in targets:
        cubes = catalog.sectors(target.ra, target.dec)
        if wanted not in (None, ""):
            cubes = [c for c in cubes if c.sector == integer(params, "sector", low=1)]
        for cube in cubes:
            per_cube[cube.path].append(target)
        if not cubes:
            unmatched.append(target)
    if not per_cube:
        return JSONResponse({"msg": "No cube holds any of the targets.", "results": []})
    jobs = []
    for path, chosen in sorted(per_cube.items()):
        cube = catalog.cubes[path]
        size, _ = cutout_size({"x": side, "y": params.get("y", side)}, cube, context.limits)
        jobs.append((cube, chosen, size))
    opened = request.scope["cloudfits.opened"]
    return await zip_of_cutouts(context, jobs, opened, manifest=True, unmatched=unmatched)
