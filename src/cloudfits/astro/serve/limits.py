"""The limits of one server worker, and the gate that holds its concurrency to them."""

from __future__ import annotations

import os
from dataclasses import dataclass

import anyio

__all__ = ["Busy", "ConcurrencyGate", "ServeLimits"]


@dataclass(frozen=True)
class ServeLimits:
    """What one worker accepts; beyond it, a 4xx answer (too large) or 503 (too busy).

    Attributes
    ----------
    max_cutout_pixels : int
        Pixels of one cutout (rows x columns).
    max_cutout_values : int
        Pixels x frames of one target-pixel file: bounds its memory (about 12 bytes
        a value while it is built).
    max_targets : int
        Targets of one batch request.
    max_body_bytes : int
        Bytes of a form or JSON request body.
    max_active : int
        Cutout requests a worker works on at once.
    max_waiting : int
        Requests that may wait for a place; more get 503 with ``Retry-After``.
    retry_after : int
        Seconds the 503 answer asks the client to wait.
    max_radius_deg : float
        Search radius of the ``sector`` endpoint.
    """

    max_cutout_pixels: int = 100 * 100
    max_cutout_values: int = 5_000_000
    max_targets: int = 200
    max_body_bytes: int = 256 * 1024
    max_active: int = 8
    max_waiting: int = 32
    retry_after: int = 1
    max_radius_deg: float = 30.0

    @classmethod
    def from_environment(cls) -> ServeLimits:
        """The defaults, each overridable by ``CLOUDFITS_SERVE_<NAME>`` (upper case)."""
        values: dict[str, float | int] = {}
        for name, default in vars(cls()).items():
            raw = os.environ.get(f"CLOUDFITS_SERVE_{name.upper()}")
            if raw is not None:
                values[name] = type(default)(raw)
        return cls(**values)  # type: ignore[arg-type]


class Busy(Exception):
    """The worker has ``max_active + max_waiting`` requests already."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the server is busy; try again shortly")
        self.retry_after = retry_after


class ConcurrencyGate:
    """At most ``max_active`` holders at once, at most ``max_waiting`` in line."""

    def __init__(self, limits: ServeLimits) -> None:
        self._limits = limits
        self._semaphore: anyio.Semaphore | None = None
        self.admitted = 0  # holding or waiting

    @property
    def active(self) -> int:
        """Requests holding a place now."""
        if self._semaphore is None:
            return 0
        return self._limits.max_active - self._semaphore.value

    async def __aenter__(self) -> ConcurrencyGate:
        if self.admitted >= self._limits.max_active + self._limits.max_waiting:
            raise Busy(self._limits.retry_after)
        if self._semaphore is None:  # made inside the event loop that uses it
            self._semaphore = anyio.Semaphore(self._limits.max_active)
        self.admitted += 1
        try:
            await self._semaphore.acquire()
        except BaseException:
            self.admitted -= 1
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._semaphore is not None
        self._semaphore.release()
        self.admitted -= 1
