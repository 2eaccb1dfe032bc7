"""PositionTracker: reads one currency's book from the venue and refuses what it cannot trust.

A runaway hedger usually starts with a bad read: positions that came back empty, marks that are
minutes old, a NaN price. The tracker turns each of those into a ``DataError`` that the cycle
records as a skip, instead of a Book that would make the policy trade.
"""

from __future__ import annotations

import math
from datetime import datetime

from bot.clock import Clock
from bot.config import CurrencyFacts, RiskSettings
from bot.domain import (
    Account,
    Book,
    DataError,
    Instrument,
    InstrumentKind,
    Mark,
    Position,
    Quote,
    require_positive,
)
from bot.venues.base import Venue
from bot.venues.reads import gather_or_cancel


class StaleData(DataError):
    """Inputs older than the configured maximum age."""


class EmptyPositionRead(DataError):
    """The venue returned no positions although the last read held some."""


class ImplausibleRead(DataError):
    """A read that came back but does not add up (a future timestamp, a hedge quoted far from
    the index, a missing ``delta_total``, a value of the wrong type): never sized on."""


def _expires(instrument: Instrument, now: datetime) -> bool:
    """Expired by ``now``: no mark to ask the venue for."""
    return instrument.expiry is not None and instrument.expiry <= now


def _mark_of_quote(quote: Quote) -> Mark:
    """A future's mark from its ticker (``public/ticker`` carries the mark, index and top of
    book that its book-summary row carries); a future's forward is its own mark."""
    return Mark(
        instrument_name=quote.instrument_name,
        mark_price=quote.mark,
        underlying_price=quote.mark,
        index_price=quote.index_price,
        timestamp=quote.timestamp,
        bid=quote.bid,
        ask=quote.ask,
    )


class PositionTracker:
    """Venue → Book for one or more currencies, with staleness and emptiness checks."""

    def __init__(
        self, venue: Venue, facts: dict[str, CurrencyFacts], clock: Clock, limits: RiskSettings
    ) -> None:
        self.venue = venue
        self._facts = facts
        self._clock = clock
        self._limits = limits
        self._last_count: dict[str, int] = {}
        self._confirm_empty: dict[str, bool] = {}
        self._held: dict[str, tuple[Instrument, ...]] = {}  # held at the last good read

    async def read(self, currency: str) -> Book:
        facts = self._facts.get(currency)
        if facts is None:
            raise DataError(f"no venue facts for currency {currency!r}")
        # Read together: the venue's delta_total is then as close as it can be in time to the
        # positions and marks it is checked against. One failed read cancels the others.
        # Marks are asked for the instruments held at the last good read (every instrument
        # at the first read, or after a failed one); a newly held one is read after. The
        # hedge's mark comes with its quote (the same ticker), so it is not asked twice.
        last = self._held.pop(currency, None)
        start = self._clock.now()
        held = (
            None
            if last is None
            else [i.name for i in last if not _expires(i, start) and i.name != facts.perpetual]
        )
        positions, mark_list, account, quote = await gather_or_cancel(
            self.venue.positions(currency),
            self.venue.marks(currency, held),
            self.venue.account(currency),
            self.venue.quote(facts.perpetual),
        )
        _check_positions(currency, positions)
        self._check_not_suddenly_empty(currency, len(positions))
        marks = {m.instrument_name: m for m in mark_list}
        if quote.instrument_name == facts.perpetual and facts.perpetual not in marks:
            marks[facts.perpetual] = _mark_of_quote(quote)
        now = self._clock.now()
        live = tuple(p.instrument for p in positions if not _expires(p.instrument, now))
        new = sorted({i.name for i in live if i.name not in marks})
        if new and held is not None:
            marks.update((m.instrument_name, m) for m in await self.venue.marks(currency, new))
        hedge = await self._hedge_instrument(currency, facts.perpetual, positions)
        now = self._clock.now()
        _check_hedge_instrument(hedge, now)
        if quote.instrument_name != hedge.name:
            raise ImplausibleRead(
                f"asked for the {hedge.name} book, the venue answered with "
                f"{quote.instrument_name!r}"
            )
        self._check_quote(quote, now)
        for pos in positions:
            mark = marks.get(pos.instrument.name)
            if mark is None:
                if _expires(pos.instrument, now):
                    continue  # expired: the Greeks engine lists it as skipped
                raise DataError(f"no mark for held instrument {pos.instrument.name}")
            self._check_mark(mark, now)
        _check_account(currency, account)
        self._held[currency] = live
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

    def _check_quote(self, quote: Quote, now: datetime) -> None:
        name = quote.instrument_name
        index = require_positive(f"{name} index", _number(f"{name} index", quote.index_price))
        bid = require_positive(f"{name} bid", _number(f"{name} bid", quote.bid))
        ask = require_positive(f"{name} ask", _number(f"{name} ask", quote.ask))
        mark = require_positive(f"{name} mark", _number(f"{name} mark", quote.mark))
        if ask < bid:
            raise DataError(f"{name} book is crossed: bid {bid} > ask {ask}")
        limit = self._limits.max_index_deviation
        for what, price in (("bid", bid), ("ask", ask), ("mark", mark)):
            if abs(price / index - 1) > limit:
                raise ImplausibleRead(
                    f"{name} {what} {price:,.2f} is {abs(price / index - 1):.1%} from the index "
                    f"{index:,.2f}, more than the {limit:.1%} allowed (risk.max_index_deviation)"
                )
        self._check_time(name, quote.timestamp, now)

    def _check_mark(self, mark: Mark, now: datetime) -> None:
        name = mark.instrument_name
        require_positive(
            f"{name} underlying_price", _number(f"{name} underlying_price", mark.underlying_price)
        )
        price = _number(f"{name} mark_price", mark.mark_price)
        if price < 0:
            raise DataError(f"{name} mark_price is not usable: {price!r}")
        if mark.mark_iv is not None:
            require_positive(f"{name} mark_iv", _number(f"{name} mark_iv", mark.mark_iv))
        self._check_time(name, mark.timestamp, now)

    def _check_time(self, name: str, ts: datetime, now: datetime) -> None:
        if not isinstance(ts, datetime) or ts.tzinfo is None:
            raise ImplausibleRead(f"{name} timestamp must be an aware datetime, got {ts!r}")
        age = (now - ts).total_seconds()
        ahead = self._limits.max_clock_ahead_seconds
        if -age > ahead:
            raise ImplausibleRead(
                f"{name} data is stamped {-age:.1f}s in the future, more than the {ahead:.1f}s "
                "allowed (risk.max_clock_ahead_seconds): check the host clock (NTP)"
            )
        max_age = self._limits.max_data_age_seconds
        if age > max_age:
            raise StaleData(f"{name} data is {age:.1f}s old, more than the {max_age:.1f}s allowed")


