"""Reading an HTTP response body straight into a caller's buffer."""

from __future__ import annotations

from typing import Any

__all__ = ["copy_into", "read_body_into"]


def copy_into(data: bytes, out: memoryview) -> int:
    """Copy ``data`` (at most ``len(out)`` bytes of it) to the start of ``out``."""
    n = min(len(data), len(out))
    out[:n] = data[:n]
    return n


def read_body_into(response: Any, out: memoryview) -> int:
    """Read up to ``len(out)`` body bytes of a urllib3 response into ``out``.

    urllib3's own ``readinto`` reads into a temporary ``bytes`` and copies it; for a
    body without content coding this reads through the underlying
    `http.client.HTTPResponse`, whose ``readinto`` fills ``out`` from the socket
    directly. When the whole body has been read the connection goes back to the
    pool; otherwise the caller must close the response (which drops the connection).

    Returns
    -------
    int
        Bytes written to ``out``.
    """
    n = len(out)
    coding = str(response.headers.get("content-encoding", "")).strip().lower()
    raw: Any = getattr(response, "_fp", None)
    direct = coding in ("", "identity") and raw is not None and hasattr(raw, "readinto")
    source = raw if direct else response
    got = 0
    while got < n:
        k = source.readinto(out[got:])
        if not k:
            break
        got += k
    if direct and raw.isclosed():
        response.release_conn()  # the body is complete: the connection is reusable
    return got
