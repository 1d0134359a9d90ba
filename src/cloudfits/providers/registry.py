"""Finding providers: the pluggy manager and the typed provider registry.

Built-in providers are registered through the same hook as third-party plugins.
Entry points of the ``cloudfits`` group are loaded lazily, on the first lookup. A
plugin that fails to load or to register is reported with a warning naming it and
skipped; the others still load. ``CLOUDFITS_PLUGINS`` (comma-separated names) loads
only those entry points; ``CLOUDFITS_DISABLE_PLUGINS`` skips the named ones.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import threading
import warnings
import weakref
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

import pluggy

from ..errors import CloudFitsWarning, ProviderNotFoundError
from ..uri import split_uri
from . import hookspecs
from .base import Provider, ProviderSpec

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginManager",
    "ProviderRegistry",
    "get_registry",
    "reset_registry",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cloudfits"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "cloudfits.providers.file",
    "cloudfits.providers.s3",
    "cloudfits.providers.spaces",
    "cloudfits.providers.https",
)
INSTALL_HINTS: dict[str, str] = {
    "gs": "cloudfits-gcs",
    "gcs": "cloudfits-gcs",
    "az": "cloudfits-azure",
    "azure": "cloudfits-azure",
    "abfs": "cloudfits-azure",
    "libcloud+": "cloudfits-libcloud",
}


class ProviderRegistry:
    """Every provider known to this process, by name and by URI scheme.

    A process forked from this one makes its own provider instances: those of the
    parent hold its connections (sockets both processes would read from) and threads
    the child does not have.
    """

    def __init__(self) -> None:
        self._specs: dict[str, ProviderSpec] = {}
        self._instances: dict[tuple[str, str, Any], Provider] = {}
        self._lock = threading.Lock()
        _registries.add(self)

    def _forget_instances(self) -> None:
        """In a forked child: keep the parent's instances (closing their connections
        could disturb the parent's), but never hand them out."""
        self._lock = threading.Lock()
        _inherited.append(self._instances)
        self._instances = {}

    def add(self, spec: ProviderSpec) -> None:
        """Register a provider; a later registration of the same name replaces it."""
        if not isinstance(spec, ProviderSpec):
            raise TypeError(f"registry.add() takes a ProviderSpec, not {type(spec).__name__}")
        self._specs[spec.name] = spec

    def specs(self) -> list[ProviderSpec]:
        """All registered providers, by name."""
        return [self._specs[name] for name in sorted(self._specs)]

    def by_name(self, name: str) -> ProviderSpec:
        """The provider registered as ``name`` (``"s3"``, ``"gcs"``, ...)."""
        if name in self._specs:
            return self._specs[name]
        scheme_spec = self._scheme_match(name.lower())
        if scheme_spec is not None:
            if scheme_spec.schemes[0] != name.lower():
                # Named by a scheme ("libcloud+s3", "gs"): bare buckets get that scheme.
                schemes = (name.lower(), *scheme_spec.schemes)
                return dataclasses.replace(scheme_spec, schemes=schemes)
            return scheme_spec
        raise ProviderNotFoundError(
            f"no provider named {name!r}; known: {', '.join(sorted(self._specs))}"
            + _install_hint(name)
        )

    def by_scheme(self, scheme: str) -> ProviderSpec:
        """The provider serving URIs ``scheme://...``."""
        spec = self._scheme_match(scheme.lower())
        if spec is None:
            known = sorted({s for spec in self._specs.values() for s in spec.schemes})
            raise ProviderNotFoundError(
                f"no provider serves {scheme}:// URIs; known schemes: {', '.join(known)}"
                + _install_hint(scheme)
            )
        return spec

    def _scheme_match(self, scheme: str) -> ProviderSpec | None:
        for spec in self._specs.values():
            if scheme in spec.schemes:
                return spec
        for spec in self._specs.values():
            for pattern in spec.schemes:
                if pattern.endswith("+") and scheme.startswith(pattern):
                    return spec
        return None

    def provider(self, spec: ProviderSpec, scheme: str, options: dict[str, Any]) -> Provider:
        """A provider instance for ``spec`` with ``options``; one is shared per config."""
        config = spec.make_config(options)
        key = (spec.name, scheme, config)
        with self._lock:
            instance = self._instances.get(key)
            if instance is None:
                instance = spec.factory(config, scheme)
                self._instances[key] = instance
        return instance

    def for_uri(self, uri: str, **options: Any) -> tuple[Provider, str]:
        """The provider for ``uri`` and the path it takes."""
        scheme, path = split_uri(uri)
        return self.provider(self.by_scheme(scheme), scheme, options), path


_registries: weakref.WeakSet[ProviderRegistry] = weakref.WeakSet()
_inherited: list[dict[tuple[str, str, Any], Provider]] = []


