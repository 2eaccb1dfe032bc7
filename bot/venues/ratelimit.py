"""Deribit's request credits as token buckets, one implementation for both sides of the wire.

Deribit meters matching-engine calls (orders, edits, cancels) and all other calls in two
separate pools and answers 10028 ``too_many_requests`` when one runs dry (Deribit API docs,
"Rate Limits": by default matching engine about 5 requests per second with bursts of 20, other
calls about 20 per second with bursts of 100). The ccxt adapter *waits* for a token, so it never
earns a 10028; the simulated server *refuses* without one, as Deribit does. Both read time from a
timer in seconds they are given (the injected clock, or a fake in tests).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.config import RateLimitSettings

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


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second of ``timer``; each request takes one."""

    def __init__(self, rate: float, burst: float, timer: Callable[[], float]) -> None:
        if not rate > 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self._rate = rate
        self._burst = float(burst)
        self._timer = timer
        self._tokens = float(burst)
        self._last = timer()

    def _refill(self) -> None:
        now = self._timer()
        self._tokens = min(self._burst, self._tokens + max(0.0, now - self._last) * self._rate)
        self._last = now

    def take(self) -> bool:
        """Take a token if one is there; False (and nothing taken) when the bucket is dry."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def seconds_to_token(self) -> float:
        """How long until the next token, at the refill rate (0 when one is there)."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self._rate)


class RateBuckets:
    """Deribit's two pools: ``matching`` for matching-engine calls, ``other`` for the rest."""

    def __init__(self, limits: RateLimitSettings, timer: Callable[[], float]) -> None:
        self.matching = TokenBucket(limits.matching_per_second, limits.matching_burst, timer)
        self.other = TokenBucket(limits.other_per_second, limits.other_burst, timer)

    def of(self, method: str) -> TokenBucket:
        """The bucket of ``method``, named without its scope (``buy``, ``get_positions``)."""
        return self.matching if method in MATCHING_ENGINE_METHODS else self.other
