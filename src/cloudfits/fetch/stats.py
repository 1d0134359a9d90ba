"""Accounting of requests and bytes.

With requester-pays buckets every byte fetched is billed to the reader, so every read
is counted: per open file (`RemoteFITS.stats`) and for the whole process
(`cloudfits.stats`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["ReadStats", "process_stats"]


@dataclass
class _Counts:
    requests: int = 0
    bytes: int = 0
    gzip_passes: int = 0


class ReadStats:
    """Thread-safe counters of range requests made and bytes received.

    Attributes
    ----------
    requests : int
        Number of range requests sent (retries included).
    bytes : int
        Number of body bytes received.
    gzip_passes : int
        Whole-file gzip objects decompressed from start to end (one streaming pass
        each, made to index them or to open them without an index).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = _Counts()

    def record(self, nbytes: int) -> None:
        """Count one request that returned ``nbytes`` bytes."""
        with self._lock:
            self._counts.requests += 1
            self._counts.bytes += nbytes

    def record_pass(self) -> None:
        """Count one streaming pass over a whole-file gzip object."""
        with self._lock:
            self._counts.gzip_passes += 1

    def add(self, requests: int, nbytes: int, gzip_passes: int = 0) -> None:
        """Count ``requests`` requests that returned ``nbytes`` bytes in all, and
        ``gzip_passes`` streaming passes (for example, those another process made on our
        behalf)."""
        with self._lock:
            self._counts.requests += requests
            self._counts.bytes += nbytes
            self._counts.gzip_passes += gzip_passes

    @property
    def requests(self) -> int:
        """Range requests sent so far (retries included)."""
        return self._counts.requests

    @property
    def bytes(self) -> int:
        """Body bytes received so far."""
        return self._counts.bytes

    @property
    def gzip_passes(self) -> int:
        """Streaming passes over whole-file gzip objects so far."""
        return self._counts.gzip_passes

    def snapshot(self) -> dict[str, int]:
        """Return ``{"requests": ..., "bytes": ..., "gzip_passes": ...}`` as of now."""
        with self._lock:
            counts = self._counts
            return {
                "requests": counts.requests,
                "bytes": counts.bytes,
                "gzip_passes": counts.gzip_passes,
            }

    def copy(self) -> ReadStats:
        """A detached copy of the counts as of now (later reads do not change it)."""
        counts = self.snapshot()
        copied = ReadStats()
        copied.add(counts["requests"], counts["bytes"], counts["gzip_passes"])
        return copied

    def __sub__(self, other: ReadStats) -> ReadStats:
        """The requests, bytes and passes counted between ``other`` (earlier) and ``self``."""
        mine, theirs = self.snapshot(), other.snapshot()
        difference = ReadStats()
        difference.add(*(mine[key] - theirs[key] for key in ("requests", "bytes", "gzip_passes")))
        return difference

    def reset(self) -> None:
        """Set both counters back to zero."""
        with self._lock:
            self._counts = _Counts()

    def __repr__(self) -> str:
        passes = f", gzip_passes={self.gzip_passes}" if self.gzip_passes else ""
        return f"ReadStats(requests={self.requests}, bytes={self.bytes}{passes})"


process_stats = ReadStats()
"""Counters for every read made by this process."""
