"""Paper trading on a real Deribit's market data: fake fills, real prices.

The paper venue (:mod:`bot.venues.paper.venue`) fills orders locally against a
:class:`~bot.venues.paper.market.MarketSource`. :class:`LiveMarket` is that source for a real
venue: book summaries (marks, IVs, forwards), the hedge perpetual's order book (top and
depth) and the index are read through ccxt with **public calls only** — the client is a
:class:`~bot.venues.deribit.adapter.PublicOnlyDeribit`, which holds no key and raises before
sending anything private — and kept as a snapshot the synchronous market interface serves.
Hummingbot's paper exchange and freqtrade's dry-run work the same way.

:class:`LivePaperVenue` is the Venue: it refreshes the snapshot before each read or order
(at most every ``refresh_seconds``), builds the paper account on the first one (its starting
book: legs imported once from a real account, or the settings' legs placed on the nearest
listed options) and hands every call to the paper venue, whose account lives in the paper
ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

import structlog

from bot.clock import Clock
from bot.config import BookLeg, CurrencyFacts, FeeSettings
from bot.domain import (
    Account,
    DataError,
    Fill,
    Instrument,
    Mark,
    OptionType,
    OrderRequest,
    OrderState,
    Position,
    Quote,
    utc,
)
from bot.venues.deribit.adapter import DeribitVenue
from bot.venues.paper.matching import Level
from bot.venues.paper.state import PaperStateStore
from bot.venues.paper.venue import PaperVenue
from bot.venues.venue_clock import VenueClock

log = structlog.get_logger("hedgebot.venues.live_market")

BOOK_DEPTH = 10
ImportedBook = Mapping[str, Sequence[tuple[str, float]]]  # currency -> (instrument, size)


class LiveMarket:
    """A snapshot of one venue's public market data (see the module docstring)."""

    def __init__(
        self,
        data: DeribitVenue,
        facts: Mapping[str, CurrencyFacts],
        clock: Clock,
        *,
        equity: Mapping[str, float],
        legs: Sequence[BookLeg] = (),
        imported: ImportedBook | None = None,
    ) -> None:
        self._data = data
        self._facts = dict(facts)
        self._clock = clock
        self._equity = dict(equity)
        self._legs = tuple(legs)
        self._imported = dict(imported or {})
        self._instruments: dict[str, Instrument] = {}
        self._marks: dict[str, list[Mark]] = {}
        self._books: dict[str, tuple[list[Level], list[Level]]] = {}
        self._quotes: dict[str, Quote] = {}
        self._index: dict[str, float] = {}
        self.refreshed_at: datetime | None = None

    # --- reading the venue --------------------------------------------------------------

    async def refresh(self) -> None:
        """One snapshot of every currency: listing, book summaries, the perpetual's book."""
        for currency, facts in self._facts.items():
            await self._data.facts(currency)  # settings that contradict the venue: refused
            for instrument in await self._data.instruments(currency):
                self._instruments[instrument.name] = instrument
            self._marks[currency] = await self._data.marks(currency)
            quote, bids, asks = await self._data.order_book(facts.perpetual, BOOK_DEPTH)
            self._quotes[facts.perpetual] = quote
            self._books[facts.perpetual] = (bids, asks)
            self._index[currency] = quote.index_price
        self.refreshed_at = self._clock.now()

    # --- MarketSource -------------------------------------------------------------------

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(self._facts)

    def now(self) -> datetime:
        return self._clock.now()

    def index(self, currency: str) -> float:
        if currency not in self._index:
            raise DataError(f"no {currency} index read from the venue yet")
        return self._index[currency]

    def instruments(self, currency: str) -> list[Instrument]:
        return [i for i in self._instruments.values() if i.currency == currency]

    def instrument(self, name: str) -> Instrument:
        if name not in self._instruments:
            raise DataError(f"{name} is not listed by the venue")
        return self._instruments[name]

    def marks(self, currency: str) -> list[Mark]:
        return list(self._marks.get(currency, []))

    def quote(self, name: str) -> Quote:
        if name in self._quotes:
            return self._quotes[name]
        for marks in self._marks.values():
            for mark in marks:
                if mark.instrument_name == name and mark.bid and mark.ask:
                    return Quote(
                        name, mark.bid, mark.ask, mark.mark_price, mark.index_price, mark.timestamp
                    )
        raise DataError(f"no quote for {name} in the venue's data")

    def order_book(self, name: str) -> tuple[list[Level], list[Level]]:
        """The venue's own depth for the perpetual; other instruments: their top of book."""
        if name in self._books:
            return self._books[name]
        quote = self.quote(name)
        size = self.instrument(name).min_amount
        return [(quote.bid, size)], [(quote.ask, size)]

    def settlement_price(self, currency: str, expiry: datetime) -> float:
        """After expiry: the index as last read (Deribit delivers at a 30-minute TWAP of the
        index; a paper account settles on the closest figure it has)."""
        if utc(expiry) > self.now():
            raise DataError(f"{currency} {expiry.isoformat()} has not expired yet")
        return self.index(currency)

    def starting_equity(self, currency: str) -> float:
        return float(self._equity.get(currency, 0.0))

    def starting_book(self, currency: str) -> list[tuple[Instrument, float]]:
        """Imported legs when a real book was copied, else the settings' legs, each on the
        listed option nearest its expiry and strike (strike = index x moneyness)."""
        if currency in self._imported:
            return [(self.instrument(n), size) for n, size in self._imported[currency]]
        options = [i for i in self.instruments(currency) if i.is_option]
        if not options or not self._legs:
            return []
        spot, now = self.index(currency), self.now()
        out = []
        for leg in self._legs:
            kind = OptionType(leg.option_type)
            want = now + timedelta(days=leg.expiry_days)
            pool = [o for o in options if o.option_type is kind and o.expiry and o.expiry > now]
            if not pool:
                continue
            expiry = min(
                {o.expiry for o in pool if o.expiry}, key=lambda e: abs((e - want).total_seconds())
            )
            best = min(
                (o for o in pool if o.expiry == expiry),
                key=lambda o: abs((o.strike or 0.0) - spot * leg.moneyness),
            )
            out.append((best, leg.size))
        return out


