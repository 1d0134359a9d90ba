"""The retry budget of one range read: exponential backoff with full jitter.

Two layers retry. The SDKs retry what they see (botocore's ``standard`` mode and
urllib3's `~urllib3.util.Retry` take 5xx, 429/``SlowDown`` and failed connections);
this module's policy, applied by `cloudfits.fetch.reader.ObjectReader`, retries what they
cannot see: a connection reset or a stall in the middle of a body, a body shorter or
longer than asked for, a ``Content-Range`` for other bytes, and a transient error that
outlived the SDK's own attempts. Permanent answers (403, 404, 412, 416, malformed
requests) are never retried.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

from ..errors import RangeResponseError, TransientProviderError

__all__ = ["RETRYABLE_ERRORS", "RetryPolicy"]

#: The errors a range read retries; every other error ends the read at once.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (TransientProviderError, RangeResponseError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, one range read is tried.

    Attempt ``n`` (from 1) that fails with a retryable error waits a random time in
    ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` ("full jitter", so that many
    threads throttled together do not retry together) and tries again, until
    ``max_attempts`` attempts are made or ``deadline`` seconds have passed since the
    first one. The last error is then raised.

    Attributes
    ----------
    max_attempts : int
        Attempts per read, at least 1 (``CLOUDFITS_MAX_ATTEMPTS``, default 5).
    base_delay : float
        Seconds of the first backoff's upper bound (``CLOUDFITS_RETRY_BASE_DELAY``).
    max_delay : float
        Largest backoff in seconds (``CLOUDFITS_RETRY_MAX_DELAY``).
    deadline : float
        Seconds after which no new attempt starts, and no attempt goes on: every read
        ends, exact or with an error, within this time of its start
        (``CLOUDFITS_RETRY_DEADLINE``).
    read_grace : float
        Seconds an attempt may take besides its bytes' time at ``min_rate``
        (``CLOUDFITS_READ_GRACE``).
    min_rate : float
        The slowest body accepted, in bytes per second: an attempt reading ``n`` bytes
        is cut off after ``read_grace + n / min_rate`` seconds, so a server that sends a
        byte now and then cannot keep a read alive (``CLOUDFITS_MIN_READ_RATE``).
    """

    max_attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0
    deadline: float = 120.0
    read_grace: float = 30.0
    min_rate: float = 65536.0

    def __post_init__(self) -> None:
        if (
            self.max_attempts < 1
            or self.base_delay < 0
            or self.max_delay < 0
            or self.read_grace <= 0
            or self.min_rate <= 0
        ):
            raise ValueError(
                f"invalid retry policy {self}: max_attempts >= 1, non-negative delays and a"
                " positive read_grace and min_rate are required"
            )

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        """Defaults, overridden by the ``CLOUDFITS_*`` environment variables."""
        values: dict[str, float] = {}
        for name, var, kind in (
            ("max_attempts", "CLOUDFITS_MAX_ATTEMPTS", int),
            ("base_delay", "CLOUDFITS_RETRY_BASE_DELAY", float),
            ("max_delay", "CLOUDFITS_RETRY_MAX_DELAY", float),
            ("deadline", "CLOUDFITS_RETRY_DEADLINE", float),
            ("read_grace", "CLOUDFITS_READ_GRACE", float),
            ("min_rate", "CLOUDFITS_MIN_READ_RATE", float),
        ):
            if var in os.environ:
                values[name] = kind(os.environ[var])
        return cls(**values)  # type: ignore[arg-type]

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)

    def gives_up(self, attempt: int, started: float) -> bool:
        """True when no attempt after number ``attempt`` may start."""
        return attempt >= self.max_attempts or time.monotonic() - started >= self.deadline

    def attempt_deadline(self, nbytes: int, started: float) -> float:
        """The `time.monotonic` time by which an attempt at ``nbytes`` bytes must end."""
        allowed = self.read_grace + nbytes / self.min_rate
        return min(started + self.deadline, time.monotonic() + allowed)
