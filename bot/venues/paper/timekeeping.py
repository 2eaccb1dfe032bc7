"""Lockstep time for a venue that owns it: the paper venue in-process, ``hedgebot sim`` beside.

The venue's clock starts where its saved state says (so a restart resumes at its own time and
never runs back), else at ``market.start``, else at midnight UTC of the wall's day. Every move
of the clock is saved with the state it belongs to.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import Clock, LockstepClock
from bot.config import MarketSettings
from bot.venues.paper.state import PaperStateStore, SimTime


def midnight(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def lockstep_clock(
    store: PaperStateStore, market: MarketSettings, wall: Clock
) -> tuple[LockstepClock, datetime]:
    """The venue's clock and its market's start. ``wall`` is read only on a first start
    without ``market.start``."""
    saved = store.load_time()
    if saved is not None:
        start, now = saved.start, saved.now
    else:
        start = market.start or midnight(wall.now())
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        now = start
        store.save_time(SimTime(start, now))

    def save(instant: datetime) -> None:
        store.save_time(SimTime(start, instant))

    return LockstepClock(now, on_advance=save, pace=market.pace), start
