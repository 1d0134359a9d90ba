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
    "REDACTED",
    "SECRET_QUERY_PARAMETERS",
    "redact_text",
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


def as_url(uri: str) -> str:
    """``uri`` as a URL: a local path becomes an absolute ``file://`` URL.

    >>> as_url("s3://bucket/a.fits")
    's3://bucket/a.fits'
    >>> as_url("/data/a.fits")
    'file:///data/a.fits'
    """
    scheme, path = split_uri(uri)
    return "file://" + os.path.abspath(path) if scheme == "file" else uri


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


#: Query parameters that carry a credential (AWS, GCS and Azure signed URLs, SAS
#: tokens, API keys): their values never appear in a message, a log or an index.
SECRET_QUERY_PARAMETERS = frozenset(
    name.lower()
    for name in (
        # AWS signature versions 4 and 2
        "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Signature",
        "AWSAccessKeyId", "x-amz-security-token",
        # Google Cloud Storage
        "X-Goog-Signature", "X-Goog-Credential", "GoogleAccessId",
        # Azure shared access signatures
        "sig", "se", "st", "sp", "sv", "sr", "spr", "sip", "si", "skoid", "sktid", "skt",
        "ske", "sks", "skv", "saoid", "suoid", "scid", "sdd", "ses",
        # bearer tokens and keys in the query
        "token", "access_token", "id_token", "refresh_token", "key", "api_key", "apikey",
        "api-key", "password", "passwd", "secret", "client_secret", "auth", "code",
        "policy", "credential", "signature",
    )
)  # fmt: skip
_QUERY_PARAMETER = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")
REDACTED = "REDACTED"


def _redact_query(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(2)
        secret = name.lower() in SECRET_QUERY_PARAMETERS or name.lower().startswith("x-amz-s")
        return f"{match.group(1)}{name}={REDACTED}" if secret and match.group(3) else match[0]

    return _QUERY_PARAMETER.sub(one, text)


def redact_uri(uri: str) -> str:
    """``uri`` without credentials, fit for messages, logs and indexes.

    A ``user:password@`` part is dropped, and the values of query parameters that carry
    credentials (`SECRET_QUERY_PARAMETERS`: signed-URL signatures, SAS tokens, tokens
    and keys) are replaced by ``REDACTED``.

    >>> redact_uri("https://user:secret@example.org/a.fits")
    'https://example.org/a.fits'
    >>> redact_uri("https://h/a.fits?X-Amz-Signature=abc&v=1")
    'https://h/a.fits?X-Amz-Signature=REDACTED&v=1'
    """
    match = _SCHEME.match(uri) or _LOOSE_SCHEME.match(uri)
    if match is None:
        return uri
    rest = match.group(2)
    if "?" in rest:
        rest = _redact_query(rest)
    host, slash, tail = rest.partition("/")
    host = host.rpartition("@")[2]
    if "?" in host:  # a query right after the authority: https://h?sig=...
        host = _redact_query(host)
    separator = uri[match.end(1) : match.start(2)]
    return f"{match.group(1)}{separator}{host}{slash}{tail}"


def redact_text(text: str) -> str:
    """``text`` with every URI in it redacted (`redact_uri`), for messages and logs."""
    return _URI_IN_TEXT.sub(lambda m: redact_uri(m[0]), text)


# Also "https:/host" and "https:host", which are not URIs but may still hold a password.
_LOOSE_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/{0,3}(.*)$", re.DOTALL)
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+:/{0,3}[^\s'\"<>,]*[@?][^\s'\"<>,]*")


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
