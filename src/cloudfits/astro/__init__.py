"""Astronomy on top of remote HDUs: TESS target-pixel cutouts."""

from __future__ import annotations

from .tess import tess_cutout

__all__ = ["tess_cutout"]
