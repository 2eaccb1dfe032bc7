"""Deribit's private order methods on the paper venue: place, edit and cancel.

The paper venue decides every fill and every reject; this module reads Deribit's parameters,
applies the request-level rules Deribit applies before matching (price bands, post-only
repricing when ``reject_post_only`` is false, 64-character labels), records what the venue
answered in the :class:`~bot.sim.orders.OrderDirectory`, and writes Deribit's order and trade
objects (also for :mod:`bot.sim.order_reads` and the WebSocket pushes). A new order can be
hidden from label look-ups and open-order lists for a while (the fault plan's replication lag).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from datetime import datetime, timedelta
from typing import Any

from bot.domain import (
    DataError,
    Instrument,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from bot.sim import deribit_json as dj
from bot.sim.faults import ThinnableMarket
from bot.sim.handler import CallInfo, Handler
from bot.sim.orders import OrderDirectory, OrderRecord, TradeRecord
from bot.sim.params import Params, currencies_param, currency_param
from bot.sim.public_data import PublicData, price_band
from bot.sim.rpc_errors import RpcError
from bot.units import MAX_LABEL_LENGTH
from bot.venues.base import Venue
from bot.venues.errors import OrderNotFound
from bot.venues.paper.matching import check_amount, check_price, round_down

Json = dict[str, Any]
STOP_TYPES = ("stop_limit", "stop_market", "take_limit", "take_market", "trailing_stop")
KINDS = ("future", "option", "spot", "future_combo", "option_combo", "any")
_EPS = 1e-9


def kind_of(instrument_name: str, market: PublicData) -> str:
    return "option" if market.market.instrument(instrument_name).is_option else "future"


class TradingApi:
    """Handlers of the private order-changing methods; see the module docstring."""

    def __init__(
        self,
        public: PublicData,
        venue: Venue,
        directory: OrderDirectory,
        *,
        visibility_delay_s: float = 0.0,
        thinnable: ThinnableMarket | None = None,
        partial_fill_ratio: float = 0.5,
    ) -> None:
        self.public = public
        self._public = public
        self._market = public.market
        self._venue = venue
        self._dir = directory
        self._delay = timedelta(seconds=visibility_delay_s)
        self._thinnable = thinnable
        self._ratio = partial_fill_ratio
        self._served = public.market.currencies

    def handlers(self) -> dict[str, Handler]:
        return {
            "buy": self._buy,
            "sell": self._sell,
            "edit": self._edit,
            "cancel": self._cancel,
            "cancel_all": self._cancel_all,
            "cancel_all_by_currency": self._cancel_all_by_currency,
            "cancel_all_by_instrument": self._cancel_all_by_instrument,
            "cancel_by_label": self._cancel_by_label,
        }

    # --- JSON -----------------------------------------------------------------------------

    def order_json(self, record: OrderRecord) -> Json:
        instrument = self._market.instrument(record.instrument_name)
        return dj.order_json(record, instrument.contract_size)

    def trade_json(self, trade: TradeRecord) -> Json:
        return dj.trade_json(trade, self._market.instrument(trade.fill.instrument_name))

    def _now(self) -> datetime:
        return self._market.now()

    def instrument(self, p: Params) -> Instrument:
        name = p.text("instrument_name")
        try:
            return self._market.instrument(name)
        except DataError as exc:
            raise RpcError.of(10020, reason=str(exc), param="instrument_name") from None

    # --- placing --------------------------------------------------------------------------

    async def _buy(self, p: Params, info: CallInfo) -> Any:
        return await self._place(Side.BUY, p, info)

    async def _sell(self, p: Params, info: CallInfo) -> Any:
        return await self._place(Side.SELL, p, info)

    def _limit_price(
        self, instrument: Instrument, side: Side, price: float, post_only: bool, reject: bool
    ) -> float:
        """Deribit's checks on a limit price: band, and a crossing post-only order either
        repriced one tick inside the book or (``reject_post_only``) left to be rejected."""
        check_price(instrument, price)
        low, high = price_band(instrument, self._public.mark(instrument).mark_price)
        if side is Side.BUY and price > high:
            raise RpcError.of(10007, reason=f"price above {high}", param="price")
        if side is Side.SELL and price < low:
            raise RpcError.of(10005, reason=f"price below {low}", param="price")
        if post_only and not reject:
            bids, asks = self._market.order_book(instrument.name)
            tick = instrument.tick_size
            if side is Side.BUY and asks and price >= asks[0][0] and asks[0][0] - tick > 0:
                price = round(asks[0][0] - tick, 12)
            if side is Side.SELL and bids and price <= bids[0][0]:
                price = round(bids[0][0] + tick, 12)
        return price

    def _request_fields(self, p: Params) -> tuple[OrderType, TimeInForce, str, bool, bool, bool]:
        order_type = p.opt_text("type", "limit") or "limit"
        if order_type in STOP_TYPES:
            raise RpcError.of(10033, reason=f"{order_type} orders are not simulated", param="type")
        if order_type not in ("limit", "market"):
            raise RpcError.of(-32602, reason="must be limit or market", param="type")
        tif_text = p.opt_text("time_in_force", TimeInForce.GTC.value) or TimeInForce.GTC.value
        try:
            tif = TimeInForce(tif_text)
        except ValueError:
            raise RpcError.of(-32602, reason="unsupported", param="time_in_force") from None
        label = p.opt_text("label", "") or ""
        if len(label) > MAX_LABEL_LENGTH:
            raise RpcError.of(-32602, reason=f"longer than {MAX_LABEL_LENGTH}", param="label")
        post_only = p.flag("post_only")
        if post_only and (order_type == "market" or tif is not TimeInForce.GTC):
            raise RpcError.of(11029, reason="post_only needs a good_til_cancelled limit")
        return (
            OrderType(order_type),
            tif,
            label,
            post_only,
            p.flag("reject_post_only"),
            p.flag("reduce_only"),
        )

    @contextlib.contextmanager
    def _maybe_thinned(
        self, instrument: Instrument, amount: float, partial: bool
    ) -> Iterator[None]:
        depth = round_down(amount * self._ratio, instrument.amount_step)
        if not partial or self._thinnable is None or depth <= 0 or depth >= amount:
            yield
            return
        with self._thinnable.thinned(instrument.name, depth):
            yield

    async def _place(self, side: Side, p: Params, info: CallInfo) -> Any:
        instrument = self.instrument(p)
        amount = p.opt_number("amount")
        if amount is None:
            contracts = p.opt_number("contracts")
            if contracts is None:
                raise RpcError.of(-32602, reason="missing", param="amount")
            amount = contracts * instrument.contract_size
        order_type, tif, label, post_only, reject, reduce_only = self._request_fields(p)
        price = None
        if order_type is OrderType.LIMIT:
            price = self._limit_price(instrument, side, p.number("price"), post_only, reject)
        request = OrderRequest(
            label=label,
            instrument_name=instrument.name,
            side=side,
            amount=amount,
            order_type=order_type,
            price=price,
            post_only=post_only,
            reduce_only=reduce_only,
            time_in_force=tif,
        )
        with self._maybe_thinned(instrument, amount, info.partial_fill):
            state = await self._venue.place_order(request)
        record = self._dir.record_new(state, tif, self._now() + self._delay)
        await self._dir.refresh(instrument.currency)
        return self._order_answer(record, {state.venue_order_id})

    def _order_answer(self, record: OrderRecord, parts: set[str]) -> Json:
        trades = [
            self.trade_json(t)
            for t in self._dir.trades(record.currency)
            if t.fill.venue_order_id in parts
        ]
        return {"order": self.order_json(record), "trades": trades}

    # --- changing and cancelling ----------------------------------------------------------

    async def known_record(self, order_id: str) -> OrderRecord:
        """Order ``order_id``, brought up to date; Deribit's 10004 (order not found) if unknown."""
        record = await self._dir.resolve(order_id, self._served)
        if record is None:
            raise RpcError.of(10004, reason=f"no order {order_id}", param="order_id")
        await self._dir.refresh(record.currency)
        return record

    async def _open_record(self, order_id: str) -> OrderRecord:
        record = await self.known_record(order_id)
        if record.status is not OrderStatus.OPEN:
            raise RpcError.of(11044, reason=f"order {order_id} is {record.status.value}")
        return record

    async def _cancel_record(self, record: OrderRecord) -> None:
        try:
            state = await self._venue.cancel_order(record.live_part.venue_order_id)
        except OrderNotFound:
            await self._dir.refresh(record.currency)
            raise RpcError.of(11044, reason=f"order {record.order_id} is not open") from None
        self._dir.record_state(state)

    async def _edit(self, p: Params, _: CallInfo) -> Any:
        record = await self._open_record(p.text("order_id"))
        instrument = self._market.instrument(record.instrument_name)
        amount = p.number("amount")
        if amount <= record.filled_amount + _EPS:
            raise RpcError.of(10021, reason="not above the filled amount", param="amount")
        check_amount(instrument, amount - record.filled_amount)
        post_only = p.flag("post_only", record.post_only)
        price = p.opt_number("price")
        price = record.price if price is None else price
        if price is None:
            raise RpcError.of(-32602, reason="missing", param="price")
        price = self._limit_price(
            instrument, record.side, price, post_only, p.flag("reject_post_only")
        )
        await self._cancel_record(record)
        await self._dir.refresh(record.currency)
        remaining = round(amount - record.filled_amount, 12)
        if remaining <= _EPS:
            return self._order_answer(record, set())
        state = await self._venue.place_order(
            OrderRequest(
                label=record.label,
                instrument_name=record.instrument_name,
                side=record.side,
                amount=remaining,
                order_type=OrderType.LIMIT,
                price=price,
                post_only=post_only,
                reduce_only=p.flag("reduce_only", record.reduce_only),
                time_in_force=record.time_in_force,
            )
        )
        self._dir.record_replacement(record, state, amount, price)
        await self._dir.refresh(record.currency)
        return self._order_answer(record, {state.venue_order_id})

    async def _cancel(self, p: Params, _: CallInfo) -> Any:
        record = await self._open_record(p.text("order_id"))
        await self._cancel_record(record)
        await self._dir.refresh(record.currency)
        return self.order_json(record)

    async def _cancel_where(
        self, currencies: tuple[str, ...], keep: Callable[[OrderRecord], bool]
    ) -> int:
        count = 0
        for currency in currencies:
            await self._dir.refresh(currency)
            for record in self._dir.orders(currency):
                if record.status is OrderStatus.OPEN and keep(record):
                    with contextlib.suppress(RpcError):
                        await self._cancel_record(record)
                        count += 1
            await self._dir.refresh(currency)
        return count

    def type_filter(self, p: Params) -> Callable[[OrderRecord], bool]:
        wanted = p.opt_text("type", "all") or "all"
        if wanted in ("all", "trigger_all"):
            return lambda r: wanted == "all"
        return lambda r: r.order_type.value == wanted

    async def cancel_open(self, order_ids: Collection[str]) -> int:
        """Cancel those of ``order_ids`` still open (cancel-on-disconnect); how many."""
        return await self._cancel_where(self._served, lambda r: r.order_id in order_ids)

    async def _cancel_all(self, p: Params, _: CallInfo) -> Any:
        return await self._cancel_where(self._served, lambda r: True)

    async def _cancel_all_by_currency(self, p: Params, _: CallInfo) -> Any:
        currency = currency_param(p, self._served)
        kind = p.choice("kind", KINDS, "any")
        by_type = self.type_filter(p)
        return await self._cancel_where(
            (currency,),
            lambda r: kind in ("any", kind_of(r.instrument_name, self._public)) and by_type(r),
        )

    async def _cancel_all_by_instrument(self, p: Params, _: CallInfo) -> Any:
        instrument = self.instrument(p)
        by_type = self.type_filter(p)
        return await self._cancel_where(
            (instrument.currency,),
            lambda r: r.instrument_name == instrument.name and by_type(r),
        )

    async def _cancel_by_label(self, p: Params, _: CallInfo) -> Any:
        label = p.text("label")
        currencies = currencies_param(p, self._served)
        return await self._cancel_where(currencies, lambda r: r.label == label)