def _forget_instances_in_child() -> None:
    for registry in list(_registries):
        registry._forget_instances()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_instances_in_child)


def _install_hint(scheme: str) -> str:
    for prefix, package in INSTALL_HINTS.items():
        if scheme == prefix or (prefix.endswith("+") and scheme.startswith(prefix)):
            return f"; install {package} to read {scheme.rstrip('+')} URIs"
    return ""


def _names(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class PluginManager:
    """The pluggy manager behind a typed method per hook (as tox 4's ``plugin/manager.py``).

    Nothing outside this class calls ``pm.hook.X`` or sees pluggy's untyped results. Each
    plugin is loaded, checked and called on its own: one that fails to load, implements a
    hook that does not exist (a misspelled name) or fails in its hook is reported with a
    `CloudFitsWarning` naming it and skipped; the others go on.
    """

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager("cloudfits")
        self._pm.add_hookspecs(hookspecs)

    def load_plugins(self) -> None:
        """Register the built-ins and the allowed entry points, then `check_pending`."""
        for module_name in DEFAULT_PLUGINS:
            self._pm.register(importlib.import_module(module_name), name=module_name)
        allowed = _names("CLOUDFITS_PLUGINS")
        blocked = _names("CLOUDFITS_DISABLE_PLUGINS") or set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                logger.debug("cloudfits plugin %s skipped by the environment", ep.name)
                continue
            if self._pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self._pm.register(plugin, name=ep.name)
            except Exception as err:  # a broken plugin must not stop the others
                _report_broken(ep.name, ep.value, err)
        self.check_pending()

    def check_pending(self) -> None:
        """Skip every plugin with a hook implementation that matches no hook specification.

        pluggy's ``check_pending`` stops at the first such plugin; each one found is
        reported (naming the plugin and its unknown hooks) and unregistered until none is
        left, so a misspelled ``@hookimpl`` is never silently ignored.
        """
        while True:
            try:
                self._pm.check_pending()
            except pluggy.PluginValidationError as err:
                plugin = err.plugin
                name = self._pm.get_name(plugin) or repr(plugin)
                unknown = " and ".join(self._unknown_hooks(plugin))
                known = ", ".join(self.hook_names())
                _report_broken(
                    name,
                    str(getattr(plugin, "__name__", plugin)),
                    f"it implements {unknown}, which is no cloudfits hook (misspelled?"
                    f" the hooks are: {known})",
                )
                self._pm.unregister(plugin)
                continue
            return

    def hook_names(self) -> list[str]:
        """The names of the hooks a plugin may implement."""
        return sorted(n for n, c in vars(self._pm.hook).items() if c.has_spec())

    def _unknown_hooks(self, plugin: object) -> list[str]:
        found = []
        for name, caller in vars(self._pm.hook).items():
            if caller.has_spec():
                continue
            if any(impl.plugin is plugin for impl in caller.get_hookimpls()):
                found.append(repr(name))
        return found

    def plugin_names(self) -> list[str]:
        """The names of the registered plugins (built-in modules and entry points)."""
        return sorted(str(name) for name, _ in self._pm.list_name_plugin())

    def register_providers(self, registry: ProviderRegistry) -> None:
        """Call ``cloudfits_register_providers`` of every plugin, each on its own.

        Each plugin registers into a staging registry first, so a plugin that fails half
        way adds nothing; the built-ins are called first and a later plugin may replace
        one of their names.
        """
        hook = self._pm.hook.cloudfits_register_providers
        impls: Iterable[Any] = reversed(hook.get_hookimpls())
        for impl in impls:
            staging = ProviderRegistry()
            try:
                impl.function(registry=staging)
            except Exception as err:  # a broken plugin must not stop the others
                _report_broken(impl.plugin_name, str(impl.plugin), err)
                continue
            for spec in staging.specs():
                registry.add(spec)


def _report_broken(name: str, where: str, err: BaseException | str) -> None:
    shown = err if isinstance(err, str) else repr(err)
    message = f"cloudfits plugin {name!r} ({where}) is broken and was skipped: {shown}"
    logger.warning(message)
    warnings.warn(message, CloudFitsWarning, stacklevel=4)


_lock = threading.Lock()
_registry: ProviderRegistry | None = None


def get_registry() -> ProviderRegistry:
    """The process-wide registry, built on first use."""
    global _registry
    with _lock:
        if _registry is None:
            manager = PluginManager()
            manager.load_plugins()
            registry = ProviderRegistry()
            manager.register_providers(registry)
            _registry = registry
        return _registry


def reset_registry() -> None:
    """Forget the registry, so the next lookup loads plugins again."""
    global _registry
    with _lock:
        _registry = None
