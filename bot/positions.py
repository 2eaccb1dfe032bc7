"""PositionTracker: reads one currency's book from the venue and refuses what it cannot trust.

A runaway hedger usually starts with a bad read: positions that came back empty, marks that are
minutes old, a NaN price. The tracker turns each of those into a ``DataError`` that the cycle
records as a skip, instead of a Book that would make the policy trade.
"""

from __future__ import annotations

import math
from datetime import datetime

from bot.clock import Clock
from bot.config import CurrencyFacts
from bot.domain import Book, DataError, Instrument, Mark, Position, Quote, require_positive
from bot.venues.base import Venue
from bot.venues.reads import gather_or_cancel


class StaleData(DataError):
    """Inputs older than the configured maximum age."""


class EmptyPositionRead(DataError):
    """The venue returned no positions although the last read held some."""


class PositionTracker:
    """Venue → Book for one or more currencies, with staleness and emptiness checks."""

    def __init__(
        self, venue: Venue, facts: dict[str, CurrencyFacts], clock: Clock, max_age_seconds: float
    ) -> None:
        self.venue = venue
        self._facts = facts
        self._clock = clock
        self._max_age = max_age_seconds
        self._last_count: dict[str, int] = {}
        self._confirm_empty: dict[str, bool] = {}

    async def read(self, currency: str) -> Book:
        facts = self._facts.get(currency)
        if facts is None:
            raise DataError(f"no venue facts for currency {currency!r}")
        # Read together: the venue's delta_total is then as close as it can be in time to the
        # positions and marks it is checked against. One failed read cancels the others.
        positions, mark_list, account, quote = await gather_or_cancel(
            self.venue.positions(currency),
            self.venue.marks(currency),
            self.venue.account(currency),
            self.venue.quote(facts.perpetual),
        )
        self._check_not_suddenly_empty(currency, len(positions))
        marks = {m.instrument_name: m for m in mark_list}
        hedge = await self._hedge_instrument(currency, facts.perpetual, positions)
        now = self._clock.now()
        _check_quote(quote, now, self._max_age)
        for pos in positions:
            mark = marks.get(pos.instrument.name)
            if mark is None:
                if pos.instrument.expiry is not None and pos.instrument.expiry <= now:
                    continue  # expired: the Greeks engine lists it as skipped
                raise DataError(f"no mark for held instrument {pos.instrument.name}")
            _check_mark(mark, now, self._max_age)
        if not math.isfinite(account.equity):
            raise DataError(f"{currency} equity is not a finite number: {account.equity!r}")
        return Book(
            currency=currency,
            as_of=now,
            positions=tuple(p for p in positions if p.size != 0),
            marks=marks,
            account=account,
            hedge_instrument=hedge,
            hedge_quote=quote,
        )

    def _check_not_suddenly_empty(self, currency: str, count: int) -> None:
        """An empty read right after a non-empty one is refused once; a second one is believed."""
        previous = self._last_count.get(currency, 0)
        if count == 0 and previous > 0 and not self._confirm_empty.get(currency, False):
            self._confirm_empty[currency] = True
            raise EmptyPositionRead(
                f"{currency} position read came back empty while the last read held "
                f"{previous} positions; not trusting it until a second read agrees"
            )
        self._confirm_empty[currency] = False
        self._last_count[currency] = count

    async def _hedge_instrument(
        self, currency: str, name: str, positions: list[Position]
    ) -> Instrument:
        for pos in positions:
            if pos.instrument.name == name:
                return pos.instrument
        for inst in await self.venue.instruments(currency):
            if inst.name == name:
                return inst
        raise DataError(f"hedge instrument {name} is not listed by the venue")


def _check_quote(quote: Quote, now: datetime, max_age: float) -> None:
    require_positive(f"{quote.instrument_name} bid", quote.bid)
    require_positive(f"{quote.instrument_name} ask", quote.ask)
    require_positive(f"{quote.instrument_name} index", quote.index_price)
    if quote.ask < quote.bid:
        raise DataError(
            f"{quote.instrument_name} book is crossed: bid {quote.bid} > ask {quote.ask}"
        )
    _check_age(quote.instrument_name, quote.timestamp, now, max_age)


def _check_mark(mark: Mark, now: datetime, max_age: float) -> None:
    require_positive(f"{mark.instrument_name} underlying_price", mark.underlying_price)
    if not math.isfinite(mark.mark_price) or mark.mark_price < 0:
        raise DataError(f"{mark.instrument_name} mark_price is not usable: {mark.mark_price!r}")
    if mark.mark_iv is not None:
        require_positive(f"{mark.instrument_name} mark_iv", mark.mark_iv)
    _check_age(mark.instrument_name, mark.timestamp, now, max_age)


def _check_age(name: str, ts: datetime, now: datetime, max_age: float) -> None:
    age = (now - ts).total_seconds()
    if age > max_age:
        raise StaleData(f"{name} data is {age:.1f}s old, more than the {max_age:.1f}s allowed")
