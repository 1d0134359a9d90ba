"""The module paths of cloudfits 0.1's flat layout, kept importable.

``import cloudfits.fetcher`` (and every other moved module) still works: the name is
bound to the module at its new place, with a `DeprecationWarning` naming that place.
Public names live on `cloudfits` itself and do not warn.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

__all__ = ["MOVED", "install"]

MOVED: dict[str, str] = {
    "cloudfits.accounting": "cloudfits.fetch.stats",
    "cloudfits.cost": "cloudfits.fetch.cost",
    "cloudfits.retry": "cloudfits.fetch.retry",
    "cloudfits.rangefile": "cloudfits.fetch.rangefile",
    "cloudfits.fetcher": "cloudfits.fetch",
    "cloudfits.scan": "cloudfits.fits.scan",
    "cloudfits.geometry": "cloudfits.fits.geometry",
    "cloudfits.keywords": "cloudfits.fits.keywords",
    "cloudfits.planner": "cloudfits.fits.planner",
    "cloudfits.heap": "cloudfits.fits.heap",
    "cloudfits.compressed": "cloudfits.remote.compressed",
    "cloudfits.tables": "cloudfits.remote.tables",
    "cloudfits.colruns": "cloudfits.remote.colruns",
    "cloudfits.sky": "cloudfits.remote.sky",
    "cloudfits.index_schema": "cloudfits.index.json_schema",
    "cloudfits.index_v2": "cloudfits.index.parquet",
    "cloudfits.index_v2_store": "cloudfits.index.parquet_store",
    "cloudfits.search": "cloudfits.index.search",
    "cloudfits.indexer": "cloudfits.index.build",
    "cloudfits.verify": "cloudfits.index.verify",
    "cloudfits.executors": "cloudfits.scale.executors",
    "cloudfits.daskarray": "cloudfits.scale.daskarray",
    "cloudfits.tess": "cloudfits.astro.tess",
    "cloudfits.plugins": "cloudfits.providers.registry",
    "cloudfits.hookspecs": "cloudfits.providers.hookspecs",
    "cloudfits.providers.s3fast": "cloudfits.providers.s3.presigned",
    "cloudfits.providers.streams": "cloudfits.providers.kit",
    "cloudfits.demo": "cloudfits.cli.tutorial",
    "cloudfits.commands": "cloudfits.cli",
    "cloudfits.commands.common": "cloudfits.cli.common",
    "cloudfits.commands.cost": "cloudfits.cli.pricing",
    "cloudfits.commands.cutout": "cloudfits.cli.cutout",
    "cloudfits.commands.demo": "cloudfits.cli.demo",
    "cloudfits.commands.headers": "cloudfits.cli.headers",
    "cloudfits.commands.index": "cloudfits.cli.index",
    "cloudfits.commands.info": "cloudfits.cli.info",
    "cloudfits.commands.providers": "cloudfits.cli.providers",
    "cloudfits.commands.search": "cloudfits.cli.search",
    "cloudfits.commands.targets": "cloudfits.cli.targets",
    "cloudfits.commands.verify": "cloudfits.cli.verify",
}
"""Old module path -> the module now serving it."""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and hands out the module at its new place."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} has moved to {new}; import it from there"
            " (or use the names exported by cloudfits)",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at the new place is already imported."""


_FINDER = _MovedModules()


def install() -> None:
    """Put the finder of moved modules on `sys.meta_path` (once).

    It goes first: an old subpackage path (``cloudfits.commands.index``) would otherwise
    be found by the path finder inside the new package's directory and loaded again,
    as a second copy of the module.
    """
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
