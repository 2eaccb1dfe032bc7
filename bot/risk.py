"""RiskGate: the last word between a decision and the venue.

Limits on order notional, hedge position, order rate and data age, and a trading state
(active, reducing, halted) persisted in the ledger so a halt survives a restart. A guard that
raises denies the order: the gate fails closed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from bot.clock import Clock
from bot.config import RiskSettings
from bot.domain import Book, HedgeDecision
from bot.store.records import TradingState

log = structlog.get_logger("hedgebot.risk")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


class RiskGate:
    """Checks one decision against the limits; remembers sent orders for the rate limit."""

    def __init__(
        self,
        settings: RiskSettings,
        clock: Clock,
        state_reader: Callable[[str], TradingState],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._state = state_reader
        self._sent: deque[datetime] = deque()

    def check(self, decision: HedgeDecision, book: Book) -> Verdict:
        try:
            return self._check(decision, book)
        except Exception as exc:  # a guard that raises fails closed
            log.error("risk_guard_failed", error=repr(exc))
            return Verdict(False, f"risk guard failed: {exc!r}")

    def record_sent(self) -> None:
        self._sent.append(self._clock.now())

    def rate_ok(self) -> bool:
        """Whether one more order fits under ``max_orders_per_minute``."""
        horizon = self._clock.now() - timedelta(minutes=1)
        while self._sent and self._sent[0] < horizon:
            self._sent.popleft()
        return len(self._sent) < self._settings.max_orders_per_minute

    def _check(self, decision: HedgeDecision, book: Book) -> Verdict:
        s = self._settings
        if not math.isfinite(decision.trade_amount) or not math.isfinite(decision.trade_delta):
            return Verdict(False, f"trade amount is not a number: {decision.trade_amount!r}")
        state = self._state(book.currency)  # the currency's state, or all trading's
        if state is TradingState.HALTED:
            return Verdict(False, "trading is halted")
        price = book.hedge_quote.mid
        inst = book.hedge_instrument
        order_usd = abs(decision.trade_amount) * (1.0 if inst.inverse else price)
        held = book.hedge_position()
        after = held + decision.trade_amount
        held_usd = abs(held) * (1.0 if inst.inverse else price)
        after_usd = abs(after) * (1.0 if inst.inverse else price)
        if state is TradingState.REDUCING and after_usd >= held_usd:
            return Verdict(False, "trading state is reducing and this order does not reduce")
        age = (self._clock.now() - book.as_of).total_seconds()
        if age > s.max_data_age_seconds:
            return Verdict(False, f"book is {age:.1f}s old (max {s.max_data_age_seconds:.1f}s)")
        if order_usd > s.max_order_usd:
            return Verdict(False, f"order ${order_usd:,.0f} exceeds max ${s.max_order_usd:,.0f}")
        if after_usd > s.max_position_usd and after_usd > held_usd:
            return Verdict(
                False, f"position ${after_usd:,.0f} would exceed max ${s.max_position_usd:,.0f}"
            )
        if not self.rate_ok():
            return Verdict(False, f"order rate above {s.max_orders_per_minute} per minute")
        return Verdict(True, "ok")
