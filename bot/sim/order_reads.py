"""Deribit's private order and trade reads: order state, open orders, history, user trades.

Answers come from the :class:`~bot.sim.orders.OrderDirectory`, refreshed from the paper venue
before each read. Label look-ups, open-order lists and history leave out orders still inside the
fault plan's visibility delay; a look-up by id does not (the id came from the reply itself).
Trade pages follow Deribit: ``count`` (default 10), ``sorting`` (newest first unless "asc"),
``has_more``; time and sequence bounds inclusive; trades older than 24 hours only with
``historical: true``, as Deribit keeps its recent store (here without the indexing delay).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain import OrderStatus
from bot.sim import deribit_json as dj
from bot.sim.handler import CallInfo, Handler
from bot.sim.orders import OrderDirectory, OrderRecord, TradeRecord
from bot.sim.params import Params, currency_param
from bot.sim.rpc_errors import RpcError
from bot.sim.trading import KINDS, TradingApi, kind_of

Json = dict[str, Any]
SORTINGS = ("asc", "desc", "default")
# Trades older than this are served only with ``historical: true``
# (https://docs.deribit.com/articles/accessing-historical-trades-orders).
RECENT_TRADES_MS = 24 * 3_600_000


class OrderReadsApi:
    """Handlers of the private read methods for orders and trades."""

    def __init__(self, trading: TradingApi, directory: OrderDirectory) -> None:
        self._t = trading
        self._public = trading.public
        self._market = trading.public.market
        self._dir = directory
        self._served = self._market.currencies

    def handlers(self) -> dict[str, Handler]:
        return {
            "get_order_state": self._order_state,
            "get_order_state_by_label": self._order_state_by_label,
            "get_open_orders": self._open_orders,
            "get_open_orders_by_currency": self._open_orders_by_currency,
            "get_open_orders_by_instrument": self._open_orders_by_instrument,
            "get_open_orders_by_label": self._open_orders_by_label,
            "get_order_history_by_currency": self._history_by_currency,
            "get_order_history_by_instrument": self._history_by_instrument,
            "get_user_trades_by_currency": self._trades_by_currency,
            "get_user_trades_by_currency_and_time": self._trades_by_currency,
            "get_user_trades_by_instrument": self._trades_by_instrument,
            "get_user_trades_by_instrument_and_time": self._trades_by_instrument,
            "get_user_trades_by_order": self._trades_by_order,
        }

    def _now(self) -> datetime:
        return self._market.now()

    # --- orders ---------------------------------------------------------------------------

    async def _order_state(self, p: Params, _: CallInfo) -> Any:
        return self._t.order_json(await self._t.known_record(p.text("order_id")))

    async def _visible(self, currency: str) -> list[OrderRecord]:
        await self._dir.refresh(currency)
        return self._dir.visible(currency, self._now())

    async def _order_state_by_label(self, p: Params, _: CallInfo) -> Any:
        label = p.text("label")
        currency = currency_param(p, self._served)
        found = [r for r in await self._visible(currency) if r.label == label]
        if not found:  # placed before this server started: the venue still holds it
            recalled = await self._dir.resolve_label(currency, label)
            if recalled is not None and recalled.visible_from <= self._now():
                found = [recalled]
        return [self._t.order_json(r) for r in found]

    async def _open(
        self, currencies: tuple[str, ...], keep: Callable[[OrderRecord], bool]
    ) -> list[Json]:
        out = []
        for currency in currencies:
            for record in await self._visible(currency):
                if record.status is OrderStatus.OPEN and keep(record):
                    out.append(self._t.order_json(record))
        return out

    def _kind_filter(self, p: Params) -> Callable[[OrderRecord], bool]:
        kind = p.choice("kind", KINDS, "any")
        by_type = self._t.type_filter(p)
        return lambda r: kind in ("any", kind_of(r.instrument_name, self._public)) and by_type(r)

    async def _open_orders(self, p: Params, _: CallInfo) -> Any:
        return await self._open(self._served, self._kind_filter(p))

    async def _open_orders_by_currency(self, p: Params, _: CallInfo) -> Any:
        return await self._open((currency_param(p, self._served),), self._kind_filter(p))

    async def _open_orders_by_instrument(self, p: Params, _: CallInfo) -> Any:
        instrument = self._t.instrument(p)
        by_type = self._t.type_filter(p)
        return await self._open(
            (instrument.currency,), lambda r: r.instrument_name == instrument.name and by_type(r)
        )

    async def _open_orders_by_label(self, p: Params, _: CallInfo) -> Any:
        label = p.text("label")
        return await self._open((currency_param(p, self._served),), lambda r: r.label == label)

    async def _history(
        self, p: Params, currency: str, keep: Callable[[OrderRecord], bool]
    ) -> list[Json]:
        """Closed orders, newest first; unfilled cancelled ones only with include_unfilled."""
        unfilled = p.flag("include_unfilled")
        count = p.integer("count", 20)
        offset = p.integer("offset", 0)
        found = [
            r
            for r in await self._visible(currency)
            if r.status is not OrderStatus.OPEN and keep(r) and (unfilled or r.filled_amount > 0)
        ]
        found.sort(key=lambda r: r.updated, reverse=True)
        return [self._t.order_json(r) for r in found[offset : offset + count]]

    async def _history_by_currency(self, p: Params, _: CallInfo) -> Any:
        return await self._history(p, currency_param(p, self._served), self._kind_filter(p))

    async def _history_by_instrument(self, p: Params, _: CallInfo) -> Any:
        instrument = self._t.instrument(p)
        return await self._history(
            p, instrument.currency, lambda r: r.instrument_name == instrument.name
        )

    # --- trades ---------------------------------------------------------------------------

    def _trade_page(self, p: Params, trades: list[TradeRecord]) -> Json:
        if not p.flag("historical"):  # Deribit serves its recent store only: the last 24 h
            recent_ms = dj.ms(self._now()) - RECENT_TRADES_MS
            trades = [t for t in trades if dj.ms(t.fill.timestamp) >= recent_ms]
        start_ms, end_ms = p.opt_integer("start_timestamp"), p.opt_integer("end_timestamp")
        if start_ms is not None:
            trades = [t for t in trades if dj.ms(t.fill.timestamp) >= start_ms]
        if end_ms is not None:
            trades = [t for t in trades if dj.ms(t.fill.timestamp) <= end_ms]
        sorting = p.choice("sorting", SORTINGS, "default")
        count = p.integer("count", 10)
        if count < 1:
            raise RpcError.of(-32602, reason="must be at least 1", param="count")
        ordered = trades if sorting == "asc" else list(reversed(trades))
        page = ordered[:count]
        return {"trades": [self._t.trade_json(t) for t in page], "has_more": len(ordered) > count}

    async def _trades_by_currency(self, p: Params, _: CallInfo) -> Any:
        currency = currency_param(p, self._served)
        await self._dir.refresh(currency)
        kind = p.choice("kind", KINDS, "any")
        trades = [
            t
            for t in self._dir.trades(currency)
            if kind in ("any", kind_of(t.fill.instrument_name, self._public))
        ]
        return self._trade_page(p, trades)

    async def _trades_by_instrument(self, p: Params, _: CallInfo) -> Any:
        instrument = self._t.instrument(p)
        await self._dir.refresh(instrument.currency)
        start_seq, end_seq = p.opt_integer("start_seq"), p.opt_integer("end_seq")
        trades = [
            t
            for t in self._dir.trades(instrument.currency)
            if t.fill.instrument_name == instrument.name
            and (start_seq is None or t.trade_seq >= start_seq)
            and (end_seq is None or t.trade_seq <= end_seq)
        ]
        return self._trade_page(p, trades)

    async def _trades_by_order(self, p: Params, _: CallInfo) -> Any:
        order_id = p.text("order_id")
        record = await self._t.known_record(order_id)
        trades = [t for t in self._dir.trades(record.currency) if t.order_id == order_id]
        if p.choice("sorting", SORTINGS, "default") == "desc":
            trades.reverse()
        return [self._t.trade_json(t) for t in trades]
