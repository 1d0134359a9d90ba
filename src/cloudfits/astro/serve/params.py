"""Request parameters: from the query string or a form or JSON body, checked.

Every check failure is a `ParameterError`, answered with status 400 (413 for a body
over the limit, 415 for a body of another type) and a JSON body naming the
parameter. TESSCut clients send the same parameters as a query string (``GET``)
or as a form (``POST``, ``application/x-www-form-urlencoded``).
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "ParameterError",
    "angle_deg",
    "integer",
    "number",
    "read_params",
    "sky_position",
]

_ANGLE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-z]*)\s*$")
_ANGLE_UNITS = {
    "": 1.0,
    "d": 1.0,
    "deg": 1.0,
    "m": 1 / 60,
    "arcmin": 1 / 60,
    "s": 1 / 3600,
    "arcsec": 1 / 3600,
}
_MAX_FIELDS = 64


class ParameterError(ValueError):
    """A missing or bad request parameter (an HTTP 4xx answer)."""

    def __init__(self, message: str, *, status: int = 400, parameter: str | None = None):
        super().__init__(message)
        self.status = status
        self.parameter = parameter

    def body(self) -> dict[str, Any]:
        """The JSON answer."""
        found: dict[str, Any] = {"error": "bad_request", "message": str(self)}
        if self.status == 413:
            found["error"] = "too_large"
        elif self.status == 415:
            found["error"] = "unsupported_media_type"
        elif self.status == 404:
            found["error"] = "not_found"
        if self.parameter:
            found["parameter"] = self.parameter
        return found


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ParameterError(f"the request body is over {limit} bytes", status=413)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ParameterError(f"the request body is over {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_params(request: Request, limit: int) -> dict[str, Any]:
    """The parameters of a request: query string, then a form or JSON body on top.

    A parameter given twice keeps its last value; a JSON body may hold lists.
    """
    items: dict[str, Any] = dict(request.query_params.items())
    if request.method != "POST":
        return items
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request, limit)
    if not body:
        return items
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, max_num_fields=_MAX_FIELDS
            )
        except (UnicodeDecodeError, ValueError) as err:
            raise ParameterError(f"the form body cannot be read: {err}") from None
        items.update(pairs)
    elif kind == "application/json":
        try:
            document = json.loads(body)
        except ValueError as err:
            raise ParameterError(f"the JSON body cannot be read: {err}") from None
        if not isinstance(document, dict):
            raise ParameterError("the JSON body must be an object")
        items.update(document)
    else:
        raise ParameterError("send a form (application/x-www-form-urlencoded) or JSON", status=415)
    return items


def number(
    params: dict[str, Any],
    name: str,
    *,
    default: float | None = None,
    low: float = -math.inf,
    high: float = math.inf,
) -> float:
    """A finite number within ``[low, high]``."""
    raw = params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise ParameterError(f"{name} is required", parameter=name)
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, not {raw!r}", parameter=name) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ParameterError(f"{name} must be within [{low}, {high}], not {raw!r}", parameter=name)
    return value


def integer(
    params: dict[str, Any],
    name: str,
    *,
    default: int | None = None,
    low: int = 0,
    high: int = 2**31,
) -> int:
    """An integer within ``[low, high]``."""
    value = number(
        params, name, default=None if default is None else float(default), low=low, high=high
    )
    if value != int(value):
        raise ParameterError(f"{name} must be an integer, not {params.get(name)!r}", parameter=name)
    return int(value)


def sky_position(params: dict[str, Any]) -> tuple[float, float]:
    """``ra`` (any finite degrees, wrapped into [0, 360)) and ``dec`` ([-90, 90])."""
    ra = number(params, "ra") % 360.0
    dec = number(params, "dec", low=-90.0, high=90.0)
    return ra, dec


def angle_deg(raw: Any, name: str, *, pixel_deg: float | None = None) -> float:
    """An angle such as ``0.2``, ``0.2d``, ``5m``, ``30s`` or ``3px``, in degrees.

    A bare number is degrees; ``px`` needs ``pixel_deg``, the pixel size.
    """
    match = _ANGLE.match(str(raw).lower())
    if match is None:
        raise ParameterError(f"{name} must be an angle such as 0.1, 5m, 30s or 2px", parameter=name)
    value, unit = float(match.group(1)), match.group(2)
    if unit == "px":
        if pixel_deg is None:
            raise ParameterError(f"{name} in pixels needs a pixel size", parameter=name)
        return value * pixel_deg
    if unit not in _ANGLE_UNITS:
        raise ParameterError(f"{name}: unknown unit {unit!r} (d, m, s or px)", parameter=name)
    if value < 0 or not math.isfinite(value):
        raise ParameterError(f"{name} must not be negative", parameter=name)
    return value * _ANGLE_UNITS[unit]
