"""The server's index of the account's orders and trades, kept from the paper venue's evidence.

The paper venue is the engine: it places, fills, cancels and persists. A Deribit server must also
answer questions the ``Venue`` port does not (an order by id, its creation time and
time-in-force, order history, a trade's sequence number), and push each change to WebSocket
subscribers. :class:`OrderDirectory` keeps those facts beside the venue, and learns every change
by reading the venue: its open orders and its fills. An order that leaves the open list is
FILLED when its fills cover it and CANCELLED otherwise (an expiry or a cancel), never guessed
from anything else.

Deribit's ``edit`` keeps the order id; the engine cannot reprice an order in place, so an edit
is a cancel and a new engine order whose fills count toward the same Deribit order: a record
has one or more engine "parts", and the ids the server shows are those of the first part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.domain import Fill, OrderState, OrderStatus, OrderType, Side, TimeInForce
from bot.venues.base import Venue
from bot.venues.paper.instruments import currency_of

_FILLED_EPS = 1e-9


@dataclass
class _Part:
    venue_order_id: str
    amount: float
    status: OrderStatus
    filled: float = 0.0
    paid: float = 0.0  # sum of price × amount of its fills
    fees: float = 0.0


@dataclass
class OrderRecord:
    """One Deribit order as the server shows it."""

    order_id: str
    label: str
    instrument_name: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool
    amount: float
    price: float | None
    created: datetime
    updated: datetime
    visible_from: datetime
    parts: list[_Part] = field(default_factory=list)
    replaced: bool = False

    @property
    def currency(self) -> str:
        return currency_of(self.instrument_name)

    @property
    def live_part(self) -> _Part:
        return self.parts[-1]

    @property
    def status(self) -> OrderStatus:
        return self.live_part.status

    @property
    def filled_amount(self) -> float:
        return sum(p.filled for p in self.parts)

    @property
    def average_price(self) -> float | None:
        filled = self.filled_amount
        return sum(p.paid for p in self.parts) / filled if filled > 0 else None

    @property
    def commission(self) -> float:
        return sum(p.fees for p in self.parts)

    def fingerprint(self) -> tuple[object, ...]:
        return (self.status, self.filled_amount, self.amount, self.price, self.replaced)


@dataclass(frozen=True)
class TradeRecord:
    """One of our executions, with what Deribit's trade object adds to a ``Fill``."""

    fill: Fill
    order_id: str
    trade_seq: int
    tick_direction: int  # 0 plus tick, 1 zero-plus, 2 minus, 3 zero-minus
    mark_price: float
    order_type: OrderType
    post_only: bool
    reduce_only: bool
    order_state: OrderStatus


OrderListener = Callable[[OrderRecord], None]
TradeListener = Callable[[TradeRecord], None]


def _tick_direction(previous: tuple[float, int] | None, price: float) -> int:
    if previous is None:
        return 0
    last, direction = previous
    if price > last:
        return 0
    if price < last:
        return 2
    return 1 if direction in (0, 1) else 3


