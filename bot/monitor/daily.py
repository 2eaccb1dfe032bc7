"""The optional daily summary: the day's fees, slippage, hedge P&L and biggest delta.

The hedge P&L is the inverse perpetual's, marked at the index between cycles: a position of
``A`` USD from index ``S0`` to ``S1`` makes ``A·(1/S0 − 1/S1)`` coin. Funding and the basis are
left out (``hedgebot report`` has them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from bot.domain import PortfolioGreeks
from bot.monitor.alerts import Alert


@dataclass
class DailyTotals:
    day: date
    cycles: int = 0
    fills: dict[str, int] = field(default_factory=dict)
    fees_usd: dict[str, float] = field(default_factory=dict)
    slippage_usd: dict[str, float] = field(default_factory=dict)
    max_abs_delta: dict[str, float] = field(default_factory=dict)
    hedge_pnl_usd: dict[str, float] = field(default_factory=dict)
    _last_hedge: dict[str, tuple[float, float]] = field(default_factory=dict)

    def fill(self, c: str, at: datetime, fee_usd: float, slippage_usd: float | None) -> None:
        if at.date() != self.day:
            return
        self.fills[c] = self.fills.get(c, 0) + 1
        self.fees_usd[c] = self.fees_usd.get(c, 0.0) + fee_usd
        self.slippage_usd[c] = self.slippage_usd.get(c, 0.0) + (slippage_usd or 0.0)

    def book(self, c: str, g: PortfolioGreeks, hedge_usd: float | None) -> None:
        self.cycles += 1
        self.max_abs_delta[c] = max(self.max_abs_delta.get(c, 0.0), abs(g.delta_coin))
        prev = self._last_hedge.get(c)
        if prev is not None and prev[1] > 0 and g.index_price > 0:
            pnl_coin = prev[0] * (1.0 / prev[1] - 1.0 / g.index_price)
            self.hedge_pnl_usd[c] = self.hedge_pnl_usd.get(c, 0.0) + pnl_coin * g.index_price
        if hedge_usd is not None:
            self._last_hedge[c] = (hedge_usd, g.index_price)

    def next_day(self, day: date) -> DailyTotals:
        """A fresh day that keeps the last hedge, so the P&L runs on across midnight."""
        return DailyTotals(day, _last_hedge=dict(self._last_hedge))

    def summary(self) -> Alert:
        numbers: dict[str, str] = {}
        for c in sorted(self.max_abs_delta):
            numbers[c] = (
                f"fees ${self.fees_usd.get(c, 0.0):,.2f}, "
                f"slippage ${self.slippage_usd.get(c, 0.0):,.2f}, "
                f"hedge P&L ${self.hedge_pnl_usd.get(c, 0.0):+,.2f} (at the index), "
                f"{self.fills.get(c, 0)} fills, biggest |delta| {self.max_abs_delta[c]:.4f} {c}"
            )
        day = self.day.isoformat()
        return Alert(
            "daily_summary",
            f"daily_summary:{day}",
            "info",
            f"hedgebot daily summary {day}",
            f"The hedge on {day} (UTC), {self.cycles} cycles with a good read.",
            numbers,
            "nothing; `hedgebot report` has the full cost of hedging.",
        )
