"""Order lifecycle: label first, send once, resolve ambiguity from venue evidence only.

Every order gets our label and a ledger row *before* the request leaves. A timeout is UNKNOWN,
never failed: the order is looked up by label, and while any order of a currency is UNKNOWN no
new order is sent for it (that is how a hedger doubles its hedge). Only the venue's answer moves
an order to a terminal state; a label the venue still does not know after a grace period is
concluded never to have arrived.
"""

from __future__ import annotations

import math
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
    Side,
    TimeInForce,
)
from bot.store.ledger import Ledger
from bot.venues.base import Venue
from bot.venues.errors import OrderRejected, OutcomeUnknown, RateLimited, TransientError

log = structlog.get_logger("hedgebot.execution")

UNKNOWN_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class Execution:
    label: str
    status: OrderStatus
    filled_amount: float  # signed, instrument units
    average_price: float | None
    fees: float
    fills: tuple[Fill, ...]


def make_label(prefix: str, cycle_id: str, attempt: int) -> str:
    label = f"{prefix}-{cycle_id}-{attempt}"
    if len(label) > 64:
        raise ValueError(f"order label {label!r} is longer than Deribit's 64 characters")
    return label


class Executor:
    """Sends one hedge order per decision and records every state change and fill."""

    def __init__(
        self,
        venue: Venue,
        ledger: Ledger,
        clock: Clock,
        settings: ExecutionSettings,
        label_prefix: str,
    ) -> None:
        self._venue = venue
        self._ledger = ledger
        self._clock = clock
        self._settings = settings
        self._prefix = label_prefix

    def limit_price(self, side: Side, book: Book) -> float:
        """Touch plus the slippage cap, on the tick, never beyond the cap."""
        q = book.hedge_quote
        tick = book.hedge_instrument.tick_size
        cap = self._settings.slippage_cap_bps / 10_000
        if side is Side.BUY:
            return math.floor(q.ask * (1 + cap) / tick) * tick
        return math.ceil(q.bid * (1 - cap) / tick) * tick

    async def execute(
        self, decision: HedgeDecision, book: Book, cycle_id: str, rebalance_id: int
    ) -> Execution:
        side = Side.of(decision.trade_amount)
        held = book.hedge_position()
        reduce_only = (
            held != 0
            and (held > 0) != (decision.trade_amount > 0)
            and abs(decision.trade_amount) <= abs(held)
        )
        req = OrderRequest(
            label=make_label(self._prefix, cycle_id, 1),
            instrument_name=book.hedge_instrument.name,
            side=side,
            amount=abs(decision.trade_amount),
            order_type=OrderType.LIMIT,
            price=self.limit_price(side, book),
            reduce_only=reduce_only,
            time_in_force=TimeInForce.IOC,
        )
        sent_at = self._clock.now()
        self._ledger.record_order(
            req,
            cycle_id=cycle_id,
            rebalance_id=rebalance_id,
            decision_mid=book.hedge_quote.mid,
            ts=sent_at,
        )
        bound = log.bind(label=req.label, cycle_id=cycle_id)
        bound.info("order_sending", side=side.value, amount=req.amount, price=req.price)
        try:
            state: OrderState | None = await self._venue.place_order(req)
        except OrderRejected as exc:
            self._ledger.update_order(req.label, OrderStatus.REJECTED, self._clock.now(), str(exc))
            bound.warning("order_rejected", error=str(exc), code=exc.code)
            return Execution(req.label, OrderStatus.REJECTED, 0.0, None, 0.0, ())
        except RateLimited as exc:
            self._ledger.update_order(
                req.label, OrderStatus.REJECTED, self._clock.now(), f"rate limited: {exc}"
            )
            bound.warning("order_rate_limited", error=str(exc))
            return Execution(req.label, OrderStatus.REJECTED, 0.0, None, 0.0, ())
        except (OutcomeUnknown, TransientError) as exc:
            self._ledger.update_order(req.label, OrderStatus.UNKNOWN, self._clock.now(), str(exc))
            bound.warning("order_outcome_unknown", error=str(exc))
            state = await self._look_up(book.currency, req.label)
        if state is None:
            return Execution(req.label, OrderStatus.UNKNOWN, 0.0, None, 0.0, ())
        return await self._settle(book.currency, state, sent_at)

    async def resolve_unknown(self, currency: str) -> list[str]:
        """Settle every UNKNOWN or PENDING order of ``currency`` from venue evidence.

        Returns the labels still unresolved: while any remain, the cycle sends nothing.
        """
        unresolved: list[str] = []
        for row in self._ledger.open_orders():
            if not row.instrument.startswith(currency):
                continue
            state = await self._venue.order_by_label(currency, row.label)
            now = self._clock.now()
            if state is not None:
                await self._settle(currency, state, row.created_at)
                if not state.status.terminal:
                    unresolved.append(row.label)
                continue
            if row.status is OrderStatus.OPEN:
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

    async def _settle(self, currency: str, state: OrderState, since: datetime) -> Execution:
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
        filled = sum(f.amount for f in fills)
        avg = sum(f.amount * f.price for f in fills) / filled if filled else None
        return Execution(
            label=state.label,
            status=state.status,
            filled_amount=state.side.sign * filled,
            average_price=avg,
            fees=sum(f.fee for f in fills),
            fills=fills,
        )