class OrderDirectory:
    """Orders and trades of one venue account, by Deribit id; see the module docstring."""

    def __init__(self, venue: Venue, mark_of: Callable[[str], float | None]) -> None:
        self._venue = venue
        self._mark_of = mark_of
        self._orders: dict[str, OrderRecord] = {}
        self._owner: dict[str, str] = {}  # engine order id -> Deribit order id
        self._trades: dict[str, TradeRecord] = {}
        self._trade_list: list[TradeRecord] = []
        self._last_trade: dict[str, tuple[float, int]] = {}  # instrument -> (price, tick dir)
        self._seq: dict[str, int] = {}
        self._published: dict[str, tuple[object, ...]] = {}
        self.order_listeners: list[OrderListener] = []
        self.trade_listeners: list[TradeListener] = []

    # --- recording what the server did ----------------------------------------------------

    def record_new(
        self, state: OrderState, time_in_force: TimeInForce, visible_from: datetime
    ) -> OrderRecord:
        """An order the engine just accepted (its fills arrive with the next refresh)."""
        record = OrderRecord(
            order_id=state.venue_order_id,
            label=state.label,
            instrument_name=state.instrument_name,
            side=state.side,
            order_type=state.order_type,
            time_in_force=time_in_force,
            post_only=state.post_only,
            reduce_only=state.reduce_only,
            amount=state.amount,
            price=state.price,
            created=state.timestamp,
            updated=state.timestamp,
            visible_from=visible_from,
            parts=[_Part(state.venue_order_id, state.amount, state.status)],
        )
        self._orders[record.order_id] = record
        self._owner[state.venue_order_id] = record.order_id
        return record

    def record_state(self, state: OrderState) -> OrderRecord | None:
        """Take a state the engine returned (a cancel); None for an order never seen."""
        owner = self._owner.get(state.venue_order_id)
        record = self._orders.get(owner) if owner else None
        if record is None:
            return None
        for part in record.parts:
            if part.venue_order_id == state.venue_order_id:
                part.status = state.status
        record.updated = max(record.updated, state.timestamp)
        return record

    def record_replacement(
        self, record: OrderRecord, state: OrderState, amount: float, price: float | None
    ) -> None:
        """``record`` edited: its live part was cancelled and ``state`` carries the rest."""
        record.parts.append(_Part(state.venue_order_id, state.amount, state.status))
        self._owner[state.venue_order_id] = record.order_id
        record.amount = amount
        record.price = price
        record.replaced = True
        record.updated = state.timestamp

    # --- learning from the venue ----------------------------------------------------------

    async def refresh(self, currency: str) -> None:
        """Read the venue's open orders, then its fills, and tell listeners every order that
        changed since it was last published (including changes the server recorded itself)."""
        opened = {o.venue_order_id: o for o in await self._venue.open_orders(currency)}
        fills = await self._venue.fills(currency)
        for state in opened.values():
            if state.venue_order_id not in self._owner:
                self.record_new(state, TimeInForce.GTC, state.timestamp)
        fresh = [f for f in fills if f.trade_id not in self._trades]
        for fill in fresh:
            self._count_fill(fill)
        for record in self._orders.values():
            if record.currency == currency:
                self._settle_parts(record, opened)
        changed = [
            r
            for oid, r in self._orders.items()
            if r.currency == currency and self._published.get(oid) != r.fingerprint()
        ]
        for record in changed:
            self._published[record.order_id] = record.fingerprint()
            for listener in self.order_listeners:
                listener(record)
        for fill in fresh:
            trade = self._record_trade(fill)
            for trade_listener in self.trade_listeners:
                trade_listener(trade)

    def _count_fill(self, fill: Fill) -> None:
        owner = self._owner.get(fill.venue_order_id)
        record = self._orders.get(owner) if owner else None
        if record is None:
            return
        for part in record.parts:
            if part.venue_order_id == fill.venue_order_id:
                part.filled += fill.amount
                part.paid += fill.price * fill.amount
                part.fees += fill.fee
        record.updated = max(record.updated, fill.timestamp)

    def _settle_parts(self, record: OrderRecord, opened: dict[str, OrderState]) -> None:
        for part in record.parts:
            if part.status is not OrderStatus.OPEN:
                continue
            state = opened.get(part.venue_order_id)
            done = part.filled >= part.amount * (1 - _FILLED_EPS)
            if state is None or done:
                part.status = OrderStatus.FILLED if done else OrderStatus.CANCELLED
                if state is not None:
                    record.updated = max(record.updated, state.timestamp)

    def _record_trade(self, fill: Fill) -> TradeRecord:
        name = fill.instrument_name
        self._seq[name] = self._seq.get(name, 0) + 1
        direction = _tick_direction(self._last_trade.get(name), fill.price)
        self._last_trade[name] = (fill.price, direction)
        owner = self._owner.get(fill.venue_order_id, fill.venue_order_id)
        record = self._orders.get(owner)
        mark = self._mark_of(name)
        trade = TradeRecord(
            fill=fill,
            order_id=owner,
            trade_seq=self._seq[name],
            tick_direction=direction,
            mark_price=mark if mark is not None else fill.price,
            order_type=record.order_type if record else OrderType.LIMIT,
            post_only=record.post_only if record else False,
            reduce_only=record.reduce_only if record else False,
            order_state=record.status if record else OrderStatus.FILLED,
        )
        self._trades[fill.trade_id] = trade
        self._trade_list.append(trade)
        return trade

    async def resolve(self, order_id: str, currencies: tuple[str, ...]) -> OrderRecord | None:
        """The order ``order_id``. One placed before this server started (a restart forgets
        its index, never the venue's orders) is recalled from the venue by id, or through the
        label of its fills."""
        found = self._orders.get(order_id)
        if found is not None:
            return found
        for currency in currencies:
            state = await self._venue.order_by_id(currency, order_id)
            if state is None:
                state = await self._by_fills(currency, order_id)
            if state is not None:
                return await self._recall(currency, state)
        return None

    async def resolve_label(self, currency: str, label: str) -> OrderRecord | None:
        """The newest order carrying ``label``, recalled from the venue when this server has
        not seen it: Deribit answers a label look-up for a closed order too."""
        state = await self._venue.order_by_label(currency, label)
        if state is None:
            return None
        owner = self._owner.get(state.venue_order_id)
        if owner is not None:
            return self._orders[owner]
        return await self._recall(currency, state)

    async def _by_fills(self, currency: str, order_id: str) -> OrderState | None:
        for fill in await self._venue.fills(currency):
            if fill.venue_order_id != order_id:
                continue
            state = await self._venue.order_by_label(currency, fill.label)
            if state is not None and state.venue_order_id == order_id:
                return state
        return None

    async def _recall(self, currency: str, state: OrderState) -> OrderRecord:
        """Index an order the venue holds from before this server started, with the fills of
        it this server has already read (they were read while its owner was unknown)."""
        record = self.record_new(state, TimeInForce.GTC, state.timestamp)
        for trade in self._trade_list:
            if trade.fill.venue_order_id == state.venue_order_id:
                self._count_fill(trade.fill)
        await self.refresh(currency)
        return record

    # --- questions ------------------------------------------------------------------------

    def get(self, order_id: str) -> OrderRecord | None:
        return self._orders.get(order_id)

    def orders(self, currency: str | None = None) -> list[OrderRecord]:
        """Every known order (of ``currency``), oldest first."""
        found = [r for r in self._orders.values() if currency in (None, r.currency)]
        return sorted(found, key=lambda r: (r.created, r.order_id))

    def visible(self, currency: str | None, now: datetime) -> list[OrderRecord]:
        return [r for r in self.orders(currency) if r.visible_from <= now]

    def trades(self, currency: str | None = None) -> list[TradeRecord]:
        """Our trades (of ``currency``), oldest first."""
        return [
            t for t in self._trade_list if currency in (None, currency_of(t.fill.instrument_name))
        ]


def snapshot(record: OrderRecord) -> OrderRecord:
    """A copy that later refreshes will not change (for pushes queued to be sent)."""
    return replace(record, parts=[replace(p) for p in record.parts])
