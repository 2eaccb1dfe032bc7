"""Order lifecycle: label first, send once, resolve ambiguity from venue evidence only.

A hedge starts passive (post-only at the touch), is re-priced after ``reprice_seconds`` up to
``max_reprices`` times, then the rest goes IOC within the slippage cap and, if allowed, at
market. An urgent hedge (delta far outside its band) starts at IOC. Partial fills carry over
from one step to the next.

Every order gets our label and a ledger row *before* the request leaves. A timeout is UNKNOWN,
never failed: the order is looked up by label, and while any order of a currency is UNKNOWN no
new order is sent for it (that is how a hedger doubles its hedge). Only the venue's answer moves
an order to a terminal state; a label the venue still does not know after a grace period is
concluded never to have arrived.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from bot.clock import Clock
from bot.config import ExecutionSettings
from bot.domain import (
    Book,
    Fill,
    HedgeDecision,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)
from bot.store.ledger import Ledger
from bot.venues.base import Venue
from bot.venues.errors import (
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)

log = structlog.get_logger("hedgebot.execution")

UNKNOWN_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class Execution:
    label: str  # the first order's label
    status: OrderStatus  # FILLED when the whole amount filled; else the last order's status
    filled_amount: float  # signed, instrument units
    average_price: float | None
    fees: float
    fills: tuple[Fill, ...]
    labels: tuple[str, ...] = ()


class _Unresolved(Exception):
    """An order's outcome stayed unknown: stop sending for this cycle."""


def make_label(prefix: str, cycle_id: str, attempt: int) -> str:
    label = f"{prefix}-{cycle_id}-{attempt}"
    if len(label) > 64:
        raise ValueError(f"order label {label!r} is longer than Deribit's 64 characters")
    return label


