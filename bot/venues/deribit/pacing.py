"""Pacing of venue calls on the injected clock: Deribit's rate buckets and bounded retries.

Deribit's two rate buckets (matching engine and the rest, settings ``venue.rate_limits``,
:mod:`bot.venues.ratelimit`) are taken on the injected clock; reads are retried with
full-jitter backoff from a seeded generator, within a number of attempts and a clock deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tenacity import RetryCallState
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from bot.clock import Clock
from bot.venues.errors import RateLimited, ReadFailed, TransientError
from bot.venues.ratelimit import TokenBucket


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one read: attempts, total clock seconds, full-jitter backoff."""

    attempts: int = 4
    total_seconds: float = 15.0
    base_seconds: float = 0.25
    cap_seconds: float = 4.0


def clock_seconds(clock: Clock) -> Callable[[], float]:
    """Seconds of ``clock`` since now, exact to its microseconds: the buckets' timer."""
    origin = clock.now()
    return lambda: (clock.now() - origin).total_seconds()


async def take_paced(bucket: TokenBucket, clock: Clock) -> None:
    """Take a token, sleeping on ``clock`` until one refills; a bucket that never refills is
    a clock that does not move, reported as RateLimited rather than a hang."""
    for _ in range(1000):
        if bucket.take():
            return
        await clock.sleep(bucket.seconds_to_token())
    raise RateLimited("local rate bucket did not refill: is the clock moving?")


class Backoff(wait_base):
    """Full-jitter exponential backoff from a seeded generator; a rate limit waits at least
    what the venue asked."""

    def __init__(self, policy: RetryPolicy, rng: np.random.Generator) -> None:
        self._policy, self._rng = policy, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        ceiling = min(
            self._policy.cap_seconds,
            self._policy.base_seconds * 2 ** (retry_state.attempt_number - 1),
        )
        delay = float(self._rng.uniform(0.0, ceiling))
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return max(delay, exc.retry_after) if isinstance(exc, RateLimited) else delay


class Deadline(stop_base):
    """Stop once ``seconds`` of the injected clock have passed since the first attempt."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock, self._end = clock, clock.now().timestamp() + seconds

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock.now().timestamp() >= self._end


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError | RateLimited) and not isinstance(exc, ReadFailed)
