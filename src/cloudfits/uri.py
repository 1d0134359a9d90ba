"""Splitting and joining the URIs cloudfits reads from."""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import socket

__all__ = [
    "is_local_uri",
    "is_uri",
    "join_uri",
    "make_uri",
    "redact_uri",
    "relative_path",
    "split_uri",
]

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


_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def _is_local_address(host: str) -> bool:
    """True for a loopback, link-local, private or unspecified address, or ``localhost``."""
    name = host.strip("[]").rstrip(".").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost") or not name:
        return True
    try:
        address = ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        try:
            # The legacy forms a resolver still accepts: "127.1", "0x7f.1", "2130706433".
            address = ipaddress.ip_address(socket.inet_aton(name))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_reserved
        or address.is_multicast
    )


def is_local_uri(uri: str | os.PathLike[str]) -> bool:
    """True when ``uri`` names this machine or its private network.

    Local files (``file://`` and plain paths) are local, and so is a URI whose host is
    ``localhost`` or a loopback, link-local, private, unspecified or reserved IP
    address (written in any form a resolver accepts). Host names are not resolved.

    >>> is_local_uri("http://127.0.0.1:8080/a.fits"), is_local_uri("https://[::1]/a")
    (True, True)
    >>> is_local_uri("/data/a.fits"), is_local_uri("https://example.org/a.fits")
    (True, False)
    """
    scheme, path = split_uri(uri)
    if scheme == "file":
        return True
    authority = path.partition("/")[0].rpartition("@")[2]
    if authority.startswith("["):
        host = authority.partition("]")[0] + "]"
    else:
        host = authority.rpartition(":")[0] if authority.count(":") == 1 else authority
    if scheme in ("http", "https"):
        return _is_local_address(host)
    # A bucket-style authority is only local when it is written as an address.
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host.lower() == "localhost"
    return _is_local_address(host)
