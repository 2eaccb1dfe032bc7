"""The venue's clock, as seen from the host: the measured offset, and the host's clock
corrected by it.

Deribit stamps every answer with its own clock (``public/get_time``: milliseconds since the
epoch, Deribit API docs). A host clock that drifts by more than the allowed data age makes every
read look stale, and the hedger silently never hedges. So the offset is measured at start and
every ``refresh_seconds`` (the request's round trip halved, as NTP does, is the uncertainty),
data age is judged on the corrected clock, and beyond ``max_offset_seconds`` trading stops with
a message that names the host clock as the fault.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from bot.clock import Clock
from bot.domain import DataError

log = structlog.get_logger("hedgebot.venues.clock")

ReadTime = Callable[[], Awaitable[datetime]]


class ClockOffsetTooLarge(DataError):
    """The host's clock is too far from the venue's to judge data age or trade."""


class VenueClock:
    """The host clock plus the last measured offset to the venue's (a :class:`Clock`)."""

    def __init__(
        self,
        host: Clock,
        read_time: ReadTime,
        *,
        refresh_seconds: float,
        max_offset_seconds: float,
    ) -> None:
        self._host = host
        self._read_time = read_time
        self._refresh = refresh_seconds
        self._max = max_offset_seconds
        self.offset_seconds: float | None = None
        self.round_trip_seconds: float | None = None
        self.measured_at: datetime | None = None

    def now(self) -> datetime:
        """The venue's time as best known: host time plus the offset (0 before measuring)."""
        return self._host.now() + timedelta(seconds=self.offset_seconds or 0.0)

    async def sleep(self, seconds: float) -> None:
        await self._host.sleep(seconds)

    async def measure(self) -> float:
        """Ask the venue for its time; the offset is its answer minus our mid-request time."""
        sent = self._host.now()
        venue = await self._read_time()
        back = self._host.now()
        mid = sent + (back - sent) / 2
        self.offset_seconds = (venue - mid).total_seconds()
        self.round_trip_seconds = (back - sent).total_seconds()
        self.measured_at = back
        log.info(
            "venue_clock_offset",
            offset_seconds=round(self.offset_seconds, 3),
            round_trip_seconds=round(self.round_trip_seconds, 3),
        )
        return self.offset_seconds

    def due(self) -> bool:
        if self.measured_at is None:
            return True
        return (self._host.now() - self.measured_at).total_seconds() >= self._refresh

    async def ensure(self) -> None:
        """Measure when due, then refuse (ClockOffsetTooLarge) an offset beyond the limit."""
        if self.due():
            await self.measure()
        self.check()

    def check(self) -> None:
        offset = self.offset_seconds
        if offset is not None and abs(offset) > self._max:
            where = "behind" if offset > 0 else "ahead of"
            raise ClockOffsetTooLarge(
                f"this host's clock is {abs(offset):.1f}s {where} the venue's (limit "
                f"{self._max:g}s): not trading; fix the host clock (NTP: timedatectl / chrony)"
            )

    def describe(self) -> dict[str, float | str | None]:
        """For ``status``: the offset, its round trip, when it was measured."""
        return {
            "offset_seconds": self.offset_seconds,
            "round_trip_seconds": self.round_trip_seconds,
            "measured_at": self.measured_at.isoformat() if self.measured_at else None,
            "max_offset_seconds": self._max,
        }