class Executor:
    """Works one hedge decision through post-only, IOC and market steps; records everything."""

    def __init__(
        self,
        venue: Venue,
        ledger: Ledger,
        clock: Clock,
        settings: ExecutionSettings,
        label_prefix: str,
        on_send: Callable[[], None] | None = None,
    ) -> None:
        self._on_send = on_send or (lambda: None)
        self._venue = venue
        self._ledger = ledger
        self._clock = clock
        self._settings = settings
        self._prefix = label_prefix

    def limit_price(self, side: Side, quote: Quote, tick: float) -> float:
        """Touch plus the slippage cap, on the tick, never beyond the cap."""
        cap = self._settings.slippage_cap_bps / 10_000
        if side is Side.BUY:
            return math.floor(quote.ask * (1 + cap) / tick) * tick
        return math.ceil(quote.bid * (1 - cap) / tick) * tick

    def urgent(self, decision: HedgeDecision) -> bool:
        half_band = max(decision.band_high - decision.target, decision.target - decision.band_low)
        miss = abs(decision.delta_before - decision.target)
        return half_band <= 0 or miss > self._settings.urgent_band_multiple * half_band

    async def execute(
        self, decision: HedgeDecision, book: Book, cycle_id: str, rebalance_id: int
    ) -> Execution:
        run = _Run(self, book, cycle_id, rebalance_id, Side.of(decision.trade_amount))
        remaining = abs(decision.trade_amount)
        s = self._settings
        try:
            if s.post_only and not self.urgent(decision):
                for _ in range(s.max_reprices + 1):
                    remaining -= await run.passive(remaining)
                    if remaining <= 0:
                        break
                    await run.refresh_quote()
            if remaining > 0:
                remaining -= await run.aggressive(remaining, OrderType.LIMIT)
            if remaining > 0 and s.allow_market:
                remaining -= await run.aggressive(remaining, OrderType.MARKET)
        except _Unresolved:
            return run.result(OrderStatus.UNKNOWN)
        return run.result(OrderStatus.FILLED if remaining <= 0 else run.last_status)

    async def resolve_unknown(self, currency: str) -> list[str]:
        """Settle every non-terminal order of ``currency`` we recorded, from venue evidence.

        Orders still working at the venue (left by a stopped process, say) are re-adopted:
        cancelled, with their fills recorded. Returns the labels still unresolved: while any
        remain, the cycle sends nothing.
        """
        unresolved: list[str] = []
        for row in self._ledger.open_orders():
            if not row.instrument.startswith(currency):
                continue
            state = await self._venue.order_by_label(currency, row.label)
            now = self._clock.now()
            if state is not None:
                if not state.status.terminal:
                    log.info("order_readopted", label=row.label, status=state.status.value)
                    state = await self._cancel(currency, state)
                await self.settle(currency, state, row.created_at)
                if not state.status.terminal:
                    unresolved.append(row.label)
                continue
            age = (now - row.created_at).total_seconds()
            if age >= UNKNOWN_GRACE_SECONDS:
                self._ledger.update_order(
                    row.label,
                    OrderStatus.REJECTED,
                    now,
                    f"venue has no order with this label after {age:.0f}s: it never arrived",
                )
                log.warning("order_never_arrived", label=row.label, age_seconds=age)
            else:
                unresolved.append(row.label)
        return unresolved

    async def send(
        self, req: OrderRequest, currency: str, cycle_id: str, rebalance_id: int, mid: float
    ) -> OrderState | None:
        """Record, then send once. None when the venue refused it; raises _Unresolved when the
        outcome stays unknown after looking the label up."""
        self._ledger.record_order(
            req,
            cycle_id=cycle_id,
            rebalance_id=rebalance_id,
            decision_mid=mid,
            ts=self._clock.now(),
        )
        bound = log.bind(label=req.label)
        bound.info(
            "order_sending",
            side=req.side.value,
            amount=req.amount,
            price=req.price,
            post_only=req.post_only,
            tif=req.time_in_force.value,
            type=req.order_type.value,
        )
        self._on_send()
        try:
            state = await self._venue.place_order(req)
        except (OrderRejected, RateLimited) as exc:
            code = getattr(exc, "code", None)
            self._ledger.update_order(req.label, OrderStatus.REJECTED, self._clock.now(), str(exc))
            bound.warning("order_rejected", error=str(exc), code=code)
            return None
        except (OutcomeUnknown, TransientError) as exc:
            self._ledger.update_order(req.label, OrderStatus.UNKNOWN, self._clock.now(), str(exc))
            bound.warning("order_outcome_unknown", error=str(exc))
            found = await self._look_up(currency, req.label)
            if found is None:
                raise _Unresolved(req.label) from exc
            state = found
        # The venue's acknowledgement (venue id, OPEN or done) is on record before we wait.
        self._ledger.update_order(req.label, state, self._clock.now())
        return state

    async def wait_and_cancel(self, currency: str, state: OrderState) -> OrderState:
        """Let a resting order work for ``reprice_seconds``, then cancel what is left."""
        await self._clock.sleep(self._settings.reprice_seconds)
        fresh = await self._venue.order_by_label(currency, state.label) or state
        if fresh.status.terminal:
            return fresh
        return await self._cancel(currency, fresh)

    async def _cancel(self, currency: str, state: OrderState) -> OrderState:
        try:
            return await self._venue.cancel_order(state.venue_order_id)
        except OrderNotFound:
            pass  # already filled or cancelled: the lookup below says which
        except (OutcomeUnknown, TransientError, RateLimited) as exc:
            log.warning("cancel_outcome_unknown", label=state.label, error=str(exc))
        final = await self._look_up(currency, state.label)
        if final is None or not final.status.terminal:
            raise _Unresolved(state.label)
        return final

    async def _look_up(self, currency: str, label: str) -> OrderState | None:
        """Poll the venue for ``label`` within the order timeout; None if it stays unseen."""
        deadline = self._settings.order_timeout_seconds
        waited = 0.0
        delay = 0.25
        while True:
            try:
                state = await self._venue.order_by_label(currency, label)
            except (TransientError, RateLimited, OutcomeUnknown) as exc:
                log.warning("order_lookup_failed", label=label, error=str(exc))
                state = None
            if state is not None:
                return state
            if waited >= deadline:
                log.warning("order_still_unknown", label=label, waited_seconds=waited)
                return None
            await self._clock.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)

    async def settle(self, currency: str, state: OrderState, since: datetime) -> tuple[Fill, ...]:
        """Record the order's latest state and every fill of it the venue reports."""
        self._ledger.update_order(state.label, state, self._clock.now())
        fills = tuple(
            f
            for f in await self._venue.fills(currency, since=since)
            if f.venue_order_id == state.venue_order_id or f.label == state.label
        )
        for fill in fills:
            if self._ledger.record_fill(fill):
                log.info(
                    "fill_recorded",
                    label=state.label,
                    trade_id=fill.trade_id,
                    amount=fill.amount,
                    price=fill.price,
                    fee=fill.fee,
                )
        return fills


