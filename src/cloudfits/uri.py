"""Splitting and joining the URIs cloudfits reads from."""

from __future__ import annotations

import os
import posixpath
import re

__all__ = ["is_uri", "join_uri", "make_uri", "redact_uri", "relative_path", "split_uri"]

# RFC 3986 schemes, plus "_" for names such as "libcloud+azure_blobs".
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+._\-]*)://(.*)$", re.DOTALL)


def is_uri(value: str) -> bool:
    """True for ``scheme://...``; False for a local path."""
    return _SCHEME.match(value) is not None


def split_uri(uri: str | os.PathLike[str]) -> tuple[str, str]:
    """Split into ``(scheme, path)``; a local path has scheme ``"file"``.

    >>> split_uri("s3://bucket/dir/a.fits")
    ('s3', 'bucket/dir/a.fits')
    >>> split_uri("/data/a.fits")
    ('file', '/data/a.fits')
    """
    text = os.fspath(uri)
    match = _SCHEME.match(text)
    if match is None:
        return "file", text
    scheme, path = match.group(1).lower(), match.group(2)
    return scheme, path


def make_uri(scheme: str, path: str) -> str:
    """The URI of a provider path: ``scheme://path``, or the path itself for local files.

    >>> make_uri("s3", "bucket/a.fits")
    's3://bucket/a.fits'
    >>> make_uri("file", "/data/a.fits")
    '/data/a.fits'
    """
    return path if scheme == "file" else f"{scheme}://{path}"


def join_uri(base: str, relative: str) -> str:
    """Join a path relative to a base URI (or local directory).

    >>> join_uri("s3://stpubdata/tess/public/mast", "cube.fits")
    's3://stpubdata/tess/public/mast/cube.fits'
    """
    if not base:
        return relative
    return base.rstrip("/") + "/" + relative.lstrip("/")


def relative_path(path: str, base: str) -> str:
    """``path`` relative to ``base``, both as a provider sees them, with ``/`` separators."""
    rel = posixpath.relpath(path.replace(os.sep, "/"), base.replace(os.sep, "/") or "/")
    if rel == ".." or rel.startswith("../"):
        raise ValueError(f"{path!r} is not below {base!r}")
    return rel


def redact_uri(uri: str) -> str:
    """``uri`` without a ``user:password@`` part, fit for messages, logs and indexes.

    >>> redact_uri("https://user:secret@example.org/a.fits")
    'https://example.org/a.fits'
    """
    match = _SCHEME.match(uri)
    if match is None:
        return uri
    host, slash, rest = match.group(2).partition("/")
    if "@" not in host:
        return uri
    return f"{match.group(1)}://{host.rpartition('@')[2]}{slash}{rest}"
