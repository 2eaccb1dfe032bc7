"""Deribit-like rate limits: one token bucket for matching-engine calls, one for the rest.

Deribit answers 10028 ``too_many_requests`` when an account exceeds its credits (REFERENCE.md
§2: matching engine about 5/s with bursts of 20, other calls about 20/s with bursts of 100).
The buckets run on a monotonic timer in seconds (wall time by default, a fake in tests): rate
limits protect a real server from real request rates, whatever the simulated clock says.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

MATCHING_ENGINE_METHODS = frozenset(
    {
        "buy",
        "sell",
        "edit",
        "cancel",
        "cancel_all",
        "cancel_all_by_currency",
        "cancel_all_by_instrument",
        "cancel_by_label",
    }
)


@dataclass(frozen=True)
class RateLimits:
    """Sustained rate (per second) and burst of each bucket; ``enabled=False`` turns both off."""

    matching_rate: float = 5.0
    matching_burst: int = 20
    other_rate: float = 20.0
    other_burst: int = 100
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("matching_rate", "other_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"RateLimits.{name} must be positive, got {value!r}")
        if self.matching_burst < 1 or self.other_burst < 1:
            raise ValueError("RateLimits bursts must be at least 1")


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; each request takes one."""

    def __init__(self, rate: float, burst: int, timer: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._timer = timer
        self._tokens = float(burst)
        self._last = timer()

    def take(self) -> bool:
        now = self._timer()
        self._tokens = min(self._burst, self._tokens + max(0.0, now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Routes each method to its bucket and says whether it may run now."""

    def __init__(self, limits: RateLimits, timer: Callable[[], float] = time.monotonic) -> None:
        self._enabled = limits.enabled
        self._matching = TokenBucket(limits.matching_rate, limits.matching_burst, timer)
        self._other = TokenBucket(limits.other_rate, limits.other_burst, timer)

    def allow(self, method: str) -> bool:
        """``method`` without its scope (``buy``, ``get_positions``)."""
        if not self._enabled:
            return True
        bucket = self._matching if method in MATCHING_ENGINE_METHODS else self._other
        return bucket.take()
