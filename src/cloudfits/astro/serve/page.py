"""The page at ``/``: the index's files and HDUs, a target form, the quick look.

Plain HTML made on the server (every value escaped), so it shows without scripts;
the form's fields come back as the page's query string, and the quick look is an
``<img>`` of ``/api/v1/cutout?...&format=png``. One line of script marks the body
``data-quicklook="loaded"`` (or ``"failed"``) once the browser has the image.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse, Response

if TYPE_CHECKING:
    from starlette.requests import Request

    from .context import ServeContext

__all__ = ["page"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } table { border-collapse: collapse; margin: .5em 0 1em; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
th { background: #f0f0f0; } code { font-size: 12px; }
form label { margin-right: 1em; } input { width: 8em; }
#quicklook img { border: 1px solid #888; image-rendering: pixelated; }
"""


def _field(name: str, label: str, value: str, width: str = "8em") -> str:
    return (
        f'<label>{escape(label)} <input name="{name}" value="{escape(value)}"'
        f' style="width:{width}"></label>'
    )


def _files_table(listing: dict[str, Any]) -> str:
    rows = []
    for entry in listing["files"]:
        cube = entry["cube"]
        what = f"TESS {cube['sectorName']}" if cube else ""
        for hdu in entry["hdus"]:
            rows.append(
                "<tr>"
                f"<td><code>{escape(entry['path'])}</code></td><td>{hdu['hdu']}</td>"
                f"<td>{escape(hdu['name'])}</td><td>{escape(hdu['kind'])}</td>"
                f"<td>{escape(' x '.join(str(n) for n in hdu['shape']))}</td>"
                f"<td>{escape(what if hdu['hdu'] == 1 else '')}</td></tr>"
            )
    head = "<tr><th>file</th><th>HDU</th><th>name</th><th>kind</th><th>shape</th><th></th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


async def page(request: Request) -> Response:
    """``/``: the page."""
    context: ServeContext = request.app.state.context
    listing = context.catalog.listing
    params = dict(request.query_params)
    first = listing["files"][0]["path"] if listing["files"] else ""
    path = params.get("path", first)
    values = {
        "path": path,
        "hdu": params.get("hdu", ""),
        "ra": params.get("ra", ""),
        "dec": params.get("dec", ""),
        "size": params.get("size", "10"),
    }
    look = ""
    if values["ra"] and values["dec"] and path:
        given = {k: v for k, v in values.items() if v}
        query = urlencode(given | {"format": "png"})
        look = (
            f'<div id="quicklook"><p>Quick look of <code>{escape(path)}</code> at RA'
            f" {escape(values['ra'])}, Dec {escape(values['dec'])}"
            f" ({escape(values['size'])} pixels; frame median for a cube):</p>"
            f'<img alt="quick look" src="/api/v1/cutout?{escape(query)}"'
            " onload=\"document.body.dataset.quicklook='loaded'\""
            " onerror=\"document.body.dataset.quicklook='failed'\">"
            f'<p><a href="/api/v1/cutout?{escape(urlencode(given))}">'
            "FITS</a></p></div>"
        )
    form = (
        '<form method="get" action="/">'
        + _field("path", "file", values["path"], "22em")
        + _field("hdu", "HDU", values["hdu"], "3em")
        + _field("ra", "RA", values["ra"])
        + _field("dec", "Dec", values["dec"])
        + _field("size", "size (px)", values["size"], "3em")
        + '<button type="submit">cut out</button></form>'
    )
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>cloudfits serve</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>cloudfits serve</h1><p>Index of <code>{escape(listing['data_uri'])}</code>:"
        f" {len(listing['files'])} files, {len(context.catalog.cubes)} TESS cubes."
        " TESSCut API: <code>/tesscut/api/v0.1/</code>; files: <code>/api/v1/files</code>.</p>"
        f"{_files_table(listing)}{form}{look}</body></html>"
    )
    return HTMLResponse(body)
