"""RiskGate: the last word between a decision and the venue.

Limits on order notional (clipped, or denied when ``risk.oversize: deny``), hedge position (by
the read and by the ledger's own view), order rate and notional per 24 hours (both counted from
the ledger, so a restart does not reset them) and data age; a trading state (active, reducing,
halted) persisted in the ledger so a halt survives a restart; and the count of implausible
reads in a row that halts trading. A guard that raises denies the order: the gate fails closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta

import structlog

from bot.clock import Clock
from bot.config import RiskSettings
from bot.domain import (
    Book,
    DataError,
    Fill,
    HedgeDecision,
    OrderRequest,
    OrderState,
    Side,
    TradingState,
)
from bot.store.ledger import Ledger
from bot.store.records import strictest

log = structlog.get_logger("hedgebot.risk")

RATE_WINDOW = timedelta(minutes=1)
# How a skipped cycle's reason starts when its read did not add up: the streak is counted so.
BAD_READ = "implausible read: "
NOTIONAL_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    # The decision to send: the one checked, or a clipped copy of it (``risk.oversize: clip``).
    decision: HedgeDecision | None = None


class FillExceedsOrder(DataError):
    """A fill larger than the order it belongs to: the venue's record or ours is wrong."""


def check_fill(
    fill: Fill, order_amount: float, instrument: str | None = None, side: Side | None = None
) -> None:
    """Refuse a fill that is not a finite positive amount and price at most its order's amount.

    Called where fills are ingested, before they are recorded; the cycle halts trading on
    :class:`FillExceedsOrder`, since nothing sized on such a record can be trusted.
    """
    for what, value in (("amount", fill.amount), ("price", fill.price)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FillExceedsOrder(f"fill {fill.trade_id} {what} is not a number: {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise FillExceedsOrder(f"fill {fill.trade_id} {what} is not usable: {value!r}")
    if isinstance(fill.fee, bool) or not isinstance(fill.fee, int | float):
        raise FillExceedsOrder(f"fill {fill.trade_id} fee is not a number: {fill.fee!r}")
    if not math.isfinite(fill.fee):
        raise FillExceedsOrder(f"fill {fill.trade_id} fee is not usable: {fill.fee!r}")
    # A fill of another instrument or side than its order's is not this order's fill.
    if instrument is not None and fill.instrument_name != instrument:
        raise FillExceedsOrder(
            f"fill {fill.trade_id} is of {fill.instrument_name}, its order of {instrument}"
        )
    if side is not None and fill.side is not side:
        raise FillExceedsOrder(
            f"fill {fill.trade_id} is a {fill.side.value}, its order a {side.value}"
        )
    if fill.amount > order_amount * (1 + 1e-9):
        raise FillExceedsOrder(
            f"fill {fill.trade_id} of {fill.amount:,.2f} is larger than its order "
            f"{fill.label or fill.venue_order_id} of {order_amount:,.2f}"
        )


FEE_USD_CURRENCIES = frozenset({"USD", "USDC", "USDT"})


class FillOutOfBounds(FillExceedsOrder):
    """A fill priced beyond its order's limit, or with a fee far above the schedule: it is
    recorded (it happened), and trading halts until someone looks."""


@dataclass(frozen=True)
class FillBounds:
    """How far a fill may stray from its order (``risk.max_fill_beyond_limit``,
    ``risk.max_fill_from_mid``, ``risk.max_fee_rate``). A venue fills a limit order at its
    limit or better (Deribit API v2, ``private/buy``: "price — the order price"), so a fill
    much worse than the limit, or charged many times the fee schedule, is a wrong record."""

    beyond_limit: float = 0.001
    from_mid: float = 0.05
    fee_rate: float = 0.005

    @classmethod
    def of(cls, s: RiskSettings) -> FillBounds:
        return cls(s.max_fill_beyond_limit, s.max_fill_from_mid, s.max_fee_rate)


def fill_out_of_bounds(
    fill: Fill,
    side: Side,
    limit: float | None,
    mid: float | None,
    *,
    inverse: bool,
    bounds: FillBounds,
) -> str | None:
    """Why ``fill`` (already found well-formed by :func:`check_fill`) is beyond its order's
    terms, or None. ``limit``: the order's limit price; ``mid``: the decision's mid, used for
    an order without a limit."""
    price = fill.price
    if limit is not None and limit > 0:
        worse = price - limit if side is Side.BUY else limit - price
        if worse > limit * bounds.beyond_limit:
            return (
                f"fill {fill.trade_id} of {fill.label or fill.venue_order_id} at {price:,.2f} "
                f"is {worse / limit:.2%} worse than its order's limit {limit:,.2f} "
                f"(risk.max_fill_beyond_limit {bounds.beyond_limit:.2%})"
            )
    elif mid is not None and mid > 0 and abs(price / mid - 1) > bounds.from_mid:
        return (
            f"fill {fill.trade_id} of {fill.label or fill.venue_order_id} at {price:,.2f} is "
            f"{abs(price / mid - 1):.2%} from the decision mid {mid:,.2f} "
            f"(risk.max_fill_from_mid {bounds.from_mid:.2%})"
        )
    # the notional in the fee's own currency: coin for an inverse contract's usual fee, USD
    # for a fee charged in a dollar currency (a linear contract's)
    in_usd = str(fill.fee_currency).upper() in FEE_USD_CURRENCIES
    if inverse:
        notional = fill.amount if in_usd else fill.amount / price
    else:
        notional = fill.amount * price if in_usd else fill.amount
    rate = abs(fill.fee) / notional
    if rate > bounds.fee_rate:
        return (
            f"fill {fill.trade_id} of {fill.label or fill.venue_order_id} was charged "
            f"{fill.fee:g} {fill.fee_currency}, {rate:.3%} of its notional "
            f"(risk.max_fee_rate {bounds.fee_rate:.3%})"
        )
    return None


def check_order_state(state: OrderState, request: OrderRequest) -> None:
    """Refuse a venue answer about ``request`` that is about another order, or whose filled
    amount is not a number between 0 and the amount asked for: nothing is sized on it."""
    for what, ours, theirs in (
        ("label", request.label, state.label),
        ("instrument", request.instrument_name, state.instrument_name),
        ("side", request.side, state.side),
    ):
        if theirs != ours:
            raise FillExceedsOrder(f"order {request.label}: the venue answered {what} {theirs!r}")
    filled = state.filled_amount
    if isinstance(filled, bool) or not isinstance(filled, int | float) or not math.isfinite(filled):
        raise FillExceedsOrder(f"order {request.label}: filled amount {filled!r} is not a number")
    if not 0 <= filled <= request.amount * (1 + 1e-9):
        raise FillExceedsOrder(
            f"order {request.label}: filled {filled:,.2f} of an order of {request.amount:,.2f}"
        )


class RiskGate:
    """Checks one decision against the limits, counted from the ledger; halts on bad reads."""

    def __init__(self, settings: RiskSettings, clock: Clock, ledger: Ledger) -> None:
        self._settings = settings
        self._clock = clock
        self._ledger = ledger

    def check(
        self, decision: HedgeDecision, book: Book, ledger_position: float | None = None
    ) -> Verdict:
        """``ledger_position``: the ledger's own view of the hedge position, when it has one;
        the position cap holds for it as well as for the read."""
        try:
            return self._check(decision, book, ledger_position)
        except Exception as exc:  # a guard that raises fails closed
            log.error("risk_guard_failed", error=repr(exc))
            return Verdict(False, f"risk guard failed: {exc!r}")

    def state(self, currency: str | None = None) -> TradingState:
        """All trading's state, or with ``currency`` the stricter of it and that currency's own
        (``hedgebot halt --currency``); read from the ledger at every check."""
        overall = self._ledger.get_trading_state().state
        if currency is None:
            return overall
        return strictest(overall, self._ledger.get_trading_state(currency).state)

    def rate_ok(self) -> bool:
        """Whether one more order fits under ``max_orders_per_minute``, counting every order
        the ledger recorded in the last minute (this process's or an earlier one's)."""
        sent = self._ledger.orders_created_since(self._clock.now() - RATE_WINDOW)
        return sent < self._settings.max_orders_per_minute

    def halt(self, reason: str) -> None:
        """Persist HALTED with ``reason`` and say so."""
        self._ledger.set_trading_state(TradingState.HALTED, reason, self._clock.now())
        log.error("trading_halted", reason=reason)

    def read_failed(self, currency: str, reason: str) -> str:
        """Count one implausible read; at ``halt_after_bad_reads`` in a row, halt. Returns what
        was done, to be recorded with the skip (it starts with :data:`BAD_READ`).

        The streak is counted from the ledger (the recorded bad-read skips since the last read
        that passed), so a restart between bad reads does not reset it; the row of this read
        is written by the caller after this returns. An operator's resume starts it afresh."""
        trading = self._ledger.get_trading_state()
        resumed = trading.updated_at if trading.state is not TradingState.HALTED else None
        count = self._ledger.bad_read_streak(currency, BAD_READ, resumed) + 1
        limit = self._settings.halt_after_bad_reads
        if self.state() is TradingState.HALTED:
            return f"{BAD_READ}{reason}; cycle skipped (trading is halted)"
        if count < limit:
            return f"{BAD_READ}{reason}; cycle skipped ({count} of {limit} in a row before a halt)"
        note = f"{count} implausible {currency} reads in a row (the last: {reason}): trading halted"
        self.halt(note)
        return f"{BAD_READ}{note}"

    def _check(self, decision: HedgeDecision, book: Book, ledger_position: float | None) -> Verdict:
        s = self._settings
        if not math.isfinite(decision.trade_amount) or not math.isfinite(decision.trade_delta):
            return Verdict(False, f"trade amount is not a number: {decision.trade_amount!r}")
        now = self._clock.now()
        inst = book.hedge_instrument
        reads = self._ledger.risk_reads(
            book.currency, inst.name, now - RATE_WINDOW, now - NOTIONAL_WINDOW
        )
        state = strictest(reads.state, reads.currency_state)
        if state is TradingState.HALTED:
            return Verdict(False, "trading is halted")
        age = (now - book.as_of).total_seconds()
        if age > s.max_data_age_seconds:
            return Verdict(False, f"book is {age:.1f}s old (max {s.max_data_age_seconds:.1f}s)")
        price = book.hedge_quote.mid

        def usd(amount: float) -> float:
            return abs(amount) * (1.0 if inst.inverse else price)

        order_usd = usd(decision.trade_amount)
        if order_usd > s.order_cap_usd:
            if s.oversize == "deny":
                return Verdict(
                    False, f"order ${order_usd:,.0f} exceeds max ${s.order_cap_usd:,.0f}"
                )
            clipped = _clip(decision, book, s.order_cap_usd)
            if clipped is None:
                return Verdict(
                    False,
                    f"order ${order_usd:,.0f} exceeds max ${s.order_cap_usd:,.0f}, and the max "
                    f"is below {inst.name}'s minimum order",
                )
            log.warning(
                "order_clipped",
                wanted=decision.trade_amount,
                sent=clipped.trade_amount,
                max_order_usd=s.order_cap_usd,
            )
            decision, order_usd = clipped, usd(clipped.trade_amount)
        held = book.hedge_position()
        if state is TradingState.REDUCING and usd(held + decision.trade_amount) >= usd(held):
            return Verdict(False, "trading state is reducing and this order does not reduce")
        views = [("read", held)]
        if ledger_position is not None:
            views.append(("ledger", ledger_position))
        for view, position in views:
            after_usd = usd(position + decision.trade_amount)
            if after_usd > s.position_cap_usd and after_usd > usd(position):
                return Verdict(
                    False,
                    f"position ${after_usd:,.0f} (by the {view}) would exceed max "
                    f"${s.position_cap_usd:,.0f}",
                )
        used = usd(reads.ordered_amount)
        if used + order_usd > s.daily_notional_cap_usd:
            return Verdict(
                False,
                f"${used:,.0f} ordered in 24 hours plus ${order_usd:,.0f} would exceed max "
                f"${s.daily_notional_cap_usd:,.0f}",
            )
        if reads.orders_since >= s.max_orders_per_minute:  # as rate_ok() counts them
            return Verdict(False, f"order rate above {s.max_orders_per_minute} per minute")
        return Verdict(True, "ok", decision)


def _clip(decision: HedgeDecision, book: Book, cap_usd: float) -> HedgeDecision | None:
    """The decision cut to ``cap_usd`` of notional, on the instrument's step; None when that is
    below the instrument's minimum. The rest of the hedge follows in later cycles."""
    inst = book.hedge_instrument
    cap_amount = cap_usd if inst.inverse else cap_usd / book.hedge_quote.mid
    amount = math.floor(cap_amount / inst.amount_step + 1e-9) * inst.amount_step
    if amount < inst.min_amount or amount <= 0:
        return None
    fraction = amount / abs(decision.trade_amount)
    return replace(
        decision,
        trade_amount=math.copysign(amount, decision.trade_amount),
        trade_delta=decision.trade_delta * fraction,
        warnings=(*decision.warnings, f"clipped to risk.max_order_usd {cap_usd:,.0f}"),
    )
