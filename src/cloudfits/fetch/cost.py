"""The cost model behind the range engine's defaults.

A ranged GET on an object store costs two things: a fixed overhead (one round trip of
latency before the first byte, and a request fee) and a price per byte (transfer time
on one connection, and egress fees). Everything the engine decides follows from
comparing the two:

* **Gap** (``max_gap``): two runs closer than this are fetched as one request and the
  bytes between them are thrown away. Requests run in parallel, so merging saves no
  time while the runs fit into one wave of ``max_concurrency`` requests; it saves the
  request fee. The break-even gap is ``request_price / byte_price`` bytes
  (S3: $0.0004 per 1,000 GETs and $0.09 per GB of egress give 4,444 bytes).
* **Waves**: when there are more requests than ``max_concurrency``, they go out in
  ``ceil(n / max_concurrency)`` waves, each costing a round trip. Then larger gaps are
  merged as long as that lowers the estimated wall time
  (`CostModel.seconds`), which trades round trips against transfer time.
* **Part** (``max_part``): one connection delivers ``bandwidth`` bytes per second, so
  a long span is split into parts that arrive in parallel. A part of
  ``4 * request_seconds * bandwidth`` bytes spends four fifths of its time
  transferring, a fair balance between request count and parallelism.

The defaults describe a cloud object store seen from a machine in another network:
``request_seconds = 0.03``, ``bandwidth = 50 MB/s`` per connection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_COST_MODEL", "CostModel"]


@dataclass(frozen=True)
class CostModel:
    """Costs of a ranged GET: a fixed part per request and a part per byte.

    Attributes
    ----------
    request_seconds : float
        Time from sending a request to its first byte (one round trip plus the
        store's own latency).
    bandwidth : float
        Bytes per second one connection delivers.
    request_price : float
        Price of one GET request (USD; S3 standard: 4e-7).
    byte_price : float
        Price of one byte transferred (USD; S3 egress: 9e-11).
    """

    request_seconds: float = 0.03
    bandwidth: float = 50e6
    request_price: float = 4e-7
    byte_price: float = 9e-11

    @property
    def gap_bytes(self) -> int:
        """Bytes that cost as much as one request: the default ``max_gap``."""
        return round(self.request_price / self.byte_price)

    @property
    def part_bytes(self) -> int:
        """The default ``max_part``: ``4 * request_seconds * bandwidth`` bytes."""
        return max(1, round(4 * self.request_seconds * self.bandwidth))

    def seconds(self, requests: int, nbytes: int, concurrency: int) -> float:
        """Estimated wall time of ``requests`` requests carrying ``nbytes`` bytes.

        Requests go out in waves of ``concurrency``; each wave costs one
        ``request_seconds``, and the bytes flow over ``min(requests, concurrency)``
        connections at once.
        """
        if requests <= 0:
            return 0.0
        waves = math.ceil(requests / max(1, concurrency))
        lanes = min(requests, max(1, concurrency))
        return waves * self.request_seconds + nbytes / (self.bandwidth * lanes)

    def seconds_array(
        self, requests: np.ndarray, nbytes: np.ndarray, concurrency: int
    ) -> np.ndarray:
        """`seconds` for arrays of request counts (each at least 1) and byte counts."""
        lanes = np.minimum(requests, max(1, concurrency))
        waves = -(-requests // max(1, concurrency))
        result: np.ndarray = waves * self.request_seconds + nbytes / (self.bandwidth * lanes)
        return result


DEFAULT_COST_MODEL = CostModel()
"""The model the defaults of `cloudfits.FetchOptions` come from."""