def _number(name: str, value: object) -> float:
    """A real, finite number: a string, None, a bool or NaN from the venue is a bad read."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ImplausibleRead(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ImplausibleRead(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _check_positions(currency: str, positions: list[Position]) -> None:
    seen: set[str] = set()
    for pos in positions:
        inst = pos.instrument
        if not isinstance(inst, Instrument) or not isinstance(inst.kind, InstrumentKind):
            raise ImplausibleRead(f"{currency} position of an unknown instrument: {inst!r}")
        if inst.currency != currency:
            raise ImplausibleRead(f"{inst.name}: currency {inst.currency} in a {currency} read")
        if inst.name in seen:
            raise ImplausibleRead(f"{currency} position read lists {inst.name} twice")
        seen.add(inst.name)
        _number(f"{inst.name} size", pos.size)


def _check_hedge_instrument(inst: Instrument, now: datetime) -> None:
    """The venue's facts that size and price every hedge order: a zero, NaN or string lot,
    tick or contract size, or an expired hedge, is a bad read, never an order."""
    for what in ("contract_size", "min_amount", "amount_step", "tick_size"):
        require_positive(f"{inst.name} {what}", _number(f"{inst.name} {what}", getattr(inst, what)))
    if inst.kind is InstrumentKind.OPTION:
        raise ImplausibleRead(f"hedge instrument {inst.name} is listed as an option")
    if inst.expiry is not None and inst.expiry <= now:
        raise ImplausibleRead(f"hedge instrument {inst.name} expired at {inst.expiry.isoformat()}")


def _check_account(currency: str, account: Account) -> None:
    if account.currency != currency:
        raise ImplausibleRead(f"{currency} account read answered for {account.currency!r}")
    equity = _number(f"{currency} equity", account.equity)
    if equity <= 0:
        raise ImplausibleRead(f"{currency} equity must be positive, got {equity!r}")
    if account.delta_total is None:
        # Deribit's get_account_summary always carries delta_total; without it the book cannot
        # be checked against the venue, so the read is incomplete, not merely unchecked.
        raise ImplausibleRead(
            f"{currency} account summary has no delta_total: the read is incomplete"
        )
    _number(f"{currency} delta_total", account.delta_total)
