"""When a price move is worth a cycle: the trigger between the venue's ticker and the daemon.

After each cycle the book is *anchored*: the index it saw, its gamma (coin per USD of forward),
where its delta ended and the policy's band. Between cycles delta drifts by about
``gamma x dF`` (a first-order Taylor step, as in any delta-gamma hedging text, e.g. Hull,
*Options, Futures and Other Derivatives*, ch. 19), so a ticker whose estimate
``|gamma| x |F - F0|`` reaches ``band_fraction`` of the room to the nearer band edge could have
pushed delta out of the band: the trigger asks for a cycle. Firing drops the anchor (a burst of
ticks asks once; the cycle anchors again), at most once per ``min_gap_seconds`` (a move inside
the gap is looked at again when it ends) and ``max_per_minute`` times a minute; past those the
schedule decides. A book with no anchor (time band, a skipped read, a trade that did not fill
in full, delta left outside the band) waits for the schedule.

Pure bookkeeping on the injected clock: nothing here reads the wall or sleeps.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import structlog

from bot.clock import Clock
from bot.config import EventSettings
from bot.domain import HedgeDecision, PortfolioGreeks

log = structlog.get_logger("hedgebot.events")

_MINUTE = timedelta(minutes=1)


class Verdict(StrEnum):
    FIRE = "fire"  # a cycle is asked for now
    DEFER = "defer"  # worth a cycle, inside the debounce gap: looked at when it ends
    QUIET = "quiet"  # the move cannot have left the band
    CAPPED = "capped"  # worth a cycle, but the per-minute cap is reached: the schedule decides
    UNANCHORED = "unanchored"  # no anchor: the schedule decides
    BAD_PRICE = "bad_price"  # not a finite positive price: ignored


@dataclass(frozen=True)
class Anchor:
    """What the last cycle left: index ``price``, book ``gamma``, ``delta`` and the band."""

    price: float
    gamma: float
    delta: float
    low: float
    high: float

    @property
    def room(self) -> float:
        """Coin delta between where the book ended and the nearer band edge."""
        return min(self.high - self.delta, self.delta - self.low)

    def drift(self, price: float) -> float:
        """The estimated |delta change| for a move to ``price``."""
        return abs(self.gamma) * abs(price - self.price)


def anchor_of(
    greeks: PortfolioGreeks | None,
    decision: HedgeDecision | None,
    *,
    traded: bool,
    filled_in_full: bool,
    time_band: bool,
) -> Anchor | None:
    """The anchor a finished cycle leaves, or None when only the schedule should decide."""
    if greeks is None or decision is None or time_band:
        return None
    if traded and not filled_in_full:
        return None  # where delta ended is not known without a read
    delta = decision.expected_delta_after if traded else decision.delta_before
    values = (greeks.index_price, greeks.gamma, delta, decision.band_low, decision.band_high)
    if not all(math.isfinite(v) for v in values) or greeks.index_price <= 0:
        return None
    if not decision.band_low <= delta <= decision.band_high:
        return None  # a cycle that could not bring delta home: no event storm, the schedule
    return Anchor(greeks.index_price, greeks.gamma, delta, decision.band_low, decision.band_high)


class EventTrigger:
    """The anchors of each currency and the cycles asked for; see the module docstring.

    ``wake`` is set when a cycle is asked for; the daemon then takes the currencies with
    :meth:`due` (which also fires deferred moves whose gap has ended).
    """

    def __init__(self, settings: EventSettings, clock: Clock) -> None:
        self._s = settings
        self._clock = clock
        self._anchors: dict[str, Anchor] = {}
        self._fired: dict[str, deque[datetime]] = {}
        self._deferred: dict[str, tuple[datetime, float]] = {}  # currency -> (gap end, price)
        self._ready: set[str] = set()
        self._capped_at: dict[str, datetime] = {}  # the window whose cap was last logged
        self.wake = asyncio.Event()
        self.counts: dict[Verdict, int] = {v: 0 for v in Verdict}

    def anchor(self, currency: str, anchor: Anchor | None) -> None:
        """Set (or with None, drop) ``currency``'s anchor after a cycle. A move heard while
        that cycle ran was judged against the anchor before it: the cycle has looked since, so
        such a move asks for no second cycle (the next ticker is judged against the new one)."""
        self._ready.discard(currency)
        self._deferred.pop(currency, None)
        if anchor is None:
            self._anchors.pop(currency, None)
        else:
            self._anchors[currency] = anchor

    def anchored(self, currency: str) -> Anchor | None:
        return self._anchors.get(currency)

    def on_price(self, currency: str, price: float) -> Verdict:
        """A ticker's index ``price`` for ``currency``: what the trigger makes of it."""
        verdict = self._judge(currency, price)
        self.counts[verdict] += 1
        return verdict

    def _judge(self, currency: str, price: float) -> Verdict:
        if not (math.isfinite(price) and price > 0):
            return Verdict.BAD_PRICE
        anchor = self._anchors.get(currency)
        if anchor is None:
            return Verdict.UNANCHORED
        drift = anchor.drift(price)
        if drift <= 0 or drift < self._s.band_fraction * max(anchor.room, 0.0):
            self._deferred.pop(currency, None)  # the move came back inside
            return Verdict.QUIET
        now = self._clock.now()
        last = self._fired.get(currency)
        if last and now - last[-1] < timedelta(seconds=self._s.min_gap_seconds):
            self._deferred[currency] = (
                last[-1] + timedelta(seconds=self._s.min_gap_seconds),
                price,
            )
            return Verdict.DEFER
        return self._fire(currency, now, drift, anchor)

    def _fire(self, currency: str, now: datetime, drift: float, anchor: Anchor) -> Verdict:
        fired = self._fired.setdefault(currency, deque())
        while fired and now - fired[0] >= _MINUTE:
            fired.popleft()
        self._deferred.pop(currency, None)
        if len(fired) >= self._s.max_per_minute:
            if self._capped_at.get(currency) != fired[0]:  # once per cap, not once per push
                self._capped_at[currency] = fired[0]
                log.warning("event_cycles_capped", currency=currency, per_minute=len(fired))
            return Verdict.CAPPED
        fired.append(now)
        self._anchors.pop(currency, None)  # a burst asks once; the cycle anchors again
        self._ready.add(currency)
        self.wake.set()
        log.info("event_fired", currency=currency, drift=drift, room=anchor.room)
        return Verdict.FIRE

    def next_deferred(self) -> datetime | None:
        """When the earliest deferred move's gap ends (None: nothing deferred)."""
        return min((at for at, _ in self._deferred.values()), default=None)

    def due(self) -> tuple[str, ...]:
        """The currencies a cycle is asked for now; clears them and ``wake``."""
        now = self._clock.now()
        for currency, (at, price) in list(self._deferred.items()):
            anchor = self._anchors.get(currency)
            if at <= now:
                del self._deferred[currency]
                if anchor is not None:
                    self._fire(currency, now, anchor.drift(price), anchor)
        ready = tuple(sorted(self._ready))
        self._ready.clear()
        self.wake.clear()
        return ready
