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


class ReadStats:
    """Thread-safe counters of range requests made and bytes received.

    Attributes
    ----------
    requests : int
        Number of range requests sent (retries included).
    bytes : int
        Number of body bytes received.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = _Counts()

    def record(self, nbytes: int) -> None:
        """Count one request that returned ``nbytes`` bytes."""
        with self._lock:
            self._counts.requests += 1
            self._counts.bytes += nbytes

    def add(self, requests: int, nbytes: int) -> None:
        """Count ``requests`` requests that returned ``nbytes`` bytes in all (for example,
        those another process made on our behalf)."""
        with self._lock:
            self._counts.requests += requests
            self._counts.bytes += nbytes

    @property
    def requests(self) -> int:
        """Range requests sent so far (retries included)."""
        return self._counts.requests

    @property
    def bytes(self) -> int:
        """Body bytes received so far."""
        return self._counts.bytes

    def snapshot(self) -> dict[str, int]:
        """Return ``{"requests": ..., "bytes": ...}`` as of now."""
        with self._lock:
            return {"requests": self._counts.requests, "bytes": self._counts.bytes}

    def copy(self) -> ReadStats:
        """A detached copy of the counts as of now (later reads do not change it)."""
        counts = self.snapshot()
        copied = ReadStats()
        copied.add(counts["requests"], counts["bytes"])
        return copied

    def __sub__(self, other: ReadStats) -> ReadStats:
        """The requests and bytes counted between ``other`` (earlier) and ``self``."""
        mine, theirs = self.snapshot(), other.snapshot()
        difference = ReadStats()
        difference.add(mine["requests"] - theirs["requests"], mine["bytes"] - theirs["bytes"])
        return difference

    def reset(self) -> None:
        """Set both counters back to zero."""
        with self._lock:
            self._counts = _Counts()

    def __repr__(self) -> str:
        return f"ReadStats(requests={self.requests}, bytes={self.bytes})"


process_stats = ReadStats()
"""Counters for every read made by this process."""