class _Run:
    """The orders of one decision: attempts, quote and fills so far."""

    def __init__(
        self, ex: Executor, book: Book, cycle_id: str, rebalance_id: int, side: Side
    ) -> None:
        self.ex, self.book, self.cycle_id, self.rebalance_id = ex, book, cycle_id, rebalance_id
        self.side = side
        self.quote = book.hedge_quote
        self.attempt = 0
        self.fills: list[Fill] = []
        self.labels: list[str] = []
        self.filled = 0.0
        self.last_status = OrderStatus.PENDING
        self.started = ex._clock.now()

    async def refresh_quote(self) -> None:
        try:
            self.quote = await self.ex._venue.quote(self.book.hedge_instrument.name)
        except (TransientError, RateLimited) as exc:
            log.warning("quote_refresh_failed", error=str(exc))

    def _request(self, amount: float, **kw: object) -> OrderRequest:
        self.attempt += 1
        held = self.book.hedge_position() + self.side.sign * self.filled
        reduces = held != 0 and (held > 0) != (self.side is Side.BUY) and amount <= abs(held)
        label = make_label(self.ex._prefix, self.cycle_id, self.attempt)
        self.labels.append(label)
        return OrderRequest(
            label=label,
            instrument_name=self.book.hedge_instrument.name,
            side=self.side,
            amount=amount,
            reduce_only=reduces,
            **kw,  # type: ignore[arg-type]
        )

    async def passive(self, amount: float) -> float:
        touch = self.quote.bid if self.side is Side.BUY else self.quote.ask
        req = self._request(
            amount,
            order_type=OrderType.LIMIT,
            price=touch,
            post_only=True,
            time_in_force=TimeInForce.GTC,
        )
        state = await self._send(req)
        if state is None:
            return 0.0
        if not state.status.terminal:
            state = await self.ex.wait_and_cancel(self.book.currency, state)
        return await self._record(state)

    async def aggressive(self, amount: float, order_type: OrderType) -> float:
        price = (
            self.ex.limit_price(self.side, self.quote, self.book.hedge_instrument.tick_size)
            if order_type is OrderType.LIMIT
            else None
        )
        req = self._request(
            amount, order_type=order_type, price=price, time_in_force=TimeInForce.IOC
        )
        state = await self._send(req)
        return 0.0 if state is None else await self._record(state)

    async def _send(self, req: OrderRequest) -> OrderState | None:
        state = await self.ex.send(
            req, self.book.currency, self.cycle_id, self.rebalance_id, self.book.hedge_quote.mid
        )
        self.last_status = state.status if state else OrderStatus.REJECTED
        return state

    async def _record(self, state: OrderState) -> float:
        fills = await self.ex.settle(self.book.currency, state, self.started)
        self.last_status = state.status
        got = sum(f.amount for f in fills)
        self.fills.extend(fills)
        self.filled += got
        return got

    def result(self, status: OrderStatus) -> Execution:
        amount = sum(f.amount for f in self.fills)
        avg = sum(f.amount * f.price for f in self.fills) / amount if amount else None
        return Execution(
            label=self.labels[0] if self.labels else "",
            status=status,
            filled_amount=self.side.sign * amount,
            average_price=avg,
            fees=sum(f.fee for f in self.fills),
            fills=tuple(self.fills),
            labels=tuple(self.labels),
        )