class LivePaperVenue:
    """A paper account filling against a real venue's market data (see the module doc)."""

    def __init__(
        self,
        market: LiveMarket,
        data: DeribitVenue,
        store: PaperStateStore,
        clock: Clock,
        facts: Mapping[str, CurrencyFacts],
        fees: FeeSettings,
        *,
        equity: Mapping[str, float] | None = None,
        refresh_seconds: float = 1.0,
    ) -> None:
        self.name = "paper"
        self._market = market
        self._data = data
        self._store = store
        self._clock = clock
        self._facts = facts
        self._fees = fees
        self._equity = equity
        self._refresh = refresh_seconds
        self._paper: PaperVenue | None = None
        self._lock = asyncio.Lock()

    @property
    def venue_clock(self) -> VenueClock | None:
        """The data venue's clock: data age is judged on it, as for a live account."""
        return self._data.venue_clock

    async def _ready(self) -> PaperVenue:
        async with self._lock:  # a cycle's concurrent reads share one refresh
            at = self._market.refreshed_at
            if at is None or (self._clock.now() - at).total_seconds() >= self._refresh:
                if self._data.venue_clock is not None:
                    await self._data.venue_clock.ensure()
                await self._market.refresh()
        if self._paper is None:
            self._paper = PaperVenue(
                self._market,
                self._store,
                self._clock,
                self._facts,
                self._fees,
                name="paper",
                equity=self._equity,
            )
            log.info("paper_on_live_data", currencies=list(self._market.currencies))
        return self._paper

    async def instruments(self, currency: str) -> list[Instrument]:
        return await (await self._ready()).instruments(currency)

    async def positions(self, currency: str) -> list[Position]:
        return await (await self._ready()).positions(currency)

    async def account(self, currency: str) -> Account:
        return await (await self._ready()).account(currency)

    async def marks(self, currency: str, instruments: Collection[str] | None = None) -> list[Mark]:
        return await (await self._ready()).marks(currency, instruments)

    async def quote(self, instrument_name: str) -> Quote:
        return await (await self._ready()).quote(instrument_name)

    async def place_order(self, request: OrderRequest) -> OrderState:
        return await (await self._ready()).place_order(request)

    async def cancel_order(self, venue_order_id: str) -> OrderState:
        return await (await self._ready()).cancel_order(venue_order_id)

    async def order_by_label(self, currency: str, label: str) -> OrderState | None:
        return await (await self._ready()).order_by_label(currency, label)

    async def order_by_id(self, currency: str, venue_order_id: str) -> OrderState | None:
        return await (await self._ready()).order_by_id(currency, venue_order_id)

    async def open_orders(self, currency: str) -> list[OrderState]:
        return await (await self._ready()).open_orders(currency)

    async def fills(self, currency: str, since: datetime | None = None) -> list[Fill]:
        return await (await self._ready()).fills(currency, since)

    async def close(self) -> None:
        await self._data.close()
