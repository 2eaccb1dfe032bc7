"""Clocks. Every room reads time and sleeps through one of these, so tests run on a fake clock
and a simulation replays the same day on any machine.

Real trading reads the wall (:class:`SystemClock`). In simulation the venue owns time and it
moves only when the driver sleeps (:class:`LockstepClock`): a cycle takes no simulated time, so
a seed gives the same day however busy the machine is (the deterministic simulators of
FoundationDB and TigerBeetle work this way). :class:`AcceleratedClock` stays for watching a
live-looking run; its results depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
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


class LockstepClock:
    """Simulated time that moves only when someone sleeps on it (or :meth:`advance_to`).

    The in-process paper venue and the daemon share one; ``hedgebot sim`` holds one that its
    clients advance over HTTP. ``on_advance`` is told every new instant (to persist it, so a
    restart resumes there). ``pace`` (simulated seconds per wall second) only slows a sleep down
    for a watcher: what happens in simulated time does not depend on it. Time never runs back.
    """

    def __init__(
        self,
        start: datetime,
        *,
        on_advance: Callable[[datetime], None] | None = None,
        pace: float | None = None,
    ) -> None:
        if pace is not None and not pace > 0:
            raise ValueError("pace must be positive")
        self._now = start if start.tzinfo else start.replace(tzinfo=UTC)
        self._on_advance = on_advance
        self._pace = pace

    def now(self) -> datetime:
        return self._now

    def advance_to(self, instant: datetime) -> datetime:
        """Move to ``instant`` if it is later; returns the clock's time."""
        if instant > self._now:
            self._now = instant
            if self._on_advance is not None:
                self._on_advance(instant)
        return self._now

    def advance(self, seconds: float) -> datetime:
        return self.advance_to(self._now + timedelta(seconds=max(0.0, seconds)))

    async def sleep(self, seconds: float) -> None:
        target = self._now + timedelta(seconds=max(0.0, seconds))
        await pace_wait(seconds, self._pace)
        self.advance_to(target)


async def pace_wait(seconds: float, pace: float | None) -> None:
    """Let the event loop run, and wait ``seconds / pace`` of wall time when paced."""
    await asyncio.sleep(max(0.0, seconds) / pace if pace else 0)


class SeededIds:
    """Cycle ids from a seed, the counterpart of the clock for identifiers: the same seed and
    ``salt`` give the same ids (so a simulated day replays with the same order labels), and a
    different salt a different, unrelated sequence.

    The wiring salts with what tells one process's run from another's on the same ledger
    (where its clock starts, how many rows the ledger already holds), so a restart never reuses
    an id an earlier process recorded.
    """

    def __init__(self, seed: int = 0, salt: str = "") -> None:
        self._prefix = f"{seed}|{salt}|"
        self._n = 0

    def cycle_id(self) -> str:
        """The next id: 16 hex digits of SHA-256 over seed, salt and a counter."""
        self._n += 1
        return hashlib.sha256(f"{self._prefix}{self._n}".encode()).hexdigest()[:16]


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
