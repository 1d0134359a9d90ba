"""Hook specifications of cloudfits plugins.

A plugin is a module (or object) with functions marked ``@cloudfits.hookimpl``,
made known through the ``cloudfits`` entry point group::

    [project.entry-points.cloudfits]
    myprovider = "cloudfits_myprovider"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .registry import ProviderRegistry

hookspec = pluggy.HookspecMarker("cloudfits")
hookimpl = pluggy.HookimplMarker("cloudfits")


@hookspec
def cloudfits_register_providers(registry: ProviderRegistry) -> None:
    """Register storage providers.

    Parameters
    ----------
    registry : cloudfits.providers.registry.ProviderRegistry
        Call ``registry.add(ProviderSpec(...))`` once per provider.
    """
