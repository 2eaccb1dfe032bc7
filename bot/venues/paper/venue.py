"""The paper venue: a Deribit-like account filled locally against a market's public data.

An adapter, not a flag: it implements ``bot.venues.base.Venue`` and persists every change
through a ``PaperStateStore``, so a restarted daemon reconciles against it exactly as it would
against a real exchange, and no code outside ``bot/venues`` asks whether it is paper. Orders
match with ``bot.venues.paper.matching``; balances, P&L and settlement follow
``bot.venues.paper.accounting``. Whenever any method is called the venue first settles
expired positions, cancels orders on expired instruments and fills resting orders the market
has traded through. There is no margin model: ``available`` equals equity.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from bot.clock import Clock
from bot.config import CurrencyFacts, FeeSettings
from bot.domain import (
    Account,
    DataError,
    Fill,
    Instrument,
    Liquidity,
    Mark,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    utc,
)
from bot.venues.base import select_marks
from bot.venues.errors import (
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from bot.venues.paper import accounting
from bot.venues.paper.instruments import currency_of
from bot.venues.paper.market import MarketSource
from bot.venues.paper.matching import (
    INVALID_OR_UNSUPPORTED_INSTRUMENT,
    OTHER_REJECT,
    check_amount,
    check_price,
    fee_coin,
    match_order,
    resting_fill,
    snap,
)
from bot.venues.paper.state import PaperChange, PaperPosition, PaperStateStore

_ORDER_ID = re.compile(r"^paper-(\d+)$")
_TRADE_ID = re.compile(r"^paper-t-(\d+)$")


@dataclass(frozen=True)
class PaperFaultPlan:
    """Faults the in-process paper venue raises at the Venue port, drawn from the seeded rng.

    No wire is involved, so these are the port's outcomes, not transport events (the simulated
    server's :class:`bot.sim.faults.WireFaultPlan` injects those). Probabilities per call:
    ``outcome_unknown`` — an order is accepted and persisted but the reply is lost
    (OutcomeUnknown); ``rate_limited`` — a place or cancel is refused before it acts
    (RateLimited, Deribit 10028); ``transient_read`` — a read fails (TransientError).
    """

    outcome_unknown: float = 0.0
    rate_limited: float = 0.0
    transient_read: float = 0.0

    def __post_init__(self) -> None:
        for name in ("outcome_unknown", "rate_limited", "transient_read"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"PaperFaultPlan.{name} must be a probability, got {value!r}")

    @property
    def active(self) -> bool:
        return self.outcome_unknown > 0 or self.rate_limited > 0 or self.transient_read > 0


@dataclass
class _Draft:
    """Changes of one operation, read through to the committed state until saved."""

    base: PaperVenue
    balances: dict[str, float] = field(default_factory=dict)
    positions: dict[str, PaperPosition] = field(default_factory=dict)
    orders: dict[str, OrderState] = field(default_factory=dict)
    trades: list[Fill] = field(default_factory=list)

    def balance(self, currency: str) -> float:
        return self.balances.get(currency, self.base._balances.get(currency, 0.0))

    def position(self, name: str) -> PaperPosition:
        found = self.positions.get(name) or self.base._positions.get(name)
        return found or PaperPosition(name, 0.0, 0.0)

    @property
    def empty(self) -> bool:
        return not (self.balances or self.positions or self.orders or self.trades)

    def change(self) -> PaperChange:
        return PaperChange(
            balances=dict(self.balances),
            positions=tuple(self.positions.values()),
            orders=tuple(self.orders.values()),
            trades=tuple(self.trades),
        )


def _number(pattern: re.Pattern[str], text: str) -> int:
    match = pattern.match(text)
    return int(match.group(1)) if match else 0


class PaperVenue:
    """A paper account on ``market``, persisted in ``store``; see the module docstring.

    ``facts`` names the currencies it keeps accounts for; ``equity`` is the coin each starts
    with on an empty store (default: ``market.starting_equity``); ``faults`` (with a seeded
    ``rng``) injects lost replies, rate limits and failed reads.
    """

    def __init__(
        self,
        market: MarketSource,
        store: PaperStateStore,
        clock: Clock,
        facts: Mapping[str, CurrencyFacts],
        fees: FeeSettings,
        *,
        name: str = "paper",
        rng: np.random.Generator | None = None,
        faults: PaperFaultPlan | None = None,
        equity: Mapping[str, float] | None = None,
    ) -> None:
        self.name = name
        self._equity = dict(equity) if equity is not None else None
        self._market = market
        self._store = store
        self._clock = clock
        self._fees = fees
        self._currencies = tuple(c for c in facts if c in market.currencies)
        self._faults = faults or PaperFaultPlan()
        if self._faults.active and rng is None:
            raise ValueError("a PaperFaultPlan needs a seeded rng")
        self._rng = rng
        snapshot = store.load()
        self._balances = dict(snapshot.balances)
        self._positions = dict(snapshot.positions)
        self._orders = dict(snapshot.orders)
        self._trades = list(snapshot.trades)
        self._next_order = 1 + max((_number(_ORDER_ID, i) for i in self._orders), default=0)
        self._next_trade = 1 + max(
            (_number(_TRADE_ID, t.trade_id) for t in self._trades), default=0
        )
        if snapshot.empty:
            self._seed()

    # --- persistence ----------------------------------------------------------------------

    def _commit(self, draft: _Draft) -> None:
        """Save the draft in one transaction, then make it the venue's state."""
        if draft.empty:
            return
        self._store.save(draft.change())
        self._balances.update(draft.balances)
        self._positions.update(draft.positions)
        self._orders.update(draft.orders)
        known = {t.trade_id for t in self._trades}
        self._trades.extend(t for t in draft.trades if t.trade_id not in known)

    def _seed(self) -> None:
        """First start: ``equity`` (coin, per currency) and the market's starting option book,
        bought at mark, so the account's equity starts at exactly ``equity``."""
        draft = _Draft(self)
        for currency in self._currencies:
            marks = {m.instrument_name: m.mark_price for m in self._market.marks(currency)}
            balance = (
                self._market.starting_equity(currency)
                if self._equity is None
                else self._equity.get(currency, 0.0)
            )
            for instrument, size in self._market.starting_book(currency):
                if instrument.name not in marks:
                    raise DataError(f"no mark for starting leg {instrument.name}")
                price = marks[instrument.name]
                balance -= size * price
                draft.positions[instrument.name] = PaperPosition(instrument.name, size, price)
            draft.balances[currency] = balance
        self._commit(draft)

    # --- faults ---------------------------------------------------------------------------

    def _chance(self, probability: float) -> bool:
        return probability > 0 and self._rng is not None and self._rng.random() < probability

    def _read(self) -> None:
        if self._chance(self._faults.transient_read):
            raise TransientError(f"{self.name}: injected transient read failure")
        self._touch()

    def _matching_engine(self) -> None:
        if self._chance(self._faults.rate_limited):
            raise RateLimited(f"{self.name}: injected rate limit (10028)", retry_after=1.0)
        self._touch()

    # --- the market moving under the account ----------------------------------------------

    def _now(self) -> datetime:
        return utc(self._clock.now())

    def _expired(self, instrument: Instrument, now: datetime) -> bool:
        return instrument.expiry is not None and instrument.expiry <= now

    def _touch(self) -> None:
        """Fill resting orders traded through, cancel orders on expired instruments, settle."""
        now = self._now()
        draft = _Draft(self)
        for order in self._open_orders():
            instrument = self._market.instrument(order.instrument_name)
            if self._expired(instrument, now):
                draft.orders[order.venue_order_id] = replace(
                    order, status=OrderStatus.CANCELLED, timestamp=now
                )
                continue
            if order.price is None:
                continue
            bids, asks = self._market.order_book(instrument.name)
            amount = resting_fill(
                side=order.side,
                price=order.price,
                remaining=snap(order.remaining, instrument.amount_step),
                bids=bids,
                asks=asks,
                step=instrument.amount_step,
            )
            if amount > 0:
                fill = self._execute(draft, order, instrument, amount, order.price, Liquidity.MAKER)
                draft.orders[order.venue_order_id] = self._after(order, [fill], resting=True)
        for name in sorted(set(self._positions) | set(draft.positions)):
            position = draft.position(name)
            if position.size == 0:
                continue
            instrument = self._market.instrument(name)
            if not self._expired(instrument, now) or instrument.expiry is None:
                continue
            price = self._market.settlement_price(instrument.currency, instrument.expiry)
            cash = accounting.settlement_cash(
                instrument, position.size, position.average_price, price
            )
            currency = instrument.currency
            draft.balances[currency] = draft.balance(currency) + cash
            draft.positions[name] = PaperPosition(name, 0.0, 0.0)
        self._commit(draft)

    # --- fills ----------------------------------------------------------------------------

    def _execute(
        self,
        draft: _Draft,
        order: OrderState,
        instrument: Instrument,
        amount: float,
        price: float,
        liquidity: Liquidity,
    ) -> Fill:
        held = draft.position(instrument.name)
        effect = accounting.apply_fill(
            instrument, held.size, held.average_price, order.side.sign * amount, price
        )
        fee = fee_coin(instrument, amount, price, liquidity, self._fees)
        currency = instrument.currency
        draft.balances[currency] = draft.balance(currency) + effect.cash - fee
        draft.positions[instrument.name] = PaperPosition(
            instrument.name, effect.size, effect.average_price
        )
        fill = Fill(
            trade_id=f"paper-t-{self._next_trade}",
            venue_order_id=order.venue_order_id,
            label=order.label,
            instrument_name=instrument.name,
            side=order.side,
            amount=amount,
            price=price,
            fee=fee,
            fee_currency=currency,
            liquidity=liquidity,
            timestamp=self._now(),
            index_price=self._market.index(currency),
        )
        self._next_trade += 1
        draft.trades.append(fill)
        return fill

    def _after(self, order: OrderState, fills: list[Fill], *, resting: bool) -> OrderState:
        """``order`` with ``fills`` added; still OPEN while it rests with something left."""
        filled = order.filled_amount + sum(f.amount for f in fills)
        paid = (order.average_price or 0.0) * order.filled_amount
        paid += sum(f.price * f.amount for f in fills)
        left = order.amount - filled
        if left <= 1e-12 * order.amount:
            status = OrderStatus.FILLED
        else:
            status = OrderStatus.OPEN if resting else OrderStatus.CANCELLED
        return replace(
            order,
            filled_amount=filled,
            average_price=paid / filled if filled > 0 else None,
            status=status,
            timestamp=self._now(),
        )

    def _open_orders(self) -> list[OrderState]:
        opened = [o for o in self._orders.values() if o.status is OrderStatus.OPEN]
        return sorted(opened, key=lambda o: _number(_ORDER_ID, o.venue_order_id))

    def _tradable(self, name: str) -> Instrument:
        try:
            instrument = self._market.instrument(name)
        except DataError as exc:
            raise OrderRejected(str(exc), INVALID_OR_UNSUPPORTED_INSTRUMENT) from None
        if self._expired(instrument, self._now()):
            raise OrderRejected(f"{name} has expired", INVALID_OR_UNSUPPORTED_INSTRUMENT)
        return instrument

    def _reduce_only_amount(self, request: OrderRequest, instrument: Instrument) -> float:
        """Deribit trims a reduce-only order to the position; nothing to reduce is a reject."""
        held = self._positions.get(instrument.name)
        size = held.size if held else 0.0
        if size == 0 or (size > 0) == (request.side is Side.BUY):
            raise OrderRejected(
                f"reduce_only {request.side.value} would not reduce {instrument.name}",
                OTHER_REJECT,
            )
        return min(request.amount, abs(size))

    # --- the Venue protocol ---------------------------------------------------------------

    async def place_order(self, request: OrderRequest) -> OrderState:
        self._matching_engine()
        instrument = self._tradable(request.instrument_name)
        check_amount(instrument, request.amount)
        if request.price is not None:
            check_price(instrument, request.price)
        amount = request.amount
        if request.reduce_only:
            amount = self._reduce_only_amount(request, instrument)
        bids, asks = self._market.order_book(instrument.name)
        result = match_order(
            side=request.side,
            amount=amount,
            order_type=request.order_type,
            price=request.price if request.order_type is OrderType.LIMIT else None,
            post_only=request.post_only,
            time_in_force=request.time_in_force,
            bids=bids,
            asks=asks,
            step=instrument.amount_step,
        )
        order = OrderState(
            label=request.label,
            venue_order_id=f"paper-{self._next_order}",
            instrument_name=instrument.name,
            side=request.side,
            amount=amount,
            filled_amount=0.0,
            status=OrderStatus.OPEN,
            price=request.price if request.order_type is OrderType.LIMIT else None,
            average_price=None,
            order_type=request.order_type,
            timestamp=self._now(),
            post_only=request.post_only,
            reduce_only=request.reduce_only,
        )
        self._next_order += 1
        draft = _Draft(self)
        fills = [
            self._execute(draft, order, instrument, e.amount, e.price, Liquidity.TAKER)
            for e in result.executions
        ]
        order = self._after(order, fills, resting=result.rests)
        draft.orders[order.venue_order_id] = order
        self._commit(draft)
        if self._chance(self._faults.outcome_unknown):
            raise OutcomeUnknown(f"{self.name}: injected lost reply after accepting {order.label}")
        return order

    async def cancel_order(self, venue_order_id: str) -> OrderState:
        self._matching_engine()
        order = self._orders.get(venue_order_id)
        if order is None:
            raise OrderNotFound(f"no order {venue_order_id}")
        if order.status is not OrderStatus.OPEN:
            raise OrderNotFound(f"order {venue_order_id} is {order.status.value}, not open")
        cancelled = replace(order, status=OrderStatus.CANCELLED, timestamp=self._now())
        draft = _Draft(self)
        draft.orders[venue_order_id] = cancelled
        self._commit(draft)
        return cancelled

    async def instruments(self, currency: str) -> list[Instrument]:
        self._read()
        return self._market.instruments(currency)

    async def marks(self, currency: str, instruments: Collection[str] | None = None) -> list[Mark]:
        self._read()
        return select_marks(currency, self._market.marks(currency), instruments)

    async def quote(self, instrument_name: str) -> Quote:
        self._read()
        return self._market.quote(instrument_name)

    async def positions(self, currency: str) -> list[Position]:
        self._read()
        return [
            Position(self._market.instrument(p.instrument_name), p.size, p.average_price)
            for p in self._held(currency)
        ]

    def _held(self, currency: str) -> list[PaperPosition]:
        return [
            p
            for name, p in sorted(self._positions.items())
            if p.size != 0 and currency_of(name) == currency
        ]

    async def account(self, currency: str) -> Account:
        """Equity = balance + option value at mark + unrealised P&L of inverse futures;
        ``delta_total`` = net (premium-adjusted) option deltas + futures coin delta."""
        self._read()
        if currency not in self._currencies:
            raise DataError(f"{self.name} has no {currency} account")
        now = self._now()
        marks = {m.instrument_name: m for m in self._market.marks(currency)}
        balance = self._balances.get(currency, 0.0)
        equity = balance
        delta = 0.0
        for held in self._held(currency):
            instrument = self._market.instrument(held.instrument_name)
            mark = marks.get(held.instrument_name)
            if mark is None:
                raise DataError(f"no mark for held {held.instrument_name}")
            equity += accounting.carried_value(
                instrument, held.size, held.average_price, mark.mark_price
            )
            delta += accounting.position_delta(instrument, held.size, mark, now)
        return Account(currency, equity, balance, equity, delta_total=delta, timestamp=now)

    async def order_by_label(self, currency: str, label: str) -> OrderState | None:
        self._read()
        found = [
            o
            for o in self._orders.values()
            if o.label == label and currency_of(o.instrument_name) == currency
        ]
        if not found:
            return None
        return max(found, key=lambda o: _number(_ORDER_ID, o.venue_order_id))

    async def order_by_id(self, currency: str, venue_order_id: str) -> OrderState | None:
        self._read()
        found = self._orders.get(venue_order_id)
        if found is None or currency_of(found.instrument_name) != currency:
            return None
        return found

    async def open_orders(self, currency: str) -> list[OrderState]:
        self._read()
        return [o for o in self._open_orders() if currency_of(o.instrument_name) == currency]

    async def fills(self, currency: str, since: datetime | None = None) -> list[Fill]:
        self._read()
        return [
            t
            for t in self._trades
            if currency_of(t.instrument_name) == currency
            and (since is None or t.timestamp >= utc(since))
        ]

    async def close(self) -> None:
        """Nothing to release: every change is already saved."""
