"""The simulated venue's public market data as Deribit JSON: instruments, tickers, books, index.

Prices, books and IVs are the market model's. What Deribit derives from trading (last price,
24-hour stats, open interest) comes from the only trading there is: this account's own trades
and positions, so a ticker never invents a tape. Price bands (``min_price``/``max_price``) are a
simple rule, enforced on limit orders as Deribit does: the perpetual ±1.5% of its mark, options
their mark ± 0.03 coin (at least one tick).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.config import FeeSettings
from bot.domain import DataError, Instrument, Mark
from bot.sim import deribit_json as dj
from bot.sim.faults import ServedMarket
from bot.sim.orders import OrderDirectory, TradeRecord
from bot.sim.ticker_greeks import implied_vol, ticker_greeks
from bot.venues.base import Venue
from bot.venues.paper.matching import Level, round_down, round_up

Json = dict[str, Any]
PERP_PRICE_BAND = 0.015
OPTION_PRICE_BAND_COIN = 0.03
SESSION_HOURS = 8  # perpetual settlement sessions: 00:00, 08:00, 16:00 UTC
_DAY = timedelta(days=1)


def price_band(instrument: Instrument, mark: float) -> tuple[float, float]:
    """(min_price, max_price) a limit order must respect; see the module docstring."""
    tick = instrument.tick_size
    if instrument.is_option:
        low = max(tick, round_down(mark - OPTION_PRICE_BAND_COIN, tick))
        return low, round_up(mark + OPTION_PRICE_BAND_COIN, tick)
    return round_down(mark * (1 - PERP_PRICE_BAND), tick), round_up(
        mark * (1 + PERP_PRICE_BAND), tick
    )


def _stats(trades: Sequence[TradeRecord], instrument: Instrument) -> Json:
    prices = [t.fill.price for t in trades]
    if instrument.is_option:
        volume = sum(t.fill.amount for t in trades)
        volume_usd = sum(t.fill.amount * t.fill.price * (t.fill.index_price or 0) for t in trades)
    else:
        volume = sum(t.fill.amount / t.fill.price for t in trades)
        volume_usd = sum(t.fill.amount for t in trades)
    change = (prices[-1] / prices[0] - 1) * 100 if prices else None
    out = {
        "volume": volume,
        "volume_usd": volume_usd,
        "price_change": round(change, 4) if change is not None else None,
        "high": max(prices) if prices else None,
        "low": min(prices) if prices else None,
    }
    if not instrument.is_option:
        out["volume_notional"] = volume_usd
    return out


class PublicData:
    """Builds the public answers from the market, the account's trades and its positions."""

    def __init__(
        self,
        market: ServedMarket,
        venue: Venue,
        directory: OrderDirectory,
        fees: FeeSettings,
    ) -> None:
        self.market = market
        self._venue = venue
        self._directory = directory
        self.fees = fees

    # --- listing --------------------------------------------------------------------------

    def created(self, instrument: Instrument) -> datetime:
        if instrument.expiry is None:
            return self.market.start
        return self.market.listed_from(instrument.expiry)

    def instruments(self, currency: str, kind: str | None) -> list[Json]:
        found = self.market.instruments(currency)
        out = [dj.instrument_json(i, self.created(i), self.fees) for i in found]
        return [o for o in out if kind in (None, o["kind"])]

    def mark(self, instrument: Instrument) -> Mark:
        """The mark of a live instrument (DataError once it has expired)."""
        for mark in self.market.marks(instrument.currency):
            if mark.instrument_name == instrument.name:
                return mark
        raise DataError(f"{instrument.name} is not live")

    # --- tickers and books ----------------------------------------------------------------

    def _recent_trades(self, name: str, now: datetime) -> list[TradeRecord]:
        currency = self.market.instrument(name).currency
        return [
            t
            for t in self._directory.trades(currency)
            if t.fill.instrument_name == name and t.fill.timestamp > now - _DAY
        ]

    def _last_price(self, name: str) -> float | None:
        currency = self.market.instrument(name).currency
        trades = [t for t in self._directory.trades(currency) if t.fill.instrument_name == name]
        return trades[-1].fill.price if trades else None

    async def _open_interest(self, instrument: Instrument) -> float:
        return (await self._held(instrument.currency)).get(instrument.name, 0.0)

    def _perp_settlement(self, instrument: Instrument, mark: Mark, now: datetime) -> float:
        """The perpetual's mark at the last 8-hour session (its basis to the index is fixed)."""
        session = now.replace(minute=0, second=0, microsecond=0)
        session -= timedelta(hours=session.hour % SESSION_HOURS)
        session = max(session, self.market.start)
        ratio = mark.mark_price / mark.index_price
        return self.market.index_at(instrument.currency, session) * ratio

    async def ticker(self, name: str) -> Json:
        """``public/ticker`` (also the body of ``ticker.*`` pushes and of ``get_order_book``)."""
        instrument = self.market.instrument(name)
        now = self.market.now()
        mark = self.mark(instrument)
        bids, asks = self.market.order_book(name)
        low, high = price_band(instrument, mark.mark_price)
        out: Json = {
            "instrument_name": name,
            "timestamp": dj.ms(now),
            "state": "open",
            "mark_price": mark.mark_price,
            "index_price": mark.index_price,
            "estimated_delivery_price": mark.index_price,
            "last_price": self._last_price(name),
            "best_bid_price": bids[0][0] if bids else 0.0,
            "best_bid_amount": bids[0][1] if bids else 0.0,
            "best_ask_price": asks[0][0] if asks else 0.0,
            "best_ask_amount": asks[0][1] if asks else 0.0,
            "min_price": low,
            "max_price": high,
            "open_interest": await self._open_interest(instrument),
            "stats": _stats(self._recent_trades(name, now), instrument),
        }
        if instrument.is_option:
            forward = mark.underlying_price
            bid_iv = implied_vol(instrument, bids[0][0], forward, now) if bids else None
            ask_iv = implied_vol(instrument, asks[0][0], forward, now) if asks else None
            out.update(
                underlying_price=forward,
                underlying_index=dj.underlying_index(instrument),
                interest_rate=0.0,
                mark_iv=round((mark.mark_iv or 0.0) * 100, 2),
                bid_iv=round(bid_iv * 100, 2) if bid_iv is not None else 0.0,
                ask_iv=round(ask_iv * 100, 2) if ask_iv is not None else 0.0,
                greeks=ticker_greeks(instrument, mark, now).rounded(),
            )
        else:
            out.update(
                settlement_price=self._perp_settlement(instrument, mark, now),
                funding_8h=0.0,
                current_funding=0.0,
                interest_value=0.0,
            )
        return out

    async def order_book(self, name: str, depth: int | None) -> Json:
        """``public/get_order_book``: the ticker plus ``depth`` levels a side."""
        out = await self.ticker(name)
        bids, asks = self.market.order_book(name)
        if depth is not None:
            bids, asks = bids[:depth], asks[:depth]
        out["bids"] = [[p, a] for p, a in bids]
        out["asks"] = [[p, a] for p, a in asks]
        out["change_id"] = out["timestamp"]
        return out

    async def _held(self, currency: str) -> dict[str, float]:
        return {p.instrument.name: abs(p.size) for p in await self._venue.positions(currency)}

    async def book_summaries(self, currency: str, kind: str | None) -> list[Json]:
        """``public/get_book_summary_by_currency``: every live instrument in one answer."""
        now = self.market.now()
        held = await self._held(currency)
        instruments = {i.name: i for i in self.market.instruments(currency)}
        out = []
        for mark in self.market.marks(currency):
            instrument = instruments.get(mark.instrument_name)
            if instrument is None:
                continue
            is_option = instrument.is_option
            if kind not in (None, "option" if is_option else "future"):
                continue
            out.append(self._summary(instrument, mark, now, held.get(instrument.name, 0.0)))
        return out

    async def book_summary(self, name: str) -> Json:
        instrument = self.market.instrument(name)
        held = await self._held(instrument.currency)
        mark = self.mark(instrument)
        return self._summary(instrument, mark, self.market.now(), held.get(name, 0.0))

    def _summary(self, instrument: Instrument, mark: Mark, now: datetime, held: float) -> Json:
        stats = _stats(self._recent_trades(instrument.name, now), instrument)
        bid, ask = mark.bid, mark.ask
        row: Json = {
            "instrument_name": instrument.name,
            "base_currency": instrument.currency,
            "quote_currency": instrument.currency if instrument.is_option else "USD",
            "creation_timestamp": dj.ms(now),
            "mark_price": mark.mark_price,
            "bid_price": bid,
            "ask_price": ask,
            "mid_price": (bid + ask) / 2 if bid is not None and ask is not None else None,
            "last": self._last_price(instrument.name),
            "high": stats["high"],
            "low": stats["low"],
            "price_change": stats["price_change"],
            "volume": stats["volume"],
            "estimated_delivery_price": mark.index_price,
            "open_interest": held,
        }
        if instrument.is_option:
            row.update(
                underlying_price=mark.underlying_price,
                underlying_index=dj.underlying_index(instrument),
                interest_rate=0.0,
                mark_iv=round((mark.mark_iv or 0.0) * 100, 2),
            )
        else:
            row.update(
                volume_usd=stats["volume_usd"],
                volume_notional=stats["volume_usd"],
                funding_8h=0.0,
                current_funding=0.0,
            )
        return row

    def index_price(self, currency: str) -> Json:
        value = self.market.index(currency)
        return {"index_price": value, "estimated_delivery_price": value}

    def top(self, name: str) -> tuple[list[Level], list[Level]]:
        return self.market.order_book(name)
