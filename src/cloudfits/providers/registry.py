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
    """Every provider known to this process, by name and by URI scheme."""

    def __init__(self) -> None:
        self._specs: dict[str, ProviderSpec] = {}
        self._instances: dict[tuple[str, str, Any], Provider] = {}
        self._lock = threading.Lock()

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


def _load_plugins(pm: pluggy.PluginManager) -> None:
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    allowed = _names("CLOUDFITS_PLUGINS")
    blocked = _names("CLOUDFITS_DISABLE_PLUGINS") or set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in blocked or (allowed is not None and ep.name not in allowed):
            logger.debug("cloudfits plugin %s skipped by the environment", ep.name)
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as err:  # a broken plugin must not stop the others
            _report_broken(ep.name, ep.value, err)


def _report_broken(name: str, where: str, err: BaseException) -> None:
    message = f"cloudfits plugin {name!r} ({where}) is broken and was skipped: {err!r}"
    logger.warning(message)
    warnings.warn(message, CloudFitsWarning, stacklevel=4)


def _register_all(pm: pluggy.PluginManager, registry: ProviderRegistry) -> None:
    hook = pm.hook.cloudfits_register_providers
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


_lock = threading.Lock()
_registry: ProviderRegistry | None = None


def get_registry() -> ProviderRegistry:
    """The process-wide registry, built on first use."""
    global _registry
    with _lock:
        if _registry is None:
            pm = pluggy.PluginManager("cloudfits")
            pm.add_hookspecs(hookspecs)
            _load_plugins(pm)
            registry = ProviderRegistry()
            _register_all(pm, registry)
            _registry = registry
        return _registry


def reset_registry() -> None:
    """Forget the registry, so the next lookup loads plugins again."""
    global _registry
    with _lock:
        _registry = None
