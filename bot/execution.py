"""Order lifecycle: label first, send once, resolve ambiguity from venue evidence only.

A hedge starts passive (post-only at the touch), is re-priced after ``reprice_seconds`` up to
``max_reprices`` times, then the rest goes IOC within the slippage cap and, if allowed, at
market. An urgent hedge (delta far outside its band) starts at IOC. Partial fills carry over
from one step to the next.

Every order gets our label and a ledger row *before* the request leaves. A timeout is UNKNOWN,
never failed: the order is looked up by label, and while any order of a currency is UNKNOWN no
new order is sent for it (that is how a hedger doubles its hedge). Only the venue's answer moves
an order to a terminal state. An order with a venue id is looked up by id
(``private/get_order_state``) as well as by label, since Deribit documents
``get_order_state_by_label`` as covering recent orders only. An order the venue acknowledged
(its id or an OPEN state on record) is never written off: it stays unresolved, and trading in
its currency waits, until the venue or its trades say how it ended. Only an order never
acknowledged, unknown by label and without a trade after ``unknown_grace_seconds``, is
concluded never to have arrived.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from bot.clock import Clock
from bot.config import ExecutionSettings
from bot.domain import (
    Book,
    Fill,
    HedgeDecision,
    Instrument,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)
from bot.intake import FillIntake
from bot.labels import Labels
from bot.order_pushes import OrderPushes
from bot.risk import FillBounds, FillExceedsOrder, check_order_state
from bot.store.ledger import Ledger
from bot.store.records import OrderRow
from bot.venues.base import Venue
from bot.venues.errors import (
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)

log = structlog.get_logger("hedgebot.execution")


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


class _RateCapped(Exception):
    """The order-rate cap is reached: send nothing more in this decision."""


class Executor:
    """Works one hedge decision through post-only, IOC and market steps; records everything."""

    def __init__(
        self,
        venue: Venue,
        ledger: Ledger,
        clock: Clock,
        settings: ExecutionSettings,
        labels: Labels,
        on_send: Callable[[], None] | None = None,
        may_send: Callable[[], bool] | None = None,
        *,
        instruments: Mapping[str, Instrument],
        fill_bounds: FillBounds | None = None,
        pushes: OrderPushes | None = None,
    ) -> None:
        """``instruments``: what we trade, by name (the hedge perpetuals): an order's currency.
        ``fill_bounds``: how far a fill may stray from its order before trading halts.
        ``pushes``: the venue's order stream, which may end a resting order's wait early."""
        self._pushes = pushes
        self._on_send = on_send or (lambda: None)
        self._may_send = may_send or (lambda: True)
        self._venue = venue
        self._ledger = ledger
        self._clock = clock
        self._settings = settings
        self.labels = labels
        self.started = clock.now()  # our orders made since are all on record (bot.exclusion)
        self._instruments = instruments
        self.intake = FillIntake(ledger, instruments, fill_bounds or FillBounds())

    def limit_price(self, side: Side, quote: Quote, tick: float) -> float:
        """Touch plus the slippage cap, on the tick, never beyond the cap."""
        cap = self._settings.slippage_cap_bps / 10_000
        if side is Side.BUY:
            return round(math.floor(quote.ask * (1 + cap) / tick + 1e-9) * tick, 10)
        return round(math.ceil(quote.bid * (1 - cap) / tick - 1e-9) * tick, 10)

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
                    self._check_rate()
                    remaining -= await run.passive(remaining)
                    if remaining <= 0:
                        break
                    await run.refresh_quote()
            if remaining > 0:
                self._check_rate()
                remaining -= await run.aggressive(remaining, OrderType.LIMIT)
            if remaining > 0 and s.allow_market:
                self._check_rate()
                remaining -= await run.aggressive(remaining, OrderType.MARKET)
        except _Unresolved:
            return run.result(OrderStatus.UNKNOWN)
        except _RateCapped:
            log.warning("order_rate_capped", remaining=remaining)
        return run.result(OrderStatus.FILLED if remaining <= 0 else run.last_status)

    def _check_rate(self) -> None:
        if not self._may_send():
            raise _RateCapped

    @property
    def grace(self) -> float:
        return self._settings.unknown_grace_seconds

    @property
    def fill_lookback(self) -> timedelta:
        """How far before an order's creation its fills are read (the venue's clock may lag)."""
        return timedelta(seconds=self._settings.fill_lookback_seconds)

    async def resolve_unknown(self, currency: str, *, cancel: bool = True) -> list[str]:
        """Settle every non-terminal order of ``currency`` we recorded, from venue evidence.

        Orders still working at the venue (left by a stopped process, say) are re-adopted:
        cancelled, with their fills recorded. ``cancel`` false (a dry run, ``check``: perhaps
        beside a live daemon whose order this is) leaves them working and unresolved. Returns
        the labels still unresolved: while any remain, the cycle sends nothing (an order in an
        instrument we do not know stays so).
        """
        unresolved: list[str] = []
        for row in self._ledger.open_orders():
            instrument = self._instruments.get(row.instrument)
            if instrument is None:
                log.warning("open_order_instrument_unknown", label=row.label, name=row.instrument)
                unresolved.append(row.label)
                continue
            if instrument.currency != currency:
                continue
            try:
                if not await self._resolve_one(currency, row, cancel):
                    unresolved.append(row.label)
            except _Unresolved:
                unresolved.append(row.label)
        return unresolved

    async def _find(
        self, currency: str, label: str, venue_order_id: str | None
    ) -> OrderState | None:
        """The venue's word on one order: by label, then by id when we have one."""
        state = await self._venue.order_by_label(currency, label)
        if state is None and venue_order_id:
            state = await self._venue.order_by_id(currency, venue_order_id)
        return state

    async def _resolve_one(self, currency: str, row: OrderRow, cancel: bool = True) -> bool:
        """True when the order ended up settled (terminal, every fill recorded)."""
        label = row.label
        state = await self._find(currency, label, row.venue_order_id)
        now = self._clock.now()
        if state is not None:
            return await self._settle_found(currency, row, state, cancel)
        working = [o for o in await self._venue.open_orders(currency) if o.label == label]
        if working:  # a label look-up can lag the list of open orders: it arrived
            return await self._settle_found(currency, row, working[0], cancel)
        trades = await self._trades_of(currency, label, row.venue_order_id, row.created_at)
        if trades and not row.venue_order_id:
            # Its reply was lost, its trades name it: a label look-up and the open-order list
            # can lag a new order, a look-up by id does not. One still working is re-adopted,
            # never concluded cancelled beside the hedge the next cycle would send.
            state = await self._venue.order_by_id(currency, trades[0].venue_order_id)
            if state is not None and state.label == label:
                return await self._settle_found(currency, row, state, cancel)
        acknowledged = bool(row.venue_order_id) or row.status is OrderStatus.OPEN
        age = (now - row.created_at).total_seconds()
        if acknowledged or trades:
            return self._settle_from_trades(row, trades, now, closed=age >= self.grace)
        if age < self.grace:
            return False
        self._ledger.update_order(
            label,
            OrderStatus.REJECTED,
            now,
            f"venue has no order with this label, and no trade of it, after {age:.0f}s: it "
            "never arrived",
        )
        log.warning("order_never_arrived", label=label, age_seconds=age, was=row.status.value)
        return True

    async def _settle_found(
        self, currency: str, row: OrderRow, state: OrderState, cancel: bool
    ) -> bool:
        """The venue's word on the order: one still working is re-adopted (cancelled) unless
        ``cancel`` is false, then its fills and state are recorded."""
        if not state.status.terminal:
            if not cancel:
                return False  # working: not ours to cancel here
            log.info("order_readopted", label=row.label, status=state.status.value)
            state = await self._cancel(currency, state)
        await self.settle(currency, state, row.created_at)
        fresh = self._ledger.order(row.label)
        return fresh is not None and fresh.status.terminal

    def _settle_from_trades(
        self, row: OrderRow, trades: tuple[Fill, ...], now: datetime, *, closed: bool
    ) -> bool:
        """An order the venue no longer shows by label or id but did acknowledge or trade: its
        trades are the evidence left. Fully traded ends it FILLED. Otherwise it ends CANCELLED
        with what traded (nothing, maybe) only once ``closed``: past the grace and absent from
        the venue's open orders, which were just read. Deribit keeps a closed order readable
        for 30 minutes only, its trades for good (the older ones with ``historical``, which
        the adapter's trade read asks for: https://docs.deribit.com/articles/
        accessing-historical-trades-orders), so an order that closed unfilled while no
        hedgebot ran is known by these two reads alone. Until then it stays unresolved."""
        self.intake.ingest(trades, row)  # raises: halt
        traded = sum(f.amount for f in trades)
        full = traded + 1e-9 >= row.amount
        if full or closed:
            venue_id = row.venue_order_id or (trades[0].venue_order_id if trades else "")
            price = sum(f.amount * f.price for f in trades) / traded if trades else None
            final = OrderState(
                label=row.label,
                venue_order_id=venue_id,
                instrument_name=row.instrument,
                side=row.side,
                amount=row.amount,
                filled_amount=traded,
                status=OrderStatus.FILLED if full else OrderStatus.CANCELLED,
                price=row.price,
                average_price=price,
                order_type=row.order_type,
                timestamp=now,
            )
            how = "fill it" if full else f"fill {traded:g} and it is no longer open"
            self._ledger.update_order(
                row.label, final, now, f"venue no longer shows the order; its trades {how}"
            )
            log.warning("order_settled_from_trades", label=row.label, traded=traded)
            return True
        log.warning(
            "acknowledged_order_not_found",
            label=row.label,
            venue_order_id=row.venue_order_id,
            traded=traded,
            amount=row.amount,
        )
        return False

    async def _trades_of(
        self, currency: str, label: str, venue_order_id: str | None, since: datetime
    ) -> tuple[Fill, ...]:
        return tuple(
            f
            for f in await self._venue.fills(currency, since=since - self.fill_lookback)
            if (venue_order_id and f.venue_order_id == venue_order_id) or f.label == label
        )

    async def cancel_strays(self, currency: str) -> list[str]:
        """Cancel open venue orders carrying our prefix that the ledger does not think are
        working (never recorded, or written off as never arrived): a late one must not fill
        on top of the hedge that replaced it. Only orders of ours: stamped with our ledger's
        id, or recorded in it; their fills are recorded."""
        cancelled: list[str] = []
        for order in await self._venue.open_orders(currency):
            if not self.labels.hedgebots(order.label):
                continue
            row = self._ledger.order(order.label)
            if row is not None and not row.status.terminal:
                continue
            if row is None and not self._lost(order):
                continue  # another hedgebot's: never touched here (bot.exclusion halts on it)
            final = await self._cancel(currency, order)
            await self._record_fills(currency, final, row.created_at if row else final.timestamp)
            cancelled.append(order.label)
            log.warning("stray_order_cancelled", label=order.label, known=row is not None)
        return cancelled

    async def cancel_resting(self, currency: str, reason: str) -> list[str]:
        """Cancel every open venue order of ``currency`` that is ours, record its fills
        and final state with ``reason`` in the ledger: stopping or halting leaves nothing
        working at the venue. Returns the labels cancelled."""
        cancelled: list[str] = []
        for order in await self._venue.open_orders(currency):
            if not self.labels.hedgebots(order.label):
                continue
            row = self._ledger.order(order.label)
            if row is None and not self._lost(order):
                continue  # another hedgebot's order is not ours to cancel
            final = await self._cancel(currency, order)
            if row is not None and not row.status.terminal:
                await self.settle(currency, final, row.created_at, f"cancelled: {reason}")
            else:
                since = row.created_at if row is not None else final.timestamp
                await self._record_fills(currency, final, since)
            cancelled.append(order.label)
            log.warning("resting_order_cancelled", label=order.label, reason=reason)
        return cancelled

    def _lost(self, order: OrderState) -> bool:
        """An order of ours the ledger lost: our ledger's id, from before this process began
        (one made since is a copy of the ledger's, see :mod:`bot.exclusion`)."""
        return self.labels.ours(order.label) and order.timestamp < self.started

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
        check_order_state(state, req)  # raises: halt
        # The venue's acknowledgement is on record before we wait: its id always, and its
        # state while working. A terminal state is written by settle(), after the fills.
        if state.status.terminal:
            self._ledger.set_venue_order_id(req.label, state.venue_order_id, self._clock.now())
        else:
            self._ledger.update_order(req.label, state, self._clock.now())
        return state

    async def wait_and_cancel(self, currency: str, state: OrderState) -> OrderState:
        """Let a resting order work for ``reprice_seconds`` (less when the venue pushes that it
        ended), then read it over REST and cancel what is left."""
        seconds = self._settings.reprice_seconds
        if self._pushes is None:
            await self._clock.sleep(seconds)
        elif await self._pushes.rest(state.label, lambda: self._clock.sleep(seconds)):
            log.info("order_end_pushed", label=state.label)
        fresh = await self._find(currency, state.label, state.venue_order_id) or state
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
        final = await self._look_up(currency, state.label, state.venue_order_id)
        if final is None or not final.status.terminal:
            raise _Unresolved(state.label)
        return final

    async def _look_up(
        self, currency: str, label: str, venue_order_id: str | None = None
    ) -> OrderState | None:
        """Poll the venue for ``label`` (and the id, when known) within the order timeout,
        backing off from ``lookup_backoff_seconds``; None if it stays unseen."""
        s = self._settings
        deadline = s.order_timeout_seconds
        waited = 0.0
        delay = s.lookup_backoff_seconds
        while True:
            try:
                state = await self._find(currency, label, venue_order_id)
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
            delay = min(delay * 2, max(s.lookup_backoff_max_seconds, s.lookup_backoff_seconds))

    async def settle(
        self, currency: str, state: OrderState, since: datetime, detail: str = ""
    ) -> tuple[Fill, ...]:
        """Record the order's fills, then its state.

        A terminal state is written only once the recorded fills add up to what the venue says
        the order filled; until then the order stays UNKNOWN, so the next cycle looks again and
        sends nothing meanwhile.
        """
        fills = await self._record_fills(currency, state, since)
        recorded = self._ledger.filled_amount_of(state.venue_order_id)
        if recorded > state.filled_amount + 1e-9:
            # The venue's order read lags its own trades: the trades are the evidence.
            log.warning(
                "venue_reports_less_filled",
                label=state.label,
                venue=state.filled_amount,
                recorded=recorded,
            )
            state = replace(state, filled_amount=min(recorded, state.amount))
        if state.status.terminal and recorded + 1e-9 < state.filled_amount:
            self._ledger.update_order(
                state.label,
                OrderStatus.UNKNOWN,
                self._clock.now(),
                f"venue says {state.filled_amount} filled, {recorded} recorded: fills not read yet",
            )
            log.warning(
                "fills_incomplete", label=state.label, venue=state.filled_amount, recorded=recorded
            )
        else:
            self._ledger.update_order(state.label, state, self._clock.now(), detail)
        return fills

    async def _record_fills(
        self, currency: str, state: OrderState, since: datetime
    ) -> tuple[Fill, ...]:
        # Fills carry the venue's clock; read from well before ``since`` and match by order.
        start = since - self.fill_lookback
        fills = tuple(
            f
            for f in await self._venue.fills(currency, since=start)
            if f.venue_order_id == state.venue_order_id or (state.label and f.label == state.label)
        )
        row = self._ledger.order(state.label) if state.label else None
        self.intake.ingest(fills, row or state)  # raises: halt
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
        self.requests: dict[str, OrderRequest] = {}
        self.filled = 0.0
        self.last_status = OrderStatus.PENDING
        self.started = ex._clock.now()

    async def refresh_quote(self) -> None:
        """A fresh touch for the next attempt, if it is sane; else the chase keeps the last
        one: a quote the cycle's checks never saw must not price an order far from the book."""
        try:
            quote = await self.ex._venue.quote(self.book.hedge_instrument.name)
        except (TransientError, RateLimited) as exc:
            log.warning("quote_refresh_failed", error=str(exc))
            return
        elapsed = (self.ex._clock.now() - self.started).total_seconds()
        problem = _refreshed_quote_problem(quote, self.book.hedge_quote, elapsed)
        if problem:
            log.warning("quote_refresh_refused", instrument=quote.instrument_name, why=problem)
            return
        self.quote = quote

    def _request(self, amount: float, **kw: object) -> OrderRequest:
        self.attempt += 1
        held = self.book.hedge_position() + self.side.sign * self.filled
        reduces = held != 0 and (held > 0) != (self.side is Side.BUY) and amount <= abs(held)
        label = self.ex.labels.make(self.cycle_id, self.attempt)
        self.labels.append(label)
        self.requests[label] = OrderRequest(
            label=label,
            instrument_name=self.book.hedge_instrument.name,
            side=self.side,
            amount=amount,
            reduce_only=reduces,
            **kw,  # type: ignore[arg-type]
        )
        return self.requests[label]

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
        """What the order filled, by the venue's word on the order (not the fills we could
        read, which may lag): the rest of the hedge is sized on it."""
        request = self.requests.get(state.label)
        if request is None:
            raise FillExceedsOrder(f"the venue answered about {state.label!r}, not one of ours")
        check_order_state(state, request)  # after a wait or a cancel, as after the send
        fills = await self.ex.settle(self.book.currency, state, self.started)
        self.last_status = state.status
        self.fills.extend(f for f in fills if f.trade_id not in {x.trade_id for x in self.fills})
        # A venue read that says less than the trades we recorded must not size a second order.
        filled = max(state.filled_amount, self.ex._ledger.filled_amount_of(state.venue_order_id))
        self.filled += filled
        return filled

    def result(self, status: OrderStatus) -> Execution:
        amount = sum(f.amount for f in self.fills)
        avg = sum(f.amount * f.price for f in self.fills) / amount if amount else None
        return Execution(
            label=self.labels[0] if self.labels else "",
            status=status,
            filled_amount=self.side.sign * self.filled,
            average_price=avg,
            fees=sum(f.fee for f in self.fills),
            fills=tuple(self.fills),
            labels=tuple(self.labels),
        )


