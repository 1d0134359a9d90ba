"""`ObjectLocation`: where an object lives and how to reach it again, in any process.

One value answers "which provider, with which options, at which path": `RemoteFITS`
holds one, index scans make one per source, ``verify`` one per indexed file, and the
dask recipe carries one to the workers, which rebuild the provider from it
(`ObjectLocation.provider`). How a relative path lands below a base is the provider's
business (`cloudfits.ProviderSpec.path_below`): joined for object stores, a root for
local files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..uri import make_uri, redact_uri, split_uri
from .base import Provider, ProviderSpec
from .registry import get_registry

__all__ = ["ObjectLocation", "ProviderOptions"]


class ProviderOptions(dict[str, Any]):
    """Provider options whose ``repr`` names the keys only: a value may be a secret, and
    a location's ``repr`` can end up in a log or a task's description."""

    def __repr__(self) -> str:
        return f"<provider options: {', '.join(sorted(self)) or 'none'}>"

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted((k, repr(v)) for k, v in self.items())))


@dataclass(frozen=True)
class ObjectLocation:
    """An object (or a base of objects) in a store.

    Attributes
    ----------
    scheme : str
        The URI scheme, which chooses the provider (``"file"`` for local paths).
    path : str
        The provider's path of the object (what follows ``scheme://``).
    options : mapping
        The provider options; ``repr`` shows their names only.
    uri : str
        The object's URI for messages and indexes, without any ``user:password@``.
    """

    scheme: str
    path: str
    options: Mapping[str, Any] = field(default_factory=ProviderOptions)
    uri: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", ProviderOptions(self.options))
        if not self.uri:
            object.__setattr__(self, "uri", redact_uri(make_uri(self.scheme, self.path)))

    def __repr__(self) -> str:
        # The path may hold a password or a signed-URL token; the uri is redacted.
        return f"ObjectLocation({self.uri!r}, options={self.options!r})"

    @classmethod
    def from_uri(cls, uri: str | os.PathLike[str], **options: Any) -> ObjectLocation:
        """The location of ``uri`` (a URI or a local path) with provider ``options``."""
        scheme, path = split_uri(uri)
        return cls(scheme, path, options)

    @property
    def spec(self) -> ProviderSpec:
        """The registered provider of the scheme (`cloudfits.ProviderNotFoundError` if none)."""
        return get_registry().by_scheme(self.scheme)

    def provider(self) -> Provider:
        """The provider, built from the options (one per process and options)."""
        return get_registry().provider(self.spec, self.scheme, dict(self.options))

    def below(self, relative: str) -> ObjectLocation:
        """The object at ``relative`` below this location, taken as a base."""
        options, path = self.spec.path_below(self.path, relative, dict(self.options))
        uri = self.uri.rstrip("/") + "/" + relative.lstrip("/") if self.uri else relative
        return ObjectLocation(self.scheme, path, options, uri)

    def with_options(self, **options: Any) -> ObjectLocation:
        """The same object, reached with other provider options."""
        return ObjectLocation(self.scheme, self.path, options, self.uri)

    def portable(self) -> tuple[ObjectLocation, tuple[str, ...]]:
        """This location without secrets, for other processes, and what was left out.

        Options the provider declares secret (`ProviderSpec.secret_options`) are
        dropped, and so are a ``user:password@`` and credential-bearing query parameters
        in the path (`cloudfits.uri.redact_uri`); the names of what was
        dropped are returned so that the other process can say what it lacks.
        """
        secret = self.spec.secret_options()
        withheld = sorted(k for k in self.options if k in secret)
        kept = {k: v for k, v in self.options.items() if k not in secret}
        clean_path = split_uri(redact_uri(make_uri(self.scheme, self.path)))[1]
        if clean_path != self.path:
            withheld.append("credentials in the URL (user:password, signed-URL tokens)")
        return ObjectLocation(self.scheme, clean_path, kept, self.uri), tuple(withheld)
