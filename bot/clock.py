"""Clocks. Every room reads time and sleeps through one of these, so tests run on a fake clock
and the demo runs a simulated day in a minute of wall time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Wall time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class AcceleratedClock:
    """Time that runs ``speed`` times faster than the wall from ``anchor``:
    ``now = anchor + (wall_now - anchor) * speed``.

    The demo uses it to run a simulated day in about a minute. Processes given the same
    anchor and speed (the daemon and the simulated venue) agree on the time without talking.
    """

    def __init__(self, anchor: datetime, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._anchor = anchor
        self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = (datetime.now(UTC) - self._anchor).total_seconds() * self._speed
        return self._anchor + timedelta(seconds=elapsed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class FakeClock:
    """A clock that moves only when slept on or advanced: deterministic tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def clock_for(speed: float, anchor: datetime | None = None) -> Clock:
    """Wall time at speed 1; else an accelerated clock from ``anchor`` (default: now)."""
    if speed == 1.0:
        return SystemClock()
    start = anchor or datetime.now(UTC)
    return AcceleratedClock(start if start.tzinfo else start.replace(tzinfo=UTC), speed)


def day_start(clock: Clock) -> datetime:
    """Midnight UTC of the clock's day: where the simulated market's path starts, so every
    process (and every restart) on the same day sees the same path."""
    return clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class OffsetClock:
    """Another clock shifted by a fixed number of seconds: a host whose clock has drifted, or
    (in the simulated venue's fault plan) a venue whose clock is not ours."""

    def __init__(self, base: Clock, offset_seconds: float) -> None:
        self._base = base
        self.offset_seconds = offset_seconds

    def now(self) -> datetime:
        return self._base.now() + timedelta(seconds=self.offset_seconds)

    async def sleep(self, seconds: float) -> None:
        await self._base.sleep(seconds)