# How far a quote refreshed during one chase may sit from the quote the cycle checked: a
# chase lasts seconds, so a touch that moved further is a bad answer, not the market.
MAX_CHASE_MOVE = 0.05
# How far a refreshed quote's stamp may run ahead of the checked quote's plus the chase's own
# elapsed time (the two clocks' drift over a chase); an older stamp is a stale answer.
MAX_CHASE_AHEAD_SECONDS = 5.0


def _refreshed_quote_problem(quote: Quote, checked: Quote, elapsed: float) -> str | None:
    if quote.instrument_name != checked.instrument_name:
        return f"a quote of {quote.instrument_name!r}"
    ts = quote.timestamp
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        return f"timestamp {ts!r} is not an aware time"
    if ts < checked.timestamp:
        return f"stamped {ts.isoformat()}, before the checked quote ({checked.timestamp:%H:%M:%S})"
    ahead = (ts - checked.timestamp).total_seconds() - max(elapsed, 0.0)
    if ahead > MAX_CHASE_AHEAD_SECONDS:
        return f"stamped {ahead:.1f}s ahead of the chase's clock"
    for what in ("bid", "ask"):
        value = getattr(quote, what)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{what} {value!r} is not a number"
        if not (math.isfinite(value) and value > 0):
            return f"{what} {value!r} is not a positive finite price"
    if quote.ask < quote.bid:
        return f"crossed: bid {quote.bid} > ask {quote.ask}"
    move = abs(quote.mid / checked.mid - 1)
    if move > MAX_CHASE_MOVE:
        return f"mid moved {move:.1%} from the checked quote, more than {MAX_CHASE_MOVE:.0%}"
    return None
