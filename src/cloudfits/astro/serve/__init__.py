"""``cloudfits serve``: a TESSCut-compatible cutout service over any index.

An ASGI application (Starlette, under uvicorn) that speaks MAST TESSCut's API v0.1
(``/tesscut/api/v0.1/sector`` and ``astrocut``), so astroquery's ``Tesscut`` works
unchanged, plus ``/api/v1/...`` for any indexed file and a small
HTML page at ``/``. It reads only objects of its index. Needs
``pip install 'cloudfits[serve]'``.
"""

from __future__ import annotations

from .app import app_from_environment, create_app
from .catalog import Catalog, Cube
from .limits import ServeLimits

__all__ = ["Catalog", "Cube", "ServeLimits", "app_from_environment", "create_app"]
