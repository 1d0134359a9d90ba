"""Indexes saved through a provider, for the tests that check what the store keeps.

`saved_content_types` writes one small index in each format below a base URI and
returns the content type the store reports for each object, read by the caller's
own client (a HEAD through the store's SDK), not by the provider under test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..index.build import build_index
from ..index.formats import IndexFormat

__all__ = ["EXPECTED_CONTENT_TYPES", "saved_content_types"]

EXPECTED_CONTENT_TYPES: dict[str, str] = {fmt.suffix: fmt.content_type for fmt in IndexFormat}
"""The content type every provider stores each index format with, by name ending."""


def saved_content_types(
    directory: Path,
    base_uri: str,
    content_type_of: Callable[[str], str | None],
    **options: Any,
) -> dict[str, str | None]:
    """Save an index as ``index.json``, ``index.json.gz`` and ``index.parquet`` below
    ``base_uri`` (with the provider ``options``); return each suffix's stored type.

    ``directory`` is a local scratch directory for the FITS file that is indexed;
    ``content_type_of(name)`` returns the content type the store holds for the object
    ``name`` below ``base_uri``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.arange(12, dtype=">i2").reshape(3, 4)).writeto(directory / "a.fits")
    index = build_index(str(directory))
    found: dict[str, str | None] = {}
    for suffix in EXPECTED_CONTENT_TYPES:
        name = f"index{suffix}"
        index.save(base_uri.rstrip("/") + "/" + name, **options)
        found[suffix] = content_type_of(name)
    return found
